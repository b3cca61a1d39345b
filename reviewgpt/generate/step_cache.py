"""The fast decoder's static KV cache: every full-attention layer writes the decode step's tokens at
one slot the step advances once a token (`engine._State.pos`)."""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import StaticCache, StaticLayer


class StepSlotLayer(StaticLayer):
    """transformers' StaticLayer writing the decode step's tokens at the step's slot (`slot`: one
    tensor for all layers, _State.pos, which the step advances once a token) instead of at a counter
    of its own that each layer advances: that counter cost a kernel a layer a token (32 `add_copy_`
    kernels a step of 1.1-1.2 us each, plus their gaps; run 10 of the H100 results in git history, 793115b)."""

    slot: torch.Tensor | None = None  # (1,) long: the slot this step writes

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if self.slot is None:
            return super().update(key_states, value_states, *args, **kwargs)
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n = key_states.shape[-2]  # 1 in the decode step (static when traced: no arange there)
        at = self.slot if n == 1 else self.slot + torch.arange(n, device=self.slot.device)
        self.keys.index_copy_(2, at, key_states)
        self.values.index_copy_(2, at, value_states)
        return self.keys, self.values


class StepSlotCache(StaticCache):
    """A StaticCache whose full-attention layers are StepSlotLayers; other layer kinds (sliding
    windows) keep their own counters, which `prefilled` sets after the prefill's copy."""

    def __init__(self, config: Any, max_cache_len: int) -> None:
        super().__init__(config=config, max_cache_len=max_cache_len)
        self.layers = [StepSlotLayer(max_cache_len=max_cache_len) if type(layer) is StaticLayer else layer
                       for layer in self.layers]

    def write_at(self, slot: torch.Tensor) -> None:
        for layer in self.layers:
            if isinstance(layer, StepSlotLayer):
                layer.slot = slot

    def prefilled(self, width: int) -> None:
        """The prompts fill slots up to `width`: where layers with their own counter write next."""
        for layer in self.layers:
            if not isinstance(layer, StepSlotLayer):
                layer.cumulative_length.fill_(width)
