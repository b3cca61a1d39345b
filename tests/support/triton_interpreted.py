"""Runs the split-KV decode attention in Triton's interpreter (TRITON_INTERPRET=1 must be set before
triton is imported, hence a subprocess of tests/test_decode_attention.py) and prints one JSON object.
On a GPU machine `kernel --cuda` runs the same cases compiled, in bfloat16 too.

    TRITON_INTERPRET=1 python -m tests.support.triton_interpreted kernel
    TRITON_INTERPRET=1 python -m tests.support.triton_interpreted decode MODEL_DIR
    python -m tests.support.triton_interpreted kernel --cuda
"""

from __future__ import annotations

import json
import os
import sys

CUDA = "--cuda" in sys.argv
assert CUDA or os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1 (or kernel --cuda)"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from reviewgpt.generate import decode_attention as da  # noqa: E402


def _rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    return ((x.double() - ref).norm() / ref.norm()).item()


def kernel_cases() -> dict:
    """The kernel against SDPA (float64 reference, and SDPA in the same dtype for scale) on GQA
    groups 1-8, head dims 16-128, ragged row starts, a used length short of the cache, splits from 1
    to more than there are blocks; NaN written after `used` must not reach the output. Then the
    edges: one mask row for all rows (batch stride 0), `used` None (all slots) and past the cache
    (clamped), a row with no allowed slot (SDPA gives 0)."""
    torch.manual_seed(0)
    device = "cuda" if CUDA else "cpu"
    dtypes = (torch.bfloat16, torch.float16, torch.float32) if CUDA else (torch.float16, torch.float32)
    cases = []
    shapes = [  # rows, heads, kv heads, slots, head dim, used, first slot per row, splits, block_n
        (1, 32, 8, 300, 128, 251, [0], None, 64),
        (3, 8, 2, 200, 16, 137, [0, 40, 136], 4, 16),
        (2, 4, 4, 64, 32, 64, [5, 0], 16, 16),
        (2, 16, 2, 96, 64, 90, [0, 89], 1, 32),
    ]
    for rows, heads, kvh, slots, d, used, first, splits, block_n in shapes:
        for dtype in dtypes:
            q, k, v = (torch.randn(rows, n, s_, d, dtype=dtype, device=device)
                       for n, s_ in ((heads, 1), (kvh, slots), (kvh, slots)))
            idx = torch.arange(slots, device=device)
            first_t = torch.tensor(first, device=device)
            mask = ((idx[None] >= first_t[:, None]) & (idx[None] < used)).view(rows, 1, 1, slots)
            used_t = torch.tensor([used], device=device)
            scale = d ** -0.5
            ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=mask, scale=scale,
                                                 enable_gqa=True).transpose(1, 2)
            same = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=True).transpose(1, 2)
            out = da.decode_attention(q, k, v, mask, used_t, scale, splits=splits, block_n=block_n)
            k[:, :, used:], v[:, :, used:] = float("nan"), float("nan")  # slots after `used`: never read
            poisoned = da.decode_attention(q, k, v, mask, used_t, scale, splits=splits, block_n=block_n)
            windowed = da.decode_attention(q, k, v, None, used_t, scale, first=first_t, splits=splits, block_n=block_n)
            cases.append({"shape": [rows, heads, kvh, slots, d, used], "dtype": str(dtype), "out_shape": list(out.shape),
                          "ours_err": _rel(out, ref), "sdpa_err": _rel(same, ref),
                          "poisoned_equal": bool(torch.equal(poisoned, out)),
                          "window_equal": bool(torch.equal(windowed, out))})
    edges = {}
    q, k, v = torch.randn(3, 8, 1, 32, device=device), torch.randn(3, 2, 80, 32, device=device), \
        torch.randn(3, 2, 80, 32, device=device)
    one_row = (torch.arange(80, device=device) >= 10).view(1, 1, 1, 80)  # broadcast over the 3 rows
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=one_row, scale=0.2,
                                         enable_gqa=True).transpose(1, 2)
    edges["broadcast_mask_err"] = _rel(da.decode_attention(q, k, v, one_row, None, 0.2), ref)
    edges["used_past_cache_err"] = _rel(da.decode_attention(q, k, v, one_row, torch.tensor([500], device=device), 0.2),
                                        ref)
    empty = torch.ones(3, 1, 1, 80, dtype=torch.bool, device=device)
    empty[1] = False  # row 1 may attend to nothing
    out = da.decode_attention(q, k, v, empty, None, 0.2)
    sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=empty, scale=0.2, enable_gqa=True).transpose(1, 2)
    edges["empty_row_is_sdpa"] = bool(torch.allclose(out, sdpa, atol=1e-5))
    edges["empty_row_zero"] = bool((out[1] == 0).all())
    return {"cases": cases, "edges": edges}


def decode_case(model_dir: str) -> dict:
    """The engine's decode loop (eager step) on a tiny model through the kernel, against the same
    loop with the kernel off (SDPA): greedy tokens at batch 1 and for two prompts of different
    lengths at batch 2 (left padding masked inside the kernel)."""
    from reviewgpt.config import EngineConfig, GenerationConfig
    from reviewgpt.generate.attention import NAME
    from reviewgpt.generate.engine import _FastDecoder, load_engine

    engine = load_engine(EngineConfig(base_model=model_dir, local_files_only=True, max_prompt_tokens=256,
                                      max_new_tokens=16))
    engine.model.set_attn_implementation(NAME)
    gen = GenerationConfig(max_new_tokens=12, do_sample=False, suppression=0.95, ignore_eos=True)
    prompts = [engine.prompt_ids("Title: A tiny paper\n\nAbstract: We test the kernel.", "4"),
               engine.prompt_ids("Title: Another\n\nA longer text, " * 4, "4")]
    calls, errors = [], []
    kernel = da.decode_attention

    def counted(query, key, value, mask, used, scale, first=None, **launch):
        out = kernel(query, key, value, mask, used, scale, first, **launch)
        calls.append(mask is None and used is not None and first is not None)  # the step's window came through
        idx = torch.arange(key.shape[2])
        window = ((idx[None] >= first[:, None]) & (idx[None] < int(used))).view(-1, 1, 1, key.shape[2])
        ref = F.scaled_dot_product_attention(query.double(), key.double(), value.double(), attn_mask=window,
                                             scale=scale, enable_gqa=True).transpose(1, 2)
        errors.append(_rel(out, ref))
        return out

    def run() -> dict:
        out = {}
        for batch in (1, 2):
            dec = _FastDecoder(engine.model, max_cache_len=max(map(len, prompts)) + 16, tokenizer=engine.tokenizer,
                               compile=False, batch_size=batch)
            out[batch] = dec.generate_rows(prompts[:batch], gen, engine._processors(gen), engine.end_ids)
        return out

    da.decode_attention = counted
    with torch.no_grad():
        ours = run()
    da.decode_attention = kernel
    available = da.available
    da.available = lambda *a: False  # the same loop on SDPA
    with torch.no_grad():
        sdpa = run()
    da.available = available
    return {"ours": ours, "sdpa": sdpa, "kernel_calls": len(calls), "calls_with_window": sum(calls),
            "max_rel_err": max(errors), "layers": engine.model.config.num_hidden_layers,
            "new_tokens": gen.max_new_tokens}


if __name__ == "__main__":
    what = sys.argv[1]
    result = kernel_cases() if what == "kernel" else decode_case(sys.argv[2])
    if CUDA:
        result["device"] = torch.cuda.get_device_name()
    print(json.dumps(result))
