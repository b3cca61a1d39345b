"""The GPU decode path's pieces that need neither Triton's interpreter nor a GPU: top_p_split's
two-level cumsum and the few-row linear kernel's launch settings. The Triton kernels themselves
(split-KV attention, few-row linear) are tested in tests/kernels/, a pytest session
of their own with TRITON_INTERPRET=1 (or compiled on a CUDA GPU)."""

import torch


def test_chunked_cumsum_is_cumsum():
    """top_p_split's two-level cumsum (rows > 1) against a float64 cumsum: within float32 rounding of
    the running total on 128k rows, and on a length that is not a multiple of the chunk (padded)."""
    from reviewgpt.generate.sampling import chunked_cumsum

    x = torch.rand(8, 128_256, generator=torch.Generator().manual_seed(0))
    ref = x.double().cumsum(-1)
    out = chunked_cumsum(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert ((out.double() - ref).abs() <= 2 * ref * torch.finfo(torch.float32).eps * 8).all()
    small = torch.randn(3, 100, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(chunked_cumsum(small, chunk=16), small.cumsum(-1), atol=1e-5)
    assert torch.equal(chunked_cumsum(x[:1]), x[:1].cumsum(-1))  # one row: the one-pass scan


def test_launch_settings_fit_the_gpu_and_tile_k():
    """launch_for: the measured settings for a known shape; on a GPU with less shared memory (an
    sm86/sm89 card's 101,376 bytes) fewer stages, then a smaller K tile, until they fit; for a
    small model's K the K tile halves until it divides, and a split that cannot divide is dropped
    with the tile redone from the start."""
    from reviewgpt.generate.skinny_linear import LAUNCHES, Launch, launch_for

    down = torch.empty(4096, 14336, dtype=torch.bfloat16, device="meta")
    assert launch_for(down, shared_limit=1 << 30) == LAUNCHES[(4096, 14336)]
    small = launch_for(down, shared_limit=101_376)
    assert small.shared_bytes() <= 101_376 < LAUNCHES[(4096, 14336)].shared_bytes()
    assert small.num_stages == 2 or small.block_k == LAUNCHES[(4096, 14336)].block_k
    tiny = launch_for(torch.empty(96, 64, dtype=torch.float16, device="meta"), shared_limit=1 << 30)
    assert tiny.block_k == 64 and 64 % (tiny.block_k * tiny.split_k) == 0
    import reviewgpt.generate.skinny_linear as sk
    kept = dict(sk.LAUNCHES)
    sk.LAUNCHES[(8, 96)] = Launch(32, 256, 4, 4, 2)  # K = 96: no split of 4 divides it; 32 x 1 does
    try:
        assert launch_for(torch.empty(8, 96, dtype=torch.float16, device="meta"), shared_limit=1 << 30) == \
            Launch(32, 32, 1, 4, 2)
    finally:
        sk.LAUNCHES.clear()
        sk.LAUNCHES.update(kept)
