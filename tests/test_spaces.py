"""The Hugging Face Spaces contract: README front matter, requirements, and app_file starting the app."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import yaml

from .conftest import ROOT


def _front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_front_matter():
    fm = _front_matter()
    assert fm["sdk"] == "gradio" and (ROOT / fm["app_file"]).is_file()
    import gradio

    assert fm["sdk_version"] == gradio.__version__  # the version the tests ran against
    assert str(fm["python_version"]).startswith("3.") and 0 < len(fm["short_description"]) <= 60
    reqs = (ROOT / "requirements.txt").read_text()
    assert f"gradio=={gradio.__version__}" in reqs and "flash-attn\n" not in reqs  # no source build on Spaces


def test_app_file_starts_the_app_on_the_given_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.update(GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", REVIEWGPT_DEMO="1",
               HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen([sys.executable, str(ROOT / _front_matter()["app_file"])], env=env, cwd="/",
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(1)
        else:
            raise AssertionError("the app did not start within 180 s")
        assert "Paper Review GPT" in page or "gradio" in page.lower()
        config = urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5).read().decode()
        assert "Demo model" in config and "OPENAI_API_KEY" in config  # banner: demo model, how to enable GPT-4
    finally:
        proc.terminate()
        proc.wait(timeout=30)
