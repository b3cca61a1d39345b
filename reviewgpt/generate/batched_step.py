"""The batched decode step's model forward (2-16 rows: the eval's path), 6 kernels a decoder layer.

Why not the model's own forward here: at 8 rows the step is bound by reading weights and K/V, and
between those products transformers' Llama layer runs small kernels, each costing ~3 us of the GPU
waiting on it (two RMSNorms with their residual adds, RoPE on q and on k with the cache write, the
v cache write, SiLU x up: 7 a layer, "Few-row Triton linear" in git show 793115b:benchmarks/results/README.md). Here
they are folded into the products' kernels (skinny_linear.py): each RMSNorm into the product after
it (its row sums of squares come from the kernel before, as float32 partials), each residual add
into the epilogue of o_proj and down_proj, SiLU x up into gate|up's epilogue (a program computes a
tile of gate and the same tile of up), RoPE and the K/V cache writes into q|k|v's epilogue (a
program computes the same dims of both halves of a head). A layer: RMSNorm+q|k|v+RoPE+cache write,
attention (2 kernels), o_proj+add, RMSNorm+gate|up+SiLU x up, down_proj+add. (SiLU x up in
down_proj's loads instead: 274 against 44 us a call on an H100.)

Each fold rounds to bf16/fp16 where the eager op does (LlamaRMSNorm, apply_rotary_pos_emb,
act_fn(gate) * up, the adds), so the step computes what the model's forward computes up to the order
of float32 sums and Triton's float32 rsqrt and sigmoid.
`supports` says when it applies: a Llama-architecture model in 16-bit whose q|k|v and gate|up are
fused (fused.py) and not wrapped by LoRA (an unmerged adapter, NF4: the model's forward), a
static cache whose every layer writes at the step's slot (step_cache.StepSlotLayer). Tested against the
model's forward in Triton's interpreter (tests/kernels/test_batched_step.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reviewgpt.generate import decode_attention, skinny_linear as skinny
from reviewgpt.generate.fused import _Rows
from reviewgpt.generate.hardware import tl, triton
from reviewgpt.generate.step_cache import StepSlotLayer


if triton is not None:
    from reviewgpt.generate.skinny_linear import tile_products

    @triton.jit
    def _norm_qkv_rope(X, W, G, SqIn, n_parts, eps, Rope, First, Q, Keys, Values, Slot, M, K,
                       s_xm, s_wn, s_sqi, s_rt, s_rp, s_q, s_kb, s_kh, s_ks,
                       HEADS: tl.constexpr, KV_HEADS: tl.constexpr, HEAD_DIM: tl.constexpr,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PARTS: tl.constexpr):
        """One program: BLOCK_N dims of one head of q|k|v and the same dims of its second half (the
        pairs RoPE rotates together), from LlamaRMSNorm(x) times the fused q|k|v weight. q and k
        rotated as apply_rotary_pos_emb rounds ((x cos) + (rotate_half(x) sin), each product rounded)
        with cos and sin from the table Rope at each row's position (Slot - First[row]); q to Q, k and
        v into the caches at slot Slot."""
        half: tl.constexpr = HEAD_DIM // 2
        pid = tl.program_id(0)
        head = pid // (half // BLOCK_N)
        d = (pid % (half // BLOCK_N)) * BLOCK_N + tl.arange(0, BLOCK_N)  # dims in the head's first half
        rows = tl.arange(0, BLOCK_M)
        cols = head * HEAD_DIM + d
        lo, hi = tile_products(X, W, G, SqIn, M, K, 0, K, n_parts, eps, s_xm, s_wn, s_sqi, rows, cols,
                               cols[:, None] >= 0, half, BLOCK_M, BLOCK_N, BLOCK_K, True, PARTS, True)
        dt = Q.dtype.element_ty
        lo = lo.to(dt)
        hi = hi.to(dt)
        row_ok = rows[:, None] < M
        slot = tl.load(Slot)
        if head < HEADS + KV_HEADS:  # q or k: rotate (rotate_half: (-hi, lo))
            position = slot - tl.load(First + rows, mask=rows < M, other=0)
            at = Rope + position[:, None] * s_rp + d[None, :]
            cos_lo = tl.load(at, mask=row_ok, other=0.0).to(tl.float32)
            cos_hi = tl.load(at + half, mask=row_ok, other=0.0).to(tl.float32)
            sin_lo = tl.load(at + s_rt, mask=row_ok, other=0.0).to(tl.float32)
            sin_hi = tl.load(at + s_rt + half, mask=row_ok, other=0.0).to(tl.float32)
            lo32, hi32 = lo.to(tl.float32), hi.to(tl.float32)
            lo = ((lo32 * cos_lo).to(dt).to(tl.float32) + (-hi32 * sin_lo).to(dt).to(tl.float32)).to(dt)
            hi = ((hi32 * cos_hi).to(dt).to(tl.float32) + (lo32 * sin_hi).to(dt).to(tl.float32)).to(dt)
        if head < HEADS:
            base = Q + rows[:, None] * s_q + head * HEAD_DIM + d[None, :]
        elif head < HEADS + KV_HEADS:
            base = Keys + rows[:, None] * s_kb + (head - HEADS) * s_kh + slot * s_ks + d[None, :]
        else:
            base = Values + rows[:, None] * s_kb + (head - HEADS - KV_HEADS) * s_kh + slot * s_ks + d[None, :]
        tl.store(base, lo, mask=row_ok)
        tl.store(base + half, hi, mask=row_ok)


def qkv_rope(x: torch.Tensor, norm_weight: torch.Tensor, squares: torch.Tensor, eps: float, weight: torch.Tensor,
             rope: torch.Tensor, first: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, slot: torch.Tensor,
             heads: int, launch: skinny.Launch | None = None) -> torch.Tensor:
    """An attention layer's input side for one token a row: q|k|v = LlamaRMSNorm(x) W^T (weight: the
    fused (heads + 2 kv_heads) x d rows), q and k rotated at the row's position slot - first[row] by
    `rope` (2, positions, d: `rope_table`'s cos and sin), k and v written into keys/values (b,
    kv_heads, slots, d) at `slot` (1,). `squares` (b, parts): x's row sums of squares
    (skinny_linear.residual_linear's). Returns the rotated q (b, heads, 1, d)."""
    b, k = x.shape
    kv_heads, d = keys.shape[1], keys.shape[3]
    assert weight.shape == ((heads + 2 * kv_heads) * d, k) and keys.stride() == values.stride() and keys.stride(3) == 1
    assert rope.shape[0] == 2 and rope.shape[2] == d and rope.stride(2) == 1 and first.shape == (b,)
    x, squares = x.contiguous(), squares.contiguous()
    launch = launch or skinny.paired_launch(weight)
    block_n = min(launch.block_n, d // 2)
    q = x.new_empty(b, heads, 1, d)
    _norm_qkv_rope[(weight.shape[0] // (2 * block_n),)](
        x, weight, norm_weight, squares, squares.shape[1], eps, rope, first, q, keys, values, slot, b, k,
        x.stride(0), weight.stride(0), squares.stride(0), rope.stride(0), rope.stride(1), q.stride(0), keys.stride(0),
        keys.stride(1), keys.stride(2), HEADS=heads, KV_HEADS=kv_heads, HEAD_DIM=d, BLOCK_M=skinny.MAX_ROWS, BLOCK_N=block_n,
        BLOCK_K=launch.block_k, PARTS=triton.next_power_of_2(squares.shape[1]), num_warps=launch.num_warps,
        num_stages=launch.num_stages)
    return q


@torch.library.custom_op("reviewgpt::norm_qkv_rope", mutates_args=("keys", "values"))
def norm_qkv_rope(x: torch.Tensor, norm_weight: torch.Tensor, squares: torch.Tensor, eps: float, weight: torch.Tensor,
                  rope: torch.Tensor, first: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, slot: torch.Tensor,
                  heads: int) -> torch.Tensor:
    """`qkv_rope` as one opaque op in the compiled batched step (it writes the caches in place)."""
    return qkv_rope(x, norm_weight, squares, eps, weight, rope, first, keys, values, slot, heads)


@norm_qkv_rope.register_fake
def _(x, norm_weight, squares, eps, weight, rope, first, keys, values, slot, heads):
    return x.new_empty(x.shape[0], heads, 1, keys.shape[3])


def supports(model: nn.Module, cache: Any, rows: int) -> str | None:
    """None when `forward` runs this model and cache at `rows` rows; else why not (the step then
    runs the model's own forward)."""
    if triton is None or not 2 <= rows <= skinny.MAX_ROWS:
        return f"{rows} rows" if triton is not None else "no Triton"
    if hasattr(model, "get_base_model"):  # a peft model: its LlamaForCausalLM (a LoRA wrapper is refused below)
        model = model.get_base_model()
    cfg = model.config
    if getattr(cfg, "model_type", None) != "llama" or getattr(cfg, "hidden_act", None) != "silu":
        return f"model type {getattr(cfg, 'model_type', None)} ({getattr(cfg, 'hidden_act', None)})"
    inner = getattr(model, "model", None)
    lm_head = getattr(model, "lm_head", None)
    if inner is None or not hasattr(inner, "rotary_emb") or type(lm_head) is not nn.Linear or lm_head.bias is not None:
        return "not a LlamaForCausalLM with a plain lm_head"
    rope_type = getattr(inner.rotary_emb, "rope_type", "default")
    if "dynamic" in rope_type or rope_type == "longrope":  # frequencies that depend on the sequence length
        return f"rope type {rope_type}"
    if not all(isinstance(layer, StepSlotLayer) for layer in cache.layers):
        return "a cache layer that does not write at the step's slot"
    x = inner.embed_tokens.weight[:rows]
    for layer in inner.layers:
        attn, mlp = layer.self_attn, layer.mlp
        parts = (attn.q_proj, attn.k_proj, attn.v_proj, mlp.gate_proj, mlp.up_proj)
        if not all(type(p) is _Rows for p in parts) or not hasattr(attn, "qkv_proj") or not hasattr(mlp, "gate_up_proj"):
            return "projections not fused, or wrapped by LoRA"
        linears = (attn.qkv_proj, attn.o_proj, mlp.gate_up_proj, mlp.down_proj)
        odd = next((m for m in linears if type(m) is not nn.Linear or m.bias is not None), None)
        if odd is not None:  # NF4's Linear4bit, a bias
            return f"a {type(odd).__name__} projection{' with a bias' if type(odd) is nn.Linear else ''}"
        if any(not skinny.available(x, m.weight) for m in linears) or not skinny.available(x, lm_head.weight):
            return "the few-row kernel does not take these weights"
        if any(skinny.launch_for(m.weight).split_k != 1 for m in (attn.o_proj, mlp.down_proj)):
            return "o_proj or down_proj launched with split K"
        q = x.new_empty(rows, cfg.num_attention_heads, 1, attn.head_dim)
        kv = x.new_empty(rows, cfg.num_key_value_heads, 1, attn.head_dim)
        if not decode_attention.available(q, kv, kv):
            return "the decode attention does not take these heads"
        if attn.head_dim < 32:  # a program's tile: >= 16 dims of each half of a head (tl.dot)
            return f"head_dim {attn.head_dim} < 32"
    return None


def rope_table(model: nn.Module, positions: int) -> torch.Tensor:
    """cos and sin (2, positions, head_dim) of the model's own rotary embedding at positions 0 ..
    positions - 1, in its dtype: computed once per decoder, read by the step's q|k|v kernel."""
    emb = model.get_input_embeddings().weight
    with torch.no_grad():
        cos, sin = model.model.rotary_emb(emb[:1, None], torch.arange(positions, device=emb.device)[None])
    return torch.stack([cos[0], sin[0]]).contiguous()


def forward(model: nn.Module, cache: Any, tokens: torch.Tensor, slot: torch.Tensor, used: torch.Tensor,
            first: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """The model's next-token logits (b, vocab) in float32 for tokens (b, 1) at cache slot `slot` (1,),
    writing their K/V there; row r attends to slots first[r] .. used - 1 (its position: slot - first[r];
    `rope`: `rope_table` over the cache's slots). Same inputs and result as the engine's call of the
    model's forward (see `supports`)."""
    inner, cfg = model.model, model.config
    heads = cfg.num_attention_heads
    h = inner.embed_tokens(tokens).flatten(1)  # (b, hidden): the residual stream
    squares = h.float().pow(2).sum(-1, keepdim=True)  # the first RMSNorm's sums of squares
    ops = torch.ops.reviewgpt
    for layer, kv in zip(inner.layers, cache.layers):
        attn, mlp = layer.self_attn, layer.mlp
        norm = layer.input_layernorm
        q = ops.norm_qkv_rope(h, norm.weight, squares, norm.variance_epsilon, attn.qkv_proj.weight, rope, first,
                              kv.keys, kv.values, slot, heads)
        out = ops.decode_attention(q, kv.keys, kv.values, None, used, attn.scaling, first)
        h, squares = ops.residual_linear(out.flatten(1), attn.o_proj.weight, h)
        norm = layer.post_attention_layernorm
        act = ops.rms_norm_linear(h, norm.weight, squares, norm.variance_epsilon, mlp.gate_up_proj.weight, True)
        h, squares = ops.residual_linear(act, mlp.down_proj.weight, h)
    logits = ops.rms_norm_linear(h, inner.norm.weight, squares, inner.norm.variance_epsilon, model.lm_head.weight,
                                 False)
    return logits.float()
