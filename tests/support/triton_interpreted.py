"""Runs the split-KV decode attention and the few-row linear kernel in Triton's interpreter
(TRITON_INTERPRET=1 must be set before triton is imported, hence a subprocess of
tests/test_decode_attention.py) and prints one JSON object.
On a GPU machine `kernel --cuda` and `skinny --cuda` run the same cases compiled, in bfloat16 too.

    TRITON_INTERPRET=1 python -m tests.support.triton_interpreted kernel
    TRITON_INTERPRET=1 python -m tests.support.triton_interpreted decode MODEL_DIR
    TRITON_INTERPRET=1 python -m tests.support.triton_interpreted skinny
    TRITON_INTERPRET=1 python -m tests.support.triton_interpreted mass
    TRITON_INTERPRET=1 python -m tests.support.triton_interpreted skinny-decode MODEL_DIR
    TRITON_INTERPRET=1 python -m tests.support.triton_interpreted batched-step MODEL_DIR
    python -m tests.support.triton_interpreted kernel --cuda
    python -m tests.support.triton_interpreted skinny --cuda
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
                          "window_err": _rel(windowed, ref), "poisoned_equal": bool(torch.equal(poisoned, out)),
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
    """skinny_linear against float64 and against F.linear in the same dtype (for scale): 1 to 16
    rows, rows given with leading dimensions or as a strided slice, output features not a multiple
    of the tile (masked), K split 1, 2 and 4 ways, a bias (with and without a split); `available`
    turns down 17 rows, a K the launch cannot tile, float32 and a bias of another dtype."""
    from reviewgpt.generate import skinny_linear as sk

    torch.manual_seed(0)
    device = "cuda" if CUDA else "cpu"
    dtypes = (torch.bfloat16, torch.float16) if CUDA else (torch.float16,)
    cases = []
    shapes = [  # x shape, out features, in features, launch, bias
        ((1, 512), 96, 512, sk.Launch(32, 128, 1, 4, 2), False),
        ((2, 512), 96, 512, sk.Launch(32, 128, 1, 4, 2), True),
        ((8, 1, 512), 100, 512, sk.Launch(32, 128, 2, 4, 2), False),
        ((3, 5, 256), 64, 256, sk.Launch(64, 64, 4, 4, 2), True),
        ((16, 1024), 200, 1024, sk.Launch(16, 256, 2, 4, 3), False),
        ("strided", 72, 256, sk.Launch(32, 64, 1, 4, 2), False),
    ]
    for xs, n, k, launch, with_bias in shapes:
        for dtype in dtypes:
            if xs == "strided":  # 4 rows of a wider tensor: row stride 3k, as a slice of a fused output
                x = torch.randn(4, 3 * k, dtype=dtype, device=device)[:, k:2 * k]
            else:
                x = torch.randn(*xs, dtype=dtype, device=device)
            w = torch.randn(n, k, dtype=dtype, device=device) / k ** 0.5
            bias = torch.randn(n, dtype=dtype, device=device) if with_bias else None
            ref = F.linear(x.double(), w.double(), None if bias is None else bias.double())
            same_dtype = F.linear(x, w, bias)
            out = sk.skinny_linear(x, w, bias, launch)
            cases.append({"x": list(x.shape), "n": n, "k": k, "bias": with_bias, "split_k": launch.split_k,
                          "dtype": str(dtype), "available": sk.available(x, w, bias),
                          "out_shape": list(out.shape), "ref_shape": list(ref.shape), "out_dtype": str(out.dtype),
                          "ours_err": _rel(out, ref), "torch_err": _rel(same_dtype, ref)})
    half = dict(dtype=torch.float16, device=device)
    w = torch.randn(64, 512, **half)
    refused = {"seventeen_rows": sk.available(torch.randn(17, 512, **half), w),
               "k_not_tiled": sk.available(torch.randn(4, 500, **half), torch.randn(64, 500, **half)),
               "float32": sk.available(torch.randn(4, 512, device=device), w.float()),
               "bias_of_another_dtype": sk.available(torch.randn(4, 512, **half), w, torch.randn(64, device=device))}
    return {"cases": cases, "refused": refused}


def skinny_decode_case(model_dir: str) -> dict:
    """The engine's decode loop (eager step) on the tiny model in float16 with its linears routed as
    in the GPU step (decode_linears.route_decode_linears): the rows each kernel call saw at batch 1
    (o_proj and down_proj only) and batch 2 (every linear), and the greedy tokens against the same
    loop with the routing undone (F.linear). Then the batch-2 forward traced by dynamo (a capturing
    backend): how many `reviewgpt::skinny_linear` calls the graph has."""
    from reviewgpt.config import EngineConfig, GenerationConfig
    from reviewgpt.generate import decode_linears, skinny_linear as sk
    from reviewgpt.generate.engine import _FastDecoder, load_engine

    engine = load_engine(EngineConfig(base_model=model_dir, local_files_only=True, max_prompt_tokens=256,
                                      max_new_tokens=16))
    model = engine.model.half()
    gen = GenerationConfig(max_new_tokens=12, do_sample=False, suppression=0.95, ignore_eos=True)
    prompts = [engine.prompt_ids("Title: A tiny paper\n\nAbstract: We test the kernel.", "4"),
               engine.prompt_ids("Title: Another\n\nA longer text, " * 4, "4")]
    calls: list[int] = []
    kernel = sk.skinny_linear

    def counted(x, weight, bias=None, launch=None):
        calls.append(x.numel() // x.shape[-1])
        return kernel(x, weight, bias, launch)

    def run(batch: int) -> list:
        dec = _FastDecoder(model, max_cache_len=max(map(len, prompts)) + 16, tokenizer=engine.tokenizer,
                           compile=False, batch_size=batch)
        return dec.generate_rows(prompts[:batch], gen, engine._processors(gen), engine.end_ids)

    out: dict = {"layers": model.config.num_hidden_layers, "new_tokens": gen.max_new_tokens,
                 "linears": sum(type(m) is torch.nn.Linear for m in model.modules())}
    with torch.no_grad():
        out["plain"] = {b: run(b) for b in (1, 2)}
        out["routed"] = decode_linears.route_decode_linears(model)
        sk.skinny_linear = counted
        out["ours"], out["rows_seen"] = {}, {}
        for b in (1, 2):
            calls.clear()
            out["ours"][b] = run(b)
            out["rows_seen"][b] = {str(r): calls.count(r) for r in sorted(set(calls))}
        sk.skinny_linear = kernel
        graphs = []

        def backend(gm, _inputs):
            graphs.append(gm)
            return gm

        ids = torch.tensor([[prompts[0][-1]], [prompts[1][-1]]])  # a decode step's input: 2 rows, 1 token
        torch.compile(lambda i: model(input_ids=i).logits, backend=backend, fullgraph=True)(ids)
        op = torch.ops.reviewgpt.skinny_linear
        out["traced_skinny_calls"] = sum(n.target in (op, op.default) for g in graphs for n in g.graph.nodes)
        out["unrouted"] = decode_linears.unroute(model)
    return out


def mass_cases() -> dict:
    """sampling.sorted_exp_cumsum's two kernels (8 rows of 128,256 sorted scores, a row starting with
    -inf) against float64, next to the eager chunked_cumsum form's error; one row takes that form."""
    from reviewgpt.generate import sampling

    torch.manual_seed(0)
    x = torch.sort(torch.randn(8, 128_256) * 3, dim=-1).values
    x[0, :50] = -torch.inf
    ref = torch.exp(x.double() - x.double()[:, -1:]).cumsum(-1)
    ours = sampling.sorted_exp_cumsum(x)
    eager = sampling.chunked_cumsum(torch.exp(x - x[:, -1:]))
    err = lambda t: ((t.double() - ref).abs() / ref[:, -1:]).max().item()  # noqa: E731
    one = x[3:4]
    return {"ours_err": err(ours), "eager_err": err(eager), "shape": list(ours.shape),
            "zero_mass_at_minus_inf": bool((ours[0, :50] == 0).all()),
            "one_row_is_cumsum": torch.equal(sampling.sorted_exp_cumsum(one), torch.exp(one - one[:, -1:]).cumsum(-1))}


def batched_step_case(model_dir: str) -> dict:
    """The batched step's forward (batched_step.py) on the tiny model in float16, fused and routed as
    on the GPU: its folded kernels one by one against the eager ops (float64 for scale), then the
    step's logits against the model's forward at the same cache state, and the engine's decode loop
    at batch 2 with it against the loop on the model's forward (greedy tokens), plus the forwards
    each loop ran and the kernel calls a step made."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    from reviewgpt.config import EngineConfig, GenerationConfig
    from reviewgpt.generate import batched_step as bs, skinny_linear as sk
    from reviewgpt.generate.engine import _FastDecoder, load_engine, model_step_logits, prepare_linears
    from reviewgpt.testing.tiny_model import build_tiny_llama

    torch.manual_seed(0)
    out: dict = {}
    half = dict(dtype=torch.float16)
    # RMSNorm + product, partial sums of squares in 3 pieces; o_proj-like and down-like residual products
    x = torch.randn(3, 256, **half)
    g = (1 + 0.1 * torch.randn(256)).to(torch.float16)
    w = torch.randn(96, 256, **half) / 16
    sq = x.float().pow(2).view(3, 4, 64).sum(-1)[:, :3].contiguous()
    sq[:, 2] += x.float().pow(2)[:, 192:].sum(-1)
    eps = 1e-5

    def rms(t, weight):
        var = t.float().pow(2).mean(-1, keepdim=True)
        return weight * (t.float() * torch.rsqrt(var + eps)).to(t.dtype)

    launch = sk.Launch(32, 64, 1, 4, 2)
    ref = F.linear(rms(x.double(), g.double()), w.double())
    out["norm"] = {"ours_err": _rel(sk.rms_norm_linear(x, g, sq, eps, w, launch=launch), ref),
                   "torch_err": _rel(F.linear(rms(x, g), w), ref)}
    res = torch.randn(3, 96, **half)
    h, parts = sk.residual_linear(x, w, res, launch)
    ref = res.double() + F.linear(x.double(), w.double())
    out["residual"] = {"ours_err": _rel(h, ref), "torch_err": _rel(res + F.linear(x, w), ref),
                       "parts_shape": list(parts.shape),
                       "squares_rel": ((parts.sum(1) - h.float().pow(2).sum(1)).abs() / h.float().pow(2).sum(1)).max().item()}
    w_gu = torch.randn(2 * 96, 256, **half) / 16  # gate|up as fused.py stacks them
    act = sk.rms_norm_linear(x, g, sq, eps, w_gu, True, launch=launch)
    g64, u64 = F.linear(rms(x.double(), g.double()), w_gu.double()).chunk(2, dim=1)
    ref = F.silu(g64) * u64
    gate, up = F.linear(rms(x, g), w_gu).chunk(2, dim=1)
    out["glu"] = {"ours_err": _rel(act, ref), "torch_err": _rel(F.silu(gate) * up, ref), "shape": list(act.shape)}
    # RMSNorm + q|k|v + RoPE + cache write against the eager ops (apply_rotary_pos_emb, the cache copy)
    heads, kv_heads, d, slots = 4, 2, 32, 10
    w_qkv = torch.randn((heads + 2 * kv_heads) * d, 256, **half) / 16
    rope = torch.randn(2, slots, d, **half)  # cos, sin by position
    first = torch.tensor([0, 3, 7])  # row r's position at slot 7: 7 - first[r]
    cos, sin = rope[0, 7 - first], rope[1, 7 - first]
    keys, values = torch.zeros(3, kv_heads, slots, d, **half), torch.zeros(3, kv_heads, slots, d, **half)
    q = torch.ops.reviewgpt.norm_qkv_rope(x, g, sq, eps, w_qkv, rope, first, keys, values, torch.tensor([7]), heads)

    def split_rope(normed, weight, c, s_):
        qs, ks, vs = F.linear(normed, weight).view(3, 1, -1, d).transpose(1, 2).split([heads, kv_heads, kv_heads], 1)
        return (*apply_rotary_pos_emb(qs, ks, c[:, None], s_[:, None]), vs)

    refs = split_rope(rms(x.double(), g.double()), w_qkv.double(), cos.double(), sin.double())
    eager = split_rope(rms(x, g), w_qkv, cos, sin)
    ours = (q, keys[:, :, 7:8], values[:, :, 7:8])
    out["rope"] = {name: {"ours_err": _rel(o, r), "torch_err": _rel(e, r)}
                   for name, o, e, r in zip("qkv", ours, eager, refs)}
    out["rope_shape"] = list(q.shape)
    others = [i for i in range(slots) if i != 7]
    out["rope_other_slots_untouched"] = not keys[:, :, others].any().item() and not values[:, :, others].any().item()

    engine = load_engine(EngineConfig(base_model=model_dir, local_files_only=True, max_prompt_tokens=256,
                                      max_new_tokens=16))
    # the saved tiny model's heads have 16 dims; the batched step's q|k|v program needs >= 32
    model = build_tiny_llama(engine.tokenizer, seed=3, hidden=128, intermediate=256).half()
    prepare_linears(model)
    gen = GenerationConfig(max_new_tokens=12, do_sample=False, suppression=0.95, ignore_eos=True)
    prompts = [engine.prompt_ids("Title: A tiny paper\n\nAbstract: We test the kernel.", "4"),
               engine.prompt_ids("Title: Another\n\nA longer text, " * 4, "4")]
    ops = {"rms_norm_linear": 0, "residual_linear": 0}  # norm_qkv_rope: counted below
    wrapped = {name: getattr(sk, name) for name in ops}
    qkv_kernel = bs._norm_qkv_rope
    qkv_calls = []

    class CountedLaunch:  # stands in for the jitted kernel: counts launches, then launches it
        def __getitem__(self, grid):
            qkv_calls.append(grid)
            return qkv_kernel[grid]

    def counting(name):
        def call(*args, **kwargs):
            ops[name] += 1
            return wrapped[name](*args, **kwargs)
        return call

    def run(enabled: bool) -> tuple[list, str]:
        dec = _FastDecoder(model, max_cache_len=max(map(len, prompts)) + 16, tokenizer=engine.tokenizer,
                           compile=False, batch_size=2, batched_step=enabled)
        tokens = dec.generate_rows(prompts, gen, engine._processors(gen), engine.end_ids)
        return tokens, dec.step_forward, dec

    with torch.no_grad():
        out["plain"], out["plain_forward"], _ = run(False)
        sk.rms_norm_linear, sk.residual_linear = counting("rms_norm_linear"), counting("residual_linear")
        bs._norm_qkv_rope = CountedLaunch()
        out["ours"], out["ours_forward"], dec = run(True)
        sk.rms_norm_linear, sk.residual_linear = wrapped["rms_norm_linear"], wrapped["residual_linear"]
        bs._norm_qkv_rope = qkv_kernel
        out["calls"] = {**ops, "norm_qkv_rope": len(qkv_calls)}
        out["batch1"] = [_FastDecoder(model, max_cache_len=len(p) + 16, tokenizer=engine.tokenizer, compile=False)
                         .generate_rows([p], gen, engine._processors(gen), engine.end_ids)[0] for p in prompts]
        # one step's logits both ways, from the loop's final cache state (the step rewrites the same slot)
        state = dec._state
        ours = bs.forward(model, dec.cache, state.tokens, state.pos, state.used, state.first,
                          bs.rope_table(model, dec.max_cache_len))
        theirs = model_step_logits(model, dec.cache, state, dec.max_cache_len)
        out["logits_rel"] = _rel(ours, theirs.double())
        out["logits_argmax_equal"] = torch.equal(ours.argmax(-1), theirs.argmax(-1))
    out["layers"], out["new_tokens"] = model.config.num_hidden_layers, gen.max_new_tokens
    return out


if __name__ == "__main__":
    what = sys.argv[1]
    result = {"kernel": kernel_cases, "skinny": skinny_cases, "mass": mass_cases}[what]() \
        if what in ("kernel", "skinny", "mass") else \
        {"decode": decode_case, "skinny-decode": skinny_decode_case, "batched-step": batched_step_case}[what](sys.argv[2])
    if CUDA:
        result["device"] = torch.cuda.get_device_name()
    print(json.dumps(result))
