"""What this machine can run: CUDA, bitsandbytes, flash-attn. One place, shared by engine and training,
so both choose the same attention kernel and say the same thing when they fall back."""

from __future__ import annotations

import importlib.util
import os

import torch

try:  # the GPU decode path's kernels (decode_attention, skinny_linear)
    import triton
    import triton.language as tl
except ImportError:  # CPU installs: those modules define no kernels and say they do not apply
    triton = tl = None

# TRITON_INTERPRET=1: Triton runs the kernels in Python on CPU tensors (how the tests run them; numpy
# has no bfloat16, so there in float16/float32). Read by triton when it is imported, above.
TRITON_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


@torch.compiler.assume_constant_result  # run once when traced: a CUDA query inside the step breaks its graph
def ampere_or_newer(device: torch.device) -> bool:
    """Compute capability 8.0+: what Triton's tl.dot in bf16 needs (the decode step's Triton kernels)."""
    return torch.cuda.get_device_capability(device)[0] >= 8


def triton_runs_on(*tensors: torch.Tensor) -> bool:
    """Whether the decode path's Triton kernels can take these tensors: Triton is installed, and they
    are on a CUDA GPU of compute capability 8.0+ (or Triton's interpreter runs the kernels on the CPU)."""
    if triton is None:
        return False
    if TRITON_INTERPRETED:
        return True
    for t in tensors:  # a plain loop: traced by dynamo inside the compiled step, no generator
        if not (t.is_cuda and ampere_or_newer(t.device)):
            return False
    return True


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def choose_attention(requested: str, cuda: bool, notes: list[str]) -> str:
    """'auto' -> FlashAttention-2 when flash_attn is importable on a GPU, else PyTorch SDPA (noted)."""
    if requested != "auto":
        return requested
    if cuda and has_module("flash_attn"):
        return "flash_attention_2"
    if cuda:
        notes.append("flash-attn is not installed: using PyTorch SDPA attention")
    return "sdpa"


def can_quantize_4bit(cuda: bool, notes: list[str]) -> bool:
    if not cuda:
        notes.append("4-bit NF4 needs a CUDA GPU; none found")
        return False
    if not has_module("bitsandbytes"):
        notes.append("bitsandbytes is not installed: 4-bit NF4 unavailable")
        return False
    return True


def nf4_config():
    """NF4 with double quantisation and bf16 compute (QLoRA's settings), for loading and training."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)
