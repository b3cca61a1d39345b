"""Runs the split-KV decode attention and the few-row linear kernel in Triton's interpreter (TRITON_INTERPRET=1 must be set before
triton is imported, hence a subprocess of tests/test_decode_attention.py) and prints one JSON object.
On a GPU machine `kernel --cuda` runs the same cases compiled, in bfloat16 too.

    TRITON_INTERPRET=1 python -m tests.support.triton_interpreted kernel
    TRITON_INTERPRET=1 python -m tests.support.triton_interpreted decode MODEL_DIR
    TRITON_INTERPRET=1 python -m tests.support.triton_interpreted skinny
    TRITON_INTERPRET=1 python -m tests.support.triton_interpreted skinny-decode MODEL_DIR
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


def skinny_cases() -> dict:
    """skinny_linear against float64 and against F.linear in the same dtype (for scale): 2 to 16
    rows, rows given with leading dimensions, output features not a multiple of the tile (masked),
    K split 1, 2 and 4 ways, a bias; `available` turns down 1 row, 17 rows and a K the launch
    cannot tile."""
    from reviewgpt.generate import skinny_linear as sk

    torch.manual_seed(0)
    device = "cuda" if CUDA else "cpu"
    dtypes = (torch.bfloat16, torch.float16) if CUDA else (torch.float16,)
    cases = []
    shapes = [  # x shape, out features, in features, launch
        ((2, 512), 96, 512, sk.Launch(32, 128, 1, 4, 2)),
        ((8, 1, 512), 100, 512, sk.Launch(32, 128, 2, 4, 2)),
        ((3, 5, 256), 64, 256, sk.Launch(64, 64, 4, 4, 2)),
        ((16, 1024), 200, 1024, sk.Launch(16, 256, 2, 4, 3)),
    ]
    for xs, n, k, launch in shapes:
        for dtype in dtypes:
            x = torch.randn(*xs, dtype=dtype, device=device)
            w = torch.randn(n, k, dtype=dtype, device=device) / k ** 0.5
            bias = torch.randn(n, dtype=dtype, device=device) if xs[0] == 3 else None
            ref = F.linear(x.double(), w.double(), None if bias is None else bias.double())
            same_dtype = F.linear(x, w, bias)
            out = sk.skinny_linear(x, w, bias, launch)
            cases.append({"x": list(xs), "n": n, "k": k, "dtype": str(dtype), "available": sk.available(x, w, launch),
                          "out_shape": list(out.shape), "ref_shape": list(ref.shape), "out_dtype": str(out.dtype),
                          "ours_err": _rel(out, ref), "torch_err": _rel(same_dtype, ref)})
    x1, x17 = torch.randn(1, 512, dtype=torch.float16), torch.randn(17, 512, dtype=torch.float16)
    w = torch.randn(64, 512, dtype=torch.float16)
    refused = {"one_row": sk.available(x1, w), "seventeen_rows": sk.available(x17, w),
               "k_not_tiled": sk.available(torch.randn(4, 500, dtype=torch.float16), torch.randn(64, 500, dtype=torch.float16)),
               "float32": sk.available(x1.float().expand(4, 512), w.float())}
    return {"cases": cases, "refused": refused}


def skinny_decode_case(model_dir: str) -> dict:
    """The engine's decode loop (eager step) on the tiny model in float16 with its linears routed as
    in the GPU step (decode_linears.route_decode_linears): at batch 2 every linear call goes to the
    few-row kernel; the greedy tokens equal the same loop's with F.linear (the routing undone)."""
    from reviewgpt.config import EngineConfig, GenerationConfig
    from reviewgpt.generate import decode_linears, skinny_linear as sk
    from reviewgpt.generate.engine import _FastDecoder, load_engine

    engine = load_engine(EngineConfig(base_model=model_dir, local_files_only=True, max_prompt_tokens=256,
                                      max_new_tokens=16))
    model = engine.model.half()
    gen = GenerationConfig(max_new_tokens=12, do_sample=False, suppression=0.95, ignore_eos=True)
    prompts = [engine.prompt_ids("Title: A tiny paper\n\nAbstract: We test the kernel.", "4"),
               engine.prompt_ids("Title: Another\n\nA longer text, " * 4, "4")]
    calls = []
    kernel = sk.skinny_linear

    def counted(x, weight, bias=None, launch=None):
        calls.append(x.numel() // x.shape[-1])
        return kernel(x, weight, bias, launch)

    def run() -> list:
        dec = _FastDecoder(model, max_cache_len=max(map(len, prompts)) + 16, tokenizer=engine.tokenizer,
                           compile=False, batch_size=2)
        return dec.generate_rows(prompts, gen, engine._processors(gen), engine.end_ids)

    with torch.no_grad():
        plain = run()
        routed = decode_linears.route_decode_linears(model)
        sk.skinny_linear = counted
        ours = run()
        sk.skinny_linear = kernel
    linears = sum(type(m) is torch.nn.Linear for m in model.modules())
    return {"ours": ours, "plain": plain, "routed": routed, "linears": linears, "kernel_calls": len(calls),
            "rows_seen": sorted(set(calls)), "layers": model.config.num_hidden_layers, "new_tokens": gen.max_new_tokens}


if __name__ == "__main__":
    what = sys.argv[1]
    result = {"kernel": kernel_cases, "skinny": skinny_cases}[what]() if what in ("kernel", "skinny") else \
        {"decode": decode_case, "skinny-decode": skinny_decode_case}[what](sys.argv[2])
    if CUDA:
        result["device"] = torch.cuda.get_device_name()
    print(json.dumps(result))
