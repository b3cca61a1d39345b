"""The fine-tuned reviewer on an OpenAI-compatible inference server (vLLM, SGLang, llama.cpp).

A `reviewgpt.reviewer.Reviewer`, as `ReviewEngine` is, so the app and eval take either.

What is sent, and why (`SERVERS` holds each server's dialect; `ServedConfig.server` picks one):
- The prompt is the project's own Llama 3.1 prompt (`render_prompt`: fixed date line, the schema's
  system prompt, one assistant header), posted to `/v1/completions`, so the server's chat template
  can change nothing. It starts with `<|begin_of_text|>`, and each server must see exactly one BOS:
  vLLM gets the string with `add_special_tokens: false`; llama.cpp's server always adds BOS to a
  text prompt, so the string goes without its BOS; SGLang tokenizes a text prompt with the HF
  tokenizer's defaults (a second BOS) and has no switch for that on /v1/completions, so it gets
  the prompt's token ids (an OpenAI `prompt` may be a list of ints; SGLang passes them through as
  `input_ids`, adding nothing).
- Sampling as in-process: temperature, then top-p, nothing else. A server's other samplers (top-k,
  min-p, typical-p, penalties, llama.cpp's DRY / XTC / mirostat / top-n-sigma, vLLM's and SGLang's
  defaults from the model's generation_config.json) are sent at their off values in every request,
  `GenerationConfig.repetition_penalty` under the server's name for it. llama.cpp applies
  temperature after top-p by default: its `samplers` field puts temperature first, as in-process.
- Suppression of `<No related terms>` is `logit_bias` on the marker-start token ids computed from
  the reviewer's tokenizer (`marker_start_token_ids`): bias log(1 - s), -100 for s = 1 (the API's
  floor; e^-100 is zero in any float). s = 0 sends no logit_bias.
  Difference from the in-process processor (`SequenceSuppressionProcessor`): logit_bias is one
  fixed vector for every position, it cannot look at the previous token. The in-process processor
  also penalises the *continuation* of a bare "<" into the marker ("<" then "No", "No related",
  ...), and only right after such a "<"; a static bias cannot do that without penalising "No" at
  every position. So on a server, a marker written as a bare "<" followed by "No..." escapes the
  penalty. `eval/measure_logit_bias.py` measures how much this changes on the demo model.
- End: the server stops on the model's end tokens; vLLM and SGLang are also given all three
  Llama 3.1 end tokens as `stop_token_ids` (stop *strings* cannot match special tokens, which
  servers leave out of the text); llama.cpp stops on every end-of-generation token of the GGUF.
- The prompt budget: `max_prompt_tokens`, or less when the server says its context
  (`server_context()`): the prompt and `max_new_tokens` must fit in it. A prompt over that is
  refused before anything is sent, naming the server's context and the fix.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from reviewgpt.errors import OpenAIServiceError
from reviewgpt.config import RECIPE_MAX_PROMPT_TOKENS, RECIPE_MAX_RESPONSE_TOKENS, GenerationConfig, OpenAIConfig
from reviewgpt.format.schema import EMPTY_MARKER, ReviewSchema
from reviewgpt.generate.suppression import marker_start_token_ids, suppression_penalty
from reviewgpt.ingest.document import Document
from reviewgpt.prepare.model_input import ModelInput, prepare
from reviewgpt.prepare.chat import BOS, encode_prompt, end_token_ids, render_prompt

log = logging.getLogger(__name__)

LOGIT_BIAS_FLOOR = -100.0  # the OpenAI API's range is [-100, 100]
CONTEXT_TIMEOUT_S = 5.0  # asking a server for its context: a short wait, then "not reported"


@dataclass(frozen=True)
class ServerDialect:
    """How one server is asked for the in-process engine's review."""

    prompt: str  # "text": the string with its BOS | "text-no-bos": the server adds BOS | "ids": token ids
    extra: dict[str, Any]  # sent in every request: BOS handling and the off value of every sampler not used
    repetition_penalty: str  # the server's name for GenerationConfig.repetition_penalty (sent always)
    stop_token_ids: bool  # stop_token_ids (all three end tokens) and skip_special_tokens are fields it knows
    top_p_at_one: bool  # top_p 1.0 is sent too when sampling (its default when unsent is not 1)
    context: str  # where it says its context: "models" (GET {base_url}/models) | "props" (GET {root}/props)


# Sources (what each name and off value is): vLLM SamplingParams and its OpenAI server's extra fields
# (top_k: -1 disables in every version, 0 only in recent ones; GET /v1/models lists max_model_len);
# SGLang's /v1/completions (a list of ints is `input_ids`, untouched; a string gets the tokenizer's
# special tokens) and SamplingParams (top_k -1 = whole vocabulary; GET /v1/models has max_model_len);
# llama.cpp's tools/server/README.md (/completion's fields, accepted by /v1/completions; top_k 0,
# min_p 0, typical_p 1, top_n_sigma -1, xtc_probability 0, dry_multiplier 0, mirostat 0 (else it
# replaces the chain), dynatemp_range 0 are off; repeat_last_n -1 is the slot's context; `samplers` is
# the chain, only what it names runs (adaptive-p too), by default ...;top_p;min_p;xtc;temperature;
# GET /props has default_generation_settings.n_ctx, a slot's context).
# llama-cpp-python's server (python -m llama_cpp.server) reads top_k, min_p, repeat_penalty, the penalties, seed
# and logit_bias of these and ignores the rest (it has no DRY, XTC or top-n-sigma; typical-p stays 1); its order
# is fixed, top-p before temperature, and it has no /props (measured: benchmarks/results/llamacpp_served.md).
SERVERS: dict[str, ServerDialect] = {
    # Unchanged from before the presets for every field it sent then (stored eval reviews are keyed by
    # the settings); top_k, min_p and repetition_penalty 1.0 are vLLM's own defaults, sent so that a
    # model's generation_config.json cannot set them. top_p is sent below 1 only, as before.
    "vllm": ServerDialect(prompt="text", extra={"add_special_tokens": False, "top_k": -1, "min_p": 0.0},
                          repetition_penalty="repetition_penalty", stop_token_ids=True, top_p_at_one=False,
                          context="models"),
    "sglang": ServerDialect(prompt="ids", extra={"top_k": -1, "min_p": 0.0},
                            repetition_penalty="repetition_penalty", stop_token_ids=True, top_p_at_one=True,
                            context="models"),
    "llama.cpp": ServerDialect(
        prompt="text-no-bos",
        extra={"top_k": 0, "min_p": 0.0, "typical_p": 1.0, "top_n_sigma": -1.0, "xtc_probability": 0.0,
               "dry_multiplier": 0.0, "mirostat": 0, "dynatemp_range": 0.0,
               "repeat_last_n": -1,  # a repetition penalty reads the whole context, as in-process
               "samplers": ["penalties", "temperature", "top_p"]},  # temperature before top-p, as in-process
        repetition_penalty="repeat_penalty", stop_token_ids=False, top_p_at_one=True, context="props"),
}


def check_server(server: str) -> ServerDialect:
    """The dialect of `server`; anything else is a clear error listing the servers."""
    if server not in SERVERS:
        raise ValueError(f"unknown server {server!r}: one of {' | '.join(SERVERS)}")
    return SERVERS[server]


@dataclass
class ServedConfig:
    base_url: str  # e.g. http://127.0.0.1:8000/v1
    model: str  # the served name: vLLM's --lora-modules NAME=path, or the base model's name
    tokenizer: str  # folder or Hub id of the reviewer's tokenizer (the adapter's, else the base model's)
    api_key: str | None = None  # default: REVIEWGPT_LOCAL_API_KEY, else "EMPTY" (vLLM without --api-key)
    adapter: str | None = None  # which adapter the server loaded, for the record (not sent)
    # The prompt budget; lowered to the server's context - max_new_tokens when the server says its context.
    max_prompt_tokens: int = RECIPE_MAX_PROMPT_TOKENS
    max_new_tokens: int = RECIPE_MAX_RESPONSE_TOKENS + 50
    timeout_s: float = 600.0
    max_retries: int = 2
    concurrency: int = 16  # generate_batch: requests in flight at once (the server batches them)
    server: str = "vllm"  # "vllm" | "sglang" | "llama.cpp": how requests are written (SERVERS)

    def __post_init__(self) -> None:
        check_server(self.server)


@dataclass
class ServedInfo:
    base_url: str
    model: str
    tokenizer: str
    adapter: str | None = None
    notes: list[str] = field(default_factory=list)
    device: str = "server"
    server: str = "vllm"

    @property
    def base_model(self) -> str:
        return self.model

    def describe(self) -> str:
        tok = Path(self.tokenizer).name if os.path.isdir(self.tokenizer) else self.tokenizer
        return f"{self.model} · OpenAI-compatible server ({self.server}) {self.base_url} · tokenizer {tok}"


class ServerContextError(OpenAIServiceError, ValueError):
    """A prompt (with the review's tokens) over the context the server said it has; refused unsent."""


def suppression_logit_bias(tokenizer: Any, strength: float, marker: str = EMPTY_MARKER) -> dict[str, float]:
    """`logit_bias` for suppression strength s: log(1 - s) on every marker-start token, -100 at s = 1."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"suppression strength must be in [0, 1], got {strength}")
    if strength == 0.0:
        return {}
    value = max(suppression_penalty(strength), LOGIT_BIAS_FLOOR)  # -inf at s = 1: the API's floor
    ids = marker_start_token_ids(tokenizer, marker)
    if not ids:
        raise ValueError(f"no token of this tokenizer starts {marker!r}: nothing to bias")
    return {str(i): value for i in ids}


def logit_bias_processor(bias: dict[str, float]) -> Any:
    """The same addition a server makes for `logit_bias`, in-process (for measuring the difference)."""
    from transformers import SequenceBiasLogitsProcessor

    return SequenceBiasLogitsProcessor(sequence_bias=[[[int(k)], float(v)] for k, v in bias.items()])


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def context_from_models(body: Any, model: str) -> int | None:
    """vLLM's and SGLang's GET /v1/models: the served model's `max_model_len`; a LoRA's card has none,
    its base model's (`parent`, else `root`) has; else the one value every card that has one agrees on."""
    cards = body.get("data") if isinstance(body, dict) else None
    if not isinstance(cards, list):
        return None
    by_id = {c.get("id"): c for c in cards if isinstance(c, dict)}

    def of(card: Any) -> int | None:
        return _positive_int(card.get("max_model_len")) if isinstance(card, dict) else None

    card = by_id.get(model)
    if isinstance(card, dict):
        n = of(card) or of(by_id.get(card.get("parent"))) or of(by_id.get(card.get("root")))
        if n:
            return n
    known = {of(c) for c in by_id.values()} - {None}
    return known.pop() if len(known) == 1 else None


def context_from_props(body: Any, model: str) -> int | None:
    """llama.cpp's GET /props: `default_generation_settings.n_ctx`, the context of one slot (a request's)."""
    settings = body.get("default_generation_settings") if isinstance(body, dict) else None
    return _positive_int(settings.get("n_ctx")) if isinstance(settings, dict) else None


class ServedReviewer:
    """The local reviewer, answered by an inference server through the `openai` client (a `Reviewer`)."""

    # The server returns text, not the distribution of each step: no MarkerProbe can be filled.
    records_markers = False

    def __init__(self, config: ServedConfig, tokenizer: Any | None = None) -> None:
        from transformers import AutoTokenizer

        from reviewgpt.remote.openai_client import OpenAIChat  # here: the bias helpers above need no openai

        self.config = config
        self.dialect = check_server(config.server)
        self.tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(config.tokenizer)
        self.end_ids = end_token_ids(self.tokenizer)
        self._key = config.api_key or os.environ.get("REVIEWGPT_LOCAL_API_KEY") or "EMPTY"
        self.client = OpenAIChat(OpenAIConfig(api_key=self._key, base_url=config.base_url, timeout_s=config.timeout_s,
                                              max_retries=config.max_retries),
                                 key_var="REVIEWGPT_LOCAL_API_KEY", url_var="REVIEWGPT_LOCAL_BASE_URL")
        self.info = ServedInfo(config.base_url, config.model, config.tokenizer, config.adapter, server=config.server)
        self._context_lock = threading.Lock()
        self._context_asked = False
        self._context: int | None = None

    # ------------------------------------------------------------------ the server's context
    def context_url(self) -> str:
        base = self.config.base_url.rstrip("/")
        if self.dialect.context == "props":  # llama.cpp serves /props at its root, beside /v1
            return (base[: -len("/v1")] if base.endswith("/v1") else base) + "/props"
        return base + "/models"

    def server_context(self) -> int | None:
        """The server's context length in tokens, asked once (on first use); None when it does not say
        (no such endpoint, no field, no answer within a few seconds): the budget is then as configured."""
        with self._context_lock:
            if not self._context_asked:
                self._context_asked = True
                self._context = self._ask_context()
                mpt = self.config.max_prompt_tokens
                if self._context is None:
                    self.info.notes.append(f"server context not reported ({self.context_url()}): prompt budget "
                                           f"{mpt:,} tokens (max_prompt_tokens)")
                else:
                    self.info.notes.append(
                        f"server context {self._context:,} tokens ({self.context_url()}): prompt budget "
                        f"{self._budget(self._context, self.config.max_new_tokens):,} tokens (the smaller of "
                        f"max_prompt_tokens {mpt:,} and the context less max_new_tokens "
                        f"{self.config.max_new_tokens:,})")
            return self._context

    def _ask_context(self) -> int | None:
        import httpx

        url = self.context_url()
        try:
            resp = httpx.get(url, headers={"Authorization": f"Bearer {self._key}"},
                             timeout=min(CONTEXT_TIMEOUT_S, self.config.timeout_s))
            if resp.status_code != 200:
                return None
            parse = context_from_props if self.dialect.context == "props" else context_from_models
            return parse(resp.json(), self.config.model)
        except Exception as e:  # any failure is "not reported", never an error of the review
            log.info("server context not read from %s: %s", url, type(e).__name__)
            return None

    def _budget(self, context: int | None, max_new_tokens: int) -> int:
        if context is None:
            return self.config.max_prompt_tokens
        return min(self.config.max_prompt_tokens, context - max_new_tokens)

    def prompt_budget(self, max_new_tokens: int | None = None) -> int:
        """The prompt tokens a request may have: max_prompt_tokens, or less when the server's context
        less the review's tokens is smaller. A context with no room for a prompt is an error."""
        new = self.config.max_new_tokens if max_new_tokens is None else max_new_tokens
        context = self.server_context()
        budget = self._budget(context, new)
        if context is not None and budget <= 0:
            raise ServerContextError(
                f"{self.config.base_url} reports a context of {context:,} tokens, which leaves no room for a prompt "
                f"next to the review's {new:,} tokens (max_new_tokens). {self._context_fix()}")
        return budget

    def _context_fix(self) -> str:
        flag = {"llama.cpp": "llama.cpp's -c / --ctx-size (per slot: divided by -np)",
                "sglang": "SGLang's --context-length"}.get(self.config.server, "vLLM's --max-model-len")
        return (f"Start the server with a larger context ({flag}), or lower max_prompt_tokens or "
                "max_new_tokens.")

    # ------------------------------------------------------------------ the request
    def prepare(self, paper: Document | str, schema: ReviewSchema | str, edited: bool = False) -> ModelInput:
        """The paper as this model reads it: `prepare()` with this model's tokenizer and budget."""
        return prepare(paper, schema, self.tokenizer, self.prompt_budget(), edited=edited)

    def prompt(self, paper: str | ModelInput, schema: ReviewSchema | str,
               max_new_tokens: int | None = None) -> str | list[int]:
        """Exactly what is sent as `prompt`: the in-process prompt as this server takes it (the string,
        the string less BOS, or its token ids). Over the budget (`prompt_budget`) it is refused."""
        paper_text = paper.text if isinstance(paper, ModelInput) else paper
        ids = encode_prompt(self.tokenizer, schema, paper_text)
        n = len(ids)
        if n > self.config.max_prompt_tokens:
            raise ValueError(f"prompt has {n} tokens, over the budget of {self.config.max_prompt_tokens}: "
                             "fit the paper first (prepare())")
        new = self.config.max_new_tokens if max_new_tokens is None else max_new_tokens
        budget = self.prompt_budget(new)
        if n > budget:
            raise ServerContextError(
                f"The prompt has {n:,} tokens and the review up to {new:,} more, over the context of "
                f"{self.server_context():,} tokens that {self.config.base_url} reports (a prompt budget of "
                f"{budget:,}): not sent. {self._context_fix()}")
        if self.dialect.prompt == "ids":
            return ids
        text = render_prompt(self.tokenizer, schema, paper_text)
        return text[len(BOS):] if self.dialect.prompt == "text-no-bos" and text.startswith(BOS) else text

    def request_params(self, gen: GenerationConfig) -> dict[str, Any]:
        d = self.dialect
        sample = gen.do_sample and gen.temperature > 0
        params: dict[str, Any] = {"max_tokens": gen.max_new_tokens, "temperature": gen.temperature if sample else 0.0,
                                  "presence_penalty": 0.0, "frequency_penalty": 0.0}
        if sample and (gen.top_p < 1.0 or d.top_p_at_one):
            params["top_p"] = gen.top_p
        if gen.seed is not None:
            params["seed"] = gen.seed
        bias = suppression_logit_bias(self.tokenizer, gen.suppression)
        if bias:
            params["logit_bias"] = bias
        extra: dict[str, Any] = dict(d.extra)
        if d.stop_token_ids:
            extra.update(stop_token_ids=list(self.end_ids), skip_special_tokens=True)
        if gen.ignore_eos:
            extra["ignore_eos"] = True
        extra[d.repetition_penalty] = gen.repetition_penalty
        params["extra_body"] = extra
        return params

    # ------------------------------------------------------------------ generation
    def stream(self, paper_text: str | ModelInput, schema: ReviewSchema | str, gen: GenerationConfig | None = None,
               stop: threading.Event | None = None) -> Iterator[str]:
        """Yield the review as the server writes it; `stop` set closes the request. A stream that ends
        with no text (not stopped) is an error naming the likely cause (`_empty`)."""
        gen = gen or GenerationConfig()
        prompt = self.prompt(paper_text, schema, gen.max_new_tokens)
        wrote = False
        for piece in self.client.stream_text(prompt, self.config.model, stop=stop, **self.request_params(gen)):
            wrote = True
            yield piece
        if not wrote and not (stop is not None and stop.is_set()):
            raise self._empty(prompt, gen)

    def generate(self, paper_text: str | ModelInput, schema: ReviewSchema | str, gen: GenerationConfig | None = None
                 ) -> str:
        gen = gen or GenerationConfig()
        prompt = self.prompt(paper_text, schema, gen.max_new_tokens)
        text = self.client.complete_text(prompt, self.config.model, **self.request_params(gen))
        if not text.strip():
            raise self._empty(prompt, gen)
        return text

    def _empty(self, prompt: str | list[int], gen: GenerationConfig) -> OpenAIServiceError:
        """A server that answers 200 with no text: llama.cpp does so for a prompt over its context."""
        n = len(prompt if isinstance(prompt, list) else self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        return OpenAIServiceError(
            f"{self.config.base_url} answered model '{self.config.model}' with an empty review. The prompt has {n:,} "
            f"tokens and asks for up to {gen.max_new_tokens:,} more: a server whose context is smaller (llama.cpp's "
            f"-c / --ctx-size, vLLM's --max-model-len) answers nothing or an error. Start the server with a context "
            f"of at least {n + gen.max_new_tokens:,} tokens, or lower the prompt budget (max_prompt_tokens).")

    def generate_batch(self, paper_texts: list[str] | list[ModelInput], schema: ReviewSchema | str,
                       gen: GenerationConfig | None = None) -> list[str]:
        """Concurrent requests (the server batches them); results in input order."""
        gen = gen or GenerationConfig()
        workers = max(1, min(self.config.concurrency, len(paper_texts)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda t: self.generate(t, schema, gen), paper_texts))


__all__ = ["ServedConfig", "ServedReviewer", "ServedInfo", "ServerContextError", "ServerDialect", "SERVERS",
           "check_server", "suppression_logit_bias", "logit_bias_processor"]
