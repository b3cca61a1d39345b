"""The local reviewer on an OpenAI-compatible server: what is sent, streaming, errors (real `openai`
client, real local HTTP server that records the requests)."""

import math
import threading

import pytest
import torch

from reviewgpt.config import GenerationConfig
from reviewgpt.errors import OpenAIServiceError
from reviewgpt.format.review_format import parse
from reviewgpt.generate.suppression import SequenceSuppressionProcessor, marker_start_token_ids
from reviewgpt.prepare.chat import BOS, end_token_ids, render_prompt
from reviewgpt.remote.served_reviewer import (ServedConfig, ServedReviewer, logit_bias_processor,
                                              suppression_logit_bias)

from .support.openai_server import API_KEY, Step

PAPER = "Title: A paper\n\nAbstract: We propose a method and evaluate it on three benchmarks."


def _served(server, model_dirs, **kw) -> ServedReviewer:
    return ServedReviewer(ServedConfig(base_url=server.base_url, model="reviewer", tokenizer=str(model_dirs / "base"),
                                       api_key=kw.pop("api_key", API_KEY), max_retries=kw.pop("max_retries", 0),
                                       **kw))


def _gen(**kw) -> GenerationConfig:
    return GenerationConfig(**{"max_new_tokens": 400, "temperature": 0.6, "seed": 7, **kw})


def test_prompt_is_the_in_process_prompt_and_bias_is_log_one_minus_s(openai_env, model_dirs):
    r = _served(openai_env, model_dirs)
    text = r.generate(PAPER, "4", _gen(suppression=0.95))
    body = openai_env.state.requests[-1]["body"]
    assert openai_env.state.requests[-1]["path"] == "/v1/completions"
    assert body["prompt"] == render_prompt(r.tokenizer, "4", PAPER) and body["prompt"].startswith(BOS)
    assert body["model"] == "reviewer" and body["max_tokens"] == 400 and body["seed"] == 7
    assert body["temperature"] == pytest.approx(0.6) and body["top_p"] == pytest.approx(0.9)
    ids = marker_start_token_ids(r.tokenizer)
    assert ids and sorted(int(k) for k in body["logit_bias"]) == sorted(ids)
    assert all(v == pytest.approx(math.log(0.05)) for v in body["logit_bias"].values())
    # vLLM extras: no second BOS, stop on every Llama 3.1 end token
    assert body["add_special_tokens"] is False and body["stop_token_ids"] == end_token_ids(r.tokenizer)
    assert parse(text, "4").report.is_well_formed


def test_strength_one_is_the_api_floor_and_zero_sends_nothing(openai_env, model_dirs):
    r = _served(openai_env, model_dirs)
    assert set(suppression_logit_bias(r.tokenizer, 1.0).values()) == {-100.0}
    r.generate(PAPER, "7", _gen(suppression=1.0))
    assert set(openai_env.state.requests[-1]["body"]["logit_bias"].values()) == {-100.0}
    r.generate(PAPER, "7", _gen(suppression=0.0, do_sample=False))
    body = openai_env.state.requests[-1]["body"]
    assert "logit_bias" not in body and body["temperature"] == 0 and "top_p" not in body
    with pytest.raises(ValueError):
        suppression_logit_bias(r.tokenizer, 1.5)


def test_streaming_gives_the_same_review_in_pieces_and_stop_ends_it(openai_env, model_dirs):
    r = _served(openai_env, model_dirs)
    whole = r.generate(PAPER, "4", _gen())
    pieces = list(r.stream(PAPER, "4", _gen()))
    assert len(pieces) > 3 and "".join(pieces) == whole
    assert openai_env.state.requests[-1]["body"]["stream"] is True
    stop = threading.Event()
    got = []
    for piece in r.stream(PAPER, "4", _gen(), stop=stop):
        got.append(piece)
        stop.set()
    assert len(got) == 1


def test_llama_cpp_mode_leaves_bos_to_the_server(openai_env, model_dirs):
    r = _served(openai_env, model_dirs, server_adds_bos=True, vllm_extras=False)
    r.generate(PAPER, "4", _gen())
    body = openai_env.state.requests[-1]["body"]
    assert BOS + body["prompt"] == render_prompt(r.tokenizer, "4", PAPER)
    assert "add_special_tokens" not in body and "stop_token_ids" not in body


def test_server_rejecting_logit_bias_gets_a_clear_message(openai_env, model_dirs):
    openai_env.state.reject_logit_bias = True
    r = _served(openai_env, model_dirs)
    with pytest.raises(OpenAIServiceError, match="rejected logit_bias") as e:
        list(r.stream(PAPER, "4", _gen(suppression=0.95)))
    assert "suppression to 0" in str(e.value) and "not supported by this server" in str(e.value)
    assert r.generate(PAPER, "4", _gen(suppression=0.0))  # without suppression the same server works


def test_errors_name_the_local_settings(openai_env, model_dirs):
    with pytest.raises(OpenAIServiceError, match="REVIEWGPT_LOCAL_API_KEY"):
        _served(openai_env, model_dirs, api_key="wrong").generate(PAPER, "4", _gen())
    openai_env.state.script.append(Step(status=404))
    with pytest.raises(OpenAIServiceError, match="'reviewer' was not found.*REVIEWGPT_LOCAL_BASE_URL"):
        _served(openai_env, model_dirs).generate(PAPER, "4", _gen())
    openai_env.state.script.append(Step(delay_s=2.0))
    with pytest.raises(OpenAIServiceError, match="did not answer within"):
        _served(openai_env, model_dirs, timeout_s=0.3).generate(PAPER, "4", _gen())
    openai_env.state.script.extend([Step(status=503)])
    assert _served(openai_env, model_dirs, max_retries=1).generate(PAPER, "4", _gen())  # retried by the client


def test_over_budget_prompt_is_refused_before_sending(openai_env, model_dirs):
    r = _served(openai_env, model_dirs, max_prompt_tokens=200)
    with pytest.raises(ValueError, match="over the budget"):
        r.generate(PAPER * 20, "4", _gen())
    assert not openai_env.state.requests
    fitted = r.prepare(PAPER * 20, "4")
    assert fitted.was_cut and r.generate(fitted.text, "4", _gen())


def test_batch_runs_concurrently_and_keeps_order(openai_env, model_dirs):
    # each answer takes 1 s: long enough that all 3 workers' requests overlap even on a loaded 2-core
    # CI machine (at 0.3 s one clean-clone run saw only 2 in flight)
    openai_env.state.default_delay_s = 1.0
    r = _served(openai_env, model_dirs, concurrency=3)
    texts = [f"{PAPER} Paper number {i}." for i in range(6)]
    outs = r.generate_batch(texts, "4", _gen())
    assert len(outs) == 6 and openai_env.state.max_in_flight == 3
    prompts = {q["body"]["prompt"] for q in openai_env.state.requests}
    assert prompts == {render_prompt(r.tokenizer, "4", t) for t in texts}


def test_surface_matches_what_the_app_uses(openai_env, model_dirs):
    r = _served(openai_env, model_dirs)
    assert r.config.max_prompt_tokens > 0 and r.config.max_new_tokens > 0
    assert "reviewer" in r.info.describe() and openai_env.base_url in r.info.describe()
    assert r.info.notes == [] and r.tokenizer is not None


def test_static_bias_equals_the_processor_except_after_a_bare_lt(tokenizer):
    """The documented difference, exactly: same scores everywhere except the continuation of a bare
    "<" into the marker, which only the in-process processor penalises."""
    s = 0.95
    proc = SequenceSuppressionProcessor(tokenizer, s)
    static = logit_bias_processor(suppression_logit_bias(tokenizer, s))
    scores = torch.randn(1, len(tokenizer))
    plain = torch.tensor([tokenizer("The method is", add_special_tokens=False)["input_ids"]])
    assert torch.allclose(proc(plain, scores), static(plain, scores))
    lt = tokenizer.convert_tokens_to_ids("<")
    nl = tokenizer("\n", add_special_tokens=False)["input_ids"]
    after_lt = torch.tensor([nl + [lt]])
    diff = (proc(after_lt, scores) - static(after_lt, scores))[0]
    changed = set(torch.nonzero(diff).flatten().tolist())
    assert changed and all(tokenizer.decode([i]).startswith(("N", "No")) for i in changed)
    assert torch.allclose(diff[list(changed)], torch.tensor(math.log1p(-s)))


def test_app_settings_say_which_backend_to_build(monkeypatch, model_dirs, openai_env):
    from app.settings import AppSettings

    for var in ("REVIEWGPT_LOCAL_BASE_URL", "REVIEWGPT_LOCAL_MODEL", "REVIEWGPT_LOCAL_TOKENIZER",
                "REVIEWGPT_LOCAL_SERVER_ADDS_BOS", "REVIEWGPT_ADAPTER", "REVIEWGPT_BASE_MODEL", "REVIEWGPT_DEMO"):
        monkeypatch.delenv(var, raising=False)
    assert AppSettings.from_env().local_backend() == "engine"
    monkeypatch.setenv("REVIEWGPT_LOCAL_BASE_URL", openai_env.base_url)
    s = AppSettings.from_env()
    assert s.local_backend() == "served" and not s.use_demo()
    with pytest.raises(ValueError, match="REVIEWGPT_LOCAL_MODEL"):
        s.served_config()
    monkeypatch.setenv("REVIEWGPT_LOCAL_MODEL", "reviewer")
    monkeypatch.setenv("REVIEWGPT_LOCAL_TOKENIZER", str(model_dirs / "base"))
    monkeypatch.setenv("REVIEWGPT_LOCAL_API_KEY", API_KEY)
    cfg = AppSettings.from_env().served_config()
    assert (cfg.base_url, cfg.model, cfg.tokenizer, cfg.server_adds_bos) == (
        openai_env.base_url, "reviewer", str(model_dirs / "base"), False)
    r = ServedReviewer(cfg)  # what the app builds, then uses like the engine
    assert "".join(r.stream(PAPER, "4", _gen())) and r.config.max_new_tokens == cfg.max_new_tokens
    monkeypatch.setenv("REVIEWGPT_LOCAL_SERVER_ADDS_BOS", "1")
    assert AppSettings.from_env().served_config().server_adds_bos is True


def test_an_empty_answer_is_an_error_naming_the_servers_context(openai_env, model_dirs):
    """llama.cpp answers a prompt over its context with 200 and no text: that is an error naming
    the cause and the fix, for a stream and a plain request, not an empty review returned as a success."""
    r = _served(openai_env, model_dirs)
    for call in (lambda: list(r.stream(PAPER, "4", _gen())), lambda: r.generate(PAPER, "4", _gen())):
        openai_env.state.script.append(Step(content=""))
        with pytest.raises(OpenAIServiceError, match=r"empty review.*--ctx-size.*--max-model-len.*at least [\d,]+ tokens"):
            call()
    stop = threading.Event()
    stop.set()  # a stream stopped before any text is not an error
    assert list(r.stream(PAPER, "4", _gen(), stop=stop)) == []
