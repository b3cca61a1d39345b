"""The GPU decode path's split-KV attention kernel (reviewgpt/generate/decode_attention.py), run in
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
    splits: as close to a float64 SDPA as SDPA itself in the same dtype; NaN written into K/V after
    `used` changes nothing (those slots are not read)."""
    cases = _interpreted("kernel")["cases"]
    assert len(cases) == 8
    for c in cases:
        rows, heads, _, _, d, _ = c["shape"]
        assert c["out_shape"] == [rows, 1, heads, d]
        assert c["ours_err"] <= 1.5 * c["sdpa_err"] + 1e-6, c
        assert c["poisoned_equal"], c


def test_decode_loop_through_the_kernel_writes_what_it_writes_on_sdpa(model_dirs):
    """The engine's decode loop (its step run eagerly) with the tiny model's attention set to the
    decode attention: every decode-step attention call goes to the kernel with the step's
    `decode_slots_used`, and the greedy tokens equal the same loop's on SDPA, at batch 1 and for two
    prompts of different lengths at batch 2."""
    result = _interpreted("decode", str(model_dirs / "base"))
    layers = 2  # the tiny model's
    assert result["kernel_calls"] > 0 and result["calls_with_used"] == result["kernel_calls"]
    assert result["kernel_calls"] == layers * (11 + 11)  # 11 decode steps after the first token, batch 1 and 2
    assert result["ours"] == result["sdpa"]
    assert len(result["ours"]["2"]) == 2 and all(len(r) == 12 for r in result["ours"]["2"])


def test_chunked_cumsum_is_cumsum():
    """top_p_split's two-level cumsum (rows > 1) against a float64 cumsum: within float32 rounding of
    the running total, on a length that is not a multiple of the chunk."""
    from reviewgpt.generate.sampling import chunked_cumsum

    x = torch.rand(8, 128_256, generator=torch.Generator().manual_seed(0))
    ref = x.double().cumsum(-1)
    out = chunked_cumsum(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert ((out.double() - ref).abs() <= 2 * ref * torch.finfo(torch.float32).eps * 8).all()
    small = torch.randn(3, 100, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(chunked_cumsum(small, chunk=16), small.cumsum(-1), atol=1e-5)
    assert torch.equal(chunked_cumsum(x[:1]), x[:1].cumsum(-1))  # one row: the one-pass scan
