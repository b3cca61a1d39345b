"""The fine-tuned reviewer on an OpenAI-compatible inference server (vLLM, SGLang, llama.cpp).

A `reviewgpt.reviewer.Reviewer`, as `ReviewEngine` is, so the app and eval take either.

What is sent, and why:
- The prompt is the project's own Llama 3.1 string (`render_prompt`: fixed date line, the schema's
  system prompt, one assistant header), posted to `/v1/completions`, so the server's chat template
  can change nothing. It starts with `<|begin_of_text|>`; vLLM would add a second BOS unless told
  `add_special_tokens: false` (sent with the vLLM extras). llama.cpp's server always adds BOS
  itself: set `server_adds_bos` and the leading BOS is left out of the string.
- Suppression of `<No related terms>` is `logit_bias` on the marker-start token ids computed from
  the reviewer's tokenizer (`marker_start_token_ids`): bias log(1 - s), -100 for s = 1 (the API's
  floor; e^-100 is zero in any float). s = 0 sends no logit_bias.
  Difference from the in-process processor (`SequenceSuppressionProcessor`): logit_bias is one
  fixed vector for every position, it cannot look at the previous token. The in-process processor
  also penalises the *continuation* of a bare "<" into the marker ("<" then "No", "No related",
  ...), and only right after such a "<"; a static bias cannot do that without penalising "No" at
  every position. So on a server, a marker written as a bare "<" followed by "No..." escapes the
  penalty. `eval/measure_logit_bias.py` measures how much this changes on the demo model.
- End: the server stops on the model's end tokens; with the vLLM extras `stop_token_ids` lists
  all three Llama 3.1 end tokens as well (stop *strings* cannot match special tokens, which
  servers leave out of the text).
"""

from __future__ import annotations

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

LOGIT_BIAS_FLOOR = -100.0  # the OpenAI API's range is [-100, 100]


@dataclass
class ServedConfig:
    base_url: str  # e.g. http://127.0.0.1:8000/v1
    model: str  # the served name: vLLM's --lora-modules NAME=path, or the base model's name
    tokenizer: str  # folder or Hub id of the reviewer's tokenizer (the adapter's, else the base model's)
    api_key: str | None = None  # default: REVIEWGPT_LOCAL_API_KEY, else "EMPTY" (vLLM without --api-key)
    adapter: str | None = None  # which adapter the server loaded, for the record (not sent)
    max_prompt_tokens: int = RECIPE_MAX_PROMPT_TOKENS
    max_new_tokens: int = RECIPE_MAX_RESPONSE_TOKENS + 50
    timeout_s: float = 600.0
    max_retries: int = 2
    concurrency: int = 16  # generate_batch: requests in flight at once (the server batches them)
    server_adds_bos: bool = False  # llama.cpp: leave <|begin_of_text|> out of the prompt string
    vllm_extras: bool = True  # send add_special_tokens=false and stop_token_ids (vLLM, SGLang)


@dataclass
class ServedInfo:
    base_url: str
    model: str
    tokenizer: str
    adapter: str | None = None
    notes: list[str] = field(default_factory=list)
    device: str = "server"

    @property
    def base_model(self) -> str:
        return self.model

    def describe(self) -> str:
        tok = Path(self.tokenizer).name if os.path.isdir(self.tokenizer) else self.tokenizer
        return f"{self.model} · OpenAI-compatible server {self.base_url} · tokenizer {tok}"


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


class ServedReviewer:
    """The local reviewer, answered by an inference server through the `openai` client (a `Reviewer`)."""

    # The server returns text, not the distribution of each step: no MarkerProbe can be filled.
    records_markers = False

    def __init__(self, config: ServedConfig, tokenizer: Any | None = None) -> None:
        from transformers import AutoTokenizer

        from reviewgpt.remote.openai_client import OpenAIChat  # here: the bias helpers above need no openai

        self.config = config
        self.tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(config.tokenizer)
        self.end_ids = end_token_ids(self.tokenizer)
        key = config.api_key or os.environ.get("REVIEWGPT_LOCAL_API_KEY") or "EMPTY"
        self.client = OpenAIChat(OpenAIConfig(api_key=key, base_url=config.base_url, timeout_s=config.timeout_s,
                                              max_retries=config.max_retries),
                                 key_var="REVIEWGPT_LOCAL_API_KEY", url_var="REVIEWGPT_LOCAL_BASE_URL")
        self.info = ServedInfo(config.base_url, config.model, config.tokenizer, config.adapter)

    # ------------------------------------------------------------------ the request
    def prepare(self, paper: Document | str, schema: ReviewSchema | str, edited: bool = False) -> ModelInput:
        """The paper as this model reads it: `prepare()` with this model's tokenizer and budget."""
        return prepare(paper, schema, self.tokenizer, self.config.max_prompt_tokens, edited=edited)

    def prompt(self, paper: str | ModelInput, schema: ReviewSchema | str) -> str:
        """The exact string sent: the in-process prompt (minus BOS when the server adds its own)."""
        paper_text = paper.text if isinstance(paper, ModelInput) else paper
        n = len(encode_prompt(self.tokenizer, schema, paper_text))
        if n > self.config.max_prompt_tokens:
            raise ValueError(f"prompt has {n} tokens, over the budget of {self.config.max_prompt_tokens}: "
                             "fit the paper first (prepare())")
        text = render_prompt(self.tokenizer, schema, paper_text)
        return text[len(BOS):] if self.config.server_adds_bos and text.startswith(BOS) else text

    def request_params(self, gen: GenerationConfig) -> dict[str, Any]:
        sample = gen.do_sample and gen.temperature > 0
        params: dict[str, Any] = {"max_tokens": gen.max_new_tokens, "temperature": gen.temperature if sample else 0.0}
        if sample and gen.top_p < 1.0:
            params["top_p"] = gen.top_p
        if gen.seed is not None:
            params["seed"] = gen.seed
        bias = suppression_logit_bias(self.tokenizer, gen.suppression)
        if bias:
            params["logit_bias"] = bias
        extra: dict[str, Any] = {}
        if self.config.vllm_extras:
            extra = {"add_special_tokens": False, "stop_token_ids": list(self.end_ids), "skip_special_tokens": True}
            if gen.ignore_eos:
                extra["ignore_eos"] = True
        if gen.repetition_penalty != 1.0:
            extra["repetition_penalty"] = gen.repetition_penalty
        if extra:
            params["extra_body"] = extra
        return params

    # ------------------------------------------------------------------ generation
    def stream(self, paper_text: str | ModelInput, schema: ReviewSchema | str, gen: GenerationConfig | None = None,
               stop: threading.Event | None = None) -> Iterator[str]:
        """Yield the review as the server writes it; `stop` set closes the request. A stream that ends
        with no text (not stopped) is an error naming the likely cause (`_empty`)."""
        gen = gen or GenerationConfig()
        prompt = self.prompt(paper_text, schema)
        wrote = False
        for piece in self.client.stream_text(prompt, self.config.model, stop=stop, **self.request_params(gen)):
            wrote = True
            yield piece
        if not wrote and not (stop is not None and stop.is_set()):
            raise self._empty(prompt, gen)

    def generate(self, paper_text: str | ModelInput, schema: ReviewSchema | str, gen: GenerationConfig | None = None
                 ) -> str:
        gen = gen or GenerationConfig()
        prompt = self.prompt(paper_text, schema)
        text = self.client.complete_text(prompt, self.config.model, **self.request_params(gen))
        if not text.strip():
            raise self._empty(prompt, gen)
        return text

    def _empty(self, prompt: str, gen: GenerationConfig) -> OpenAIServiceError:
        """A server that answers 200 with no text: llama.cpp does so for a prompt over its context."""
        n = len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
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


__all__ = ["ServedConfig", "ServedReviewer", "ServedInfo", "suppression_logit_bias", "logit_bias_processor"]
