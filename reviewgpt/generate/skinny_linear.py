"""y = x W^T + b for a few rows of x (1-16) against a large weight, in Triton: the decode step's linears.

Why not cuBLAS here: a decode step at a few rows is bound by reading the weights, and at 8 rows cuBLAS's
kernels read them at 2.2-2.8 TB/s on an H100 (o_proj 2.2, q|k|v 2.45, down 2.48, gate|up 2.69,
lm_head 2.77; engine_h100_gemv8.jsonl in git history, commit 793115b). This kernel streams W once in tiles of
BLOCK_N output features x BLOCK_K inputs (the rows of x padded to 16 for tl.dot), accumulates in
float32, adds the bias there, and when the output has too few tiles to fill the GPU can split K over
SPLIT_K programs whose float32 partials a second kernel sums. Which layers use it, at how many rows:
decode_linears.py. The launch settings for each shape were measured on one H100 (benchmarks/
the earlier benchmark's "skinny" part; git show 793115b:benchmarks/results/README.md) and are cut down to fit the shared
memory of smaller GPUs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from reviewgpt.generate.hardware import TRITON_INTERPRETED, tl, triton, triton_runs_on

MAX_ROWS = 16  # rows of x per program (tl.dot needs >= 16); more rows are not this kernel's


@dataclass(frozen=True)
class Launch:
    block_n: int = 64
    block_k: int = 256
    split_k: int = 1
    num_warps: int = 4
    num_stages: int = 4

    def shared_bytes(self, itemsize: int = 2) -> int:
        """Shared memory Triton asks for: (stages - 1) buffers of a weight tile and an x tile (the
        "Required" of its OutOfResources errors in the H100 sweep)."""
        return (self.num_stages - 1) * (self.block_n + MAX_ROWS) * self.block_k * itemsize


DEFAULT_LAUNCH = Launch()
# (out_features, in_features) -> the fastest launch settings at 8 rows on one H100 (the earlier benchmark in git history,
# "skinny" part; Llama-3.1-8B's q|k|v, o_proj, gate|up, down_proj and lm_head)
LAUNCHES: dict[tuple[int, int], Launch] = {
    (6144, 4096): Launch(32, 256, 1, 4, 3),
    (4096, 4096): Launch(32, 256, 1, 4, 4),
    (28672, 4096): Launch(64, 128, 1, 4, 3),
    (4096, 14336): Launch(32, 512, 1, 4, 4),
    (128256, 4096): Launch(32, 256, 1, 4, 6),
}


@functools.cache
def _shared_memory_limit(device_index: int) -> int:
    if TRITON_INTERPRETED:
        return 1 << 30
    return triton.runtime.driver.active.utils.get_device_properties(device_index)["max_shared_mem"]


def launch_for(weight: torch.Tensor, shared_limit: int | None = None, launch: Launch | None = None) -> Launch:
    """The measured settings for this weight's shape, else the default; then, while they ask for
    more shared memory than the GPU has (`shared_limit`, default: the weight's device's), fewer
    pipeline stages (down to 2), then a smaller K tile; then K's tile halved (down to 16) until it
    divides in_features (small models), without splitting K if it still does not."""
    launch = launch or LAUNCHES.get(tuple(weight.shape), DEFAULT_LAUNCH)
    if shared_limit is None:
        shared_limit = _shared_memory_limit(weight.device.index or 0) if weight.is_cuda else 1 << 30
    while launch.shared_bytes(weight.element_size()) > shared_limit and launch.block_k > 16:
        launch = (replace(launch, num_stages=launch.num_stages - 1) if launch.num_stages > 2
                  else replace(launch, block_k=launch.block_k // 2))
    k = weight.shape[-1]
    for split in (launch.split_k, 1):
        tile = launch.block_k
        while k % (tile * split) and tile > 16:
            tile //= 2
        if k % (tile * split) == 0:
            return replace(launch, block_k=tile, split_k=split)
    return replace(launch, block_k=tile, split_k=1)  # refused by `available`


if triton is not None:

    @triton.jit
    def _skinny_linear_kernel(X, W, Bias, Out, M, N, K, k_per_split, s_xm, s_wn, s_om, s_os,
                              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                              SPLIT_K: tl.constexpr, HAS_BIAS: tl.constexpr):
        """One (tile of BLOCK_N outputs, split of K): all rows of x against those weight rows, the
        weights streamed once."""
        pid_n = tl.program_id(0)
        split = tl.program_id(1)
        rows = tl.arange(0, BLOCK_M)
        cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        ks = tl.arange(0, BLOCK_K)
        k0 = split * k_per_split
        x_ptrs = X + rows[:, None] * s_xm + (k0 + ks)[None, :]
        w_ptrs = W + cols[:, None].to(tl.int64) * s_wn + (k0 + ks)[None, :]  # a weight may pass 2**31 elements
        row_ok = rows[:, None] < M
        col_ok = cols[:, None] < N
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for _ in range(0, k_per_split, BLOCK_K):  # k_per_split: a multiple of BLOCK_K (see launch_for)
            x = tl.load(x_ptrs, mask=row_ok, other=0.0)
            w = tl.load(w_ptrs, mask=col_ok, other=0.0, eviction_policy="evict_first")  # read once
            acc = tl.dot(x, tl.trans(w), acc)
            x_ptrs += BLOCK_K
            w_ptrs += BLOCK_K
        out_ptrs = Out + split * s_os + rows[:, None] * s_om + cols[None, :]
        ok = row_ok & (cols[None, :] < N)
        if SPLIT_K == 1:
            if HAS_BIAS:  # added in float32, rounded once (as F.linear)
                acc += tl.load(Bias + cols, mask=cols < N, other=0.0).to(tl.float32)[None, :]
            tl.store(out_ptrs, acc.to(Out.dtype.element_ty), mask=ok)
        else:  # float32 partials, summed by _sum_splits
            tl.store(out_ptrs, acc, mask=ok)

    @triton.jit
    def _sum_splits(Part, Bias, Out, total, n, s_ps, SPLIT_K: tl.constexpr, BLOCK: tl.constexpr,
                    HAS_BIAS: tl.constexpr):
        i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        ok = i < total
        acc = tl.zeros((BLOCK,), dtype=tl.float32)
        for s in tl.static_range(SPLIT_K):
            acc += tl.load(Part + s * s_ps + i, mask=ok, other=0.0)
        if HAS_BIAS:
            acc += tl.load(Bias + i % n, mask=ok, other=0.0).to(tl.float32)
        tl.store(Out + i, acc.to(Out.dtype.element_ty), mask=ok)


def available(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> bool:
    """Whether the kernel takes this product: Triton on a CUDA GPU of compute capability 8.0+ (or its
    interpreter), 1..MAX_ROWS rows, 16-bit floats, weight (out, in) with contiguous rows, a bias (if
    any) of the same dtype, in_features that the launch's K tile divides."""
    if not triton_runs_on(x, weight):
        return False
    rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
    if not (1 <= rows <= MAX_ROWS and x.dtype == weight.dtype and x.dtype in (torch.bfloat16, torch.float16)
            and weight.dim() == 2 and weight.stride(1) == 1 and (bias is None or bias.dtype == x.dtype)):
        return False
    launch = launch_for(weight, shared_limit=1 << 30)  # shared memory only shrinks tiles: divisibility holds
    return weight.shape[1] % (launch.block_k * launch.split_k) == 0


def skinny_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  launch: Launch | None = None) -> torch.Tensor:
    """F.linear(x, weight, bias) for x of 1..MAX_ROWS rows (any leading shape); see `available`."""
    n, k = weight.shape
    lead = x.shape[:-1]
    x2 = x.reshape(-1, k).contiguous()  # at most 16 rows: a copy is cheap, and row offsets stay small
    return _launch(x2, weight, bias, launch or launch_for(weight)).reshape(*lead, n)


def _launch(x2: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, launch: Launch) -> torch.Tensor:
    n, k = weight.shape
    m = x2.shape[0]
    assert 1 <= m <= MAX_ROWS and k % (launch.block_k * launch.split_k) == 0, (m, k, launch)
    assert bias is None or (bias.shape == (n,) and bias.dtype == x2.dtype and bias.device == x2.device)
    has_bias = bias is not None
    bias = bias if has_bias else weight  # not read
    grid = (triton.cdiv(n, launch.block_n), launch.split_k)
    common = dict(BLOCK_M=MAX_ROWS, BLOCK_N=launch.block_n, BLOCK_K=launch.block_k, SPLIT_K=launch.split_k,
                  HAS_BIAS=has_bias, num_warps=launch.num_warps, num_stages=launch.num_stages)
    out = torch.empty(m, n, dtype=x2.dtype, device=x2.device)
    if launch.split_k == 1:
        _skinny_linear_kernel[grid](x2, weight, bias, out, m, n, k, k, x2.stride(0), weight.stride(0), out.stride(0), 0,
                                    **common)
    else:
        part = torch.empty(launch.split_k, m, n, dtype=torch.float32, device=x2.device)
        _skinny_linear_kernel[grid](x2, weight, bias, part, m, n, k, k // launch.split_k, x2.stride(0),
                                    weight.stride(0), part.stride(1), part.stride(0), **common)
        block = 1024
        _sum_splits[(triton.cdiv(m * n, block),)](part, bias, out, m * n, n, part.stride(0), SPLIT_K=launch.split_k,
                                                  BLOCK=block, HAS_BIAS=has_bias, num_warps=4)
    return out


@torch.library.custom_op("reviewgpt::skinny_linear", mutates_args=())
def skinny_linear_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`skinny_linear` as one opaque op in the compiled step; F.linear where the kernel does not apply."""
    if available(x, weight, bias):
        return skinny_linear(x, weight, bias)
    return F.linear(x, weight, bias)


@skinny_linear_op.register_fake
def _(x, weight, bias):
    return x.new_empty(*x.shape[:-1], weight.shape[0])
