"""The split-KV decode attention (reviewgpt/generate/decode_attention.py) against SDPA: the kernel
alone, then the engine's decode loop through it. In Triton's interpreter on the CPU (TRITON_INTERPRET=1:
float16 and float32; bfloat16 is not computed there, see common.HALF) or compiled on a CUDA GPU
(bfloat16 too)."""

import pytest
import torch
import torch.nn.functional as F

from reviewgpt.generate import decode_attention as da

from .common import DEVICE, HALF, rel, tiny_engine

SHAPES = [  # rows, heads, kv heads, slots, head dim, used, first slot per row, splits, block_n
    (1, 32, 8, 300, 128, 251, [0], None, 64),
    (3, 8, 2, 200, 16, 137, [0, 40, 136], 4, 16),
    (2, 2, 2, 64, 32, 64, [5, 0], 16, 16),  # 16 splits of 4 slots, one row starting late
    (2, 16, 2, 96, 64, 90, [0, 89], 1, 32),
]


@pytest.mark.parametrize("dtype", [*HALF, torch.float32], ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s[:6])))
def test_split_kv_kernel_computes_sdpa_and_never_reads_after_used(shape, dtype):
    """GQA groups 1-8, head dims 16-128, ragged row starts, `used` short of the cache, 1 to 16
    splits: 16-bit as close to a float64 SDPA as SDPA itself in that dtype (x1.5), float32 within
    1e-6 of that; NaN written into K/V after `used` changes nothing (those slots are not read); the
    window form (each row's first slot, no mask) gives exactly the masked form's output."""
    rows, heads, kvh, slots, d, used, first, splits, block_n = shape
    torch.manual_seed(0)
    q, k, v = (torch.randn(rows, n, s_, d, dtype=dtype, device=DEVICE)
               for n, s_ in ((heads, 1), (kvh, slots), (kvh, slots)))
    idx = torch.arange(slots, device=DEVICE)
    first_t = torch.tensor(first, device=DEVICE)
    mask = ((idx[None] >= first_t[:, None]) & (idx[None] < used)).view(rows, 1, 1, slots)
    used_t = torch.tensor([used], device=DEVICE)
    scale = d ** -0.5
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=mask, scale=scale,
                                         enable_gqa=True).transpose(1, 2)
    same = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=True).transpose(1, 2)
    out = da.decode_attention(q, k, v, mask, used_t, scale, splits=splits, block_n=block_n)
    assert out.shape == (rows, 1, heads, d) and out.dtype == dtype
    slack = 1e-6 if dtype == torch.float32 else 0.0
    assert rel(out, ref) <= 1.5 * rel(same, ref) + slack, (rel(out, ref), rel(same, ref))
    k[:, :, used:], v[:, :, used:] = float("nan"), float("nan")  # slots after `used`: never read
    poisoned = da.decode_attention(q, k, v, mask, used_t, scale, splits=splits, block_n=block_n)
    windowed = da.decode_attention(q, k, v, None, used_t, scale, first=first_t, splits=splits, block_n=block_n)
    assert torch.equal(poisoned, out)
    assert torch.equal(windowed, out)


def test_split_kv_kernel_edges():
    """A mask of one row for all rows (batch stride 0), `used` None (all slots) or past the cache
    (clamped): within 1e-6 of float64 SDPA; a row with no allowed slot gives 0, as SDPA does."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, n, s_, 32, device=DEVICE) for n, s_ in ((8, 1), (2, 80), (2, 80)))
    one_row = (torch.arange(80, device=DEVICE) >= 10).view(1, 1, 1, 80)  # broadcast over the 3 rows
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=one_row, scale=0.2,
                                         enable_gqa=True).transpose(1, 2)
    assert rel(da.decode_attention(q, k, v, one_row, None, 0.2), ref) < 1e-6
    assert rel(da.decode_attention(q, k, v, one_row, torch.tensor([500], device=DEVICE), 0.2), ref) < 1e-6
    empty = torch.ones(3, 1, 1, 80, dtype=torch.bool, device=DEVICE)
    empty[1] = False  # row 1 may attend to nothing
    out = da.decode_attention(q, k, v, empty, None, 0.2)
    sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=empty, scale=0.2, enable_gqa=True).transpose(1, 2)
    assert torch.allclose(out, sdpa, atol=1e-5)
    assert (out[1] == 0).all()


def test_decode_loop_through_the_kernel_writes_what_it_writes_on_sdpa(model_dirs, monkeypatch):
    """The engine's decode loop (its step run eagerly) with the tiny model's attention set to the
    decode attention: every decode-step attention call goes to the kernel with the step's window
    (`decode_first_slots`, `decode_slots_used`; no mask), each call's output is float64 SDPA's over
    that window (the left padding of the shorter prompt at batch 2 left out), and the greedy tokens
    equal the same loop's on SDPA with the step's mask, at batch 1 and batch 2."""
    from reviewgpt.config import GenerationConfig
    from reviewgpt.generate.attention import NAME
    from reviewgpt.generate.engine import _FastDecoder

    engine, prompts = tiny_engine(model_dirs / "base")
    engine.model.set_attn_implementation(NAME)
    gen = GenerationConfig(max_new_tokens=4, do_sample=False, suppression=0.95, ignore_eos=True)  # 3 decode steps
    calls, errors = [], []
    kernel = da.decode_attention

    def counted(query, key, value, mask, used, scale, first=None, **launch):
        out = kernel(query, key, value, mask, used, scale, first, **launch)
        calls.append(mask is None and used is not None and first is not None)  # the step's window came through
        idx = torch.arange(key.shape[2], device=key.device)
        window = ((idx[None] >= first[:, None]) & (idx[None] < int(used))).view(-1, 1, 1, key.shape[2])
        ref = F.scaled_dot_product_attention(query.double(), key.double(), value.double(), attn_mask=window,
                                             scale=scale, enable_gqa=True).transpose(1, 2)
        errors.append(rel(out, ref))
        return out

    def run() -> dict:
        out = {}
        for batch in (1, 2):
            dec = _FastDecoder(engine.model, max_cache_len=max(map(len, prompts)) + 16, tokenizer=engine.tokenizer,
                               compile=False, batch_size=batch)
            out[batch] = dec.generate_rows(prompts[:batch], gen, engine._processors(gen), engine.end_ids)
        return out

    with torch.no_grad(), monkeypatch.context() as patched:
        patched.setattr(da, "decode_attention", counted)
        ours = run()
    with torch.no_grad(), monkeypatch.context() as patched:
        patched.setattr(da, "available", lambda *a: False)  # the same loop on SDPA
        sdpa = run()
    layers, steps = engine.model.config.num_hidden_layers, gen.max_new_tokens - 1  # the first: the prefill's
    assert len(calls) == layers * (steps + steps)  # batch 1, then batch 2
    assert all(calls)
    assert max(errors) < 1e-5
    assert ours == sdpa
    assert len(ours[2]) == 2 and all(len(r) == gen.max_new_tokens for r in ours[2])
