"""Decoding benchmark of the review engine on the Llama-3.1-8B shape (random weights), one GPU.

    python -m benchmarks.bench_engine --precision bf16 nf4 --out benchmarks/results/engine.jsonl \
        --profile-dir benchmarks/results

Prompt: 11,137 tokens (the recipe's budget), 1,000 new tokens, sampling (T=0.6, top-p 0.9),
suppression off and at 0.95. Rows (one JSON line each):
- "attention" (+ "attnsweep": its launch settings swept): one layer's decode attention over a
  12,338-slot cache at position 11,138, batch 1 and 8, us per call (CUDA graph of many calls,
  events) and the kernels it launches: cuDNN SDPA (enable_gqa + boolean mask) against the split-KV
  Triton kernel (decode_attention.py), with each one's relative error against float64 SDPA.
- "gemv": the step's matrix products alone (o_proj, q|k|v, down), batch 1 and 8, in several input
  layouts: us, TB/s and the cuBLAS kernel each gets. "topp": top-p's sort and cumsum, one-pass and
  two-level.
- "skinny": the 8-row products (q|k|v, o_proj, gate|up, down, lm_head) on cuBLAS against the few-row
  Triton kernel (skinny_linear.py) over a sweep of launch settings (the sweep to --profile-dir).
  "chain": one layer's four products in a row, without and with elementwise kernels between them.
- "onerow": batch 1 with each of ONE_ROW_VARIANTS (which layers leave inductor at one row, for
  cuBLAS or the few-row Triton kernel): the step alone with its kernel table, and end to end.
- "fusion": the model is loaded unfused, then q|k|v and gate|up are fused as load_engine does;
  relative error of a prompt's logits after vs before, NF4 codes check.
- "seeded-repeat": two sampled generations with one seed are equal, one with another seed is not.
- "step-only": the compiled decode step alone (graph replays, no host sync), which includes the
  processors and sampling, plus a torch.profiler kernel table of it written to --profile-dir
  (attention us/layer read from it).
- "engine" / "generate-static", batch 1: prefill s (to the first token), decode tok/s (after the
  first token), step ms (= 1000 / tok/s), peak GiB. Timings from the streaming hook.
- "engine" / "generate-static", batch 8 (8 different ~11k-token prompts, per-row stop): prefill s
  (all 8 rows), decode tok/s over all rows, end-to-end tok/s.
- "nocoord": the step alone compiled without coordinate_descent_tuning (the previous default), with
  its kernel table, in the same process. "recompile": the same options compiled twice more
  with inductor's caches off (more draws of coordinate-descent tuning).
- "tune" (with b1: suppression 0.95 only): the default step alone, then each of TUNE_VARIANTS (inductor
  options, top-p implementation, BLAS library) as a fresh batch-1 decoder in the same process: first
  call s (compilation), step alone + kernel table, batch 1 end to end ("decode" rows with "variant").
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch

from reviewgpt.config import (RECIPE_MAX_PROMPT_TOKENS, RECIPE_MAX_RESPONSE_TOKENS, RECIPE_SUPPRESSION, EngineConfig,
                              GenerationConfig)
from reviewgpt.generate.engine import DECODE_COMPILE_OPTIONS, ReviewEngine, load_engine

from .random_llama8b import build, corpus_texts

PROMPT_TOKENS = RECIPE_MAX_PROMPT_TOKENS  # the recipe's budget: prompts fit to it come out at 11,137 tokens
NEW_TOKENS = 1_000
MAX_NEW = RECIPE_MAX_RESPONSE_TOKENS + 50  # cache = 12,338 slots (budget + the recipe's response limit + margin)
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

def _graph_us(fn: Callable[[int], Any], calls: int = 64) -> float:
    """Median us per call of `fn(i)` captured `calls` times in one CUDA graph (launch gaps included)."""
    g = torch.cuda.CUDAGraph()
    fn(0)
    torch.cuda.synchronize()
    with torch.cuda.graph(g):
        for i in range(calls):
            fn(i)
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
    del g
    return sorted(times)[2]


def _kernels(fn: Callable[[int], Any]) -> list[str]:
    """Names and us of the kernels one call of `fn(0)` launches (eager, profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn(0)
        torch.cuda.synchronize()
    return [f"{e.key[:90]} {e.self_device_time_total:.1f}us" for e in prof.key_averages() if e.self_device_time_total > 0]


def attention_micro(precision: str, sweep_launch: bool) -> None:
    """One layer's decode attention at batch 1 and 8 over a 12,338-slot cache at position 11,138:
    cuDNN SDPA (enable_gqa + boolean mask, the previous path) against the split-KV Triton kernel
    (decode_attention.py) with its default and a sweep of launch settings; error of each against
    a float64 reference on the same inputs. Caches rotate over 4 layers' worth (> L2), never zeros."""
    import torch.nn.functional as F

    from reviewgpt.generate import decode_attention as da

    slots, pos, d = PROMPT_TOKENS + MAX_NEW, PROMPT_TOKENS, 128
    scale = d ** -0.5
    for b in (1, 8):
        sets = []
        for _ in range(4):
            q = torch.randn(b, 32, 1, d, device="cuda", dtype=torch.bfloat16)
            k = torch.randn(b, 8, slots, d, device="cuda", dtype=torch.bfloat16)
            v = torch.randn(b, 8, slots, d, device="cuda", dtype=torch.bfloat16)
            first = torch.tensor([0] + [37 * r for r in range(1, b)], device="cuda")  # ragged prompts
            idx = torch.arange(slots, device="cuda")
            mask = ((idx[None] >= first[:, None]) & (idx[None] <= pos)).view(b, 1, 1, slots)
            sets.append((q, k, v, mask))
        used = torch.tensor([pos + 1], device="cuda")
        q, k, v, mask = sets[0]
        ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=mask, scale=scale,
                                             enable_gqa=True).transpose(1, 2)

        def err(out: torch.Tensor) -> float:
            return float(f"{((out.double() - ref).norm() / ref.norm()).item():.2e}")

        def cudnn(i: int) -> torch.Tensor:
            q, k, v, mask = sets[i % 4]
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=True).transpose(1, 2)

        def ours(i: int, **launch) -> torch.Tensor:
            q, k, v, mask = sets[i % 4]
            return da.decode_attention(q, k, v, mask, used, scale, **launch)

        row = {"part": "attention", "precision": precision, "batch": b, "slots": slots, "position": pos,
               "kv_read_mb": round(2 * b * 8 * (pos + 1) * d * 2 / 1e6, 1),
               "cudnn_sdpa_us": round(_graph_us(cudnn), 1), "cudnn_sdpa_rel_err": err(cudnn(0)),
               "ours_split_kv_us": round(_graph_us(ours), 1), "ours_split_kv_rel_err": err(ours(0)),
               "ours_default_splits": da.default_splits(b, 8, slots), "ours_kernels": _kernels(ours),
               "cudnn_kernels": _kernels(cudnn)}
        if not sweep_launch:
            emit(row)
            continue
        sweep = {}
        for splits in (8, 16, 32, 64, 128):  # the grid behind engine_h100_kernels.jsonl's sweep_us
            for block_n in (32, 64, 128):
                for warps, stages in ((4, 2), (4, 3), (8, 3)):
                    launch = dict(splits=splits, block_n=block_n, num_warps=warps, num_stages=stages)
                    try:
                        sweep[f"s{splits}_n{block_n}_w{warps}_st{stages}"] = round(
                            _graph_us(lambda i: ours(i, **launch)), 1)
                    except Exception as e:  # a launch setting that does not compile (shared memory)
                        sweep[f"s{splits}_n{block_n}_w{warps}_st{stages}"] = type(e).__name__
        row["sweep_us"] = sweep
        best = min((v, k) for k, v in sweep.items() if isinstance(v, float))
        row["sweep_best"] = {"config": best[1], "us": best[0]}
        emit(row)
        del sets


def gemv_micro() -> None:
    """The step's matrix products alone, bf16, batch 1 and 8 (weights rotate over 4 copies, > L2), in
    the layouts the decode step can hand them: which cuBLAS kernel each gets and its read rate (the
    question was which product ran the 4x1 kernel without split-K: q|k|v, results README)."""
    import torch.nn.functional as F

    shapes = {"o_proj": (4096, 4096), "qkv": (6144, 4096), "down": (4096, 14336)}
    for name, (n_out, n_in) in shapes.items():
        ws = [torch.randn(n_out, n_in, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(4)]
        for m in (1, 8):
            x3 = torch.randn(m, 1, n_in, device="cuda", dtype=torch.bfloat16)
            variants = {
                "linear_3d_contiguous": lambda i: F.linear(x3, ws[i % 4]),
                "linear_2d_contiguous": lambda i: F.linear(x3.view(m, n_in), ws[i % 4]),
                "mm_w_xT": lambda i: torch.mm(ws[i % 4], x3.view(m, n_in).t()).t(),
            }
            if m == 1:
                row0 = torch.randn(n_in, device="cuda", dtype=torch.bfloat16)
                variants["linear_stride0"] = lambda i: F.linear(row0.expand(1, n_in), ws[i % 4])
                variants["mv"] = lambda i: torch.mv(ws[i % 4], row0)
            row = {"part": "gemv", "matrix": name, "shape": [n_out, n_in], "batch": m}
            for vname, fn in variants.items():
                us = _graph_us(fn)
                row[vname] = {"us": round(us, 1), "tb_s": round(n_out * n_in * 2 / us / 1e6, 2),
                              "kernels": _kernels(fn)}
            emit(row)
        del ws


def gemv8_micro() -> None:
    """Batch 8's products as inductor reductions (a lead for batch 8, not used by the engine): inductor
    decomposes a product into a fused reduction only for one row (M = 1); here the 8-row product is
    written out as W (N, 1, K) x x (1, 8, K) summed over K (outputs laid out (N, 8), so the 8 rows
    of one weight row sit together), compiled with coordinate-descent tuning, against cuBLAS (F.linear)."""
    import torch._dynamo
    import torch.nn.functional as F

    shapes = {"o_proj": (4096, 4096), "qkv": (6144, 4096), "down": (4096, 14336), "gate_up": (28672, 4096),
              "lm_head": (128256, 4096)}
    opts = {"coordinate_descent_tuning": True}
    for name, (n_out, n_in) in shapes.items():
        copies = 4 if n_out * n_in < 2e8 else 1  # > L2 either way
        ws = [torch.randn(n_out, n_in, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        x = torch.randn(8, n_in, device="cuda", dtype=torch.bfloat16)
        torch._dynamo.reset()
        red = torch.compile(lambda x, w: (w.unsqueeze(1).float() * x.unsqueeze(0).float()).sum(-1).to(x.dtype).t(),
                            options=opts, dynamic=False)
        row = {"part": "gemv8", "matrix": name, "shape": [n_out, n_in], "batch": 8}
        ref = F.linear(x, ws[0])
        out = red(x, ws[0])
        row["max_abs_diff_vs_cublas"] = float(f"{(out.float() - ref.float()).abs().max().item():.3e}")
        for vname, fn in {"cublas": lambda i: F.linear(x, ws[i % copies]), "reduction": lambda i: red(x, ws[i % copies])}.items():
            try:
                us = _graph_us(fn, calls=16)
                row[vname] = {"us": round(us, 1), "tb_s": round(n_out * n_in * 2 / us / 1e6, 2), "kernels": _kernels(fn)[:3]}
            except Exception as e:
                row[vname] = f"{type(e).__name__}: {e}"[:300]
        emit(row)
        del ws


SKINNY_SHAPES = {"o_proj": (4096, 4096), "qkv": (6144, 4096), "down": (4096, 14336), "gate_up": (28672, 4096),
                 "lm_head": (128256, 4096)}


def _skinny_launches() -> list:
    """Launch settings to sweep: tiles of 8-32k weights (16-64 KB a pipeline stage), stages that fit
    in shared memory (<= ~200 KB), 4 or 8 warps, K split 1, 2 or 4 ways."""
    from reviewgpt.generate.skinny_linear import Launch

    out = []
    for bn in (16, 32, 64, 128):
        for bk in (128, 256, 512):
            if not 8192 <= bn * bk <= 32768:
                continue
            for stages in (3, 4, 6):
                if bn * bk * stages > 100_000:
                    continue
                for warps in (4, 8):
                    for split in (1, 2, 4):
                        out.append(Launch(bn, bk, split, warps, stages))
    return out


def skinny_micro(profile_dir: Path | None) -> None:
    """The batched step's products at 8 rows: cuBLAS (F.linear; and with the rows padded to 16)
    against skinny_linear.py's Triton kernel over a sweep of launch settings (us, TB/s; weights
    rotate over copies > L2). One row per matrix: cuBLAS, the best five settings, the best one at
    2, 4 and 16 rows, its error against cuBLAS and float32; the whole sweep to --profile-dir."""
    import torch.nn.functional as F

    from reviewgpt.generate.skinny_linear import skinny_linear

    launches = _skinny_launches()
    table = []
    for name, (n_out, n_in) in SKINNY_SHAPES.items():
        copies = 4 if n_out * n_in < 2e8 else 1
        ws = [torch.randn(n_out, n_in, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        x = torch.randn(8, n_in, device="cuda", dtype=torch.bfloat16)
        x16 = torch.cat([x, x.new_zeros(8, n_in)])
        gb = n_out * n_in * 2 / 1e3
        row = {"part": "skinny", "matrix": name, "shape": [n_out, n_in], "batch": 8}
        for vname, fn in {"cublas": lambda i: F.linear(x, ws[i % copies]),
                          "cublas_pad16": lambda i: F.linear(x16, ws[i % copies])}.items():
            us = _graph_us(fn, calls=16)
            row[vname] = {"us": round(us, 1), "tb_s": round(gb / us / 1e3, 2), "kernels": _kernels(fn)[:3]}
        results = []
        for launch in launches:
            if n_in % (launch.block_k * launch.split_k):
                continue
            try:
                us = _graph_us(lambda i, l=launch: skinny_linear(x, ws[i % copies], None, l), calls=16)
            except Exception as e:  # out of shared memory and the like: skip the setting
                table.append({"matrix": name, "launch": launch.__dict__, "error": f"{type(e).__name__}: {e}"[:200]})
                continue
            results.append((us, launch))
            table.append({"matrix": name, "launch": launch.__dict__, "us": round(us, 2), "tb_s": round(gb / us / 1e3, 3)})
        results.sort(key=lambda r: r[0])
        row["best"] = [{"launch": l.__dict__, "us": round(us, 1), "tb_s": round(gb / us / 1e3, 2)} for us, l in results[:5]]
        best = results[0][1]
        ref = F.linear(x, ws[0])
        ref32 = x.float() @ ws[0].float().t()
        out = skinny_linear(x, ws[0], None, best)
        row["best_max_abs_diff_vs_cublas"] = float(f"{(out.float() - ref.float()).abs().max().item():.3e}")
        row["best_max_abs_err_vs_fp32"] = float(f"{(out.float() - ref32).abs().max().item():.3e}")
        row["cublas_max_abs_err_vs_fp32"] = float(f"{(ref.float() - ref32).abs().max().item():.3e}")
        row["best_kernels"] = _kernels(lambda i: skinny_linear(x, ws[0], None, best))
        for m in (1, 2, 4, 16):
            xm = torch.randn(m, n_in, device="cuda", dtype=torch.bfloat16)
            row[f"rows{m}"] = {"skinny_us": round(_graph_us(lambda i: skinny_linear(xm, ws[i % copies], None, best), calls=16), 1),
                               "cublas_us": round(_graph_us(lambda i: F.linear(xm, ws[i % copies]), calls=16), 1),
                               "max_abs_diff_vs_cublas": float(f"{(skinny_linear(xm, ws[0], None, best).float() - F.linear(xm, ws[0]).float()).abs().max().item():.3e}")}
        emit(row)
        del ws
        torch.cuda.empty_cache()
    if profile_dir:
        (profile_dir / "skinny_sweep.jsonl").write_text("".join(json.dumps(r) + "\n" for r in table))


def folds_micro(profile_dir: Path | None) -> None:
    """The batched step's folded products (batched_step.py) at 8 rows against the plain product of
    the same shape: RMSNorm folded into q|k|v, gate|up and lm_head, SiLU x up into gate|up's epilogue
    (norm_glu), RoPE and the cache write into q|k|v's (norm_rope), the residual add into o_proj and
    down_proj; us with the launch the step uses (LAUNCHES', PAIRED_LAUNCHES' for the two-tile ones)
    and the best of a sweep (K unsplit: the residual is an epilogue), and the error against float64
    next to the eager bfloat16 ops'. The sweep to --profile-dir."""
    import torch.nn.functional as F

    from reviewgpt.generate import batched_step, skinny_linear as sk

    def rms(t, g, eps=1e-5):
        return g * (t.float() * torch.rsqrt(t.float().pow(2).mean(-1, keepdim=True) + eps)).to(t.dtype)

    launches = [l for l in _skinny_launches() if l.split_k == 1]
    table = []
    for name, (n_out, n_in) in SKINNY_SHAPES.items():
        copies = 4 if n_out * n_in < 2e8 else 1
        ws = [torch.randn(n_out, n_in, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        x = torch.randn(8, n_in, device="cuda", dtype=torch.bfloat16)
        g = (1 + 0.1 * torch.randn(n_in, device="cuda")).to(torch.bfloat16)
        res = torch.randn(8, n_out, device="cuda", dtype=torch.bfloat16)
        sq = x.float().pow(2).sum(-1, keepdim=True)
        variants = {"plain": (lambda i, l: sk.skinny_linear(x, ws[i % copies], None, l),
                              lambda: F.linear(x.double(), ws[0].double()), lambda: F.linear(x, ws[0]))}
        if name in ("qkv", "gate_up", "lm_head"):
            variants["norm"] = (lambda i, l: sk.rms_norm_linear(x, g, sq, 1e-5, ws[i % copies], launch=l),
                                lambda: F.linear(rms(x.double(), g.double()), ws[0].double()),
                                lambda: F.linear(rms(x, g), ws[0]))
        if name in ("o_proj", "down"):
            variants["residual"] = (lambda i, l: sk.residual_linear(x, ws[i % copies], res, l)[0],
                                    lambda: res.double() + F.linear(x.double(), ws[0].double()),
                                    lambda: res + F.linear(x, ws[0]))
        if name == "qkv":  # the step's q|k|v with RoPE and the cache write (Llama-3.1-8B's heads)
            rope = torch.randn(2, 64, 128, device="cuda", dtype=torch.bfloat16)
            first = torch.arange(8, device="cuda") % 6  # positions 0-5 at slot 5
            cos, sin = rope[0, 5 - first], rope[1, 5 - first]
            cache = torch.zeros(2, 8, 8, 64, 128, device="cuda", dtype=torch.bfloat16)
            slot = torch.tensor([5], device="cuda")

            def qkv_rope(i, l):
                batched_step.qkv_rope(x, g, sq, 1e-5, ws[i % copies], rope, first, cache[0], cache[1], slot, 32, l)
                return cache[0, :, :, 5]  # k after RoPE, (8, 8, 128): what the step reads back

            def k_ref(normed, w, c, s_):
                k = F.linear(normed, w)[:, 4096:5120].view(8, 1, 8, 128).transpose(1, 2)
                return (k * c[:, None, None] + torch.cat([-k[..., 64:], k[..., :64]], -1) * s_[:, None, None])[:, :, 0]

            variants["norm_rope"] = (qkv_rope, lambda: k_ref(rms(x.double(), g.double()), ws[0].double(), cos.double(),
                                                            sin.double()),
                                     lambda: k_ref(rms(x, g), ws[0], cos, sin))
        if name == "gate_up":
            g64, u64 = F.linear(rms(x.double(), g.double()), ws[0].double()).chunk(2, dim=1)
            gate, up = F.linear(rms(x, g), ws[0]).chunk(2, dim=1)
            variants["norm_glu"] = (lambda i, l: sk.rms_norm_linear(x, g, sq, 1e-5, ws[i % copies], True, launch=l),
                                    lambda: F.silu(g64) * u64, lambda: F.silu(gate) * up)
        gb = n_out * n_in * 2 / 1e3
        row = {"part": "folds", "matrix": name, "shape": [n_out, n_in], "batch": 8}
        for vname, (fn, ref, eager) in variants.items():
            launch = sk.paired_launch(ws[0]) if vname in ("norm_glu", "norm_rope") else sk.launch_for(ws[0])
            ref_v = ref()
            err = lambda t: float(f"{((t.double() - ref_v).norm() / ref_v.norm()).item():.3e}")
            entry = {"launches_us": round(_graph_us(lambda i: fn(i, launch), calls=16), 1),
                     "err": err(fn(0, launch)), "eager_err": err(eager())}
            swept = []
            for l in launches:
                if n_in % l.block_k:
                    continue
                try:
                    us = _graph_us(lambda i, l=l: fn(i, l), calls=16)
                except Exception as e:  # out of shared memory and the like
                    table.append({"matrix": name, "variant": vname, "launch": l.__dict__, "error": f"{type(e).__name__}: {e}"[:200]})
                    continue
                swept.append((us, l))
                table.append({"matrix": name, "variant": vname, "launch": l.__dict__, "us": round(us, 2)})
            swept.sort(key=lambda r: r[0])
            entry["best"] = [{"launch": l.__dict__, "us": round(us, 1), "tb_s": round(gb / us / 1e3, 2)} for us, l in swept[:3]]
            row[vname] = entry
        emit(row)
        del ws
        torch.cuda.empty_cache()
    if profile_dir:
        (profile_dir / "folds_sweep.jsonl").write_text("".join(json.dumps(r) + "\n" for r in table))


def skinny_chain_micro() -> None:
    """One layer's four products in a row at 8 rows (q|k|v -> o_proj -> gate|up -> down_proj, each
    input the previous output's first columns), over 4 layers' weights in turn (> L2): cuBLAS and
    skinny_linear with LAUNCHES; each also with a PyTorch elementwise kernel between the products
    (as the step has RMSNorm and SiLU x up there): what a kernel boundary costs. us a layer and
    TB/s of its 436 MB of weights. (Two variants measured and dropped, rows in
    benchmarks/results/engine_h100_skinny.jsonl: programmatic dependent launch, and each kernel
    asking L2 for the start of the next product's weight.)"""
    import torch.nn.functional as F

    from reviewgpt.generate.skinny_linear import skinny_linear

    shapes = [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336)]
    layers = [[torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02 for n, k in shapes] for _ in range(4)]
    x0 = torch.randn(8, 4096, device="cuda", dtype=torch.bfloat16)
    gb = sum(n * k for n, k in shapes) * 2 / 1e3

    def chain(linear, between: bool):
        def layer(i):
            qkv, o, gu, down = layers[i % 4]
            h = linear(x0, qkv)[:, :4096]
            h = linear(h * 0.5 if between else h, o)
            h = linear(h * 0.5 if between else h, gu)[:, :14336]
            return linear(h * 0.5 if between else h, down)
        return layer

    variants = {"cublas": lambda x, w: F.linear(x, w), "skinny": lambda x, w: skinny_linear(x, w)}
    row = {"part": "skinny-chain", "batch": 8, "weights_mb_per_layer": round(gb / 1e3, 1)}
    ref = chain(variants["cublas"], True)(0)
    for between in (False, True):
        for name, linear in variants.items():
            key = name + ("_with_elementwise" if between else "")
            try:
                us = _graph_us(chain(linear, between), calls=16)
                row[key] = {"us_per_layer": round(us, 1), "tb_s": round(gb / us / 1e3, 2)}
                if between:
                    row[key]["max_abs_diff_vs_cublas"] = float(f"{(chain(linear, True)(0) - ref).abs().max().item():.3e}")
            except Exception as e:
                row[key] = f"{type(e).__name__}: {e}"[:300]
    emit(row)


def top_p_micro() -> None:
    """top_p_split's sort and cumsum over (b, 128,256) float32, b 1 and 8: the one-pass cumsum against
    the two-level one (sampling.chunked_cumsum)."""
    from reviewgpt.generate.sampling import chunked_cumsum

    for b in (1, 8):
        x = torch.randn(b, 128256, device="cuda")
        row = {"part": "top-p", "batch": b,
               "sort_us": round(_graph_us(lambda i: torch.sort(x, dim=-1)), 1),
               "cumsum_us": round(_graph_us(lambda i: x.cumsum(-1)), 1),
               "chunked_cumsum_us": round(_graph_us(lambda i: chunked_cumsum(x)), 1),
               "chunked_vs_float64_max_rel": float(f"{((chunked_cumsum(x).double() - x.double().cumsum(-1)).abs().max() / x.double().abs().sum(-1).max()).item():.2e}"),
               "cumsum_vs_float64_max_rel": float(f"{((x.cumsum(-1).double() - x.double().cumsum(-1)).abs().max() / x.double().abs().sum(-1).max()).item():.2e}")}
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
        if low.startswith("triton_red") and "_mm_" in low:  # a one-row product as an inductor reduction
            kind = "linear (GEMV/GEMM)"  # (with the RMSNorm or SiLU inductor fused into it)
        elif low.startswith("_skinny_linear") or low.startswith("_sum_splits"):  # the few-row kernel
            kind = "linear (GEMV/GEMM)"
        elif any(x in low for x in ("fmha", "flash", "attention", "sdpa", "efficient", "cudnn")):
            kind = "attention"
        elif low.startswith("triton"):
            kind = "fused triton"
        elif any(x in low for x in ("gemv", "gemm", "cutlass", "xmma", "cublas", "sm90", "kgemm", "matmul")):
            kind = "linear (GEMV/GEMM)"
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


def _ready_step(dec, rows: int, gen: GenerationConfig, engine: ReviewEngine):
    """The decoder's compiled step, its state set as after an 11,137-token prompt (no prefill):
    each replay decodes one token for every row, processors and sampling included."""
    sampler = dec.sampler()
    sampler.set(engine._processors(gen), sample=gen.do_sample)
    dec._state.start(torch.full((rows, 2), 5, device="cuda"), torch.full((rows, 1), 5, device="cuda"), PROMPT_TOKENS,
                     [0] * rows)  # each replay writes one slot further (a few hundred replays: inside the cache)
    return dec._compiled_step()


def step_only(engine: ReviewEngine, precision: str, profile_dir: Path | None, tag: str = "", n: int = 200) -> None:
    """The compiled decode step alone (graph replays, no host sync per token): the model, the
    processors (suppression 0.95, T 0.6, top-p 0.9) and sampling, as one graph."""
    import torch._dynamo

    dec = engine._fast
    gen = GenerationConfig(suppression=RECIPE_SUPPRESSION)
    with torch.inference_mode():  # as in generation: the graph was compiled for inference mode
        step = _ready_step(dec, 1, gen, engine)
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n):
            step()
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t) / n * 1000
        kinds = {}
        step = _ready_step(dec, 1, gen, engine)
        if profile_dir is not None:
            kinds = kernel_profile(step, (), 20, profile_dir / f"engine_profile_fused_{precision}{tag}.txt")
    layers = engine.model.config.num_hidden_layers
    row = {"part": "step-only", "precision": precision, "variant": tag or "default", "includes": "model+processors+sampling",
           "step_ms": round(ms, 2), "tok_s_bound": round(1000 / ms, 1), "kernel_ms_by_kind": kinds,
           "attention_us_per_layer": round(kinds["attention"] * 1000 / layers, 1) if kinds else None,
           "graph_breaks": sum(torch._dynamo.utils.counters["graph_break"].values())}
    emit(row)


def fusion_check(engine: ReviewEngine, precision: str) -> None:
    """Fuse q|k|v and gate|up on the loaded model and route its linears (engine.prepare_linears, as
    load_engine does) and compare a prompt's logits before and after; the NF4 codes check comes
    from the fusion report."""
    from reviewgpt.generate.engine import prepare_linears

    ids = torch.tensor([engine.prompt_ids("Title: fusion check\n\nAbstract: " + "word " * 400, "7")], device="cuda")
    with torch.inference_mode():
        ref = engine.model(input_ids=ids, logits_to_keep=64).logits.float()
        t = time.perf_counter()
        report = prepare_linears(engine.model)
        took = time.perf_counter() - t
        out = engine.model(input_ids=ids, logits_to_keep=64).logits.float()
    emit({"part": "fusion", "precision": precision, "groups": report.groups, "kinds": report.kinds,
          "codes_identical": report.codes_identical, "skipped": report.skipped[:4], "fuse_s": round(took, 2),
          "logits_rel_err": float(f"{((out - ref).norm() / ref.norm()).item():.2e}"),
          "argmax_agree": round((out.argmax(-1) == ref.argmax(-1)).float().mean().item(), 4),
          "peak_gib_after": round(torch.cuda.memory_allocated() / 2**30, 2)})


def seeded_repeat(engine: ReviewEngine, text: str, precision: str) -> None:
    """Same seed, same review (sampling inside the CUDA graph); another seed, another review."""
    gen = GenerationConfig(max_new_tokens=64, suppression=RECIPE_SUPPRESSION, seed=7, ignore_eos=True)
    ids = engine.prompt_ids(text, "7")
    a, b = engine._generate_ids(ids, gen), engine._generate_ids(ids, gen)
    c = engine._generate_ids(ids, replace(gen, seed=8))
    emit({"part": "seeded-repeat", "precision": precision, "same_seed_equal": a == b, "other_seed_differs": a != c,
          "tokens": len(a)})


# ---------------------------------------------------------------------------------- end to end

def batch1(engine: ReviewEngine, text: str, precision: str, decoder: str, s: float, variant: str = "default") -> None:
    gen = GenerationConfig(max_new_tokens=NEW_TOKENS, suppression=s, seed=0, ignore_eos=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    clock = TokenClock()
    ids = engine.prompt_ids(text, "7")
    engine._generate_ids(ids, gen, streamer=clock)
    t = clock.times
    n = len(t) - 1
    tok_s = (n - 1) / (t[-1] - t[1])
    emit({"part": "decode", "precision": precision, "decoder": decoder, "variant": variant, "batch": 1, "suppression": s,
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
          "total_s": round(total, 2), "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
          "step_forward": getattr(engine._fast_batches.get(b), "step_forward", None)})


def _greedy8(engine: ReviewEngine, texts: list[str], n: int = 64) -> list[list[int]]:
    gen = GenerationConfig(max_new_tokens=n, do_sample=False, suppression=RECIPE_SUPPRESSION, ignore_eos=True)
    return engine._generate_batch_ids([engine.prompt_ids(t, "7") for t in texts], gen)


def batched_forward_check(engine: ReviewEngine, texts: list[str], precision: str, profile_dir: Path | None) -> None:
    """The batch-8 step on batched_step.forward (the default) against the model's own forward, one
    process: one step's logits both ways from the same cache state (eager), greedy tokens both ways
    (64 a row), then batch 8 and the kernel profile with the model's forward."""
    from reviewgpt.generate import batched_step
    from reviewgpt.generate.engine import model_step_logits

    dec = engine._fast_batches[8]
    ours = _greedy8(engine, texts)
    st, model, slots = dec._state, engine.model, dec.max_cache_len
    with torch.inference_mode():
        a = batched_step.forward(model, dec.cache, st.tokens, st.pos, st.used, st.first,
                                 batched_step.rope_table(model, slots))
        b = model_step_logits(model, dec.cache, st, slots)
        rel = ((a - b).norm() / b.norm()).item()
        top_same = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
        from reviewgpt.generate import skinny_linear
        available = skinny_linear.available
        skinny_linear.available = lambda *args: False  # the same forward with its linears on cuBLAS
        try:
            c = model_step_logits(model, dec.cache, st, slots)
        finally:
            skinny_linear.available = available
        floor = ((c - b).norm() / b.norm()).item()
        floor_same = (c.argmax(-1) == b.argmax(-1)).float().mean().item()
    batched_step.ENABLED = False
    try:
        engine._fast_batches.clear()
        gc.collect()
        torch.cuda.empty_cache()
        theirs = _greedy8(engine, texts)  # compiles the step on the model's forward
        same_prefix = [next((i for i, (x, y) in enumerate(zip(r, q)) if x != y), len(r)) for r, q in zip(ours, theirs)]
        emit({"part": "batched-step-check", "precision": precision, "logits_rel_diff": round(rel, 5),
              "argmax_agree": top_same, "cublas_vs_model_rel_diff": round(floor, 5), "cublas_argmax_agree": floor_same, "greedy_rows_equal": sum(r == q for r, q in zip(ours, theirs)),
              "greedy_equal_prefix": same_prefix, "greedy_tokens": len(ours[0])})
        batch8(engine, texts, precision, "engine", RECIPE_SUPPRESSION)
        batch8(engine, texts, precision, "engine", RECIPE_SUPPRESSION)
        if profile_dir is not None:
            with torch.inference_mode():
                step = _ready_step(engine._fast_batches[8], 8, GenerationConfig(suppression=RECIPE_SUPPRESSION), engine)
                kernel_profile(step, (), 10, profile_dir / f"engine_profile_modelforward_{precision}_batch8.txt")
    finally:
        batched_step.ENABLED = True
        engine._fast_batches.clear()
        gc.collect()
        torch.cuda.empty_cache()


def step_variant(engine: ReviewEngine, precision: str, profile_dir: Path | None, name: str, **inductor) -> None:
    """The decode step compiled again with DECODE_COMPILE_OPTIONS changed by `inductor` (a fresh
    decoder, same model): the step alone and its kernel table. Run last: it resets dynamo, so the
    engine's own step would compile again."""
    import torch._dynamo

    from reviewgpt.generate.engine import _FastDecoder

    kept = engine._fast
    torch._dynamo.reset()  # else dynamo reuses the compiled step (same code, guards pass): nothing recompiles
    engine._fast = _FastDecoder(engine.model, max_cache_len=kept.max_cache_len, tokenizer=engine.tokenizer,
                                compile_options={**DECODE_COMPILE_OPTIONS, **inductor})
    try:
        with torch.inference_mode():
            engine._fast._ensure_cache(torch.device("cuda"))
        t = time.perf_counter()
        step_only(engine, precision, profile_dir, tag=f"_{name}")
        print(f"[{precision}] variant {name}: {time.perf_counter() - t:.0f} s with compilation", flush=True)
    except Exception as e:  # an experiment: record the failure, keep the run going
        emit({"part": "step-only", "precision": precision, "variant": name, "error": f"{type(e).__name__}: {e}"[:500]})
    finally:
        engine._fast = kept
        gc.collect()
        torch.cuda.empty_cache()


# name -> decode_linears' one-row routing (layer -> "cublas" / "triton"; the rest stay with inductor)
ONE_ROW_VARIANTS: dict[str, dict[str, str]] = {
    "down_cublas": {"down_proj": "cublas"},
    "o_triton_down_cublas": {"o_proj": "triton", "down_proj": "cublas"},
    "o_down_triton": {"o_proj": "triton", "down_proj": "triton"},
}


def one_row_variants(engine: ReviewEngine, text: str, precision: str, profile_dir: Path | None) -> None:
    """Batch 1 with each of ONE_ROW_VARIANTS: the model re-routed, a fresh decoder compiled (dynamo
    reset), the step alone with its kernel table, then batch 1 end to end at suppression 0.95. The
    engine's routing is restored after."""
    import torch._dynamo

    from reviewgpt.generate.decode_linears import ONE_ROW, route_decode_linears
    from reviewgpt.generate.engine import _FastDecoder

    kept = engine._fast
    try:
        for name, one_row in ONE_ROW_VARIANTS.items():
            route_decode_linears(engine.model, one_row)
            torch._dynamo.reset()
            engine._fast = _FastDecoder(engine.model, max_cache_len=kept.max_cache_len, tokenizer=engine.tokenizer,
                                        compile_options=DECODE_COMPILE_OPTIONS)
            with torch.inference_mode():
                engine._fast._ensure_cache(torch.device("cuda"))
            step_only(engine, precision, profile_dir, tag=f"_onerow_{name}")
            batch1(engine, text, precision, "engine", RECIPE_SUPPRESSION, variant=f"onerow_{name}")
    finally:
        route_decode_linears(engine.model, ONE_ROW)
        torch._dynamo.reset()
        engine._fast = kept
        gc.collect()
        torch.cuda.empty_cache()


# name -> (inductor options for the decode step, sampling.TOP_P_SPLIT_SOFTMAX, preferred BLAS library or None);
# "triton.cudagraphs" = mode "reduce-overhead" (torch.compile takes a mode or options, not both)
TUNE_VARIANTS: dict[str, tuple[dict, bool, str | None]] = {
    "autotune_gemm": ({**DECODE_COMPILE_OPTIONS, "max_autotune_gemm": True}, True, None),
    "top_p_warper": (DECODE_COMPILE_OPTIONS, False, None),  # transformers' warper, the previous top-p
    "cublaslt": (DECODE_COMPILE_OPTIONS, True, "cublaslt"),
    "no_coordinate_descent": ({**DECODE_COMPILE_OPTIONS, "coordinate_descent_tuning": False}, True, None),
}


def tune_variant(engine: ReviewEngine, text: str, precision: str, profile_dir: Path | None, name: str,
                 options: dict, split_softmax: bool, blas: str | None) -> float | None:
    """A fresh batch-1 decoder (same model) compiled with `options`: compile seconds (the first
    call), the step alone with its kernel profile, then batch 1 end to end at suppression 0.95.
    Returns the step ms (None on failure)."""
    import torch._dynamo

    from reviewgpt.generate import sampling
    from reviewgpt.generate.engine import _FastDecoder

    kept, kept_flag = engine._fast, sampling.TOP_P_SPLIT_SOFTMAX
    kept_blas = torch.backends.cuda.preferred_blas_library()
    torch._dynamo.reset()  # else dynamo reuses the compiled step (same code, guards pass)
    engine._fast = _FastDecoder(engine.model, max_cache_len=kept.max_cache_len, tokenizer=engine.tokenizer,
                                compile_options=options)
    sampling.TOP_P_SPLIT_SOFTMAX = split_softmax
    if blas:
        torch.backends.cuda.preferred_blas_library(blas)
    try:
        with torch.inference_mode():
            engine._fast._ensure_cache(torch.device("cuda"))
            step = _ready_step(engine._fast, 1, GenerationConfig(suppression=RECIPE_SUPPRESSION), engine)
            t = time.perf_counter()
            step()
            torch.cuda.synchronize()
            compile_s = time.perf_counter() - t
        step_only(engine, precision, profile_dir, tag=f"_{name}")
        step_ms = ROWS[-1]["step_ms"]
        emit({"part": "tune", "precision": precision, "variant": name, "options": options,
              "top_p_split_softmax": split_softmax, "blas": blas or str(kept_blas),
              "first_call_s": round(compile_s, 1), "step_ms": step_ms})
        batch1(engine, text, precision, "engine", RECIPE_SUPPRESSION, variant=name)
        return step_ms
    except Exception as e:  # an experiment: record the failure, keep the run going
        emit({"part": "tune", "precision": precision, "variant": name, "error": f"{type(e).__name__}: {e}"[:500]})
        return None
    finally:
        engine._fast = kept
        sampling.TOP_P_SPLIT_SOFTMAX = kept_flag
        torch.backends.cuda.preferred_blas_library(kept_blas)
        gc.collect()
        torch.cuda.empty_cache()


def tune(engine: ReviewEngine, text: str, precision: str, profile_dir: Path | None, base_ms: float) -> None:
    """Each of TUNE_VARIANTS against the default step (base_ms, same process), then the variants that
    beat it by more than 1% together (inductor options merged)."""
    wins = []
    for name, (options, flag, blas) in TUNE_VARIANTS.items():
        ms = tune_variant(engine, text, precision, profile_dir, name, options, flag, blas)
        print(f"[{precision}] {name}: step {ms} ms (default {base_ms})", flush=True)
        if ms is not None and ms < 0.99 * base_ms:
            wins.append(name)
    if len(wins) > 1:
        options = {k: v for n in wins for k, v in TUNE_VARIANTS[n][0].items()}
        flag = all(TUNE_VARIANTS[n][1] for n in wins)
        blas = next((TUNE_VARIANTS[n][2] for n in wins if TUNE_VARIANTS[n][2]), None)
        tune_variant(engine, text, precision, profile_dir, "-".join(wins), options, flag, blas)


def static_engine(engine: ReviewEngine) -> ReviewEngine:
    """The same loaded model, decoding through transformers' generate() with a StaticCache."""
    return ReviewEngine(engine.model, engine.tokenizer, engine.info, replace(engine.config, decoder="generate-static"))


def run(precision: str, ckpt: str, parts: set[str], profile_dir: Path | None) -> None:
    t0 = time.perf_counter()
    # loaded unfused and not warmed up, so that fusion_check compares the logits before and after
    engine = load_engine(EngineConfig(base_model=ckpt, precision=precision, fast_decoding=True, warmup=False,
                                      fuse_projections=False, max_prompt_tokens=PROMPT_TOKENS, max_new_tokens=MAX_NEW,
                                      local_files_only=True))
    fusion_check(engine, precision)
    warm = engine.warmup()
    emit({"part": "warm-up", "precision": precision, "compile_options": engine._fast.compile_options,
          "first_call_s": round(warm, 1)})  # compiling the batch-1 step (what the app's start pays)
    print(f"[{precision}] warm-up (compiling the step) {warm:.0f} s; loaded in {time.perf_counter() - t0:.0f} s:"
          f" {engine.info.describe()} fast={engine.info.fast_decoding} notes={engine.info.notes}", flush=True)
    texts = [engine.prepare(t, "7").text for t in corpus_texts(8)]
    if "seed" in parts:
        seeded_repeat(engine, texts[0], precision)
    if "b1" in parts:
        for s in ((RECIPE_SUPPRESSION,) if "tune" in parts else (0.0, RECIPE_SUPPRESSION)):
            batch1(engine, texts[0], precision, "engine", s)
    if "onerow" in parts:
        one_row_variants(engine, texts[0], precision, profile_dir)
    if "tune" in parts:  # the default step alone first: the variants compare with it
        step_only(engine, precision, profile_dir, tag="_default")
        tune(engine, texts[0], precision, profile_dir, ROWS[-1]["step_ms"])
    if "step" in parts:
        step_only(engine, precision, profile_dir)
    if "b8" in parts:
        t = time.perf_counter()
        batch8(engine, texts, precision, "engine", RECIPE_SUPPRESSION)  # first call compiles the batch-8 step
        print(f"[{precision}] batch-8 compile + run {time.perf_counter() - t:.0f} s", flush=True)
        batch8(engine, texts, precision, "engine", RECIPE_SUPPRESSION)
        if profile_dir is not None:
            dec = engine._fast_batches[8]
            with torch.inference_mode():
                step = _ready_step(dec, 8, GenerationConfig(suppression=RECIPE_SUPPRESSION), engine)
                kinds = kernel_profile(step, (), 10, profile_dir / f"engine_profile_fused_{precision}_batch8.txt")
            emit({"part": "step-profile", "precision": precision, "batch": 8, "kernel_ms_by_kind": kinds,
                  "attention_us_per_layer": round(kinds["attention"] * 1000 / engine.model.config.num_hidden_layers, 1)})
    if "b8model" in parts:
        batched_forward_check(engine, texts, precision, profile_dir)
    if "static" in parts:
        engine._fast_batches.clear()
        gc.collect()
        torch.cuda.empty_cache()
        lib = static_engine(engine)
        t = time.perf_counter()
        lib.generate(texts[0], "7", GenerationConfig(max_new_tokens=16, suppression=RECIPE_SUPPRESSION))  # compiles
        print(f"[{precision}] generate-static warm-up {time.perf_counter() - t:.0f} s", flush=True)
        for s in (0.0, RECIPE_SUPPRESSION):
            batch1(lib, texts[0], precision, "generate-static", s)
        if "static8" in parts:
            batch8(lib, texts, precision, "generate-static", RECIPE_SUPPRESSION)
            batch8(lib, texts, precision, "generate-static", RECIPE_SUPPRESSION)
        del lib
    if "freeze" in parts:
        step_variant(engine, precision, profile_dir, "freezing", freezing=True)
    if "recompile" in parts:  # the same options compiled twice more without inductor's caches: tuning spread
        for i in (1, 2):
            step_variant(engine, precision, profile_dir, f"recompile{i}", fx_graph_cache=False,
                         autotune_local_cache=False)
    if "nocoord" in parts:  # the previous default: cuBLAS GEMVs
        step_variant(engine, precision, profile_dir, "no_coordinate_descent", coordinate_descent_tuning=False)
    del engine
    gc.collect()
    torch.cuda.empty_cache()


def main() -> None:
    global OUT
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--precision", nargs="+", default=["bf16", "nf4"])
    p.add_argument("--checkpoint", default="/tmp/llama8b-random")
    p.add_argument("--parts", nargs="+", default=["attention", "b1", "step", "b8", "static"],
                   help="attention attnsweep gemv gemv8 skinny chain folds topp b1 seed step b8 b8model static static8 freeze nocoord recompile tune onerow")
    p.add_argument("--out", default="benchmarks/results/engine.jsonl")
    p.add_argument("--profile-dir", default=None, help="write the decode step's kernel table here")
    args = p.parse_args()
    OUT = Path(args.out)
    profile_dir = Path(args.profile_dir) if args.profile_dir else None
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    parts = set(args.parts)
    if parts & {"attention", "attnsweep"}:
        attention_micro("bf16", sweep_launch="attnsweep" in parts)
    if "gemv" in parts:
        gemv_micro()
    if "topp" in parts:
        top_p_micro()
    if "gemv8" in parts:
        gemv8_micro()
    if "skinny" in parts:
        skinny_micro(profile_dir)
    if "chain" in parts:
        skinny_chain_micro()
    if "folds" in parts:
        folds_micro(profile_dir)
    if not parts & {"b1", "seed", "step", "b8", "b8model", "static", "static8", "freeze", "nocoord", "recompile", "tune", "onerow"}:
        return  # kernel parts only: no checkpoint needed
    ckpt = str(build(args.checkpoint))
    for precision in args.precision:
        run(precision, ckpt, parts, profile_dir)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
