"""The local reviewer: Llama 3.1 (+ LoRA adapter) loaded once, generating reviews.

Two decoding paths share tokenisation, logits processors and streaming:
- `generate()` of transformers (CPU, batched eval, or when the fast path is off/unavailable);
- on CUDA, a fast batch-1 loop: the prompt is prefilled eagerly into a StaticCache of one fixed
  length, then each decode step runs a torch.compile'd forward captured as a CUDA graph
  ("reduce-overhead"). A fixed cache length means one compilation for the process; the graph
  replays with near-zero launch overhead, which is what batch-1 decoding is bound by otherwise.
  Suppression, temperature and top-p run as ordinary LogitsProcessors on the step's logits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from threading import Thread
from typing import Any, Callable, Iterator

import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList, TemperatureLogitsWarper,
                          TextIteratorStreamer, TopPLogitsWarper)

from reviewgpt.prepare.budget import BudgetResult, fit_to_budget
from reviewgpt.prepare.chat import encode_prompt, end_token_ids
from reviewgpt.config import EngineConfig, GenerationConfig
from reviewgpt.ingest.document import Document
from reviewgpt.errors import ModelLoadError
from reviewgpt.generate.hardware import can_quantize_4bit, choose_attention, nf4_config
from reviewgpt.format.schema import ReviewSchema
from reviewgpt.generate.marker_probe import MarkerProbe
from reviewgpt.generate.suppression import SequenceSuppressionProcessor

log = logging.getLogger(__name__)


@dataclass
class LoadInfo:
    base_model: str
    adapter: str | None
    device: str
    precision: str
    attn_implementation: str
    fast_decoding: bool
    notes: list[str]

    def describe(self) -> str:
        name = Path(self.base_model).name if os.path.isdir(self.base_model) else self.base_model
        adapter = f" + LoRA {Path(self.adapter).name if os.path.isdir(self.adapter) else self.adapter}" if self.adapter else " (no adapter: base model)"
        return f"{name}{adapter} · {self.precision} · {self.device} · {self.attn_implementation}"


def build_logits_processors(tokenizer: Any, gen: GenerationConfig, probe: MarkerProbe | None = None
                            ) -> LogitsProcessorList:
    """Suppression first (on raw logits, so its semantics hold for the model's distribution), then
    the sampling warpers. s = 0 installs no suppression processor, unless a probe records P(marker)."""
    procs = LogitsProcessorList()
    if gen.suppression > 0 or probe is not None:
        procs.append(SequenceSuppressionProcessor(tokenizer, gen.suppression, probe=probe))
    return procs


def _sampling_warpers(gen: GenerationConfig) -> LogitsProcessorList:
    procs = LogitsProcessorList()
    if gen.do_sample and gen.temperature > 0:
        if gen.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(gen.temperature))
        if gen.top_p < 1.0:
            procs.append(TopPLogitsWarper(gen.top_p))
    return procs


class ReviewEngine:
    """Loaded model + tokenizer; thread-safe (one generation on the device at a time)."""

    def __init__(self, model: Any, tokenizer: Any, info: LoadInfo, config: EngineConfig) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.info = info
        self.config = config
        self.device = next(model.parameters()).device
        self.end_ids = end_token_ids(tokenizer)
        self._lock = threading.Lock()
        self._fast: _FastDecoder | None = None
        if info.fast_decoding:
            self._fast = _FastDecoder(model, max_cache_len=config.max_prompt_tokens + config.max_new_tokens)

    # ------------------------------------------------------------------ prompt building
    def fit(self, paper: Document | str, schema: ReviewSchema | str) -> BudgetResult:
        return fit_to_budget(paper, self.tokenizer, schema, self.config.max_prompt_tokens)

    def prompt_ids(self, paper_text: str, schema: ReviewSchema | str) -> list[int]:
        ids = encode_prompt(self.tokenizer, schema, paper_text)
        if len(ids) > self.config.max_prompt_tokens:
            raise ValueError(f"prompt has {len(ids)} tokens, over the budget of {self.config.max_prompt_tokens}: "
                             "fit the paper first (ReviewEngine.fit)")
        return ids

    # ------------------------------------------------------------------ generation
    def stream(self, paper_text: str, schema: ReviewSchema | str, gen: GenerationConfig | None = None,
               stop: threading.Event | None = None, probe: MarkerProbe | None = None) -> Iterator[str]:
        """Yield the review text as it is written (incremental pieces); `probe` records P(marker)."""
        gen = gen or GenerationConfig()
        ids = self.prompt_ids(paper_text, schema)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                self._generate_ids(ids, gen, streamer=streamer, stop=stop, probe=probe)
            except BaseException as e:  # surfaced to the caller below
                errors.append(e)
                streamer.end()

        worker = Thread(target=run, daemon=True)
        worker.start()
        for piece in streamer:
            yield piece
        worker.join()
        if errors:
            raise errors[0]

    def generate(self, paper_text: str, schema: ReviewSchema | str, gen: GenerationConfig | None = None,
                 probe: MarkerProbe | None = None) -> str:
        gen = gen or GenerationConfig()
        out = self._generate_ids(self.prompt_ids(paper_text, schema), gen, probe=probe)
        return self.tokenizer.decode(out, skip_special_tokens=True)

    def generate_batch(self, paper_texts: list[str], schema: ReviewSchema | str,
                       gen: GenerationConfig | None = None, probe: MarkerProbe | None = None) -> list[str]:
        """Batched generation with left padding (eval throughput)."""
        gen = gen or GenerationConfig()
        prompts = [self.prompt_ids(t, schema) for t in paper_texts]
        width = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.end_ids[0]
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        with self._lock, torch.inference_mode():
            self._seed(gen)
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, **self._hf_kwargs(gen, pad, probe))
        return self.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)

    # ------------------------------------------------------------------ internals
    def _seed(self, gen: GenerationConfig) -> None:
        if gen.seed is not None:
            torch.manual_seed(gen.seed)
            if torch.cuda.is_available():
                torch.cuda.manual_seed_all(gen.seed)

    def _hf_kwargs(self, gen: GenerationConfig, pad_id: int, probe: MarkerProbe | None = None) -> dict[str, Any]:
        sample = gen.do_sample and gen.temperature > 0
        kw: dict[str, Any] = dict(
            max_new_tokens=gen.max_new_tokens, do_sample=sample, pad_token_id=pad_id, eos_token_id=self.end_ids,
            min_new_tokens=gen.max_new_tokens if gen.ignore_eos else None,
            logits_processor=build_logits_processors(self.tokenizer, gen, probe),
            repetition_penalty=gen.repetition_penalty,
        )
        if sample:
            kw.update(temperature=gen.temperature, top_p=gen.top_p, top_k=None)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        return kw

    def _generate_ids(self, ids: list[int], gen: GenerationConfig, streamer: Any = None,
                      stop: threading.Event | None = None, probe: MarkerProbe | None = None) -> list[int]:
        with self._lock, torch.inference_mode():
            self._seed(gen)
            if self._fast is not None and gen.repetition_penalty == 1.0:
                return self._fast.generate(ids, gen, self._processors(gen, probe), self.end_ids, streamer, stop)
            input_ids = torch.tensor([ids], device=self.device)
            kw = self._hf_kwargs(gen, self.tokenizer.pad_token_id or self.end_ids[0], probe)
            if stop is not None:
                from transformers import StoppingCriteria, StoppingCriteriaList

                class _Stop(StoppingCriteria):
                    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **_: Any) -> torch.BoolTensor:
                        return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)
                kw["stopping_criteria"] = StoppingCriteriaList([_Stop()])
            out = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                      streamer=streamer, **kw)
            return out[0, len(ids):].tolist()

    def _processors(self, gen: GenerationConfig, probe: MarkerProbe | None = None) -> LogitsProcessorList:
        return LogitsProcessorList([*build_logits_processors(self.tokenizer, gen, probe), *_sampling_warpers(gen)])

    def warmup(self) -> float:
        """Run one short generation so the first user does not pay compilation; returns seconds."""
        t0 = time.perf_counter()
        self.generate("Warm-up.", "4", GenerationConfig(max_new_tokens=8, do_sample=False, suppression=0.95))
        return time.perf_counter() - t0


class _FastDecoder:
    """Batch-1 decoding with a fixed-size StaticCache and a CUDA-graph-compiled decode step."""

    def __init__(self, model: Any, max_cache_len: int, compile: bool = True) -> None:
        from transformers import StaticCache

        self.model = model
        self.max_cache_len = max_cache_len
        self.compile = compile  # False: same loop, eager step (tests the logic on a CPU)
        self.cache = StaticCache(config=model.config, max_cache_len=max_cache_len)
        self._step: Callable[..., Any] | None = None

    def _compiled_step(self) -> Callable[..., Any]:
        if self._step is None:
            model = self.model

            def step(input_ids: torch.Tensor, cache_position: torch.Tensor) -> torch.Tensor:
                out = model(input_ids=input_ids, cache_position=cache_position, position_ids=cache_position[None],
                            past_key_values=self.cache, use_cache=True, logits_to_keep=1)
                return out.logits[:, -1, :].float()

            self._step = (torch.compile(step, mode="reduce-overhead", fullgraph=False, dynamic=False)
                          if self.compile else step)
        return self._step

    def generate(self, ids: list[int], gen: GenerationConfig, processors: LogitsProcessorList, end_ids: list[int],
                 streamer: Any = None, stop: threading.Event | None = None) -> list[int]:
        """Pipelined decode: the graph replay for token t+1 is queued before the host reads token t
        (copied to pinned memory behind an event), so streaming, stop checks and the launches of the
        logits processors overlap GPU work instead of leaving the GPU idle at every token.

        The processors see a window of the last two tokens: the fast path only serves processors
        that look no further back (suppression, temperature, top-p); repetition penalty takes the
        generate() path."""
        device = next(self.model.parameters()).device
        n = len(ids)
        max_new = min(gen.max_new_tokens, self.max_cache_len - n)
        self.cache.reset()
        prompt = torch.tensor([ids], device=device)
        if streamer is not None:
            streamer.put(prompt.cpu())
        # Prefill eagerly (its shape varies with the prompt) and keep only the last logits.
        out = self.model(input_ids=prompt, cache_position=torch.arange(n, device=device), past_key_values=self.cache,
                         use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1, :].float()
        window = prompt[:, -2:] if n >= 2 else prompt
        sample = gen.do_sample and gen.temperature > 0
        step = self._compiled_step()
        cuda = device.type == "cuda"
        host = torch.empty(1, dtype=torch.long, pin_memory=cuda)
        ready = torch.cuda.Event() if cuda else None
        pos = torch.tensor([n], device=device)
        generated: list[int] = []

        def pick(window: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
            scores = processors(window, logits)
            if sample:
                return torch.multinomial(torch.softmax(scores, dim=-1), 1)
            return scores.argmax(dim=-1, keepdim=True)

        nxt = pick(window, logits)
        for i in range(max_new):
            host.copy_(nxt.view(-1), non_blocking=cuda)
            if ready is not None:
                ready.record()
            more = i + 1 < max_new
            if more:  # queue the next forward before waiting for this token on the host
                logits = step(nxt, pos).clone()
                pos += 1
            if ready is not None:
                ready.synchronize()
            token = int(host.item())
            if (token in end_ids and not gen.ignore_eos) or (stop is not None and stop.is_set()):
                break
            generated.append(token)
            if streamer is not None:
                streamer.put(torch.tensor([token]))
            if not more:
                break
            window = torch.cat([window[:, -1:], nxt], dim=1)
            nxt = pick(window, logits)
        if streamer is not None:
            streamer.end()
        return generated


# ---------------------------------------------------------------------------- loading

_ENGINES: dict[tuple, ReviewEngine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(config: EngineConfig) -> ReviewEngine:
    """The process-wide engine for this configuration (loaded on first use, then shared)."""
    key = tuple(sorted(vars(config).items()))
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = load_engine(config)
        return _ENGINES[key]


def _choose_precision(cfg: EngineConfig, cuda: bool, notes: list[str]) -> str:
    want = cfg.precision
    if not cuda:
        if want in ("nf4", "bf16"):
            notes.append(f"precision {want} needs a CUDA GPU; none found, running fp32 on the CPU")
        return "fp32"
    if want in ("auto", "nf4"):
        if cfg.merge_adapter and want == "auto":
            return "bf16"  # merging needs unquantised weights
        if can_quantize_4bit(cuda, notes):
            return "nf4"
        notes.append("loading bf16 instead of 4-bit NF4")
        return "bf16"
    return want


def load_engine(config: EngineConfig) -> ReviewEngine:
    """Load tokenizer, base model (NF4/bf16/fp32) and adapter; raise ModelLoadError with the reason."""
    cuda = torch.cuda.is_available()
    notes: list[str] = []
    precision = _choose_precision(config, cuda, notes)
    attn = choose_attention(config.attn_implementation, cuda, notes)
    if attn == "sdpa" and cuda and config.fast_decoding:
        from reviewgpt.generate.attention import NAME as gqa_decode  # registers the attention with transformers

        attn = gqa_decode  # SDPA, minus the per-step K/V head expansion (see reviewgpt/attention.py)
    token = config.hf_token or os.environ.get("HF_TOKEN")
    common = dict(token=token, local_files_only=config.local_files_only)
    tok_source = config.adapter if config.adapter and (Path(config.adapter) / "tokenizer_config.json").exists() else config.base_model
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok_source, **common)
        kwargs: dict[str, Any] = dict(attn_implementation=attn, **common)
        if precision == "nf4":
            kwargs["quantization_config"] = nf4_config()
            kwargs["device_map"] = {"": 0}
            kwargs["dtype"] = torch.bfloat16
        elif precision == "bf16":
            kwargs.update(dtype=torch.bfloat16, device_map={"": 0})
        else:
            kwargs.update(dtype=torch.float32)
        model = AutoModelForCausalLM.from_pretrained(config.base_model, **kwargs)
        adapter = config.adapter
        if adapter:
            from peft import PeftModel
            model = PeftModel.from_pretrained(model, adapter, **common)
            if config.merge_adapter and precision != "nf4":
                model = model.merge_and_unload()
        else:
            notes.append("no adapter configured: this is the BASE model, not the fine-tuned reviewer")
    except torch.cuda.OutOfMemoryError as e:
        raise ModelLoadError(f"Out of GPU memory loading {config.base_model} in {precision}: try precision nf4 "
                             "or a larger GPU.") from e
    except OSError as e:
        raise ModelLoadError(_explain_os_error(config, e)) from e
    except Exception as e:  # bad adapter folder, incompatible shapes, ...
        raise ModelLoadError(f"Could not load the model ({config.base_model}"
                             f"{' + ' + config.adapter if config.adapter else ''}): {type(e).__name__}: {e}") from e
    model.eval()
    fast = bool(config.fast_decoding and cuda)
    info = LoadInfo(config.base_model, config.adapter, "cuda" if cuda else "cpu", precision, attn, fast, notes)
    for n in notes:
        log.warning(n)
    engine = ReviewEngine(model, tokenizer, info, config)
    if fast and config.warmup:
        try:
            log.info("warm-up (compiling the decode step) took %.1f s", engine.warmup())
        except Exception as e:  # compilation unavailable: fall back to eager generate()
            log.warning("fast decoding disabled, compile failed: %s", e)
            engine._fast = None
            engine.info = replace(info, fast_decoding=False, notes=notes + [f"fast decoding off: {e}"])
    return engine


def _explain_os_error(config: EngineConfig, e: OSError) -> str:
    msg = str(e)
    where = config.adapter if config.adapter and config.adapter in msg else config.base_model
    if "gated" in msg.lower() or "401" in msg or "403" in msg:
        return (f"{where} is gated on the Hugging Face Hub: accept its licence on the model page and set HF_TOKEN. "
                f"({msg.splitlines()[0]})")
    if os.path.sep in where or where.startswith("."):
        return f"Model folder not found or incomplete: {where}. Set REVIEWGPT_BASE_MODEL / REVIEWGPT_ADAPTER. ({msg.splitlines()[0]})"
    return (f"Could not load {where}: the Hugging Face Hub is unreachable or the id is wrong. Check the network, "
            f"or point REVIEWGPT_BASE_MODEL at a local folder. ({msg.splitlines()[0]})")
