"""Which kernel each linear layer of the compiled decode step runs on: the one owner of that choice.

- One row (batch 1): with coordinate-descent tuning (engine.DECODE_COMPILE_OPTIONS) inductor writes
  each one-row product as its own Triton reduction and tunes it at each compilation. down_proj
  (4,096 x 14,336, after SiLU(gate) x up) is the exception: three compilations of the same step on
  H100s gave 42.4, 44.9 and 53.9 us a layer for its reduction, a 0.37 ms spread in a 6.5 ms step,
  while cuBLAS took 42.9-43.0 + 1.8-1.9 us (split-K reduction) in all five profiled steps. Behind
  an op inductor cannot see into (`cublas_linear`), down_proj stays on cuBLAS.
- 2-16 rows (the batched eval step): skinny_linear.py's Triton kernel, which reads the weights
  faster than cuBLAS's kernels for so few rows (an opaque op too, `skinny_linear`).
- More rows (prefill): F.linear, cuBLAS.
Figures: benchmarks/results/README.md. 4-bit layers and LoRA's own small matrices keep their kernels.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn

from reviewgpt.generate import skinny_linear as skinny

KEEP_ON_CUBLAS = ("down_proj",)  # at one row


@torch.library.custom_op("reviewgpt::cublas_linear", mutates_args=())
def cublas_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """F.linear as one opaque op: inductor calls it as it is instead of decomposing it."""
    return F.linear(x, weight, bias)


@cublas_linear.register_fake
def _(x, weight, bias):
    return x.new_empty(*x.shape[:-1], weight.shape[0])


def _forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    rows = x.numel() // x.shape[-1]  # static inside the compiled step: the choice is made when traced
    if rows == 1 and self._one_row_on_cublas:
        return torch.ops.reviewgpt.cublas_linear(x, self.weight, self.bias)
    if 2 <= rows <= skinny.MAX_ROWS and skinny.available(x, self.weight):
        return torch.ops.reviewgpt.skinny_linear(x, self.weight, self.bias)
    return F.linear(x, self.weight, self.bias)


def route_decode_linears(model: nn.Module, one_row_on_cublas: tuple[str, ...] = KEEP_ON_CUBLAS) -> dict[str, int]:
    """Give every plain nn.Linear of `model` (a peft LoRA wrapper's base layer included, LoRA's own
    A/B matrices not) the routing above; `one_row_on_cublas` names the layers kept on cuBLAS at one
    row. Returns how many layers were routed, and how many of them are kept on cuBLAS at one row."""
    routed = kept = 0
    for name, module in model.named_modules():
        parts = name.split(".")
        if type(module) is not nn.Linear or any(p.startswith("lora_") for p in parts):
            continue
        owner = parts[-2] if parts[-1] == "base_layer" and len(parts) > 1 else parts[-1]
        module._one_row_on_cublas = owner in one_row_on_cublas
        module.forward = types.MethodType(_forward, module)
        routed += 1
        kept += module._one_row_on_cublas
    return {"routed": routed, "one_row_on_cublas": kept}
