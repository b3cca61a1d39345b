"""The decode step's few-row linear kernel (reviewgpt/generate/skinny_linear.py) against F.linear: the
kernel alone, then the engine's decode loop with the tiny model's linears routed to it. In Triton's
interpreter on the CPU (TRITON_INTERPRET=1: float16; bfloat16 is not computed there, see common.HALF)
or compiled on a CUDA GPU (bfloat16 too)."""

import pytest
import torch
import torch.nn.functional as F

from reviewgpt.generate import skinny_linear as sk

from .common import DEVICE, HALF, rel, tiny_engine

SHAPES = [  # x shape, out features, in features, launch, bias
    ((1, 512), 96, 512, sk.Launch(32, 128, 1, 4, 2), False),
    ((2, 512), 96, 512, sk.Launch(32, 128, 1, 4, 2), True),
    ((8, 1, 512), 100, 512, sk.Launch(32, 128, 2, 4, 2), False),
    ((3, 5, 256), 64, 256, sk.Launch(64, 64, 4, 4, 2), True),
    ((16, 1024), 200, 1024, sk.Launch(16, 256, 2, 4, 3), False),
    ("strided", 72, 256, sk.Launch(32, 64, 1, 4, 2), False),
]


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}-{s[1]}x{s[2]}-split{s[3].split_k}"
                         + ("-bias" if s[4] else ""))
def test_few_row_linear_kernel_computes_f_linear(shape, dtype):
    """1-16 rows, leading dimensions, a strided slice as x (4 rows of a wider tensor, as a slice of a
    fused output), output features the tiles do not divide, K split 1-4 ways, a bias (added in
    float32 before the one rounding, with or without a split): as close to a float64 product as
    F.linear in the same dtype is (x1.2 + 1e-5), in x's shape with the output features and dtype."""
    xs, n, k, launch, with_bias = shape
    torch.manual_seed(0)
    if xs == "strided":  # row stride 3k
        x = torch.randn(4, 3 * k, dtype=dtype, device=DEVICE)[:, k:2 * k]
    else:
        x = torch.randn(*xs, dtype=dtype, device=DEVICE)
    w = torch.randn(n, k, dtype=dtype, device=DEVICE) / k ** 0.5
    bias = torch.randn(n, dtype=dtype, device=DEVICE) if with_bias else None
    ref = F.linear(x.double(), w.double(), None if bias is None else bias.double())
    same_dtype = F.linear(x, w, bias)
    assert sk.available(x, w, bias)
    out = sk.skinny_linear(x, w, bias, launch)
    assert out.shape == ref.shape and out.dtype == dtype
    assert rel(out, ref) <= 1.2 * rel(same_dtype, ref) + 1e-5, (rel(out, ref), rel(same_dtype, ref))


def test_few_row_linear_kernel_refuses_what_it_does_not_compute():
    """17 rows, a K the tiles do not divide, float32 and a bias of another dtype are refused (they
    stay on F.linear)."""
    half = dict(dtype=torch.float16, device=DEVICE)
    w = torch.randn(64, 512, **half)
    assert not sk.available(torch.randn(17, 512, **half), w)
    assert not sk.available(torch.randn(4, 500, **half), torch.randn(64, 500, **half))
    assert not sk.available(torch.randn(4, 512, device=DEVICE), w.float())
    assert not sk.available(torch.randn(4, 512, **half), w, torch.randn(64, device=DEVICE))


def test_decode_loop_through_the_few_row_kernel_writes_what_f_linear_writes(model_dirs, monkeypatch):
    """The tiny model in float16 with its linears routed as in the GPU decode step
    (decode_linears.route_decode_linears): at batch 1 each layer's o_proj and down_proj go to the
    few-row kernel with 1 row, at batch 2 every linear (q|k|v, o, gate|up, down per layer and lm_head)
    with 2 rows, once a step each; the greedy tokens equal those of the same loop on F.linear at both
    batch sizes. Traced by dynamo at 2 rows (a capturing backend), the forward calls the opaque op
    for every linear; `unroute` undoes every one."""
    from reviewgpt.config import GenerationConfig
    from reviewgpt.generate import decode_linears
    from reviewgpt.generate.engine import _FastDecoder

    engine, prompts = tiny_engine(model_dirs / "base")
    model = engine.model.half()
    gen = GenerationConfig(max_new_tokens=4, do_sample=False, suppression=0.95, ignore_eos=True)  # 3 decode steps
    layers = model.config.num_hidden_layers
    linears = sum(type(m) is torch.nn.Linear for m in model.modules())
    calls: list[int] = []
    kernel = sk.skinny_linear

    def counted(x, weight, bias=None, launch=None):
        calls.append(x.numel() // x.shape[-1])
        return kernel(x, weight, bias, launch)

    def run(batch: int) -> list:
        dec = _FastDecoder(model, max_cache_len=max(map(len, prompts)) + 16, tokenizer=engine.tokenizer,
                           compile=False, batch_size=batch)
        return dec.generate_rows(prompts[:batch], gen, engine._processors(gen), engine.end_ids)

    steps = gen.max_new_tokens - 1  # the first token comes from the prefill (many rows: F.linear)
    with torch.no_grad():
        plain = {b: run(b) for b in (1, 2)}
        assert decode_linears.route_decode_linears(model) == {"routed": linears, "one_row_on_triton": 2 * layers}
        ours, rows_seen = {}, {}
        with monkeypatch.context() as patched:
            patched.setattr(sk, "skinny_linear", counted)
            for b in (1, 2):
                calls.clear()
                ours[b] = run(b)
                rows_seen[b] = {r: calls.count(r) for r in set(calls)}
        assert rows_seen == {1: {1: 2 * layers * steps}, 2: {2: linears * steps}}
        assert ours == plain
        assert len(ours[2]) == 2 and all(len(r) == gen.max_new_tokens for r in ours[2])
        graphs = []

        def backend(gm, _inputs):
            graphs.append(gm)
            return gm

        ids = torch.tensor([[prompts[0][-1]], [prompts[1][-1]]], device=DEVICE)  # a decode step's input: 2 rows
        torch.compile(lambda i: model(input_ids=i).logits, backend=backend, fullgraph=True)(ids)
        op = torch.ops.reviewgpt.skinny_linear
        assert sum(n.target in (op, op.default) for g in graphs for n in g.graph.nodes) == linears
        assert decode_linears.unroute(model) == linears
