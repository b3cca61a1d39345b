"""The GPU decode path's Triton kernels, the split-KV attention (reviewgpt/generate/decode_attention.py)
and the few-row linear (skinny_linear.py), run in Triton's interpreter on the CPU, in a subprocess
(TRITON_INTERPRET is read when triton is imported). numpy has no bfloat16, so the kernels run here in
float16 (and float32 for attention); bfloat16 is checked compiled on the GPU by
`python -m tests.support.triton_interpreted kernel --cuda` and `... skinny --cuda`."""

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
    """The decode step's few-row linear kernel (skinny_linear.py) on 1-16 rows, leading dimensions,
    a strided slice as x, output features the tiles do not divide, K split 1-4 ways, a bias (added
    in float32 before the one rounding, with or without a split): in float16 as close to a float64
    product as F.linear in float16 is (x1.2 + 1e-5); 17 rows, a K the tiles do not divide, float32
    and a bias of another dtype are refused (they stay on F.linear)."""
    result = _interpreted("skinny")
    assert len(result["cases"]) == 6
    for c in result["cases"]:
        assert c["available"] and c["out_shape"] == c["ref_shape"] and c["out_dtype"] == c["dtype"], c
        assert c["ours_err"] <= 1.2 * c["torch_err"] + 1e-5, c
    assert not any(result["refused"].values()), result["refused"]


def test_launch_settings_fit_the_gpu_and_tile_k():
    """launch_for: the measured settings for a known shape; on a GPU with less shared memory (an
    sm86/sm89 card's 101,376 bytes) fewer stages, then a smaller K tile, until they fit; for a
    small model's K the K tile halves until it divides, and a split that cannot divide is dropped
    with the tile redone from the start."""
    from reviewgpt.generate.skinny_linear import LAUNCHES, Launch, launch_for

    down = torch.empty(4096, 14336, dtype=torch.bfloat16, device="meta")
    assert launch_for(down, shared_limit=1 << 30) == LAUNCHES[(4096, 14336)]
    small = launch_for(down, shared_limit=101_376)
    assert small.shared_bytes() <= 101_376 < LAUNCHES[(4096, 14336)].shared_bytes()
    assert small.num_stages == 2 or small.block_k == LAUNCHES[(4096, 14336)].block_k
    tiny = launch_for(torch.empty(96, 64, dtype=torch.float16, device="meta"), shared_limit=1 << 30)
    assert tiny.block_k == 64 and 64 % (tiny.block_k * tiny.split_k) == 0
    import reviewgpt.generate.skinny_linear as sk
    kept = dict(sk.LAUNCHES)
    sk.LAUNCHES[(8, 96)] = Launch(32, 256, 4, 4, 2)  # K = 96: no split of 4 divides it; 32 x 1 does
    try:
        assert launch_for(torch.empty(8, 96, dtype=torch.float16, device="meta"), shared_limit=1 << 30) == \
            Launch(32, 32, 1, 4, 2)
    finally:
        sk.LAUNCHES.clear()
        sk.LAUNCHES.update(kept)


def test_decode_loop_through_the_few_row_kernel_writes_what_f_linear_writes(model_dirs):
    """The tiny model in float16 with its linears routed as in the GPU decode step: at batch 1 each
    layer's o_proj and down_proj go to the few-row kernel with 1 row, at batch 2 every linear (q|k|v,
    o, gate|up, down per layer and lm_head) with 2 rows, once a step each; the greedy tokens equal
    those of the same loop on F.linear at both batch sizes. Traced by dynamo at 2 rows, the forward
    calls the opaque op for every linear; `unroute` undoes every one."""
    result = _interpreted("skinny-decode", str(model_dirs / "base"))
    layers, linears = result["layers"], result["linears"]
    assert result["routed"] == {"routed": linears, "one_row_on_cublas": 0, "one_row_on_triton": 2 * layers}
    steps = result["new_tokens"] - 1  # the first token comes from the prefill (many rows: F.linear)
    assert result["rows_seen"] == {"1": {"1": 2 * layers * steps}, "2": {"2": linears * steps}}
    assert result["ours"] == result["plain"]
    assert len(result["ours"]["2"]) == 2 and all(len(r) == result["new_tokens"] for r in result["ours"]["2"])
    assert result["traced_skinny_calls"] == linears
    assert result["unrouted"] == linears
