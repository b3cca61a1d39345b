"""The local reviewer: Llama 3.1 (+ LoRA adapter) loaded once, generating reviews.

Decoding paths share tokenisation, logits processors and streaming (ReviewEngine says which runs
when):
- on CUDA, `_FastDecoder`: each prompt is prefilled eagerly, its K/V copied into a StaticCache of
  one fixed length and batch size, then each decode step runs a torch.compile'd forward captured
  as a CUDA graph ("reduce-overhead"). Fixed shapes mean one compilation per batch size; the graph
  replays with near-zero launch overhead, which is what batch-1 decoding is bound by otherwise.
  The step also runs the processors and samples (sampling.py), so a token is one replay.
  Batch 1 serves the app (streaming), batch B the eval (generate_batch).
- transformers' `generate()`: eager with a dynamic cache (CPU, ZeroGPU, processors that read all
  of input_ids), or with a StaticCache and its own compiled step (`decoder="generate-static"`).
Elsewhere the logits processors run as ordinary LogitsProcessors, once per token.
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
from transformers import (AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList, RepetitionPenaltyLogitsProcessor,
                          TemperatureLogitsWarper, TextIteratorStreamer, TopPLogitsWarper)
from transformers.cache_utils import StaticCache

from reviewgpt.prepare.model_input import ModelInput, prepare
from reviewgpt.prepare.chat import encode_prompt, end_token_ids
from reviewgpt.config import RECIPE_SUPPRESSION, EngineConfig, GenerationConfig, looks_like_path
from reviewgpt.ingest.document import Document
from reviewgpt.errors import ModelLoadError
from reviewgpt.generate.hardware import can_quantize_4bit, choose_attention, nf4_config, triton_runs_on
from reviewgpt.format.schema import ReviewSchema, get_schema
from reviewgpt.generate.decode_linears import route_decode_linears, unroute
from reviewgpt.generate.fallback import fallback
from reviewgpt.generate.fused import FusionReport, fuse_projections
from reviewgpt.generate.marker_probe import MarkerProbe
from reviewgpt.generate.sampling import WINDOW, GraphSampler
from reviewgpt.generate.schema_guide import SchemaGuideProcessor
from reviewgpt.generate.step_cache import StepSlotCache
from reviewgpt.generate.suppression import SequenceSuppressionProcessor

log = logging.getLogger(__name__)

# Inductor options for the compiled decode step. {"triton.cudagraphs": True} is exactly
# mode="reduce-overhead" (one CUDA graph replay a token); torch.compile takes a mode or options, not
# both, so other settings go here with it. coordinate_descent_tuning (gpt-fast's setting) also makes
# inductor write each one-row matrix product as its own Triton reduction, fused with the RMSNorm
# before it, instead of a cuBLAS GEMV (torch/_inductor/decomposition.py, `mm`; o_proj and down_proj
# go to a Triton kernel of ours, decode_linears.py); batch 1 only (M = 1), and compiling takes
# longer. Measured against the alternatives on one H100: the "nocoord" and "tune" parts of the earlier
# benchmark (git show 793115b:benchmarks/results/README.md).
DECODE_COMPILE_OPTIONS: dict[str, Any] = {"triton.cudagraphs": True, "coordinate_descent_tuning": True}


# torch.compile's CUDA graph trees keep their managers in a threading.local that, before PyTorch 2.13
# (pytorch#123177, fixed by #184357), only the thread that imported them had filled: a decode step first
# compiled or recorded in another thread (the app's stream worker, the benchmark's) asserted in
# cudagraph_trees.get_obj. The importing thread's managers are kept here and set in each thread that
# decodes (`_share_cudagraph_state`); one generation runs at a time (the engine's lock). Not imported where
# it cannot matter (no CUDA GPU, or PyTorch 2.13+): its import took 1.7 s of every start of the app or a CLI.
_GRAPH_TREES: tuple[Any, dict[str, Any]] | None = None
if torch.cuda.is_available() and torch.torch_version.TorchVersion(torch.__version__) < "2.13":
    try:
        from torch._inductor import cudagraph_trees as _cudagraph_trees

        if not hasattr(_cudagraph_trees, "_initialize_tls"):  # newer PyTorch fills each thread's state itself
            _GRAPH_TREES = (_cudagraph_trees.local, {k: getattr(_cudagraph_trees.local, k) for k in
                                                     ("tree_manager_containers", "tree_manager_locks")
                                                     if hasattr(_cudagraph_trees.local, k)})
    except ImportError:  # a torch build without inductor: nothing is compiled
        pass


def _share_cudagraph_state() -> None:
    if _GRAPH_TREES is not None:
        local, state = _GRAPH_TREES
        for key, obj in state.items():
            if not hasattr(local, key):
                setattr(local, key, obj)


@dataclass
class LoadInfo:
    base_model: str
    adapter: str | None
    device: str
    precision: str
    attn_implementation: str
    fast_decoding: bool
    notes: list[str]
    adapter_merged: bool = False  # the LoRA adapter was merged into the base weights at load

    def describe(self) -> str:
        name = Path(self.base_model).name if os.path.isdir(self.base_model) else self.base_model
        merged = " (merged)" if self.adapter_merged else ""
        adapter = (f" + LoRA {Path(self.adapter).name if os.path.isdir(self.adapter) else self.adapter}{merged}"
                   if self.adapter else " (no adapter: base model)")
        return f"{name}{adapter} · {self.precision} · {self.device} · {self.attn_implementation}"


def build_logits_processors(tokenizer: Any, gen: GenerationConfig, probe: MarkerProbe | None = None
                            ) -> LogitsProcessorList:
    """Repetition penalty (if any), then suppression (on raw logits, so its semantics hold for the
    model's distribution). s = 0 installs no suppression processor, unless a probe records P(marker).
    Sampling warpers come after these (`_sampling_warpers`)."""
    procs = LogitsProcessorList()
    if gen.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(gen.repetition_penalty))  # reads all of input_ids
    if gen.suppression > 0 or probe is not None:
        procs.append(_declare_lookback(SequenceSuppressionProcessor(tokenizer, gen.suppression, probe=probe),
                                       SUPPRESSION_LOOKBACK))
    return procs


_WARPERS = (TemperatureLogitsWarper, TopPLogitsWarper)


def _sampling_warpers(gen: GenerationConfig) -> LogitsProcessorList:
    procs = LogitsProcessorList()
    if gen.do_sample and gen.temperature > 0:
        if gen.temperature != 1.0:
            procs.append(_declare_lookback(TemperatureLogitsWarper(gen.temperature), 0))
        if gen.top_p < 1.0:
            procs.append(_declare_lookback(TopPLogitsWarper(gen.top_p), 0))
    return procs


# The suppression processor reads the last token and the one before it; suppression.py declares
# `lookback = 2` on the class, this default only covers a version that does not.
SUPPRESSION_LOOKBACK = 2


def _declare_lookback(proc: Any, default: int) -> Any:
    if getattr(proc, "lookback", None) is None:
        proc.lookback = default
    return proc


def lookback(processors: LogitsProcessorList) -> int | None:
    """Trailing tokens of input_ids the processors read: the max of their declared `lookback`;
    None (unbounded) if any processor declares none (e.g. repetition penalty reads everything)."""
    need = 0
    for p in processors:
        k = getattr(p, "lookback", None)
        if k is None:
            return None
        need = max(need, int(k))
    return need


class ReviewEngine:
    """Loaded model + tokenizer; thread-safe (one generation on the device at a time).

    Decoding paths ("which path runs where" in the README):
    - `info.fast_decoding` and `config.decoder == "engine"` (GPU default): `_FastDecoder`, a static
      cache and a compiled, CUDA-graphed decode step; batch 1 for stream/generate, batch B for
      generate_batch. Used when the decode graph runs the processors (`_FastDecoder.accepts`: the
      engine's own, with a declared look-back).
    - `config.decoder == "generate-static"`: transformers' generate() with a StaticCache, which
      compiles its own decode step.
    - otherwise (CPU, `fast_decoding=False` as on ZeroGPU, unbounded processors): eager generate().
    """

    records_markers = True  # stream/generate/generate_batch take `probe`: P(empty marker) at every step

    def __init__(self, model: Any, tokenizer: Any, info: LoadInfo, config: EngineConfig) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.info = info
        self.config = config
        self.device = next(model.parameters()).device
        self.end_ids = end_token_ids(tokenizer)
        self._lock = threading.Lock()
        self._fast: _FastDecoder | None = None
        self._fast_batches: dict[int, _FastDecoder] = {}  # batch size -> decoder (own cache and graph)
        self._static_caches: dict[int, Any] = {}  # generate-static: batch size -> reusable StaticCache
        if info.fast_decoding and config.decoder == "engine":
            self._fast = self._new_decoder(1)
        elif config.aot_package:
            self._fast = self._aot_decoder(config.aot_package)

    def _aot_decoder(self, source: str) -> _FastDecoder | None:
        """The batch-1 decoder running the ahead-of-time compiled step built for this setup, or None
        (eager generate()) with a note saying why."""
        from reviewgpt.generate import aot_step

        try:
            packages, why = aot_step.find_package(source, aot_step.AotKey.of(self))
        except Exception as e:  # unreadable folder, Hub unreachable
            packages, why = [], f"{type(e).__name__}: {e}"
        if not packages:
            self.info.notes.append(f"Decoding: eager generate(), no ahead-of-time compiled step: {why}")
            log.warning(self.info.notes[-1])
            return None
        self.info.notes.append(f"Decoding: the ahead-of-time compiled step from {source} ({packages[0].name})")
        log.info(self.info.notes[-1])
        return aot_step.AotDecoder(self, packages)

    def _new_decoder(self, batch: int, compile: bool = True) -> _FastDecoder:
        return _FastDecoder(self.model, max_cache_len=self._cache_len(), tokenizer=self.tokenizer, batch_size=batch,
                            compile=compile)

    def _cache_len(self) -> int:
        return self.config.max_prompt_tokens + self.config.max_new_tokens

    # ------------------------------------------------------------------ prompt building
    def prepare(self, paper: Document | str, schema: ReviewSchema | str, edited: bool = False) -> ModelInput:
        """The paper as this model reads it: `prepare()` with this model's tokenizer and budget."""
        return prepare(paper, schema, self.tokenizer, self.config.max_prompt_tokens, edited=edited)

    def prompt_ids(self, paper: str | ModelInput, schema: ReviewSchema | str) -> list[int]:
        """The prompt's token ids: a ModelInput's own (counted by `prepare` with this tokenizer for
        this schema: not encoded again), else the chat prompt around the text."""
        ids = None
        if isinstance(paper, ModelInput):
            ids = paper.prompt_ids_for(self.tokenizer) if paper.schema == get_schema(schema).key else None
            paper = paper.text
        ids = ids if ids is not None else encode_prompt(self.tokenizer, schema, paper)
        if len(ids) > self.config.max_prompt_tokens:
            raise ValueError(f"prompt has {len(ids)} tokens, over the budget of {self.config.max_prompt_tokens}: "
                             "fit the paper first (ReviewEngine.prepare)")
        return ids

    # ------------------------------------------------------------------ generation
    def stream(self, paper: str | ModelInput, schema: ReviewSchema | str, gen: GenerationConfig | None = None,
               stop: threading.Event | None = None, probe: MarkerProbe | None = None) -> Iterator[str]:
        """Yield the review text as it is written (incremental pieces); `probe` records P(marker).
        `paper`: the text the model reads, or the ModelInput that `prepare` made of it."""
        gen = gen or GenerationConfig()
        ids = self.prompt_ids(paper, schema)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        errors: list[BaseException] = []
        stop = stop if stop is not None else threading.Event()

        def run() -> None:
            try:
                self._generate_ids(ids, gen, streamer=streamer, stop=stop, probe=probe, schema=schema)
            except BaseException as e:  # surfaced to the caller below
                errors.append(e)
                streamer.end()

        worker = Thread(target=run, daemon=True)
        worker.start()
        try:
            for piece in streamer:
                yield piece
        except GeneratorExit:  # the caller left (a closed API stream): free the model for the next request
            stop.set()
            raise
        worker.join()
        if errors:
            raise errors[0]

    def generate(self, paper: str | ModelInput, schema: ReviewSchema | str, gen: GenerationConfig | None = None,
                 probe: MarkerProbe | None = None) -> str:
        gen = gen or GenerationConfig()
        out = self._generate_ids(self.prompt_ids(paper, schema), gen, probe=probe, schema=schema)
        return self.tokenizer.decode(out, skip_special_tokens=True)

    def generate_batch(self, paper_texts: list[str] | list[ModelInput], schema: ReviewSchema | str,
                       gen: GenerationConfig | None = None, probe: MarkerProbe | None = None) -> list[str]:
        """Batched generation (eval throughput): the batched fast path on a GPU, else generate() with
        left padding. Each row stops at its own end token."""
        gen = gen or GenerationConfig()
        prompts = [self.prompt_ids(t, schema) for t in paper_texts]
        outs = self._generate_batch_ids(prompts, gen, probe=probe, schema=schema)
        return self.tokenizer.batch_decode(outs, skip_special_tokens=True)

    # ------------------------------------------------------------------ internals
    def _seed(self, gen: GenerationConfig) -> None:
        if gen.seed is not None:
            torch.manual_seed(gen.seed)
            if torch.cuda.is_available():
                torch.cuda.manual_seed_all(gen.seed)

    def _hf_kwargs(self, gen: GenerationConfig, pad_id: int, processors: LogitsProcessorList,
                   batch: int = 1) -> dict[str, Any]:
        sample = gen.do_sample and gen.temperature > 0
        kw: dict[str, Any] = dict(
            max_new_tokens=gen.max_new_tokens, do_sample=sample, pad_token_id=pad_id, eos_token_id=self.end_ids,
            min_new_tokens=gen.max_new_tokens if gen.ignore_eos else None,
            # ours without the sampling warpers: generate() adds its own from temperature / top_p
            logits_processor=LogitsProcessorList(p for p in processors if not isinstance(p, _WARPERS)),
        )
        if sample:
            kw.update(temperature=gen.temperature, top_p=gen.top_p, top_k=None)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        if self.info.fast_decoding and self.config.decoder == "generate-static":
            kw["past_key_values"] = self._static_cache(batch)
        return kw

    def _static_cache(self, batch: int) -> Any:
        """One StaticCache per batch size, reset and reused, so generate() compiles its step once."""
        if batch not in self._static_caches:
            self._static_caches[batch] = StaticCache(config=self.model.config, max_cache_len=self._cache_len())
        cache = self._static_caches[batch]
        cache.reset()
        return cache

    def _generate_ids(self, ids: list[int], gen: GenerationConfig, streamer: Any = None,
                      stop: threading.Event | None = None, probe: MarkerProbe | None = None,
                      schema: ReviewSchema | str | None = None) -> list[int]:
        with self._lock, torch.inference_mode():
            self._seed(gen)
            procs = self._processors(gen, probe, schema)
            if self._fast is not None and self._fast.accepts(procs):
                return self._fast.generate(ids, gen, procs, self.end_ids, streamer, stop)
            input_ids = torch.tensor([ids], device=self.device)
            kw = self._hf_kwargs(gen, self._pad_id(), procs)
            if stop is not None:
                from transformers import StoppingCriteria, StoppingCriteriaList

                class _Stop(StoppingCriteria):
                    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **_: Any) -> torch.BoolTensor:
                        return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)
                kw["stopping_criteria"] = StoppingCriteriaList([_Stop()])
            out = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                      streamer=streamer, **kw)
            return out[0, len(ids):].tolist()

    def _generate_batch_ids(self, prompts: list[list[int]], gen: GenerationConfig, streamer: Any = None,
                            probe: MarkerProbe | None = None, schema: ReviewSchema | str | None = None
                            ) -> list[list[int]]:
        with self._lock, torch.inference_mode():
            self._seed(gen)
            procs = self._processors(gen, probe, schema)
            if self._fast is not None and not self._fast.aot and self._fast.accepts(procs):
                return self._batch_decoder(len(prompts)).generate_rows(prompts, gen, procs, self.end_ids, streamer)
            width = max(len(p) for p in prompts)
            pad = self._pad_id()
            input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, streamer=streamer,
                                      **self._hf_kwargs(gen, pad, procs, batch=len(prompts)))
            return [_until_end(row, self.end_ids) for row in out[:, width:].tolist()]

    def _batch_decoder(self, rows: int) -> _FastDecoder:
        """The smallest existing batched decoder that holds `rows` (fewer rows are padded, so an eval's
        last, smaller batch reuses the compiled step), else a new one of exactly `rows`."""
        if rows == 1:
            return self._fast  # type: ignore[return-value]
        fits = [b for b in self._fast_batches if b >= rows]
        if fits:
            return self._fast_batches[min(fits)]
        dec = self._fast_batches[rows] = self._new_decoder(rows, compile=self._fast.compile if self._fast else True)
        return dec

    def _pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.end_ids[0]

    def _processors(self, gen: GenerationConfig, probe: MarkerProbe | None = None,
                    schema: ReviewSchema | str | None = None) -> LogitsProcessorList:
        """Suppression (and its probe), the schema guide if this model uses one, then the sampling warpers."""
        guide = ([SchemaGuideProcessor(self.tokenizer, schema, self.end_ids)]
                 if self.config.schema_guide and schema is not None else [])
        return LogitsProcessorList([*build_logits_processors(self.tokenizer, gen, probe), *guide,
                                    *_sampling_warpers(gen)])

    def warmup(self) -> float:
        """Run one short generation so the first user does not pay compilation; returns seconds."""
        t0 = time.perf_counter()
        self.generate("Warm-up.", "4", GenerationConfig(max_new_tokens=8, do_sample=False, suppression=RECIPE_SUPPRESSION))
        return time.perf_counter() - t0


def _until_end(row: list[int], end_ids: list[int]) -> list[int]:
    for i, t in enumerate(row):
        if t in end_ids:
            return row[:i]
    return row


class _FastDecoder:
    """Decoding with a fixed-size StaticCache of `batch_size` rows and a compiled decode step that
    runs as a CUDA graph ("reduce-overhead"). One cache length, one batch size: one compilation.

    Prefill: each prompt runs eagerly on its own (no padding waste, the stock prefill kernels) into a
    DynamicCache whose K/V are copied into the static cache, right-aligned: row r's prompt of n_r
    tokens fills slots [W - n_r, W) with W the longest prompt, its positions are 0..n_r-1 (as with
    left padding). Decode step t writes slot W + t for every row; a boolean mask (b, 1, 1, slots),
    built inside the compiled step from the slot index and each row's first slot, hides the empty
    and padding slots.

    One graph replay a token: the step reads the last token, the look-back window and the slot from
    fixed buffers (`_State`), runs the model, the processors and sampling (`GraphSampler`, settings
    as tensors), and writes the next token, window and slot back. The host only copies each token
    out, behind an event.
    """

    aot = False  # the step compiled ahead of time (aot_step.AotDecoder): batch 1 only

    def __init__(self, model: Any, max_cache_len: int, tokenizer: Any, compile: bool = True,
                 batch_size: int = 1, compile_options: dict[str, Any] | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_cache_len = max_cache_len
        self.batch_size = batch_size
        self.compile = compile  # False: same loop, eager step (tests the logic on a CPU)
        self.compile_options = dict(DECODE_COMPILE_OPTIONS if compile_options is None else compile_options)
        self.cache = StepSlotCache(model.config, max_cache_len)
        self._step: Callable[[], None] | None = None
        self.step_forward = "the model's forward"  # which forward the step runs (benchmarks say it)
        self._sampler: GraphSampler | None = None
        self._state: _State | None = None

    def sampler(self) -> GraphSampler:
        if self._sampler is None:
            device = next(self.model.parameters()).device
            # one record per step: at most one per cache slot after the prompt, plus the first token
            self._sampler = GraphSampler(self.tokenizer, self.batch_size, self.max_cache_len + 1, device)
            self._state = _State(self.batch_size, device)
            self.cache.write_at(self._state.pos)
            if self.compile:
                for t in [*self._sampler.tensors(), *self._state.tensors()]:
                    torch._dynamo.mark_static_address(t)  # read/written in place by the graph
        return self._sampler

    def accepts(self, processors: LogitsProcessorList) -> bool:
        """Whether the graph can run these processors (the engine's own, bounded look-back); when not,
        the reason is logged once (the engine then runs generate())."""
        k = lookback(processors)
        why = (None if k is not None and k <= WINDOW and self.sampler().accepts(processors)
               else f"logits processors the step does not run: {[type(p).__name__ for p in processors]}")
        if why:
            fallback("compiled decode step", "generate()", why)
        return why is None

    def _ensure_cache(self, device: torch.device) -> None:
        if not self.cache.layers[0].is_initialized:
            cfg = self.model.config
            head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
            dtype = self.model.get_input_embeddings().weight.dtype  # bf16 for NF4 too (compute dtype)
            self.cache.early_initialization(self.batch_size, cfg.num_key_value_heads, head_dim, dtype, device)

    def _compiled_step(self) -> Callable[[], None]:
        if self._step is None:
            model, cache, slots, sampler = self.model, self.cache, self.max_cache_len, self.sampler()
            state = self._state
            assert state is not None
            self._ensure_cache(state.tokens.device)

            def step() -> None:
                decode_step(model, cache, state, sampler, slots)

            self._step = (torch.compile(step, options=self.compile_options, fullgraph=False, dynamic=False)
                          if self.compile else step)
        return self._step

    def generate(self, ids: list[int], gen: GenerationConfig, processors: LogitsProcessorList, end_ids: list[int],
                 streamer: Any = None, stop: threading.Event | None = None) -> list[int]:
        """Batch 1: the streamer gets the prompt, then each token."""
        if streamer is not None:
            streamer.put(torch.tensor([ids]))
        return self.generate_rows([ids], gen, processors, end_ids, streamer, stop)[0]

    def _prefill(self, prompts: list[list[int]], device: torch.device) -> tuple[torch.Tensor, int]:
        from transformers import DynamicCache

        self._ensure_cache(device)
        self.cache.reset()
        width = max(len(p) for p in prompts)
        logits = []
        for r, ids in enumerate(prompts):
            part = DynamicCache(config=self.model.config)
            out = self.model(input_ids=torch.tensor([ids], device=device), past_key_values=part, use_cache=True,
                             logits_to_keep=1)
            logits.append(out.logits[:, -1, :].float())
            for static, dyn in zip(self.cache.layers, part.layers):
                static.keys[r, :, width - len(ids):width].copy_(dyn.keys[0])
                static.values[r, :, width - len(ids):width].copy_(dyn.values[0])
            del part, out
        self.cache.prefilled(width)  # the step writes at _State.pos, which _State.start sets to width
        return torch.cat(logits), width

    def generate_rows(self, prompts: list[list[int]], gen: GenerationConfig, processors: LogitsProcessorList,
                      end_ids: list[int], streamer: Any = None, stop: threading.Event | None = None) -> list[list[int]]:
        """Pipelined decode: the graph replay for token t+1 is queued before the host reads token t
        (copied to pinned memory behind an event), so streaming and stop checks overlap GPU work.

        `processors` (as the engine builds them, see `accepts`) only give their settings and probe:
        the graph runs its own instances of them. Each row stops at its own end token; the loop
        ends when all have (finished rows keep decoding: the step's shapes are fixed).
        A streamer, if given, gets each step's tokens (one per row)."""
        rows = len(prompts)
        if rows > self.batch_size:
            raise ValueError(f"{rows} prompts for a decoder of batch {self.batch_size}")
        if lookback(processors) is None:
            raise ValueError("a processor reads all of input_ids (no `lookback`): use generate()")
        if not self.accepts(processors):
            raise ValueError("a processor the decode graph does not run: use generate()")
        prompts = prompts + [prompts[-1]] * (self.batch_size - rows)  # padding rows, dropped at the end
        device = next(self.model.parameters()).device
        width = max(len(p) for p in prompts)
        max_new = min(gen.max_new_tokens, self.max_cache_len - width)
        if self.compile:
            _share_cudagraph_state()  # this thread may not be the one that imported the graph trees
        logits, width = self._prefill(prompts, device)
        sampler = self.sampler()
        state = self._state
        assert state is not None
        probe = sampler.set(processors, sample=gen.do_sample and gen.temperature > 0)
        # the window a row's first token follows: its prompt's last tokens (a 1-token prompt repeats it)
        window = torch.tensor([([p[0]] * WINDOW + p)[-WINDOW:] for p in prompts], device=device)
        state.start(window, sampler(window, logits), width, [width - len(p) for p in prompts])
        step = self._compiled_step()
        cuda = device.type == "cuda"
        host = torch.empty(self.batch_size, dtype=torch.long, pin_memory=cuda)
        ready = torch.cuda.Event() if cuda else None
        done = [False] * rows
        generated: list[list[int]] = [[] for _ in range(rows)]
        picks = 1  # tokens chosen that the loop reads (the graph may have chosen one more)
        for i in range(max_new):
            host.copy_(state.tokens.view(-1), non_blocking=cuda)
            if ready is not None:
                ready.record()
            more = i + 1 < max_new
            if more:  # queue the next token's replay before waiting for this token on the host
                step()
            if ready is not None:
                ready.synchronize()
            if stop is not None and stop.is_set():
                break
            tokens = host.tolist()
            for r in range(rows):
                if done[r]:
                    continue
                if tokens[r] in end_ids and not gen.ignore_eos:
                    done[r] = True
                else:
                    generated[r].append(tokens[r])
            if all(done):
                break
            if streamer is not None:
                streamer.put(torch.tensor(tokens[:rows]))
            if not more:
                break
            picks += 1
        if probe is not None:
            sampler.recorder.hand_to(probe, picks)
        if streamer is not None:
            streamer.end()
        return generated


def decode_step(model: Any, cache: StepSlotCache, state: _State, sampler: GraphSampler, slots: int) -> torch.Tensor:
    """One token for every row: state.tokens (b, 1) at slot state.pos -> the next token, written back
    into `state` (and returned). The compiled step and the ahead-of-time exported one (aot_step.py)
    both trace this."""
    logits = model_step_logits(model, cache, state, slots)
    window = torch.cat([state.window[:, 1:], state.tokens], dim=1)
    nxt = sampler(window, logits)
    state.window.copy_(window)
    state.tokens.copy_(nxt)
    state.advance()
    return nxt


def model_step_logits(model: Any, cache: StepSlotCache, state: _State, slots: int) -> torch.Tensor:
    """One decode step through the model's own forward: the next-token logits (b, vocab) in float32 for
    state.tokens at slot state.pos, their K/V written there (`slots`: the cache's length). The mask says
    row r attends to slots first[r]..pos; its window goes to the decode attention too (attention.py),
    which then reads no mask, and inductor drops the mask's kernels."""
    idx = torch.arange(slots, device=state.tokens.device)
    mask = ((idx[None, :] >= state.first[:, None]) & (idx[None, :] <= state.pos)).view(-1, 1, 1, slots)
    out = model(input_ids=state.tokens, attention_mask=mask, position_ids=(state.pos - state.first)[:, None],
                past_key_values=cache, use_cache=True, logits_to_keep=1, decode_slots_used=state.used,
                decode_first_slots=state.first)
    return out.logits[:, -1, :].float()


class _State:
    """The decode graph's per-token inputs, in fixed buffers the step reads and overwrites."""

    def __init__(self, batch: int, device: torch.device) -> None:
        self.tokens = torch.zeros(batch, 1, dtype=torch.long, device=device)  # the token fed now
        self.window = torch.zeros(batch, WINDOW, dtype=torch.long, device=device)  # the tokens before it
        self.pos = torch.zeros(1, dtype=torch.long, device=device)  # the cache slot written now
        # pos + 1, kept as its own buffer: computed in the step, inductor would recompute it for every
        # layer's attention call (a kernel each)
        self.used = torch.zeros(1, dtype=torch.long, device=device)
        self.first = torch.zeros(batch, dtype=torch.long, device=device)  # each row's first prompt slot

    def tensors(self) -> list[torch.Tensor]:
        return [self.tokens, self.window, self.pos, self.used, self.first]

    def start(self, window: torch.Tensor, tokens: torch.Tensor, pos: int, first: list[int]) -> None:
        self.window.copy_(window)
        self.tokens.copy_(tokens)
        self.pos.fill_(pos)
        self.used.fill_(pos + 1)
        self.first.copy_(torch.tensor(first))

    def advance(self) -> None:
        self.pos.add_(1)
        self.used.add_(1)


# ---------------------------------------------------------------------------- loading

DECODERS = ("engine", "generate-static")
_ENGINES: dict[tuple, ReviewEngine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(config: EngineConfig) -> ReviewEngine:
    """The process-wide engine for this configuration (loaded on first use, then shared)."""
    key = tuple(sorted(vars(config).items()))
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = load_engine(config)
        return _ENGINES[key]


# bf16 with the adapter merged decodes faster than NF4 + LoRA unmerged (198.3 against 169.7-173.5 tok/s at
# batch 1 on an H200, benchmarks/results/README.md) and is the adapter as trained on: `auto` takes it
# wherever it fits, NF4 only where it does not. Fits: the bf16 weights times this within the GPU's free
# memory (batch 1 at the recipe's 11,137-token prompt peaked at 19.39 GiB for 14.96 GiB of 8B weights: x1.30).
BF16_HEADROOM = 1.35


def bf16_weight_bytes(base_model: str, **hub: Any) -> int | None:
    """The bytes of `base_model`'s weights in bf16, counted on the meta device (nothing is read but its
    config); None when the config cannot be read (the load then says why)."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(base_model, **hub)
        with init_empty_weights():
            model = AutoModelForCausalLM.from_config(cfg)
        model.tie_weights()  # tied embeddings are one tensor (not tied on the meta device by itself)
    except Exception:  # noqa: BLE001 - a missing or bad checkpoint is reported by the load itself
        return None
    return 2 * sum(p.numel() for p in model.parameters())


def auto_precision(weight_bytes: int | None, free_bytes: int | None, nf4_ok: bool) -> tuple[str, str]:
    """`precision: auto` on a GPU: bf16 where its weights fit with headroom (faster, and the adapter
    merges), else NF4 where bitsandbytes runs, else bf16. Returns the choice and why, for the notes."""
    gib = 2**30
    if weight_bytes is not None and free_bytes is not None:
        need = BF16_HEADROOM * weight_bytes
        if free_bytes >= need:
            return "bf16", (f"precision auto: bf16 ({weight_bytes / gib:.1f} GiB of weights fit the GPU's "
                            f"{free_bytes / gib:.1f} GiB free; faster than NF4, the adapter merged)")
        if nf4_ok:
            return "nf4", (f"precision auto: 4-bit NF4 (bf16 needs about {need / gib:.1f} GiB, the GPU has "
                           f"{free_bytes / gib:.1f} GiB free)")
        return "bf16", (f"precision auto: bf16 though it needs about {need / gib:.1f} GiB and the GPU has "
                        f"{free_bytes / gib:.1f} GiB free: 4-bit NF4 is unavailable")
    return ("nf4", "precision auto: 4-bit NF4 (the GPU's free memory or the model's size is unknown)") if nf4_ok \
        else ("bf16", "precision auto: bf16 (4-bit NF4 unavailable)")


def _hub_kwargs(cfg: EngineConfig) -> dict[str, Any]:
    """What every from_pretrained of this config is given: the token and whether to stay offline."""
    return dict(token=cfg.hf_token or os.environ.get("HF_TOKEN"), local_files_only=cfg.local_files_only)


def _choose_precision(cfg: EngineConfig, cuda: bool, notes: list[str]) -> str:
    want = cfg.precision
    if not cuda:
        if want in ("nf4", "bf16"):
            notes.append(f"precision {want} needs a CUDA GPU; none found, running fp32 on the CPU")
        return "fp32"
    if want == "auto":
        try:
            free: int | None = torch.cuda.mem_get_info()[0]
        except Exception:  # noqa: BLE001 - e.g. ZeroGPU outside a GPU slot
            free = None
        choice, why = auto_precision(bf16_weight_bytes(cfg.base_model, **_hub_kwargs(cfg)), free,
                                     can_quantize_4bit(cuda, []))  # `why` says when NF4 was wanted but missing
        notes.append(why)
        return choice
    if want == "nf4":
        if can_quantize_4bit(cuda, notes):
            return "nf4"
        notes.append("loading bf16 instead of 4-bit NF4")
        return "bf16"
    return want


# Why the decode step's Triton kernels do not run somewhere (hardware.triton_runs_on)
KERNEL_NEEDS = "needs Triton and a CUDA GPU of compute capability 8.0+ (Ampere or newer)"


def prepare_linears(model: torch.nn.Module, fuse: bool = True, few_row: bool = True,
                    one_row: tuple[str, ...] = EngineConfig.one_row_kernel_layers) -> FusionReport | None:
    """The fast path's linear layers: q|k|v and gate|up fused (fused.py), then every linear given its
    decode-step kernel (decode_linears.py); in this order, as fusing makes new layers. Returns the
    fusion report (None when not fusing)."""
    fusion = fuse_projections(model) if fuse else None
    if fusion is not None:
        log.info("fused projections: %s", fusion)
        if fusion.skipped:
            fallback("fused projections", "separate products", f"not fused: {'; '.join(sorted(set(fusion.skipped)))}")
    if few_row:
        log.info("decode step linears: %s", route_decode_linears(model, one_row))
        weight = model.get_input_embeddings().weight
        if not triton_runs_on(weight):
            fallback("few-row Triton linears", "F.linear (cuBLAS)", KERNEL_NEEDS)
    return fusion


def load_engine(config: EngineConfig) -> ReviewEngine:
    """Load tokenizer, base model (NF4/bf16/fp32) and adapter; raise ModelLoadError with the reason."""
    if config.decoder not in DECODERS:
        raise ModelLoadError(f"unknown decoder {config.decoder!r}: choose one of {', '.join(DECODERS)}")
    cuda = torch.cuda.is_available()
    notes: list[str] = []
    precision = _choose_precision(config, cuda, notes)
    attn = choose_attention(config.attn_implementation, cuda, notes)
    if not config.fast_decoding and config.aot_package and config.attn_implementation == "auto":
        from reviewgpt.generate import attention

        attn = attention.NAME_SDPA  # what the ahead-of-time step was exported with (aot_step.build)
    elif attn == "sdpa" and cuda and config.fast_decoding:
        from reviewgpt.generate import attention  # registers the attentions with transformers

        # SDPA minus the per-step K/V head expansion, one query token in the split-KV kernel (attention.py)
        attn = attention.NAME if config.split_kv_attention else attention.NAME_SDPA
        if config.split_kv_attention and not triton_runs_on(torch.empty(0, device="cuda")):
            fallback("split-KV decode attention", "SDPA with enable_gqa", KERNEL_NEEDS)
    common = _hub_kwargs(config)
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
        merged = bool(adapter and config.merge_adapter and precision != "nf4")  # 4-bit weights stay unmerged
        if adapter:
            from peft import PeftModel
            model = PeftModel.from_pretrained(model, adapter, **common)
            if merged:
                model = model.merge_and_unload()  # the decode step then runs the plain model
            elif config.merge_adapter:
                fallback("merged adapter", "LoRA applied unmerged",
                         "NF4 weights: merging would re-quantize them and lose most of the adapter's change",
                         expected=True)
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
    if not fast:
        fallback("compiled decode step", "eager generate()",
                 "fast_decoding is off (ZeroGPU, or set so)" if cuda else "no CUDA GPU", expected=True)
    if fast:
        fusion = prepare_linears(model, fuse=config.fuse_projections, few_row=config.few_row_kernels,
                                 one_row=config.one_row_kernel_layers)
        if fusion is not None and fusion.codes_identical is False:
            notes.append("fused NF4 projections: re-quantized 4-bit codes differ from the originals'")
    info = LoadInfo(config.base_model, config.adapter, "cuda" if cuda else "cpu", precision, attn, fast, notes,
                    adapter_merged=merged)
    for n in notes:
        log.warning(n)
    engine = ReviewEngine(model, tokenizer, info, config)
    if fast and config.warmup:
        try:
            log.info("warm-up (compiling the decode step) took %.1f s", engine.warmup())
        except Exception as e:  # compilation unavailable: fall back to eager generate()
            fallback("compiled decode step", "eager generate()", f"compile failed: {type(e).__name__}: {e}")
            unroute(model)  # plain F.linear again, whatever failed (Triton's kernels included)
            if attn in _decode_attentions():
                model.set_attn_implementation("sdpa")  # and plain SDPA: the split-KV kernel may be what failed
                attn = "sdpa"
            engine._fast = None
            engine.info = replace(info, fast_decoding=False, attn_implementation=attn,
                                  notes=notes + [f"fast decoding off: {e}"])
    return engine


def _decode_attentions() -> tuple[str, ...]:
    from reviewgpt.generate import attention

    return (attention.NAME, attention.NAME_SDPA)


def _explain_os_error(config: EngineConfig, e: OSError) -> str:
    msg = str(e)
    where = config.adapter if config.adapter and config.adapter in msg else config.base_model
    if "gated" in msg.lower() or "401" in msg or "403" in msg:
        return (f"{where} is gated on the Hugging Face Hub: accept its licence on the model page and set HF_TOKEN. "
                f"({msg.splitlines()[0]})")
    if looks_like_path(where):
        return f"Model folder not found or incomplete: {where}. Set REVIEWGPT_BASE_MODEL / REVIEWGPT_ADAPTER. ({msg.splitlines()[0]})"
    return (f"Could not load {where}: the Hugging Face Hub is unreachable or the id is wrong. Check the network, "
            f"or point REVIEWGPT_BASE_MODEL at a local folder. ({msg.splitlines()[0]})")
