"""Which kernel each linear layer of the fast decode path runs on: the one owner of that choice.

- One row (batch 1; `EngineConfig.one_row_kernel_layers`): with coordinate-descent tuning (engine.DECODE_COMPILE_OPTIONS) inductor writes
  each one-row product as its own Triton reduction, fused with the RMSNorm before it, and tunes it
  at each compilation. o_proj and down_proj have no RMSNorm to fuse, and their tuned reductions
  varied between compilations (o_proj 12.7-14.8 us a layer, down_proj 42.4-53.9); they go to
  skinny_linear.py's kernel, behind an op inductor cannot see into: the step alone took 6.47 ms
  against 6.63 with o_proj on inductor and down_proj on cuBLAS (the previous routing), 153.2
  against 149.5 tok/s end to end in the same process ("onerow" in git show 793115b:benchmarks/results/README.md).
- 2-16 rows (the batched eval step): every linear on skinny_linear.py's kernel, which reads the
  weights faster than cuBLAS's kernels for so few rows.
- More rows (prefill): F.linear, cuBLAS.
The routing is in the model's forward, so the eager paths of a model routed for fast decoding
(prefill, the generate() fallback) take the same kernels for the same row counts; `unroute` gives a
model back its plain F.linear (the engine does when fast decoding is turned off). 4-bit layers and
LoRA's own small matrices keep their kernels.
"""

from __future__ import annotations

import types
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from reviewgpt.config import EngineConfig
from reviewgpt.generate import skinny_linear as skinny

def _forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    rows = x.numel() // x.shape[-1]  # static inside the compiled step: the choice is made when traced
    if (rows > 1 or self._one_row_on_kernel) and skinny.available(x, self.weight, self.bias):
        return torch.ops.reviewgpt.skinny_linear(x, self.weight, self.bias)
    return F.linear(x, self.weight, self.bias)


def _plain_linears(model: nn.Module):
    for name, module in model.named_modules():
        parts = name.split(".")
        if type(module) is nn.Linear and not any(p.startswith("lora_") for p in parts):
            yield (parts[-2] if parts[-1] == "base_layer" and len(parts) > 1 else parts[-1]), module


def route_decode_linears(model: nn.Module, one_row: Sequence[str] = EngineConfig.one_row_kernel_layers
                         ) -> dict[str, int]:
    """Give every plain nn.Linear of `model` (a peft LoRA wrapper's base layer included, LoRA's own
    A/B matrices not) the routing above; `one_row` names the layers (by attribute name) that leave
    inductor for the kernel at one row too. Returns how many layers were routed, and how many of them
    take the Triton kernel at one row."""
    counts = {"routed": 0, "one_row_on_triton": 0}
    for owner, module in _plain_linears(model):
        module._one_row_on_kernel = owner in one_row
        module.forward = types.MethodType(_forward, module)
        counts["routed"] += 1
        counts["one_row_on_triton"] += module._one_row_on_kernel
    return counts


def unroute(model: nn.Module) -> int:
    """Undo `route_decode_linears`: every plain linear back on nn.Linear's own forward. Returns how many."""
    undone = 0
    for _, module in _plain_linears(model):
        if "forward" in vars(module):
            del module.forward
            undone += 1
    return undone
