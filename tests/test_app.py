"""The app over HTTP with gradio_client: a tiny model with a real adapter, the local OpenAI-compatible
server, real PDFs."""

import socket
import time

import pytest
from gradio_client import Client, handle_file

from app.service import ReviewService
from app.settings import AppSettings
from app.ui import build
from reviewgpt.config import OpenAIConfig
from reviewgpt.format.review_format import parse

from .conftest import EXAMPLE_PDFS
from .support.openai_server import API_KEY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(model_dirs, openai_server):
    settings = AppSettings(base_model=str(model_dirs / "base"), adapter=str(model_dirs / "adapter"), demo=False,
                           max_new_tokens=120,
                           openai=OpenAIConfig(api_key=API_KEY, base_url=openai_server.base_url, max_retries=1))
    service = ReviewService(settings)
    service.load()
    assert service.engine is not None, service.load_error
    demo = build(service)
    port = _free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture
def client(app_url, openai_server):
    openai_server.reset()
    return Client(app_url, verbose=False)


def test_named_endpoints(client):
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) >= {
        "/parse", "/review", "/gpt4_review", "/judge"}


def test_upload_review_gpt4_and_verdict(client, openai_server):
    paper = client.predict(handle_file(str(EXAMPLE_PDFS[1])), api_name="/parse")
    assert paper["pages"] >= 4 and len(paper["title"]) > 20 and "INTRODUCTION" in paper["text"].upper()
    assert "prompt tokens" in paper["budget"] and not paper["hidden_text"]
    job = client.submit(paper["text"], "4", 0.95, 0.0, api_name="/review")
    local = job.result()
    while not job.done():
        time.sleep(0.05)
    assert len(job.outputs()) > 5  # streamed: many partial texts
    assert job.outputs()[-1] == local and local.startswith(job.outputs()[2])
    gpt = client.predict(paper["text"], "4", 0.7, api_name="/gpt4_review")
    assert parse(gpt, "4").report.is_well_formed
    sent = openai_server.state.requests[-1]["body"]["messages"][1]["content"]
    assert sent.startswith("Title:") and len(sent) < len(paper["text"]) + 10  # budgeted model input
    verdict = client.predict(paper["text"], local, gpt, "4", api_name="/judge")
    assert verdict["winner"] in ("A", "B", "tie") and isinstance(verdict["consistent"], bool)
    assert len(openai_server.state.requests) == 3  # one review + the judge's two orders


def test_not_a_pdf_gives_the_message(client, tmp_path):
    bad = tmp_path / "notes.pdf"
    bad.write_text("these are my notes, not a paper")
    with pytest.raises(Exception, match="not a PDF"):
        client.predict(handle_file(str(bad)), api_name="/parse")


def test_without_a_key_the_gpt_side_says_how_to_enable_it(model_dirs, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    service = ReviewService(AppSettings(base_model=str(model_dirs / "base"), demo=False, max_new_tokens=8))
    assert "OPENAI_API_KEY" in service.banner() and "OPENAI_API_KEY" in service.gpt_error
    service.load()
    import threading
    outs = list(service.run_both("Title: T\n\nText.", "4", 0.95, 0.0, threading.Event()))
    last = outs[-1]
    assert last.local.text and not last.local.error  # the Llama side still works
    assert "OPENAI_API_KEY" in last.gpt.error and "OPENAI_API_KEY" in last.verdict_note
    assert "BASE model" in service.banner()  # no adapter configured: said visibly


def test_unloadable_model_is_reported_not_replaced(tmp_path):
    service = ReviewService(AppSettings(base_model=str(tmp_path / "missing"), demo=False))
    service.load()
    assert service.engine is None and "missing" in service.load_error and "REVIEWGPT_BASE_MODEL" in service.banner()


def test_bundled_demo_model_is_used_without_a_gpu():
    settings = AppSettings(demo=None)
    assert settings.use_demo()  # CI and this machine have no CUDA GPU
    cfg = settings.engine_config()
    assert cfg.base_model.endswith("assets/demo-model/base") and cfg.adapter.endswith("assets/demo-model/adapter")
    service = ReviewService(settings)
    service.load()
    assert service.engine is not None, service.load_error
    assert "Demo model" in service.banner()


def test_two_users_at_once_both_get_their_reviews(app_url):
    a, b = Client(app_url, verbose=False), Client(app_url, verbose=False)
    text = "Title: A paper\n\nAbstract: We propose a method and evaluate it on three datasets."
    jobs = [a.submit(text, "4", 0.95, 0.0, api_name="/review"), b.submit(text, "7", 0.0, 0.0, api_name="/review")]
    results = [j.result(timeout=120) for j in jobs]
    assert all(r.strip() for r in results) and results[0] != results[1]
