"""Products the compiled decode step leaves to cuBLAS.

With coordinate-descent tuning (engine.DECODE_COMPILE_OPTIONS) inductor writes every one-row product
as its own Triton reduction and tunes it at each compilation. For down_proj (4,096 x 14,336, after
SiLU(gate) x up) three compilations of the same step on H100s gave 42.4, 44.9 and 53.9 us a layer,
a 0.37 ms spread in a 6.5 ms step; cuBLAS took 42.9-43.0 + 1.8-1.9 (split-K reduction) in all five
profiled steps (benchmarks/results/README.md). Behind an op inductor cannot see into, down_proj stays on cuBLAS.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn

KEEP_ON_CUBLAS = ("down_proj",)


@torch.library.custom_op("reviewgpt::cublas_linear", mutates_args=())
def cublas_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """F.linear as one opaque op: inductor calls it as it is instead of decomposing it."""
    return F.linear(x, weight, bias)


@cublas_linear.register_fake
def _(x, weight, bias):
    return x.new_empty(*x.shape[:-1], weight.shape[0])


def _forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return torch.ops.reviewgpt.cublas_linear(x, self.weight, self.bias)


def keep_on_cublas(model: nn.Module, names: tuple[str, ...] = KEEP_ON_CUBLAS) -> int:
    """Route every plain nn.Linear named in `names` (or a peft LoRA wrapper's base layer of one) through
    `cublas_linear`; 4-bit layers keep their own kernels. Returns how many were routed."""
    routed = 0
    for name, module in model.named_modules():
        parts = name.split(".")
        owner = parts[-2] if parts[-1] == "base_layer" and len(parts) > 1 else parts[-1]
        if type(module) is nn.Linear and owner in names:
            module.forward = types.MethodType(_forward, module)
            routed += 1
    return routed
