"""What Triton's interpreter does not compute (why common.HALF has no bfloat16 there)."""

import pytest
import torch
import torch.nn.functional as F

from reviewgpt.generate import skinny_linear as sk

from .common import INTERPRETED, rel


@pytest.mark.skipif(not INTERPRETED, reason="compiled on the GPU: bfloat16 is in the kernel cases")
def test_the_interpreter_still_gets_bfloat16_wrong():
    """The interpreter keeps bfloat16 as numpy uint16 and computes on the integers: the few-row
    kernel's product is off by orders of magnitude (5e11 relative in triton 3.9), no error raised.
    When this fails, a triton release computes bfloat16 in the interpreter: add it to common.HALF."""
    torch.manual_seed(0)
    x, w = torch.randn(2, 512, dtype=torch.bfloat16), torch.randn(96, 512, dtype=torch.bfloat16) / 512 ** 0.5
    ref = F.linear(x.double(), w.double())
    assert rel(sk.skinny_linear(x, w, None, sk.Launch(32, 128, 1, 4, 2)), ref) > 1.0, \
        "Triton's interpreter now computes bfloat16: add torch.bfloat16 to tests/kernels/common.py's HALF"
