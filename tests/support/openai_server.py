"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions protocol (FastAPI + uvicorn),
for tests: the real `openai` client talks to it through OPENAI_BASE_URL.

Behaviour per request: if a scripted step is queued, it is used (an HTTP error, a delay, a given
content); otherwise a deterministic default answers: a well-formed review in the schema the
request asks for, a JSON verdict for judge requests, an aggregated review for aggregation
requests. Every request is recorded (path, body, auth, arrival time) so tests can count calls and
read what was sent.

Also served, for the local reviewer behind an inference server: `/v1/completions` (plain and
streamed) taking a raw prompt string or a list of token ids (read through `decode` when set), with
`logit_bias` validated as OpenAI does (integer-string keys, values in [-100, 100]) or rejected
outright (`reject_logit_bias`, like a server without it). Where servers say their context:
`GET /v1/models` (vLLM, SGLang: `max_model_len` on the card, from `model_context`, or the cards
`models` as given) and `GET /props` (llama.cpp: `default_generation_settings.n_ctx`, from
`props_context`; 404 while it is None); these GETs are recorded in `info_requests`, not `requests`.
`default_delay_s` slows every request so that concurrency can be observed (`max_in_flight`), and a
step's `retry_after` sends a Retry-After header in seconds.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

API_KEY = "sk-test-123456789"


@dataclass
class Step:
    status: int = 200
    content: str | None = None
    delay_s: float = 0.0
    error_code: str | None = None  # e.g. "insufficient_quota"
    match: str | None = None  # only for requests whose text contains this
    retry_after: str | None = None  # Retry-After header (seconds) instead of the default retry-after-ms


@dataclass
class StubState:
    script: deque = field(default_factory=deque)
    requests: list = field(default_factory=list)
    judge_rule: str = "longer"  # "longer" | "first" | "second" | "tie" | "hash" (per paper, order-free)
    flavour_by_model: dict = field(default_factory=dict)  # model -> word the default review is written with
    default_delay_s: float = 0.0  # every request waits this long (to observe concurrency)
    in_flight: int = 0
    max_in_flight: int = 0
    reject_logit_bias: bool = False  # behave like a server that does not support logit_bias
    completion_text: str | None = None  # /v1/completions answer; default: a review in the prompt's schema
    decode: Any = None  # token ids -> text, for a prompt sent as ids (else such a prompt has no schema)
    model_context: int | None = None  # GET /v1/models: the card's max_model_len (None: the card has none)
    models: list | None = None  # GET /v1/models: these cards instead
    props_context: int | None = None  # GET /props: default_generation_settings.n_ctx (None: 404, as vLLM)
    info_requests: list = field(default_factory=list)  # the GETs above: path and auth


def _criteria_from(system: str) -> list[str]:
    # The format instructions list the criteria as "## <criterion>" lines.
    return [m.strip() for m in re.findall(r"^## (.+)$", system, re.MULTILINE)]


def default_review(criteria: list[str], flavour: str = "gpt") -> str:
    blocks = []
    for i, c in enumerate(criteria):
        items = [f"{n}. **Point {n} on {c.split()[0].lower()}**: The {flavour} reviewer notes aspect {i} item {n} "
                 f"about the method and its experiments." for n in (1, 2)]
        blocks.append(f"## {c}\n" + "\n".join(items))
    return "\n\n".join(blocks) + "\n"


def _judge(state: StubState, user: str, system: str) -> str:
    a = re.search(r"\[Review A\]\n(.*?)\n\n\[Review B\]", user, re.DOTALL)
    b = re.search(r"\[Review B\]\n(.*)$", user, re.DOTALL)
    la, lb = len(a.group(1)) if a else 0, len(b.group(1)) if b else 0
    rule = state.judge_rule
    if rule == "hash":  # a verdict that differs between papers but not between the two orders
        import hashlib

        def h(r: str) -> str:
            return hashlib.sha256((user.split("[Review A]")[0] + r).encode()).hexdigest()
        ra, rb = (a.group(1) if a else ""), (b.group(1) if b else "")
        winner = "A" if h(ra) > h(rb) else "B" if h(rb) > h(ra) else "tie"
    elif rule == "longer":
        winner = "A" if la > lb else "B" if lb > la else "tie"
    elif rule == "first":
        winner = "A"
    elif rule == "second":
        winner = "B"
    else:
        winner = "tie"
    criteria = [c.strip() for c in re.findall(r"^- (.+)$", system, re.MULTILINE)]
    return json.dumps({"winner": winner, "rationale": f"Rule {rule}: A has {la} chars, B has {lb}.",
                       "aspects": {c: winner for c in criteria}})


def _take_step(state: StubState, text: str) -> Step | None:
    for i, s in enumerate(state.script):
        if s.match is None or s.match in text:
            del state.script[i]
            return s
    return None


class _in_flight:
    """Counts requests being worked on at once (the delay is the work)."""

    def __init__(self, state: StubState) -> None:
        self.state = state

    async def __aenter__(self) -> None:
        self.state.in_flight += 1
        self.state.max_in_flight = max(self.state.max_in_flight, self.state.in_flight)

    async def __aexit__(self, *exc: object) -> None:
        self.state.in_flight -= 1


async def _wait(state: StubState, step: Step | None) -> None:
    delay = step.delay_s if step and step.delay_s else state.default_delay_s
    if delay:
        await asyncio.sleep(delay)  # a slow upstream (other requests are still served)


async def _receive(state: StubState, request: Request, body: dict, text: str) -> tuple[Step | None, JSONResponse | None]:
    """What both endpoints do first: record the request, take its scripted step, wait as the step
    says (counted in flight), then refuse a bad key or return the step's error status."""
    auth = request.headers.get("authorization", "")
    rec = {"body": body, "auth": auth, "path": request.url.path, "t": time.monotonic()}
    state.requests.append(rec)
    step = _take_step(state, text)
    async with _in_flight(state):
        await _wait(state, step)
    if auth != f"Bearer {API_KEY}":
        return step, _bad_key(auth)
    if step and step.status != 200:
        rec["status"] = step.status
        return step, _error(step)
    return step, None


def _bad_key(auth: str) -> JSONResponse:
    return JSONResponse({"error": {"message": "Incorrect API key provided: " + auth[7:],
                                   "type": "invalid_request_error", "code": "invalid_api_key"}}, 401)


def _error(step: Step) -> JSONResponse:
    code = step.error_code or {429: "rate_limit_exceeded", 404: "model_not_found"}.get(step.status, "error")
    if step.retry_after is not None:
        headers = {"retry-after": step.retry_after}
    else:
        headers = {"retry-after-ms": "20"} if step.status in (429, 500, 502, 503) else {}
    return JSONResponse({"error": {"message": f"stub {step.status}", "type": code, "code": code}},
                        step.status, headers=headers)


def _schema_criteria(prompt: str) -> list[str]:
    """The criteria of the schema whose system prompt the raw prompt carries (longest match first)."""
    from reviewgpt.format.schema import SCHEMAS

    for schema in sorted(SCHEMAS.values(), key=lambda s: -len(s.system_prompt)):
        if schema.system_prompt in prompt:
            return list(schema.criteria)
    return []


def _logit_bias_error(bias: Any) -> str | None:
    """OpenAI's rules: a map from token id (as a string) to a number in [-100, 100]."""
    if not isinstance(bias, dict):
        return "logit_bias must be an object"
    for k, v in bias.items():
        if not str(k).isdigit():
            return f"logit_bias key {k!r} is not a token id"
        if not isinstance(v, (int, float)) or not -100 <= v <= 100:
            return f"logit_bias value {v!r} for token {k} is outside [-100, 100]"
    return None


def make_app(state: StubState) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        text = json.dumps(body["messages"])
        step, refusal = await _receive(state, request, body, text)
        if refusal is not None:
            return refusal
        system = body["messages"][0]["content"] if body["messages"][0]["role"] == "system" else ""
        user = body["messages"][-1]["content"]
        if step and step.content is not None:
            content = step.content
        elif "meta-reviewer" in system:
            content = _judge(state, user, system)
        elif "area chair" in system:
            content = default_review(_criteria_from(system), flavour="aggregated")
        else:
            content = default_review(_criteria_from(system), state.flavour_by_model.get(body.get("model"), "gpt"))
        model = body.get("model", "stub")
        if body.get("stream"):
            def events():
                for i in range(0, len(content), 40):
                    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": model,
                             "choices": [{"index": 0, "delta": {"content": content[i:i + 40]}, "finish_reason": None}]}
                    yield f"data: {json.dumps(chunk)}\n\n"
                end = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": model,
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                yield f"data: {json.dumps(end)}\n\n"
                yield "data: [DONE]\n\n"
            return StreamingResponse(events(), media_type="text/event-stream")
        return {"id": "c1", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(text) // 4, "completion_tokens": len(content) // 4,
                          "total_tokens": (len(text) + len(content)) // 4}}

    def _info(request: Request) -> JSONResponse | None:
        auth = request.headers.get("authorization", "")
        state.info_requests.append({"path": request.url.path, "auth": auth, "t": time.monotonic()})
        return _bad_key(auth) if auth != f"Bearer {API_KEY}" else None

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        refusal = _info(request)
        if refusal is not None:
            return refusal
        cards = state.models
        if cards is None:
            cards = [{"id": "reviewer", "object": "model", "created": 0, "owned_by": "stub", "root": "base",
                      **({"max_model_len": state.model_context} if state.model_context is not None else {})}]
        return {"object": "list", "data": cards}

    @app.get("/props")
    async def props(request: Request) -> Any:
        refusal = _info(request)
        if refusal is not None:
            return refusal
        if state.props_context is None:
            return JSONResponse({"detail": "Not Found"}, 404)
        return {"default_generation_settings": {"id": 0, "n_ctx": state.props_context, "params": {"top_k": 40}},
                "total_slots": 1, "model_path": "stub.gguf"}

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        body = await request.json()
        prompt = body.get("prompt", "")
        step, refusal = await _receive(state, request, body, json.dumps(prompt))
        if refusal is not None:
            return refusal
        if "logit_bias" in body:
            problem = ("logit_bias is not supported by this server" if state.reject_logit_bias
                       else _logit_bias_error(body["logit_bias"]))
            if problem:
                return JSONResponse({"error": {"message": problem, "type": "invalid_request_error",
                                               "param": "logit_bias", "code": None}}, 400)
        is_ids = isinstance(prompt, list) and bool(prompt) and all(isinstance(t, int) for t in prompt)
        if not (isinstance(prompt, str) or is_ids):
            return JSONResponse({"error": {"message": "prompt must be a string or a list of token ids here",
                                           "type": "invalid_request_error", "code": None}}, 400)
        if is_ids:
            prompt = state.decode(prompt) if state.decode else ""
        if step and step.content is not None:
            content = step.content
        elif state.completion_text is not None:
            content = state.completion_text
        else:
            content = default_review(_schema_criteria(prompt), flavour="served")
        content = content[: 4 * int(body.get("max_tokens") or 16)]  # max_tokens, roughly (4 chars a token)
        model = body.get("model", "stub")
        if body.get("stream"):
            def events():
                for i in range(0, len(content), 40):
                    chunk = {"id": "t1", "object": "text_completion", "created": 0, "model": model,
                             "choices": [{"index": 0, "text": content[i:i + 40], "logprobs": None,
                                          "finish_reason": None}]}
                    yield f"data: {json.dumps(chunk)}\n\n"
                end = {"id": "t1", "object": "text_completion", "created": 0, "model": model,
                       "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}]}
                yield f"data: {json.dumps(end)}\n\n"
                yield "data: [DONE]\n\n"
            return StreamingResponse(events(), media_type="text/event-stream")
        return {"id": "t1", "object": "text_completion", "created": 0, "model": model,
                "choices": [{"index": 0, "text": content, "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(content) // 4,
                          "total_tokens": (len(prompt) + len(content)) // 4}}

    return app


class OpenAIStubServer:
    def __init__(self) -> None:
        self.state = StubState()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(make_app(self.state), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> OpenAIStubServer:
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("stub server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)

    def reset(self) -> None:
        self.state.script.clear()
        self.state.requests.clear()
        self.state.judge_rule = "longer"
        self.state.flavour_by_model = {}
        self.state.default_delay_s = 0.0
        self.state.in_flight = 0
        self.state.max_in_flight = 0
        self.state.reject_logit_bias = False
        self.state.completion_text = None
        self.state.decode = None
        self.state.model_context = None
        self.state.models = None
        self.state.props_context = None
        self.state.info_requests.clear()
