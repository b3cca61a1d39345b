"""Decoding benchmark of the review engine on the Llama-3.1-8B shape (random weights), one GPU.

    python -m benchmarks.bench_engine --precision bf16 nf4 --out benchmarks/results/engine.jsonl \
        --profile-dir benchmarks/results

Prompt: 11,137 tokens (the recipe's budget), 1,000 new tokens, sampling (T=0.6, top-p 0.9),
suppression off and at 0.95. Rows (one JSON line each):
- "attention": one layer's decode attention over a 12,338-slot cache at position 11,138, kernel
  time per call (CUDA graph of many calls, events): ours (SDPA enable_gqa + boolean mask), the
  previous matmul-softmax-matmul, and stock transformers SDPA (K/V expanded), with the relative
  error of each against a float64 reference on the same inputs.
- "step-only": the compiled decode step alone (graph replays, no sampling, no host sync), plus a
  torch.profiler kernel table of it written to --profile-dir (attention us/layer read from it).
- "engine" / "generate-static", batch 1: prefill s (to the first token), decode tok/s (after the
  first token), step ms (= 1000 / tok/s), peak GiB. Timings from the streaming hook.
- "engine" / "generate-static", batch 8 (8 different ~11k-token prompts, per-row stop): prefill s
  (all 8 rows), decode tok/s over all rows, end-to-end tok/s.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from reviewgpt.config import EngineConfig, GenerationConfig
from reviewgpt.generate.engine import ReviewEngine, load_engine

from .random_llama8b import build, corpus_texts

PROMPT_TOKENS = 11_138  # the recipe's budget: prompts fit to it come out at 11,137 tokens
NEW_TOKENS = 1_000
MAX_NEW = 1_200  # cache = 12,338 slots (budget + the recipe's response limit + margin)
OUT: Path = Path(".")
ROWS: list[dict] = []


def emit(row: dict) -> None:
    row = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, **row}
    ROWS.append(row)
    print(json.dumps(row), flush=True)
    with open(OUT, "a") as f:
        f.write(json.dumps(row) + "\n")


class TokenClock:
    """A streamer that only records when each put arrives."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, _value) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


# ---------------------------------------------------------------------------------- attention

def attention_micro(precision: str) -> None:
    """One layer's decode attention, three ways, on the same random inputs (never zeros)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from reviewgpt.generate.attention import sdpa_gqa_decode

    def matmul_softmax(module, q, k, v, mask, scaling):  # the previous implementation, for the record
        b, heads, _, d = q.shape
        kvh = k.shape[1]
        s = torch.matmul(q.reshape(b, kvh, heads // kvh, d), k.transpose(-1, -2)).float() * scaling
        s = s.masked_fill(~mask, float("-inf"))
        out = torch.matmul(torch.softmax(s, -1).to(v.dtype), v)
        return out.reshape(b, heads, 1, d).transpose(1, 2).contiguous(), None

    slots, pos, d = PROMPT_TOKENS + MAX_NEW, PROMPT_TOKENS, 128
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 4, True
    sets = []
    for _ in range(4):  # rotate over 4 layers' caches (4 x 50 MB > L2) so the cache is really read
        q = torch.randn(1, 32, 1, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, 8, slots, d, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, 8, slots, d, device="cuda", dtype=torch.bfloat16)
        mask = (torch.arange(slots, device="cuda") <= pos).view(1, 1, 1, slots)
        sets.append((q, k, v, mask))
    q, k, v, mask = sets[0]
    kk, vv = k.double().repeat_interleave(4, 1), v.double().repeat_interleave(4, 1)
    p = torch.softmax((q.double() @ kk.transpose(-1, -2) * d ** -0.5).masked_fill(~mask, float("-inf")), -1)
    ref = (p @ vv).transpose(1, 2)
    variants = {"ours_sdpa_enable_gqa": sdpa_gqa_decode, "previous_matmul_softmax": matmul_softmax,
                "stock_sdpa_repeat_kv": sdpa_attention_forward}
    row = {"part": "attention", "precision": precision, "slots": slots, "position": pos}
    for name, fn in variants.items():
        out, _ = fn(module, q, k, v, mask, scaling=d ** -0.5)
        err = ((out.double() - ref).norm() / ref.norm()).item()
        calls = 64
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for i in range(calls):
                s = sets[i % 4]
                fn(module, *s, scaling=d ** -0.5)
        g.replay()
        torch.cuda.synchronize()
        times = []
        for _ in range(5):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            g.replay()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) * 1000 / calls)
        times.sort()
        row[f"{name}_us"] = round(times[2], 1)
        row[f"{name}_rel_err"] = float(f"{err:.2e}")
        del g
    emit(row)


# ---------------------------------------------------------------------------------- decode step

def kernel_profile(step, args, steps: int, path: Path) -> dict:
    """torch.profiler over `steps` graph replays: the kernel table (to `path`) and time by kind."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step(*args)
        torch.cuda.synchronize()
    kinds = {"attention": 0.0, "linear (GEMV/GEMM)": 0.0, "fused triton": 0.0, "other": 0.0}
    kernels = []
    for e in prof.key_averages():
        t = getattr(e, "self_device_time_total", None)
        if t is None:
            t = e.self_cuda_time_total
        if t <= 0:
            continue
        name = e.key
        low = name.lower()
        if any(x in low for x in ("fmha", "flash", "attention", "sdpa", "efficient", "cudnn")):
            kind = "attention"
        elif any(x in low for x in ("gemv", "gemm", "cutlass", "xmma", "cublas", "sm90", "kgemm", "matmul")):
            kind = "linear (GEMV/GEMM)"
        elif low.startswith("triton"):
            kind = "fused triton"
        else:
            kind = "other"
        kinds[kind] += t
        kernels.append((t, e.count, kind, name))
    kernels.sort(reverse=True)
    total = sum(kinds.values())
    lines = [f"# {path.stem}: {steps} decode steps, kernel time per step (us) by kind", ""]
    lines += [f"{k:24s} {v / steps:10.1f} us/step  {100 * v / max(total, 1):5.1f}%" for k, v in kinds.items()]
    lines += [f"{'total':24s} {total / steps:10.1f} us/step", "",
              f"{'us/step':>10s} {'calls/step':>10s}  {'kind':20s} kernel"]
    lines += [f"{t / steps:10.1f} {c / steps:10.1f}  {kind:20s} {name[:160]}" for t, c, kind, name in kernels[:60]]
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:8]), flush=True)
    return {k: round(v / steps / 1000, 3) for k, v in kinds.items()} | {"kernels_total_ms": round(total / steps / 1000, 3)}


def step_only(engine: ReviewEngine, precision: str, profile_dir: Path | None, tag: str = "", n: int = 200) -> None:
    """The compiled decode step alone (no sampling, no host sync per token): the graph's own cost."""
    import torch._dynamo

    dec = engine._fast
    step = dec._compiled_step()

    def at_prompt_end() -> None:  # each replay writes one slot further: stay inside the cache
        for layer in dec.cache.layers:
            layer.cumulative_length.fill_(PROMPT_TOKENS)

    tok = torch.tensor([[5]], device="cuda")
    pos = torch.tensor([PROMPT_TOKENS], device="cuda")
    first = torch.zeros(1, dtype=torch.long, device="cuda")
    with torch.inference_mode():  # as in generation: the graph was compiled for inference mode
        at_prompt_end()
        for _ in range(3):
            step(tok, pos, first)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n):
            step(tok, pos, first)
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t) / n * 1000
        kinds = {}
        at_prompt_end()
        if profile_dir is not None:
            kinds = kernel_profile(step, (tok, pos, first), 20, profile_dir / f"engine_profile_{precision}{tag}.txt")
    layers = engine.model.config.num_hidden_layers
    row = {"part": "step-only", "precision": precision, "variant": tag or "default", "step_ms": round(ms, 2),
           "tok_s_bound": round(1000 / ms, 1), "kernel_ms_by_kind": kinds,
           "attention_us_per_layer": round(kinds["attention"] * 1000 / layers, 1) if kinds else None,
           "graph_breaks": sum(torch._dynamo.utils.counters["graph_break"].values())}
    emit(row)


def pick_cost(engine: ReviewEngine, precision: str) -> None:
    """GPU time of one token's processors + sampling (suppression 0.95, T 0.6, top-p 0.9)."""
    gen = GenerationConfig(suppression=0.95)
    procs = engine._processors(gen)
    logits = torch.randn(1, engine.model.config.vocab_size, device="cuda")
    window = torch.tensor([[11, 12]], device="cuda")
    with torch.inference_mode():
        for _ in range(5):
            torch.multinomial(torch.softmax(procs(window, logits), -1), 1)
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(100):
            torch.multinomial(torch.softmax(procs(window, logits), -1), 1)
        b.record()
        b.synchronize()
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(20):
                torch.multinomial(torch.softmax(procs(window, logits), -1), 1)
            torch.cuda.synchronize()
    kernels = [(getattr(e, "self_device_time_total", 0), e.count, e.key) for e in prof.key_averages()]
    gpu_us = sum(t for t, _, _ in kernels) / 20
    top = sorted(kernels, reverse=True)[:8]
    emit({"part": "pick", "precision": precision, "host_loop_ms": round(a.elapsed_time(b) / 100, 3),
          "gpu_us_per_token": round(gpu_us, 1), "kernels_per_token": sum(c for _, c, _ in kernels) / 20,
          "top_kernels_us": [[round(t / 20, 1), k[:80]] for t, _, k in top]})


# ---------------------------------------------------------------------------------- end to end

def batch1(engine: ReviewEngine, text: str, precision: str, decoder: str, s: float) -> None:
    gen = GenerationConfig(max_new_tokens=NEW_TOKENS, suppression=s, seed=0, ignore_eos=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    clock = TokenClock()
    ids = engine.prompt_ids(text, "7")
    engine._generate_ids(ids, gen, streamer=clock)
    t = clock.times
    n = len(t) - 1
    tok_s = (n - 1) / (t[-1] - t[1])
    emit({"part": "decode", "precision": precision, "decoder": decoder, "batch": 1, "suppression": s,
          "prompt_tokens": len(ids), "new_tokens": n, "prefill_s": round(t[1] - t[0], 3),
          "decode_tok_s": round(tok_s, 1), "step_ms": round(1000 / tok_s, 2),
          "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)})


def batch8(engine: ReviewEngine, texts: list[str], precision: str, decoder: str, s: float) -> None:
    gen = GenerationConfig(max_new_tokens=NEW_TOKENS, suppression=s, seed=0, ignore_eos=True)
    prompts = [engine.prompt_ids(t, "7") for t in texts]
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    clock = TokenClock()
    t0 = time.perf_counter()
    outs = engine._generate_batch_ids(prompts, gen, streamer=clock)
    torch.cuda.synchronize()
    total = time.perf_counter() - t0
    t = clock.times
    if decoder == "generate-static":  # transformers' streamer protocol: the first put is the prompt
        t = t[1:]
    b = len(prompts)
    n = len(t)
    decode_tok_s = b * (n - 1) / (t[-1] - t[0])
    emit({"part": "decode", "precision": precision, "decoder": decoder, "batch": b, "suppression": s,
          "prompt_tokens": [min(map(len, prompts)), max(map(len, prompts))], "new_tokens": sum(map(len, outs)),
          "prefill_s": round(t[0] - t0, 3), "decode_tok_s": round(decode_tok_s, 1),
          "step_ms": round(1000 * b / decode_tok_s, 2), "end_to_end_tok_s": round(sum(map(len, outs)) / total, 1),
          "total_s": round(total, 2), "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)})


def step_variant(engine: ReviewEngine, precision: str, profile_dir: Path | None, name: str, **inductor) -> None:
    """The decode step compiled again under other inductor settings (a fresh decoder, same model),
    e.g. freezing, which lets inductor concatenate the q/k/v and gate/up weights (one GEMV each).
    Run last: it resets dynamo, so the engine's own step would compile again."""
    import torch._inductor.config as inductor_config

    from reviewgpt.generate.engine import _FastDecoder

    import torch._dynamo

    kept = engine._fast
    torch._dynamo.reset()  # else dynamo reuses the compiled step (same code, guards pass): nothing recompiles
    engine._fast = _FastDecoder(engine.model, max_cache_len=kept.max_cache_len)
    try:
        with torch.inference_mode():
            engine._fast._ensure_cache(torch.device("cuda"))
        t = time.perf_counter()
        with inductor_config.patch(**inductor):
            step_only(engine, precision, profile_dir, tag=f"_{name}")
        print(f"[{precision}] variant {name}: {time.perf_counter() - t:.0f} s with compilation", flush=True)
    except Exception as e:  # an experiment: record the failure, keep the run going
        emit({"part": "step-only", "precision": precision, "variant": name, "error": f"{type(e).__name__}: {e}"[:500]})
    finally:
        engine._fast = kept
        gc.collect()
        torch.cuda.empty_cache()


def static_engine(engine: ReviewEngine) -> ReviewEngine:
    """The same loaded model, decoding through transformers' generate() with a StaticCache."""
    return ReviewEngine(engine.model, engine.tokenizer, engine.info, replace(engine.config, decoder="generate-static"))


def run(precision: str, ckpt: str, parts: set[str], profile_dir: Path | None) -> None:
    t0 = time.perf_counter()
    engine = load_engine(EngineConfig(base_model=ckpt, precision=precision, fast_decoding=True, warmup=True,
                                      max_prompt_tokens=PROMPT_TOKENS, max_new_tokens=MAX_NEW, local_files_only=True))
    print(f"[{precision}] loaded + warmed up in {time.perf_counter() - t0:.0f} s: {engine.info.describe()} "
          f"fast={engine.info.fast_decoding} notes={engine.info.notes}", flush=True)
    texts = [engine.fit(t, "7").text for t in corpus_texts(8)]
    if "b1" in parts:
        for s in (0.0, 0.95):
            batch1(engine, texts[0], precision, "engine", s)
    if "step" in parts:
        step_only(engine, precision, profile_dir)
        pick_cost(engine, precision)
    if "b8" in parts:
        t = time.perf_counter()
        batch8(engine, texts, precision, "engine", 0.95)  # first call compiles the batch-8 step
        print(f"[{precision}] batch-8 compile + run {time.perf_counter() - t:.0f} s", flush=True)
        batch8(engine, texts, precision, "engine", 0.95)
        batch8(engine, texts, precision, "engine", 0.0)
        if profile_dir is not None:
            dec = engine._fast_batches[8]
            with torch.inference_mode():
                for layer in dec.cache.layers:
                    layer.cumulative_length.fill_(PROMPT_TOKENS)
                kinds = kernel_profile(dec._compiled_step(), (torch.full((8, 1), 5, device="cuda"),
                                       torch.tensor([PROMPT_TOKENS], device="cuda"),
                                       torch.zeros(8, dtype=torch.long, device="cuda")), 10,
                                       profile_dir / f"engine_profile_{precision}_batch8.txt")
            emit({"part": "step-profile", "precision": precision, "batch": 8, "kernel_ms_by_kind": kinds,
                  "attention_us_per_layer": round(kinds["attention"] * 1000 / engine.model.config.num_hidden_layers, 1)})
    if "static" in parts:
        engine._fast_batches.clear()
        gc.collect()
        torch.cuda.empty_cache()
        lib = static_engine(engine)
        t = time.perf_counter()
        lib.generate(texts[0], "7", GenerationConfig(max_new_tokens=16, suppression=0.95))  # compiles
        print(f"[{precision}] generate-static warm-up {time.perf_counter() - t:.0f} s", flush=True)
        for s in (0.0, 0.95):
            batch1(lib, texts[0], precision, "generate-static", s)
        if "static8" in parts:
            batch8(lib, texts, precision, "generate-static", 0.95)
            batch8(lib, texts, precision, "generate-static", 0.95)
        del lib
    if "freeze" in parts:
        step_variant(engine, precision, profile_dir, "freezing", freezing=True)
    if "coord" in parts:
        step_variant(engine, precision, profile_dir, "coordinate_descent", coordinate_descent_tuning=True)
    del engine
    gc.collect()
    torch.cuda.empty_cache()


def main() -> None:
    global OUT
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--precision", nargs="+", default=["bf16", "nf4"])
    p.add_argument("--checkpoint", default="/tmp/llama8b-random")
    p.add_argument("--parts", nargs="+", default=["attention", "b1", "step", "b8", "static"],
                   help="attention b1 step b8 static static8 freeze coord")
    p.add_argument("--out", default="benchmarks/results/engine.jsonl")
    p.add_argument("--profile-dir", default=None, help="write the decode step's kernel table here")
    args = p.parse_args()
    OUT = Path(args.out)
    profile_dir = Path(args.profile_dir) if args.profile_dir else None
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    parts = set(args.parts)
    if "attention" in parts:
        attention_micro("bf16")
    ckpt = str(build(args.checkpoint))
    for precision in args.precision:
        run(precision, ckpt, parts, profile_dir)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
