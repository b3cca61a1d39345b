"""Where the kernel tests run (conftest.py checks it before any test is collected): in Triton's
interpreter on CPU tensors when TRITON_INTERPRET=1 (`.ci/run`'s second pytest command), otherwise
compiled on a CUDA GPU. triton reads TRITON_INTERPRET when a kernel is decorated and
reviewgpt/generate/hardware.py when it is imported, so it is set for the whole process, not here."""

from __future__ import annotations

import os

import torch

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
DEVICE = "cpu" if INTERPRETED else "cuda"
# 16-bit dtypes the kernels are checked in: bfloat16 on the GPU only. Triton's interpreter (triton 3.9)
# keeps bfloat16 as numpy uint16 (numpy has no bfloat16) and does its arithmetic on those integers: no
# error is raised, loads, stores and casts are right, but x + x gives NaN, tl.dot garbage, and the
# kernels' outputs are off by a relative 5e9 (attention) and 5e11 (few-row linear); test_interpreter.py
# fails once a triton release computes it, the moment to add it here.
HALF = (torch.float16,) if INTERPRETED else (torch.bfloat16, torch.float16)

TINY_PAPERS = ("Title: A tiny paper\n\nAbstract: We test the kernel.", "Title: Another\n\nA longer text, " * 4)


def rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Relative error of x against a float64 reference (Frobenius norm)."""
    return ((x.double() - ref).norm() / ref.norm()).item()


def tiny_engine(model_dir):
    """The engine on the tiny saved model in float32 with SDPA, its model on DEVICE, nothing compiled:
    the decode loop's logic (`_FastDecoder(compile=False)`) on the kernels. Returns it and the two
    prompts' ids (different lengths: the shorter one left-padded at batch 2)."""
    from reviewgpt.config import EngineConfig
    from reviewgpt.generate.engine import load_engine

    engine = load_engine(EngineConfig(base_model=str(model_dir), local_files_only=True, max_prompt_tokens=256,
                                      max_new_tokens=16, precision="fp32", attn_implementation="sdpa",
                                      fast_decoding=False, warmup=False))
    engine.model.to(DEVICE)
    return engine, [engine.prompt_ids(text, "4") for text in TINY_PAPERS]
