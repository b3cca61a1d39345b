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
    assert f"gradio[mcp]=={gradio.__version__}" in reqs and "flash-attn\n" not in reqs  # no source build on Spaces


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


def test_zero_gpu_decodes_eagerly_and_dedicated_gpus_keep_the_compiled_path(monkeypatch):
    from app.settings import AppSettings

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert AppSettings(base_model="meta-llama/Llama-3.1-8B-Instruct").engine_config().fast_decoding is True
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")  # what Hugging Face sets on ZeroGPU hardware
    assert AppSettings(base_model="meta-llama/Llama-3.1-8B-Instruct").engine_config().fast_decoding is False
    assert AppSettings(demo=True).engine_config().fast_decoding is False


def test_zero_gpu_runs_one_module_level_function_with_picklable_arguments(monkeypatch):
    """ZeroGPU's convention: `spaces.GPU` on a module-level function; its worker process receives the
    arguments pickled and sends back what it yields. A stand-in `spaces` module checks exactly that
    around the real function and the real demo model."""
    import importlib
    import pickle
    import types

    from app.service import ReviewService
    from app.settings import AppSettings
    from reviewgpt.generate.marker_probe import MarkerReport

    decorated = []

    def GPU(duration=60):
        def wrap(fn):
            decorated.append((fn.__module__, fn.__qualname__, duration))

            def run_in_worker(*args):
                args = pickle.loads(pickle.dumps(args))  # what crosses into the GPU process
                for item in fn(*args):
                    yield pickle.loads(pickle.dumps(item))  # and back
            return run_in_worker
        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=GPU))
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    import app.gpu

    gpu = importlib.reload(app.gpu)
    try:
        assert decorated == [("app.gpu", "_write_review", gpu.GPU_SECONDS)]  # module level, not a closure
        service = ReviewService(AppSettings(demo=True, max_new_tokens=24))
        service.load()
        assert service.engine.info.fast_decoding is False
        mi = service.prepare("Title: A paper\n\nAbstract: We test ZeroGPU.", "4")
        items = list(service.stream_local(mi, service.generation(0.95, 0.0, 1)))
        assert all(isinstance(i, str) for i in items[:-1]) and isinstance(items[-1], MarkerReport)
        assert "".join(items[:-1]).strip()
    finally:
        monkeypatch.delenv("SPACES_ZERO_GPU")
        importlib.reload(app.gpu)
