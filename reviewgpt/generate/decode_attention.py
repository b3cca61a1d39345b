"""Split-KV ("flash-decoding") attention for one query token per row over a static cache, in Triton.

Why not SDPA here: cuDNN's SDPA (enable_gqa + boolean mask) reads every slot of the static cache,
the empty ones after the current position too (the mask only hides them), and around its kernel
PyTorch runs a fill and a mask conversion. This kernel reads each K/V head once for its group of
query heads, only in the slots before `used` (a device tensor, so a growing length never changes
the graph), split over the key axis so that batch 1 still fills the GPU: stage 1 gives each split's
unnormalised output with its running max and sum, stage 2 combines the splits per head.
Measured on one H100 against cuDNN's SDPA (23.6 against 30.3 us a call at batch 1, 130.2 against
146.4 at batch 8; a one-kernel variant whose last split does the combine was slower):
"Split-KV decode attention" in the earlier results (git show 793115b:benchmarks/results/README.md).

Semantics: `scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=True)`
for q of one token, given that the mask is False at every slot >= used (a row with no allowed slot
gives 0, as SDPA does). The engine's decode step gives the window instead of the mask: row r may
attend to slots first[r] .. used - 1 (its prompt starts at first[r]), so no mask is built or read
(inductor then drops the step's mask: ~38 us a step at a 12k cache). Tested against SDPA on the
CPU in Triton's interpreter (tests/kernels/) and, end to end on the GPU, by benchmarks/check_decode.py.
"""

from __future__ import annotations

import torch

from reviewgpt.generate.hardware import tl, triton, triton_runs_on

BLOCK_H = 16  # query rows per program (tl.dot needs >= 16): one kv head's group, padded
# Keys per iteration, warps and pipeline stages: the fastest of a sweep on one H100 (earlier results, 793115b).
BLOCK_N, NUM_WARPS, NUM_STAGES = 64, 4, 2
COMBINE_WARPS = 4
TARGET_PROGRAMS = 512  # splits = this / (rows x kv heads), a power of two in [1, 128]


def available(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> bool:
    """Whether this kernel runs these inputs: CUDA of compute capability 8.0+ (or Triton's interpreter
    on the CPU), one query token, a GQA group of at most BLOCK_H heads, head_dim a power of two >= 16,
    the head dimension contiguous."""
    if not triton_runs_on(query):
        return False
    d = query.shape[-1]
    group = query.shape[1] // key.shape[1]
    return (query.shape[2] == 1 and query.shape[1] % key.shape[1] == 0 and group <= BLOCK_H
            and d >= 16 and d & (d - 1) == 0 and query.stride(-1) == key.stride(-1) == value.stride(-1) == 1)


def default_splits(rows: int, kv_heads: int, slots: int, block_n: int = BLOCK_N) -> int:
    """Splits of the key axis: about TARGET_PROGRAMS programs in all, no more splits than blocks of
    block_n slots (an emptier split only costs a program); a power of two in [1, 128]."""
    n = max(1, min(TARGET_PROGRAMS // (rows * kv_heads), -(-slots // block_n)))
    return min(128, 1 << (n.bit_length() - 1))


if triton is not None:

    @triton.jit
    def _decode_attention_partials(Q, K, V, Mask, First, Used, Acc, Max, Sum, scale, slots,
                                   s_qb, s_qh, s_kb, s_kh, s_ks, s_vb, s_vh, s_vs, s_mb,
                                   s_ab, s_ah, s_as, s_mxb, s_mxh,
                                   KV_HEADS: tl.constexpr, GROUP: tl.constexpr, SPLITS: tl.constexpr,
                                   HEAD_DIM: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
                                   DOT: tl.constexpr, WINDOW: tl.constexpr):
        """One (row, kv head, split): online softmax over its share of the slots before `used` that the
        row may attend to (WINDOW: from First[row] on; else where Mask is set), kept unnormalised with
        its running max and sum (combined by `_decode_attention_combine`)."""
        pid = tl.program_id(0)
        b = pid // KV_HEADS
        kvh = pid % KV_HEADS
        split = tl.program_id(1)
        used = tl.minimum(tl.load(Used), slots)  # never past the cache, whatever the caller says
        chunk = tl.cdiv(tl.cdiv(used, SPLITS), BLOCK_N) * BLOCK_N
        start = split * chunk
        stop = tl.minimum(start + chunk, used)
        rows = tl.arange(0, BLOCK_H)
        head = kvh * GROUP + rows
        in_group = rows < GROUP
        d = tl.arange(0, HEAD_DIM)
        q = tl.load(Q + b * s_qb + head[:, None] * s_qh + d[None, :], mask=in_group[:, None], other=0.0)
        m_i = tl.full([BLOCK_H], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_H], tl.float32)
        acc = tl.zeros([BLOCK_H, HEAD_DIM], tl.float32)
        k_base = K + b * s_kb + kvh * s_kh
        v_base = V + b * s_vb + kvh * s_vh
        for n in range(start, stop, BLOCK_N):
            slot = n + tl.arange(0, BLOCK_N)
            inside = slot < stop
            if WINDOW:
                ok = inside & (slot >= tl.load(First + b))
            else:
                ok = inside & (tl.load(Mask + b * s_mb + slot, mask=inside, other=0) != 0)
            k = tl.load(k_base + slot[:, None] * s_ks + d[None, :], mask=inside[:, None], other=0.0)
            s = tl.dot(q, tl.trans(k), input_precision=DOT) * (scale * 1.4426950408889634)  # x log2(e): exp2 below
            s = tl.where(ok[None, :], s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)  # no slot yet: keep exp2 finite
            alpha = tl.exp2(m_i - m_ref)
            p = tl.exp2(s - m_ref[:, None])
            l_i = l_i * alpha + tl.sum(p, 1)
            v = tl.load(v_base + slot[:, None] * s_vs + d[None, :], mask=inside[:, None], other=0.0)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT)
            m_i = m_new
        at = b * s_mxb + head * s_mxh + split
        tl.store(Max + at, m_i, mask=in_group)
        tl.store(Sum + at, l_i, mask=in_group)
        tl.store(Acc + b * s_ab + head[:, None] * s_ah + split * s_as + d[None, :], acc, mask=in_group[:, None])

    @triton.jit
    def _decode_attention_combine(Acc, Max, Sum, Out, s_ab, s_ah, s_as, s_mxb, s_mxh, s_ob, s_oh,
                                  HEADS: tl.constexpr, SPLITS: tl.constexpr, HEAD_DIM: tl.constexpr):
        """One (row, head): the splits' partial outputs weighted by their softmax mass."""
        b = tl.program_id(0) // HEADS
        h = tl.program_id(0) % HEADS
        sp = tl.arange(0, SPLITS)
        d = tl.arange(0, HEAD_DIM)
        m = tl.load(Max + b * s_mxb + h * s_mxh + sp)
        l = tl.load(Sum + b * s_mxb + h * s_mxh + sp)
        top = tl.max(m, 0)
        w = tl.where(m == float("-inf"), 0.0, tl.exp2(m - top))  # an empty split weighs nothing
        acc = tl.load(Acc + b * s_ab + h * s_ah + sp[:, None] * s_as + d[None, :])
        mass = tl.sum(l * w, 0)
        out = tl.where(mass > 0, tl.sum(acc * w[:, None], 0) / mass, 0.0)  # no allowed slot: 0, as SDPA
        tl.store(Out + b * s_ob + h * s_oh + d, out.to(Out.dtype.element_ty))


def decode_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
                     used: torch.Tensor | None, scale: float, first: torch.Tensor | None = None,
                     splits: int | None = None, block_n: int = BLOCK_N, num_warps: int = NUM_WARPS,
                     num_stages: int = NUM_STAGES) -> torch.Tensor:
    """query (b, heads, 1, d); key/value (b, kv_heads, slots, d); used: a 1-element integer tensor
    (None: all slots). Which slots before `used` a row attends to: `mask` (b or 1, 1, 1, slots)
    boolean, False at every slot >= used; or, with mask None, `first` (b,) integer: slots first[r]
    on. Returns (b, 1, heads, d) in query's dtype (the layout transformers' attention functions return)."""
    b, heads, _, d = query.shape
    kv_heads, slots = key.shape[1], key.shape[2]
    splits = splits or default_splits(b, kv_heads, slots, block_n)
    assert splits & (splits - 1) == 0, "splits: a power of two (the combine's tl.arange)"
    if used is None:
        used = torch.full((1,), slots, dtype=torch.int32, device=query.device)
    window = mask is None
    if window:
        assert first is not None and first.shape == (b,), "first: (b,) when no mask is given"
        mask = first  # not read (WINDOW)
    else:
        assert mask.shape[0] in (1, b) and mask.shape[-1] == slots, "mask: (b or 1, 1, 1, slots)"
        mask = mask.reshape(mask.shape[0], slots)
        if mask.stride(-1) != 1:
            mask = mask.contiguous()
        mask = mask.view(torch.uint8)
        first = used  # not read
    acc = torch.empty(b, heads, splits, d, dtype=torch.float32, device=query.device)
    top = torch.empty(b, heads, splits, dtype=torch.float32, device=query.device)
    total = torch.empty_like(top)
    out = torch.empty(b, 1, heads, d, dtype=query.dtype, device=query.device)
    _decode_attention_partials[(b * kv_heads, splits)](
        query, key, value, mask, first, used, acc, top, total, scale, slots,
        query.stride(0), query.stride(1), key.stride(0), key.stride(1), key.stride(2),
        value.stride(0), value.stride(1), value.stride(2), mask.stride(0) if not window and mask.shape[0] > 1 else 0,
        acc.stride(0), acc.stride(1), acc.stride(2), top.stride(0), top.stride(1),
        KV_HEADS=kv_heads, GROUP=heads // kv_heads, SPLITS=splits, HEAD_DIM=d, BLOCK_H=BLOCK_H, BLOCK_N=block_n,
        DOT="ieee" if query.dtype == torch.float32 else "tf32",  # float32 models: no TF32 rounding
        WINDOW=window,
        num_warps=num_warps, num_stages=num_stages)
    _decode_attention_combine[(b * heads,)](
        acc, top, total, out, acc.stride(0), acc.stride(1), acc.stride(2), top.stride(0), top.stride(1),
        out.stride(0), out.stride(2), HEADS=heads, SPLITS=splits, HEAD_DIM=d, num_warps=COMBINE_WARPS)
    return out


@torch.library.custom_op("reviewgpt::decode_attention", mutates_args=())
def decode_attention_op(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
                        used: torch.Tensor | None, scale: float, first: torch.Tensor | None) -> torch.Tensor:
    """`decode_attention` as one opaque op in the compiled step (its launches land in the CUDA graph)."""
    return decode_attention(query, key, value, mask, used, scale, first)


@decode_attention_op.register_fake
def _(query, key, value, mask, used, scale, first):
    b, heads, _, d = query.shape
    return query.new_empty(b, 1, heads, d)
