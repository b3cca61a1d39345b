"""The batched decode step's forward (reviewgpt/generate/batched_step.py): its folded kernels against
the eager ops, then the whole step against the model's own forward. In Triton's interpreter on the CPU
(TRITON_INTERPRET=1) or compiled on a CUDA GPU; float16 both ways (bfloat16 is not computed by the
interpreter, see common.HALF)."""

import torch
import torch.nn.functional as F

from .common import DEVICE, rel, tiny_engine

HALF = dict(dtype=torch.float16, device=DEVICE)
EPS = 1e-5


def _rms(t, weight):
    """LlamaRMSNorm as transformers computes it, in t's dtype."""
    var = t.float().pow(2).mean(-1, keepdim=True)
    return weight * (t.float() * torch.rsqrt(var + EPS)).to(t.dtype)


def _inputs():
    """3 rows of 256 features, an RMSNorm weight, a 96 x 256 weight, and the rows' sums of squares in
    3 partial pieces (as a previous product's epilogue leaves them)."""
    torch.manual_seed(0)
    x = torch.randn(3, 256, **HALF)
    g = (1 + 0.1 * torch.randn(256, device=DEVICE)).to(torch.float16)
    w = torch.randn(96, 256, **HALF) / 16
    sq = x.float().pow(2).view(3, 4, 64).sum(-1)[:, :3].contiguous()
    sq[:, 2] += x.float().pow(2)[:, 192:].sum(-1)
    return x, g, w, sq


def test_folded_kernels_compute_the_eager_ops():
    """RMSNorm folded into the product (row sums of squares from partials), SiLU x up into a fused
    gate|up's epilogue, the residual add into the product's epilogue: as close to float64 as the
    eager float16 ops (x1.2 + 1e-5); the residual product's partial sums of squares add up to its
    output's."""
    from reviewgpt.generate import skinny_linear as sk

    x, g, w, sq = _inputs()
    launch = sk.Launch(32, 64, 1, 4, 2)
    ref = F.linear(_rms(x.double(), g.double()), w.double())
    ours, eager = rel(sk.rms_norm_linear(x, g, sq, EPS, w, launch=launch), ref), rel(F.linear(_rms(x, g), w), ref)
    assert ours <= 1.2 * eager + 1e-5, ("norm", ours, eager)
    res = torch.randn(3, 96, **HALF)
    h, parts = sk.residual_linear(x, w, res, launch)
    ref = res.double() + F.linear(x.double(), w.double())
    ours, eager = rel(h, ref), rel(res + F.linear(x, w), ref)
    assert ours <= 1.2 * eager + 1e-5, ("residual", ours, eager)
    assert parts.shape == (3, 3)
    squares = h.float().pow(2).sum(1)
    assert ((parts.sum(1) - squares).abs() / squares).max().item() < 1e-5
    w_gu = torch.randn(2 * 96, 256, **HALF) / 16  # gate|up as fused.py stacks them
    act = sk.rms_norm_linear(x, g, sq, EPS, w_gu, True, launch=launch)
    g64, u64 = F.linear(_rms(x.double(), g.double()), w_gu.double()).chunk(2, dim=1)
    ref = F.silu(g64) * u64
    gate, up = F.linear(_rms(x, g), w_gu).chunk(2, dim=1)
    ours, eager = rel(act, ref), rel(F.silu(gate) * up, ref)
    assert ours <= 1.2 * eager + 1e-5, ("glu", ours, eager)
    assert act.shape == (3, 96)


def test_norm_qkv_rope_computes_the_eager_ops_and_writes_one_cache_slot():
    """RMSNorm + q|k|v + RoPE + the K/V cache write against the eager ops (apply_rotary_pos_emb, the
    cache copy): q, k and v each as close to float64 as the eager float16 ops (x1.2 + 1e-5); no other
    cache slot written."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    import reviewgpt.generate.batched_step  # noqa: F401  (registers torch.ops.reviewgpt.norm_qkv_rope)

    x, g, _, sq = _inputs()
    heads, kv_heads, d, slots = 4, 2, 32, 10
    w_qkv = torch.randn((heads + 2 * kv_heads) * d, 256, **HALF) / 16
    rope = torch.randn(2, slots, d, **HALF)  # cos, sin by position
    first = torch.tensor([0, 3, 7], device=DEVICE)  # row r's position at slot 7: 7 - first[r]
    cos, sin = rope[0, 7 - first], rope[1, 7 - first]
    keys, values = torch.zeros(3, kv_heads, slots, d, **HALF), torch.zeros(3, kv_heads, slots, d, **HALF)
    q = torch.ops.reviewgpt.norm_qkv_rope(x, g, sq, EPS, w_qkv, rope, first, keys, values,
                                          torch.tensor([7], device=DEVICE), heads)

    def split_rope(normed, weight, c, s_):
        qs, ks, vs = F.linear(normed, weight).view(3, 1, -1, d).transpose(1, 2).split([heads, kv_heads, kv_heads], 1)
        return (*apply_rotary_pos_emb(qs, ks, c[:, None], s_[:, None]), vs)

    refs = split_rope(_rms(x.double(), g.double()), w_qkv.double(), cos.double(), sin.double())
    eager = split_rope(_rms(x, g), w_qkv, cos, sin)
    ours = (q, keys[:, :, 7:8], values[:, :, 7:8])
    for name, o, e, r in zip("qkv", ours, eager, refs):
        assert rel(o, r) <= 1.2 * rel(e, r) + 1e-5, (name, rel(o, r), rel(e, r))
    assert q.shape == (3, 4, 1, 32)
    others = [i for i in range(slots) if i != 7]
    assert not keys[:, :, others].any() and not values[:, :, others].any()


def test_batched_step_computes_the_models_forward(model_dirs, monkeypatch):
    """The tiny model's step (a tiny model with 32-dim heads: the q|k|v program takes >= 16 dims of
    each half of a head), fused and routed as on the GPU: logits within 1e-2 of its own forward's at
    the same cache state, with the same argmax; the engine's decode loop at batch 2 runs this forward
    (a q|k|v+RoPE product, a gate|up one and 2 residual products a layer a step, plus lm_head's) and
    writes the greedy tokens the model's forward writes, and those of each prompt decoded alone at
    batch 1."""
    from reviewgpt.config import GenerationConfig
    from reviewgpt.generate import batched_step as bs, skinny_linear as sk
    from reviewgpt.generate.engine import _FastDecoder, model_step_logits, prepare_linears
    from reviewgpt.testing.tiny_model import build_tiny_llama

    engine, prompts = tiny_engine(model_dirs / "base")
    # the saved tiny model's heads have 16 dims; the batched step's q|k|v program needs >= 32
    torch.manual_seed(0)
    model = build_tiny_llama(engine.tokenizer, seed=3, hidden=128, intermediate=256).half().to(DEVICE)
    prepare_linears(model)
    gen = GenerationConfig(max_new_tokens=12, do_sample=False, suppression=0.95, ignore_eos=True)
    ops = {"rms_norm_linear": 0, "residual_linear": 0}  # norm_qkv_rope: counted below
    qkv_kernel = bs._norm_qkv_rope
    qkv_calls = []

    class CountedLaunch:  # stands in for the jitted kernel: counts launches, then launches it
        def __getitem__(self, grid):
            qkv_calls.append(grid)
            return qkv_kernel[grid]

    def counting(name):
        wrapped = getattr(sk, name)

        def call(*args, **kwargs):
            ops[name] += 1
            return wrapped(*args, **kwargs)
        return call

    def run(enabled: bool):
        dec = _FastDecoder(model, max_cache_len=max(map(len, prompts)) + 16, tokenizer=engine.tokenizer,
                           compile=False, batch_size=2, batched_step=enabled)
        return dec.generate_rows(prompts, gen, engine._processors(gen), engine.end_ids), dec

    with torch.no_grad():
        plain, plain_dec = run(False)
        with monkeypatch.context() as patched:
            for name in ops:
                patched.setattr(sk, name, counting(name))
            patched.setattr(bs, "_norm_qkv_rope", CountedLaunch())
            ours, dec = run(True)
        batch1 = [_FastDecoder(model, max_cache_len=len(p) + 16, tokenizer=engine.tokenizer, compile=False)
                  .generate_rows([p], gen, engine._processors(gen), engine.end_ids)[0] for p in prompts]
        # one step's logits both ways, from the loop's final cache state (the step rewrites the same slot)
        state = dec._state
        step_logits = bs.forward(model, dec.cache, state.tokens, state.pos, state.used, state.first,
                                 bs.rope_table(model, dec.max_cache_len))
        model_logits = model_step_logits(model, dec.cache, state, dec.max_cache_len)
    assert dec.step_forward == "batched_step"
    assert plain_dec.step_forward.startswith("model (off")
    layers, steps = model.config.num_hidden_layers, gen.max_new_tokens - 1
    assert {**ops, "norm_qkv_rope": len(qkv_calls)} == {
        "rms_norm_linear": (layers + 1) * steps, "residual_linear": 2 * layers * steps, "norm_qkv_rope": layers * steps}
    assert rel(step_logits, model_logits.double()) < 1e-2
    assert torch.equal(step_logits.argmax(-1), model_logits.argmax(-1))
    assert ours == plain == batch1  # and each prompt decoded alone (batch 1: the model's forward)
    assert len(ours) == 2 and all(len(row) == gen.max_new_tokens for row in ours)
