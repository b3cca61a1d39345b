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
from reviewgpt.prepare.chat import BOS, encode_prompt, end_token_ids, render_prompt
from reviewgpt.remote.served_reviewer import (SERVERS, ServedConfig, ServedReviewer, ServerContextError,
                                              logit_bias_processor, suppression_logit_bias)

from .support.openai_server import API_KEY, Step

PAPER = "Title: A paper\n\nAbstract: We propose a method and evaluate it on three benchmarks."


def _served(stub, model_dirs, **kw) -> ServedReviewer:
    return ServedReviewer(ServedConfig(base_url=stub.base_url, model="reviewer", tokenizer=str(model_dirs / "base"),
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
    # vLLM extras: no second BOS, stop on every Llama 3.1 end token; its samplers off but top-p
    assert body["add_special_tokens"] is False and body["stop_token_ids"] == end_token_ids(r.tokenizer)
    assert (body["top_k"], body["min_p"], body["repetition_penalty"]) == (-1, 0.0, 1.0)
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


# What each preset sends besides the prompt and logit_bias, for _gen() (sampling at 0.6, top-p 0.9, seed 7):
# exactly these fields (the body is compared whole), the in-process engine's samplers in each server's names.
COMMON = {"model": "reviewer", "max_tokens": 400, "temperature": 0.6, "top_p": 0.9, "seed": 7,
          "presence_penalty": 0.0, "frequency_penalty": 0.0}
DIALECTS = {
    "vllm": {"add_special_tokens": False, "stop_token_ids": "END", "skip_special_tokens": True, "top_k": -1,
             "min_p": 0.0, "repetition_penalty": 1.0},
    "sglang": {"stop_token_ids": "END", "skip_special_tokens": True, "top_k": -1, "min_p": 0.0,
               "repetition_penalty": 1.0},
    "llama.cpp": {"top_k": 0, "min_p": 0.0, "typical_p": 1.0, "top_n_sigma": -1.0, "xtc_probability": 0.0,
                  "dry_multiplier": 0.0, "mirostat": 0, "dynatemp_range": 0.0, "repeat_last_n": -1,
                  "repeat_penalty": 1.0, "samplers": ["penalties", "temperature", "top_p"]},
}


def _sent(stub) -> dict:
    """The last /v1/completions body, less the prompt, logit_bias and stream (checked apart)."""
    body = dict(stub.state.requests[-1]["body"])
    for key in ("prompt", "logit_bias", "stream"):
        body.pop(key, None)
    return body


@pytest.mark.parametrize("name", ["vllm", "sglang", "llama.cpp"])
def test_each_server_preset_sends_exactly_its_dialect(openai_env, model_dirs, name):
    r = _served(openai_env, model_dirs, server=name)
    openai_env.state.decode = lambda ids: r.tokenizer.decode(ids)  # a server reads ids as the model's tokens
    text = r.generate(PAPER, "4", _gen(suppression=0.95))
    assert parse(text, "4").report.is_well_formed
    end = end_token_ids(r.tokenizer)
    expected = {**COMMON, **{k: (end if v == "END" else v) for k, v in DIALECTS[name].items()}}
    assert _sent(openai_env) == expected
    body = openai_env.state.requests[-1]["body"]
    assert body["logit_bias"] and all(v == pytest.approx(math.log(0.05)) for v in body["logit_bias"].values())
    # exactly one BOS reaches the model: kept in the string (vLLM, with add_special_tokens false), left to
    # the server (llama.cpp adds it to a text prompt), or in the token ids (SGLang takes them as they are)
    prompt, rendered = body["prompt"], render_prompt(r.tokenizer, "4", PAPER)
    bos_id = r.tokenizer.convert_tokens_to_ids(BOS)
    if name == "vllm":
        assert prompt == rendered and prompt.startswith(BOS) and prompt.count(BOS) == 1
    elif name == "llama.cpp":
        assert BOS + prompt == rendered and BOS not in prompt
    else:
        assert prompt == encode_prompt(r.tokenizer, "4", PAPER) and prompt.count(bos_id) == 1 and prompt[0] == bos_id
    # streamed: the same fields
    assert "".join(r.stream(PAPER, "4", _gen(suppression=0.95))) == text
    assert _sent(openai_env) == expected and openai_env.state.requests[-1]["body"]["stream"] is True


def test_presets_send_repetition_penalty_top_p_one_and_ignore_eos_in_their_names(openai_env, model_dirs):
    for name, field in (("vllm", "repetition_penalty"), ("sglang", "repetition_penalty"),
                        ("llama.cpp", "repeat_penalty")):
        r = _served(openai_env, model_dirs, server=name)
        openai_env.state.completion_text = "## Summary\n1. **A**: b.\n"
        r.generate(PAPER, "4", _gen(repetition_penalty=1.2, top_p=1.0, ignore_eos=True))
        body = openai_env.state.requests[-1]["body"]
        assert body[field] == pytest.approx(1.2) and body["ignore_eos"] is True, name
        other = ({"repetition_penalty", "repeat_penalty"} - {field}).pop()
        assert other not in body, name  # one name only, the server's
        # top-p 1.0: sent where the server's own default is not 1 (llama.cpp 0.95); vLLM as before the presets
        assert body.get("top_p") == (None if name == "vllm" else 1.0), name
        r.generate(PAPER, "4", _gen(do_sample=False))
        greedy = openai_env.state.requests[-1]["body"]
        assert greedy["temperature"] == 0 and "top_p" not in greedy and "ignore_eos" not in greedy
        assert greedy[field] == 1.0


def test_an_unknown_server_is_refused_naming_the_presets(model_dirs):
    with pytest.raises(ValueError, match=r"unknown server 'ollama': one of vllm \| sglang \| llama\.cpp"):
        ServedConfig(base_url="http://127.0.0.1:1/v1", model="m", tokenizer=str(model_dirs / "base"), server="ollama")
    assert set(SERVERS) == {"vllm", "sglang", "llama.cpp"}


def _completions(stub) -> int:
    return sum(q["path"] == "/v1/completions" for q in stub.state.requests)


@pytest.mark.parametrize("name,where", [("vllm", "/v1/models"), ("sglang", "/v1/models"), ("llama.cpp", "/props")])
def test_the_servers_context_lowers_the_budget_and_a_prompt_over_it_is_refused_unsent(openai_env, model_dirs,
                                                                                      name, where):
    if name == "llama.cpp":
        openai_env.state.props_context = 700
    else:
        openai_env.state.model_context = 700
    r = _served(openai_env, model_dirs, server=name, max_prompt_tokens=2000, max_new_tokens=400)
    assert r.info.notes == []  # asked on first use, not at construction
    assert r.server_context() == 700 and r.prompt_budget() == 300  # min(2000, 700 - 400)
    assert r.prompt_budget(100) == 600
    assert [q["path"] for q in openai_env.state.info_requests] == [where]
    assert openai_env.state.info_requests[0]["auth"] == f"Bearer {API_KEY}"
    assert any("server context 700 tokens" in n and "prompt budget 300" in n for n in r.info.notes), r.info.notes
    long = PAPER * 30
    n = len(encode_prompt(r.tokenizer, "4", long))
    assert 300 < n <= 2000  # within max_prompt_tokens, over the context
    flag = {"llama.cpp": "--ctx-size", "sglang": "--context-length", "vllm": "--max-model-len"}[name]
    for call in (lambda: r.generate(long, "4", _gen()), lambda: list(r.stream(long, "4", _gen())),
                 lambda: r.generate_batch([long, long], "4", _gen())):
        with pytest.raises(ServerContextError, match=rf"prompt has {n:,} tokens.*400 more.*context of 700 tokens"
                                                      rf".*{openai_env.base_url}.*not sent.*{flag}.*max_prompt_tokens"
                                                      r" or max_new_tokens"):
            call()
    assert _completions(openai_env) == 0  # refused before any request
    assert isinstance(ServerContextError("x"), ValueError)  # what callers of the over-budget check catch
    fitted = r.prepare(long, "4")  # the paper is fitted to the lowered budget, then sent
    assert fitted.was_cut and fitted.budget.budget == 300 and fitted.budget.prompt_tokens <= 300
    openai_env.state.decode = lambda ids: r.tokenizer.decode(ids)
    assert r.generate(fitted, "4", _gen()) and _completions(openai_env) == 1
    assert len(openai_env.state.info_requests) == 1  # asked once
    with pytest.raises(ServerContextError, match="no room for a prompt"):
        r.prompt_budget(700)


def test_a_lora_card_takes_its_base_models_context(openai_env, model_dirs):
    openai_env.state.models = [{"id": "base", "object": "model", "max_model_len": 900},
                               {"id": "reviewer", "object": "model", "parent": "base", "max_model_len": None}]
    assert _served(openai_env, model_dirs, max_new_tokens=400).prompt_budget() == 500
    openai_env.state.models = [{"id": "base", "object": "model", "max_model_len": 800},
                               {"id": "reviewer", "object": "model", "root": "/adapters/reviewer"}]  # older vLLM
    assert _served(openai_env, model_dirs, max_new_tokens=400).prompt_budget() == 400


def test_a_server_that_does_not_say_its_context_leaves_the_budget_as_configured(openai_env, model_dirs):
    for name in SERVERS:  # the stub's card has no max_model_len, and /props answers 404
        r = _served(openai_env, model_dirs, server=name, max_prompt_tokens=1234)
        assert r.server_context() is None and r.prompt_budget() == 1234
        assert r.prepare(PAPER * 200, "4").budget.budget == 1234
        assert any("server context not reported" in n for n in r.info.notes)
    # a wrong key, a server that is not there: unknown as well, never an error
    assert _served(openai_env, model_dirs, api_key="wrong").server_context() is None
    openai_env.state.model_context = 700
    nothing = ServedReviewer(ServedConfig(base_url="http://127.0.0.1:9/v1", model="reviewer",
                                          tokenizer=str(model_dirs / "base"), api_key=API_KEY, timeout_s=2))
    assert nothing.server_context() is None and nothing.prompt_budget() == nothing.config.max_prompt_tokens
    assert _served(openai_env, model_dirs).server_context() == 700  # while the stub says it


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
                "REVIEWGPT_LOCAL_SERVER_ADDS_BOS", "REVIEWGPT_LOCAL_SERVER", "REVIEWGPT_ADAPTER",
                "REVIEWGPT_BASE_MODEL", "REVIEWGPT_DEMO"):
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
    assert (cfg.base_url, cfg.model, cfg.tokenizer, cfg.server) == (
        openai_env.base_url, "reviewer", str(model_dirs / "base"), "vllm")
    r = ServedReviewer(cfg)  # what the app builds, then uses like the engine
    assert "".join(r.stream(PAPER, "4", _gen())) and r.config.max_new_tokens == cfg.max_new_tokens
    monkeypatch.setenv("REVIEWGPT_LOCAL_SERVER", "llama.cpp")
    cfg = AppSettings.from_env().served_config()
    assert cfg.server == "llama.cpp" and "(llama.cpp)" in ServedReviewer(cfg).info.describe()
    r = ServedReviewer(cfg)
    assert "".join(r.stream(PAPER, "4", _gen()))
    body = openai_env.state.requests[-1]["body"]
    assert BOS + body["prompt"] == render_prompt(r.tokenizer, "4", PAPER) and body["top_k"] == 0
    monkeypatch.setenv("REVIEWGPT_LOCAL_SERVER", "ollama")
    with pytest.raises(ValueError, match=r"REVIEWGPT_LOCAL_SERVER: unknown server 'ollama': one of vllm \| sglang"):
        AppSettings.from_env()
    monkeypatch.setenv("REVIEWGPT_LOCAL_SERVER", "sglang")
    assert AppSettings.from_env().served_config().server == "sglang"
    # the old flag, with any value, stops the start-up naming its replacement
    for old in ("1", "0"):
        monkeypatch.setenv("REVIEWGPT_LOCAL_SERVER_ADDS_BOS", old)
        with pytest.raises(ValueError, match=r"REVIEWGPT_LOCAL_SERVER_ADDS_BOS is replaced by REVIEWGPT_LOCAL_SERVER "
                                             r"\(vllm \| sglang \| llama\.cpp\).*REVIEWGPT_LOCAL_SERVER=llama\.cpp"):
            AppSettings.from_env()


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
