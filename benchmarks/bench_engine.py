"""Decoding benchmark of the review engine on the Llama-3.1-8B shape (random weights), one GPU.

    python -m benchmarks.bench_engine --precision bf16 nf4 --out benchmarks/results/engine.jsonl

Prompt: 11,138 tokens (the recipe's budget), 1,000 new tokens (200 on the slow eager path), batch 1,
sampling (T=0.6, top-p 0.9), suppression off and at 0.95. Reported: prefill seconds (to the first
token), decode tokens/s (after the first token), peak GiB. Plus batch-8 throughput of the eager
batched path used by eval. Timings come from the engine's own streaming hook (one timestamp per token).
"""

from __future__ import annotations

import argparse
import gc
import json
import time

import torch

from reviewgpt.config import EngineConfig, GenerationConfig
from reviewgpt.generate.engine import load_engine

from .random_llama8b import build, corpus_text

PROMPT_TOKENS = 11_138


class TokenClock:
    """A streamer that only records when each piece arrives (first put = the prompt)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, _value) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def timed(engine, text: str, gen: GenerationConfig) -> dict:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    clock = TokenClock()
    ids = engine.prompt_ids(text, "7")
    engine._generate_ids(ids, gen, streamer=clock)
    t = clock.times
    n = len(t) - 1
    return {"prompt_tokens": len(ids), "new_tokens": n, "prefill_s": round(t[1] - t[0], 3),
            "decode_tok_s": round((n - 1) / (t[-1] - t[1]), 1),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def step_only(engine, precision: str, n: int = 200) -> dict:
    """The compiled decode step alone (no sampling, no host sync per token): the graph's own cost."""
    import torch._dynamo

    step = engine._fast._compiled_step()
    tok = torch.tensor([[5]], device="cuda")
    pos = torch.tensor([PROMPT_TOKENS], device="cuda")
    with torch.inference_mode():  # as in generation: the graph was compiled for inference mode
        for _ in range(3):
            step(tok, pos)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n):
            step(tok, pos)
        torch.cuda.synchronize()
    ms = (time.perf_counter() - t) / n * 1000
    graphs = dict(torch._dynamo.utils.counters["stats"])
    row = {"precision": precision, "path": "step-only", "step_ms": round(ms, 2), "tok_s_bound": round(1000 / ms, 1),
           "dynamo_stats": graphs, "graph_breaks": sum(torch._dynamo.utils.counters["graph_break"].values())}
    print(json.dumps(row), flush=True)
    return row


def run(precision: str, ckpt: str, batch8: bool) -> list[dict]:
    t0 = time.perf_counter()
    engine = load_engine(EngineConfig(base_model=ckpt, precision=precision, fast_decoding=True, warmup=True,
                                      max_prompt_tokens=PROMPT_TOKENS, max_new_tokens=1024, local_files_only=True))
    print(f"[{precision}] loaded + warmed up in {time.perf_counter() - t0:.0f} s: {engine.info.describe()} "
          f"fast={engine.info.fast_decoding} notes={engine.info.notes}", flush=True)
    text = engine.fit(corpus_text(), "7").text
    rows = []
    if engine._fast is not None:
        rows.append(step_only(engine, precision))
    paths = [("fast", engine._fast)] if engine._fast is not None else []
    paths.append(("eager", None))
    fast = engine._fast
    for path, decoder in paths:
        engine._fast = decoder
        n_new = 1000 if path == "fast" else 200
        for s in (0.0, 0.95):
            gen = GenerationConfig(max_new_tokens=n_new, suppression=s, seed=0, ignore_eos=True)
            if path == "fast" and s == 0.0:
                timed(engine, text, GenerationConfig(max_new_tokens=32, suppression=s, ignore_eos=True))  # warm
            row = {"precision": precision, "path": path, "batch": 1, "suppression": s, **timed(engine, text, gen)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    engine._fast = fast
    if batch8:
        torch.cuda.reset_peak_memory_stats()
        gen = GenerationConfig(max_new_tokens=256, suppression=0.95, seed=0, ignore_eos=True)
        torch.cuda.synchronize()
        t = time.perf_counter()
        outs = engine.generate_batch([text] * 8, "7", gen)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t
        row = {"precision": precision, "path": "eager-batched", "batch": 8, "suppression": 0.95,
               "prompt_tokens": PROMPT_TOKENS, "new_tokens": 8 * 256, "total_s": round(dt, 2),
               "throughput_tok_s": round(8 * 256 / dt, 1), "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
               "outputs": len(outs)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    del engine, fast
    gc.collect()
    torch.cuda.empty_cache()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--precision", nargs="+", default=["bf16", "nf4"])
    p.add_argument("--checkpoint", default="/tmp/llama8b-random")
    p.add_argument("--no-batch8", action="store_true")
    p.add_argument("--out", default="benchmarks/results/engine.jsonl")
    args = p.parse_args()
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    ckpt = str(build(args.checkpoint))
    with open(args.out, "a") as f:
        for precision in args.precision:
            for row in run(precision, ckpt, batch8=not args.no_batch8 and precision == "bf16"):
                f.write(json.dumps({"gpu": torch.cuda.get_device_name(), **row}) + "\n")


if __name__ == "__main__":
    main()
