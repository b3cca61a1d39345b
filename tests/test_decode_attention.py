"""The GPU decode path's Triton kernels, the split-KV attention (reviewgpt/generate/decode_attention.py)
and the few-row linear (skinny_linear.py), run in
Triton's interpreter on the CPU, in a subprocess (TRITON_INTERPRET is read when triton is imported).
numpy has no bfloat16, so the kernel runs here in float16 and float32; bfloat16 is checked against
SDPA on the GPU by `python -m benchmarks.bench_engine --parts attention`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _interpreted(*args: str) -> dict:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "tests.support.triton_interpreted", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_split_kv_kernel_computes_sdpa_and_never_reads_after_used():
    """GQA groups 1-8, head dims 16-128, ragged row starts, `used` short of the cache, 1 to 16
    splits: float16 as close to a float64 SDPA as SDPA itself in float16 (x1.5), float32 within
    1e-6; NaN written into K/V after `used` changes nothing (those slots are not read); the window
    form (each row's first slot, no mask) gives exactly the masked form's output. A mask of
    one row for all rows, `used` None or past the cache, and a row with no allowed slot (0, as
    SDPA gives) work too."""
    result = _interpreted("kernel")
    cases = result["cases"]
    assert len(cases) == 8
    for c in cases:
        rows, heads, _, _, d, _ = c["shape"]
        assert c["out_shape"] == [rows, 1, heads, d]
        slack = 1e-6 if c["dtype"] == "torch.float32" else 0.0
        assert c["ours_err"] <= 1.5 * c["sdpa_err"] + slack, c
        assert c["poisoned_equal"] and c["window_equal"], c
    edges = result["edges"]
    assert edges["broadcast_mask_err"] < 1e-6 and edges["used_past_cache_err"] < 1e-6, edges
    assert edges["empty_row_is_sdpa"] and edges["empty_row_zero"], edges


def test_decode_loop_through_the_kernel_writes_what_it_writes_on_sdpa(model_dirs):
    """The engine's decode loop (its step run eagerly) with the tiny model's attention set to the
    decode attention: every decode-step attention call goes to the kernel with the step's window
    (`decode_first_slots`, `decode_slots_used`; no mask), each call's output is float64 SDPA's over
    that window (the left padding of the shorter prompt at batch 2 left out), and the greedy tokens
    equal the same loop's on SDPA with the step's mask, at batch 1 and batch 2."""
    result = _interpreted("decode", str(model_dirs / "base"))
    steps = result["new_tokens"] - 1  # the first token comes from the prefill
    assert result["kernel_calls"] == result["layers"] * (steps + steps)  # batch 1, then batch 2
    assert result["calls_with_window"] == result["kernel_calls"]
    assert result["max_rel_err"] < 1e-5, result["max_rel_err"]
    assert result["ours"] == result["sdpa"]
    assert len(result["ours"]["2"]) == 2 and all(len(r) == result["new_tokens"] for r in result["ours"]["2"])


def test_chunked_cumsum_is_cumsum():
    """top_p_split's two-level cumsum (rows > 1) against a float64 cumsum: within float32 rounding of
    the running total on 128k rows, and on a length that is not a multiple of the chunk (padded)."""
    from reviewgpt.generate.sampling import chunked_cumsum

    x = torch.rand(8, 128_256, generator=torch.Generator().manual_seed(0))
    ref = x.double().cumsum(-1)
    out = chunked_cumsum(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert ((out.double() - ref).abs() <= 2 * ref * torch.finfo(torch.float32).eps * 8).all()
    small = torch.randn(3, 100, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(chunked_cumsum(small, chunk=16), small.cumsum(-1), atol=1e-5)
    assert torch.equal(chunked_cumsum(x[:1]), x[:1].cumsum(-1))  # one row: the one-pass scan


def test_few_row_linear_kernel_computes_f_linear():
    """The batched decode step's linear kernel (skinny_linear.py) on 2-16 rows, leading dimensions,
    output features the tiles do not divide, K split 1-4 ways, a bias: in float16 as close to a
    float64 product as F.linear in float16 is (x1.5 + 1e-4); 1 or 17 rows, a K the tiles do not
    divide and float32 are refused (they stay on F.linear)."""
    result = _interpreted("skinny")
    assert len(result["cases"]) == 4
    for c in result["cases"]:
        assert c["available"] and c["out_shape"] == c["ref_shape"] and c["out_dtype"] == c["dtype"], c
        assert c["ours_err"] <= 1.5 * c["torch_err"] + 1e-4, c
    assert not any(result["refused"].values()), result["refused"]


def test_batched_decode_loop_through_the_few_row_kernel_writes_what_f_linear_writes(model_dirs):
    """The tiny model in float16 with its linears routed as in the GPU decode step: at batch 2 every
    linear of every step (q|k|v, o, gate|up, down per layer and lm_head) goes to the few-row kernel,
    with 2 rows, and the greedy tokens equal those of the same loop on F.linear."""
    result = _interpreted("skinny-decode", str(model_dirs / "base"))
    assert result["routed"] == {"routed": result["linears"], "one_row_on_cublas": result["layers"]}
    steps = result["new_tokens"] - 1  # the first token comes from the prefill
    assert result["kernel_calls"] == result["linears"] * steps  # every linear once a step
    assert result["rows_seen"] == [2]
    assert result["ours"] == result["plain"]
    assert len(result["ours"]) == 2 and all(len(r) == result["new_tokens"] for r in result["ours"])
