"""tests/kernels run Triton's kernels for real: in the interpreter on CPU tensors (TRITON_INTERPRET=1
set before python starts: `.ci/run`'s second command, `TRITON_INTERPRET=1 python3 -m pytest tests/kernels`)
or compiled on a CUDA GPU (then also collected by the main session). Anything else stops the session
here, before a test is collected: neither a silent pass nor a silent test of the other path."""

import pytest
import torch

from .common import INTERPRETED

if not INTERPRETED and not torch.cuda.is_available():
    raise pytest.UsageError("tests/kernels run in Triton's interpreter or on a CUDA GPU; there is no GPU here: "
                            "run them as `TRITON_INTERPRET=1 python3 -m pytest tests/kernels`")

from triton.runtime.interpreter import InterpretedFunction  # noqa: E402  (no triton: an error here, not a skip)

from reviewgpt.generate import decode_attention, hardware, skinny_linear  # noqa: E402

KERNELS = [decode_attention._decode_attention_partials, decode_attention._decode_attention_combine,
           skinny_linear._skinny_linear_kernel, skinny_linear._sum_splits]
if hardware.TRITON_INTERPRETED != INTERPRETED or any(isinstance(k, InterpretedFunction) != INTERPRETED
                                                     for k in KERNELS):
    raise pytest.UsageError(f"TRITON_INTERPRET={int(INTERPRETED)} but the kernels were decorated "
                            f"{'compiled' if INTERPRETED else 'interpreted'} (set it before python starts, "
                            "not inside the session)")
