"""The app over HTTP with gradio_client: a tiny model with a real adapter, the local OpenAI-compatible
server, real PDFs."""

import hashlib
import socket
import time

from pathlib import Path

import gradio as gr
import pytest
import yaml
from gradio_client import Client, handle_file

from app.labels import ModelLabel, gpt_label, local_label
from reviewgpt.compare.judge import name_systems
from app.run import RunPhase
from app.service import ReviewService
from app.settings import AppSettings
from app.ui import build, launch
from reviewgpt.config import OpenAIConfig
from reviewgpt.format.review_format import parse

from .conftest import EXAMPLE_PDFS
from .support.openai_server import API_KEY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(settings: AppSettings) -> tuple[str, object, ReviewService]:
    service = ReviewService(settings)
    service.load()
    assert service.engine is not None, service.load_error
    demo = build(service)
    port = _free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return f"http://127.0.0.1:{port}/", demo, service


@pytest.fixture(scope="module")
def app_url(model_dirs, openai_server):
    url, demo, _ = start_app(AppSettings(
        base_model=str(model_dirs / "base"), adapter=str(model_dirs / "adapter"), demo=False, max_new_tokens=120,
        openai=OpenAIConfig(api_key=API_KEY, base_url=openai_server.base_url, max_retries=1)))
    yield url
    demo.close()


@pytest.fixture
def client(app_url, openai_server):
    openai_server.reset()
    return Client(app_url, verbose=False)


def test_named_endpoints(client):
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) >= {
        "/parse", "/review", "/gpt4_review", "/judge"}


def test_upload_review_gpt4_and_verdict(client, openai_server):
    paper = client.predict(handle_file(str(EXAMPLE_PDFS[1])), "4", api_name="/parse")
    assert paper["pages"] >= 4 and len(paper["title"]) > 20 and "INTRODUCTION" in paper["text"].upper()
    assert "prompt tokens" in paper["budget"] and not paper["hidden_text"] and len(paper["pdf_sha256"]) == 64
    job = client.submit(paper["text"], "4", 0.95, 0.0, 1, api_name="/review")
    local = job.result()
    while not job.done():
        time.sleep(0.05)
    assert len(job.outputs()) > 5  # streamed: many partial results
    assert job.outputs()[-1] == local and local["review"].startswith(job.outputs()[2]["review"])
    assert local["markers"]["strength"] == 0.95 and len(local["markers"]["aspects"]) == 4
    assert local["settings"]["seed"] == 1
    # parse's text passed back reads as the page reads the PDF (issue #26: it was a plain head cut)
    assert local["model_input"] == paper["model_input"] and local["model_input"]["source"] == "parsed"
    gpt = client.predict(paper["text"], "4", 0.7, api_name="/gpt4_review")
    assert parse(gpt, "4").report.is_well_formed
    sent = openai_server.state.requests[-1]["body"]["messages"][1]["content"]
    assert sent.startswith("Title:") and len(sent) < len(paper["text"]) + 10  # budgeted model input
    verdict = client.predict(paper["text"], local["review"], gpt, "4", api_name="/judge")
    assert verdict["winner"] in ("A", "B", "tie") and isinstance(verdict["consistent"], bool)
    assert len(openai_server.state.requests) == 3  # one review + the judge's two orders


def test_not_a_pdf_gives_the_message(client, tmp_path):
    bad = tmp_path / "notes.pdf"
    bad.write_text("these are my notes, not a paper")
    with pytest.raises(Exception, match="not a PDF"):
        client.predict(handle_file(str(bad)), api_name="/parse")


class Spy:
    """The real engine, recording the paper text each stream() call is given (what the model reads)."""

    def __init__(self, engine):
        self._engine, self.texts = engine, []

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def stream(self, paper_text, schema, gen=None, stop=None, probe=None):
        self.texts.append(paper_text)
        self.engine_ids = getattr(self, "engine_ids", []) + [self._engine.prompt_ids(paper_text, schema)]
        yield from self._engine.stream(paper_text, schema, gen, stop=stop, probe=probe)


def test_local_gpt4_and_judge_read_the_same_prepare_result(model_dirs, openai_env):
    """One paper through a run of the page: the three models get ModelInput.text of one prepare() call."""
    from reviewgpt.ingest import extract
    from reviewgpt.prepare.model_input import prepare

    service = ReviewService(AppSettings(base_model=str(model_dirs / "base"), adapter=str(model_dirs / "adapter"),
                                        demo=False, max_new_tokens=40))
    service.load()
    spy = Spy(service.engine)
    service.load(spy)  # the service accepts any engine-like object
    doc = extract(EXAMPLE_PDFS[1].read_bytes())
    mi = service.prepare(doc, "4")
    assert mi == prepare(doc, "4", spy.tokenizer, spy.config.max_prompt_tokens)
    run = service.new_run(mi, 0.95, 0.0, 3, doc.title, "p.pdf", "0" * 64)
    last = list(service.execute(run))[-1]
    assert last.phase is RunPhase.DONE and last.verdict is not None
    bodies = [r["body"]["messages"] for r in openai_env.state.requests]
    gpt_user = [m[1]["content"] for m in bodies if "meta-reviewer" not in m[0]["content"]]
    judge_user = [m[1]["content"] for m in bodies if "meta-reviewer" in m[0]["content"]]
    # the local model gets the ModelInput itself (its counted prompt ids: not encoded again), the others its text
    assert spy.texts == [mi] and spy.engine_ids == [mi.prompt_ids_for(spy.tokenizer)] and gpt_user == [mi.text]
    assert len(judge_user) == 2 and all(u.startswith(f"[Paper]\n{mi.text}\n\n[") for u in judge_user)


def test_without_a_key_the_gpt_side_says_how_to_enable_it(model_dirs, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    service = ReviewService(AppSettings(base_model=str(model_dirs / "base"), demo=False, max_new_tokens=8))
    assert "OPENAI_API_KEY" in service.banner() and "OPENAI_API_KEY" in service.gpt_error
    service.load()
    mi = service.prepare("Title: T\n\nText.", "4")
    last = list(service.execute(service.new_run(mi, 0.95, 0.0, None, "T", None, None)))[-1]
    assert last.local.text and not last.local.error  # the local side still works
    assert last.phase is RunPhase.ONE_SIDE_FAILED and "OPENAI_API_KEY" in last.gpt.error and last.gpt.off
    status = last.status()  # not configured is "off", not "failed" (the page toasts only failures)
    assert "Done" not in status and "GPT-4o baseline is off" in status and "failed" not in status
    assert "No verdict" in status  # why it is off: in the GPT column and the banner, not repeated here
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
    reads = yaml.safe_load((Path(settings.demo_dir) / "engine.yaml").read_text())["max_prompt_tokens"]
    assert f"reads the first {reads:,} prompt tokens" in service.banner()  # what the demo model reads, said
    assert service.local_label.title == "Demo-scale model (pipeline only)"


def test_labels_in_words_a_user_knows():
    class Info:
        def __init__(self, base, adapter):
            self.base_model, self.adapter = base, adapter

        def describe(self):
            return f"{self.base_model} + {self.adapter} · nf4 · cuda · sdpa"

    class Engine:
        def __init__(self, base, adapter):
            self.info = Info(base, adapter)

    tuned = local_label(Engine("meta-llama/Llama-3.1-8B-Instruct", "me/reviewer-lora"), is_demo=False)
    assert tuned.title == "Fine-tuned Llama 3.1 8B (LoRA)" and "nf4" in tuned.detail and "nf4" not in tuned.title
    assert "size read from the model's name" in tuned.detail  # no config to read (a served model): said so
    # issue #26: a loaded model's config decides, not its folder's name
    from types import SimpleNamespace

    from app.labels import LLAMA31_8B_CONFIG

    def loaded(base, **config):
        e = Engine(base, "me/reviewer-lora")
        e.model = SimpleNamespace(config=SimpleNamespace(**config))
        return local_label(e, is_demo=False)

    tiny = loaded("/models/Llama-3.1-8B-Instruct", model_type="llama", hidden_size=64, num_hidden_layers=2)
    assert tiny.title == "Fine-tuned Llama-3.1-8B-Instruct (LoRA)"  # its folder, by name: not called "Llama 3.1 8B"
    real = loaded("/models/my-merged-checkpoint", **LLAMA31_8B_CONFIG)
    assert real.title == "Fine-tuned Llama 3.1 8B (LoRA)" and "model's name" not in real.detail
    llama3_0 = loaded("/models/Llama-3.1-8B", **{**LLAMA31_8B_CONFIG, "max_position_embeddings": 8192})
    assert "3.1 8B" not in llama3_0.title
    assert "not fine-tuned" in local_label(Engine("meta-llama/Llama-3.1-8B-Instruct", None), False).title
    assert local_label(Engine("x", "y"), is_demo=True).title == "Demo-scale model (pipeline only)"
    assert gpt_label("gpt-4o", None, True).title == "GPT-4o baseline"
    a, b = ModelLabel("L", "", "the fine-tuned Llama"), ModelLabel("G", "", "GPT-4o")
    said = name_systems("Review A is specific; B is generic. A careful reader prefers A.", a.short, b.short)
    assert said == ("the fine-tuned Llama's review is specific; GPT-4o is generic. A careful reader prefers "
                    "the fine-tuned Llama.")


def test_eight_users_at_once_each_get_their_own_review(app_url, capsys):
    """Load: 8 gradio_client users on /review at once (one GPU slot): all complete, each gets the
    review of its own request, the queue reports positions."""
    users = [Client(app_url, verbose=False) for _ in range(8)]
    texts = [f"Title: Paper number {i}\n\nAbstract: We study problem {i} on {i + 2} datasets." for i in range(8)]
    ranks: dict[int, set] = {i: set() for i in range(8)}
    t0 = time.perf_counter()
    jobs = [u.submit(t, "4", 0.95, 0.7, 100 + i, api_name="/review") for i, (u, t) in enumerate(zip(users, texts))]
    done_at: dict[int, float] = {}
    while len(done_at) < 8:
        for i, j in enumerate(jobs):
            st = j.status()
            if st.rank is not None:
                ranks[i].add(st.rank)
            if j.done() and i not in done_at:
                done_at[i] = time.perf_counter() - t0
        time.sleep(0.05)
    results = [j.result() for j in jobs]
    for i, r in enumerate(results):  # each got the review of its own request (its text, its seed)
        assert r["review"].strip() and r["settings"]["seed"] == 100 + i
        assert r["model_input"]["text_sha256"] == hashlib.sha256(texts[i].encode()).hexdigest()
    assert any(max(r) >= 1 for r in ranks.values() if r), ranks  # someone waited behind others, with a position
    with capsys.disabled():
        print(f"\n8 users: finished at {sorted(round(t, 1) for t in done_at.values())} s; "
              f"queue ranks seen: {[sorted(r) for r in ranks.values()]}")


def test_the_local_reviewer_on_an_inference_server_runs_the_page(model_dirs, openai_env, monkeypatch):
    """REVIEWGPT_LOCAL_BASE_URL set (vLLM / SGLang / llama.cpp): the page's run sends the project's own
    prompt of the same ModelInput to /v1/completions, suppression as logit_bias; GPT-4 and the judge
    read the same text."""
    import math

    from reviewgpt.remote.served_reviewer import ServedReviewer
    from reviewgpt.prepare.chat import render_prompt

    monkeypatch.setenv("REVIEWGPT_LOCAL_BASE_URL", openai_env.base_url)
    monkeypatch.setenv("REVIEWGPT_LOCAL_MODEL", "reviewer")
    monkeypatch.setenv("REVIEWGPT_LOCAL_TOKENIZER", str(model_dirs / "base"))
    monkeypatch.setenv("REVIEWGPT_LOCAL_API_KEY", API_KEY)
    settings = AppSettings.from_env()
    assert not settings.use_demo()  # a server URL means "that server", never the demo model
    service = ReviewService(settings)
    service.load()
    assert isinstance(service.engine, ServedReviewer), service.load_error
    mi = service.prepare("Title: Served\n\nAbstract: A method and three benchmarks.", "4")
    last = list(service.execute(service.new_run(mi, 0.95, 0.6, 5, "Served", None, None)))[-1]
    assert last.phase is RunPhase.DONE and last.local.text and last.verdict is not None, last.status()
    assert last.local.markers is None  # a server gives no per-step probabilities: nothing is shown as if it did
    completions = [r["body"] for r in openai_env.state.requests if r["path"] == "/v1/completions"]
    assert len(completions) == 1
    body = completions[0]
    assert body["model"] == "reviewer" and body["prompt"] == render_prompt(service.engine.tokenizer, "4", mi.text)
    assert body["logit_bias"] and all(v == pytest.approx(math.log(0.05)) for v in body["logit_bias"].values())
    chats = [r["body"]["messages"] for r in openai_env.state.requests if r["path"] == "/v1/chat/completions"]
    assert [m[1]["content"] for m in chats if "meta-reviewer" not in m[0]["content"]] == [mi.text]


def test_parse_text_passed_back_reads_as_the_page_reads_the_pdf(model_dirs):
    """The API's parse -> text -> review flow and the page read the same ModelInput: with a budget
    that cuts the paper, the same sections are left out (it was a plain head cut of the text,
    source "text", issue #26); a text the service did not hand out is cut at the end."""
    from app.api import _input
    from reviewgpt.ingest import extract

    service = ReviewService(AppSettings(base_model=str(model_dirs / "base"), demo=False, max_new_tokens=8))
    service.load()
    service.engine.config.max_prompt_tokens = 700  # the tiny test tokenizer: cut this paper
    doc = extract(EXAMPLE_PDFS[1].read_bytes())
    page = service.prepare(doc, "4")
    assert page.budget.dropped_sections  # the budget really cuts sections here
    service.remember(doc)
    api = _input(service, doc.to_text(), "4")
    assert api.to_dict() == page.to_dict() and api.text == page.text and api.source == "parsed"
    other = _input(service, doc.to_text() + " ", "4")
    assert other.source == "text" and not other.budget.dropped_sections
    # issue #26 item 5: parse's id reads exactly what the page reads; an unknown id is an error, not a paper
    paper_id = service.remember(doc)
    by_id = _input(service, paper_id, "4")
    assert by_id.to_dict() == page.to_dict() and by_id.text == page.text and by_id.source == "parsed"
    with pytest.raises(gr.Error, match="call parse again"):
        _input(service, "parsed:" + "0" * 16, "4")


def test_review_takes_the_parse_id_over_the_api(client):
    """parse -> id -> /review reads what parse -> text -> /review reads: same model input, same review."""
    paper = client.predict(handle_file(str(EXAMPLE_PDFS[1])), "4", api_name="/parse")
    assert paper["id"].startswith("parsed:")
    by_id = client.predict(paper["id"], "4", 0.95, 0.0, 3, api_name="/review")
    by_text = client.predict(paper["text"], "4", 0.95, 0.0, 3, api_name="/review")
    assert by_id["model_input"] == by_text["model_input"] == paper["model_input"]
    assert by_id["review"] == by_text["review"] and by_id["review"].strip()


def test_the_status_line_says_nothing_failed_when_both_sides_are_off():
    """Issue #26: with no local model and no GPT key, the status said "Both sides failed"."""
    from app.run import Run, Side

    def side(title, error, off):
        return Side(ModelLabel(title, "", title), error=error, off=off)

    run = Run("T", None, None, None, None, side("Local", "no model loaded", True),  # type: ignore[arg-type]
              side("GPT-4o", "set OPENAI_API_KEY", True), phase=RunPhase.FAILED)  # input, settings: not read
    assert run.status() == "Nothing to run: Local is off. GPT-4o is off."
    run.local = side("Local", "out of memory", False)
    assert run.status() == "No review: Local failed: out of memory GPT-4o is off: set OPENAI_API_KEY"
    run.gpt = side("GPT-4o", "timeout", False)
    assert run.status().startswith("Both sides failed. ")


def test_the_status_line_says_stopping_until_the_run_has_stopped():
    """Stop pressed: the page said "Stopping...", then the stream's next update said "Writing both
    reviews..." again while the run wound down (CI's failure of the browser walk's stop test)."""
    from app.run import Run, Side

    run = Run("T", None, None, None, None, Side(ModelLabel("Local", "", "Local")),  # type: ignore[arg-type]
              Side(ModelLabel("GPT-4o", "", "GPT-4o")), phase=RunPhase.GENERATING)
    assert run.status().startswith("Writing both reviews")
    run.stop.set()
    assert run.status() == "Stopping..."
    run.phase = RunPhase.STOPPED
    assert run.status().startswith("Stopped.")


def test_the_start_up_log_says_which_model_loaded_and_whether_the_gpt_side_is_on(model_dirs, caplog, monkeypatch):
    """Issue #26: the start-up log never said which model loaded or whether the GPT side was on."""
    import logging

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    service = ReviewService(AppSettings(base_model=str(model_dirs / "base"), adapter=str(model_dirs / "adapter"),
                                        demo=False, max_new_tokens=8))
    with caplog.at_level(logging.INFO, logger="app.service"):
        service.load()
    said = [r.getMessage() for r in caplog.records if r.name == "app.service"]
    assert said[0].startswith("local model: ") and "LoRA adapter (merged)" in said[0] and "fp32" in said[0]
    assert said[1].startswith("GPT side: off: ") and "OPENAI_API_KEY" in said[1]


def test_the_gpt_server_is_named_without_its_credentials(model_dirs, caplog, monkeypatch):
    """Issue #26 follow-up: the start-up log printed an OPENAI_BASE_URL whole, a proxy's user:password too;
    the page called OpenAI's own address, given explicitly, "an OpenAI-compatible server"."""
    import logging

    from app.labels import without_credentials

    hidden = without_credentials("https://alice:s3cret@llm.example.com:8443/v1?x=1")
    assert hidden == "https://***@llm.example.com:8443/v1?x=1"
    assert without_credentials("http://token@10.0.0.2/v1") == "http://***@10.0.0.2/v1"
    assert without_credentials("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert without_credentials(None) is None
    assert gpt_label("gpt-4o", "https://api.openai.com/v1", True).detail == "gpt-4o via the OpenAI API"
    assert gpt_label("gpt-4o", None, True).detail == "gpt-4o via the OpenAI API"
    assert gpt_label("gpt-4o", "http://127.0.0.1:8000/v1", True).detail == "gpt-4o via an OpenAI-compatible server"
    assert gpt_label("gpt-4o", "https://api.openai.com.evil.example/v1", True).detail.endswith("compatible server")

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    proxy = OpenAIConfig(api_key="sk-test", base_url="https://alice:s3cret@llm.example.com/v1", max_retries=0)
    service = ReviewService(AppSettings(base_model=str(model_dirs / "base"), demo=False, max_new_tokens=8,
                                        openai=proxy))
    with caplog.at_level(logging.INFO, logger="app.service"):
        service.load()
    said = [r.getMessage() for r in caplog.records if r.name == "app.service" and "GPT side" in r.getMessage()]
    assert said == ["GPT side: on (gpt-4o via an OpenAI-compatible server: https://***@llm.example.com/v1)"], said
    assert service.models()["gpt"]["base_url"] == "https://***@llm.example.com/v1"  # the downloads record this


def test_a_stopped_run_keeps_the_local_models_marker_report():
    """Issue #26: a stopped run lost its P(empty) column (markers: null) though the written aspects had
    values. The local stream honours Stop itself and ends with its report: the run reads it to its end;
    the GPT side's stream is closed at once."""
    import threading

    from app.run import Run, Side, drive

    stop, report, closed = threading.Event(), object(), threading.Event()

    def local():
        for i in range(1000):
            if stop.is_set():  # as the engine does: ends within a token, then the marker report
                break
            yield f"piece {i} "
            time.sleep(0.01)
        yield report

    def gpt():
        try:
            while True:
                yield "gpt "
                time.sleep(0.01)
        finally:
            closed.set()

    run = Run("T", None, None, None, None, Side(ModelLabel("L", "", "L")), Side(ModelLabel("G", "", "G")),
              stop=stop)  # type: ignore[arg-type]
    for i, r in enumerate(drive(run, local, gpt, None, {})):
        if i == 3:
            stop.set()
    assert run.phase is RunPhase.STOPPED and run.local.text and run.local.markers is report
    assert closed.wait(timeout=30) and run.gpt.text  # its pump thread closes it at its next piece


def test_a_stopped_run_says_stopping_while_the_local_model_winds_down():
    """An update sent just before Stop could land on the page after Stop's own reply, leaving "Writing both
    reviews..." there for the whole drain (the browser walk-through saw it under load). The run's stream
    itself says "Stopping..." as soon as it sees Stop, before it waits for the local model's last tokens."""
    import threading

    from app.run import Run, Side, drive

    stop, release = threading.Event(), threading.Event()

    def local():
        while not stop.is_set():
            yield "piece "
            time.sleep(0.01)
        release.wait(30)  # the model is still winding down
        yield object()

    run = Run("T", None, None, None, None, Side(ModelLabel("L", "", "L")), Side(ModelLabel("G", "", "G")),
              stop=stop)  # type: ignore[arg-type]
    said = []
    for i, r in enumerate(drive(run, local, None, None, {"gpt": "off"})):
        said.append((r.status(), release.is_set()))
        if i == 2:
            stop.set()
        elif stop.is_set():
            release.set()
    after = [s for s in said[3:]]
    assert after[0] == ("Stopping...", False), said  # said before the drain ended
    assert run.phase is RunPhase.STOPPED and after[-1][0].startswith("Stopped."), said
