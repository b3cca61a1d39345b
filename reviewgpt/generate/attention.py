"""Decode attention for the static-cache fast path (registered with transformers as an attention).

With one query token per sequence, the attention reads the whole static cache (K and V of every
slot) for one dot product per head: it is bound by reading the cache. transformers' SDPA
integration expands K/V to all query heads (`repeat_kv`) whenever a mask is passed, which a
static cache always needs; that copy and the kernel SDPA then picks took ~128 us per layer at a
12k cache on an H100 (11 ms decode steps). `scaled_dot_product_attention(..., enable_gqa=True)`
reads each K/V head once for its query-head group and, with the boolean mask, measured 27-30 us
per layer for the same cache (reading it takes ~17 us). On CUDA with Triton, one query token goes
to `decode_attention` (split-KV, reads only the slots before `decode_slots_used`; the engine's
decode step passes that and each row's first slot through the model's kwargs): see that module.
Prefill and training (more than one query token) keep the stock SDPA path and its kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from reviewgpt.generate import decode_attention

NAME = "sdpa_gqa_decode"  # one query token in the split-KV Triton kernel where it runs
NAME_SDPA = "sdpa_gqa"  # the same without the kernel (EngineConfig.split_kv_attention=False)


def sdpa_gqa_decode(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                    decode_slots_used: torch.Tensor | None = None, decode_first_slots: torch.Tensor | None = None,
                    split_kv: bool = True, **kwargs) -> tuple[torch.Tensor, None]:
    """query (b, heads, q_len, d); key/value (b, kv_heads, slots, d); a boolean mask (b, 1, q_len, slots)
    marks the slots each query may attend to. The engine's decode step also passes its window
    (`decode_first_slots` (b,), `decode_slots_used` (1,)): row r attends to slots first[r] ..
    used - 1, exactly what its mask says; the kernel then reads the window, not the mask.
    Returns (b, q_len, heads, d) like transformers' SDPA."""
    if query.shape[2] != 1 or dropout:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    if split_kv and decode_attention.available(query, key, value):
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        if decode_slots_used is not None and decode_first_slots is not None:
            return torch.ops.reviewgpt.decode_attention(query, key, value, None, decode_slots_used, scale,
                                                        decode_first_slots), None
        if (attention_mask is not None and attention_mask.dtype == torch.bool and attention_mask.dim() == 4
                and attention_mask.shape[0] in (1, query.shape[0]) and attention_mask.shape[1:3] == (1, 1)
                and attention_mask.shape[-1] == key.shape[2]):
            return torch.ops.reviewgpt.decode_attention(query, key, value, attention_mask, decode_slots_used,
                                                        scale, None), None
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=scaling,
                                         enable_gqa=key.shape[1] != query.shape[1])
    return out.transpose(1, 2).contiguous(), None


def sdpa_gqa(*args, **kwargs) -> tuple[torch.Tensor, None]:
    """`sdpa_gqa_decode` without the split-KV kernel: SDPA with enable_gqa for one query token."""
    return sdpa_gqa_decode(*args, split_kv=False, **kwargs)


for _name, _fn in ((NAME, sdpa_gqa_decode), (NAME_SDPA, sdpa_gqa)):
    AttentionInterface.register(_name, _fn)
    AttentionMaskInterface.register(_name, sdpa_mask)
