"""The GPU decode step's own parts, run on the CPU: processors and sampling inside the step
(`GraphSampler`), and fused q|k|v / gate|up projections (`fuse_projections`)."""

from collections import Counter
from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForCausalLM

from reviewgpt.config import EngineConfig, GenerationConfig
from reviewgpt.generate.engine import _FastDecoder, load_engine
from reviewgpt.generate.fused import _Rows, fuse_projections
from reviewgpt.generate.marker_probe import MarkerProbe
from reviewgpt.generate.sampling import GraphSampler
from reviewgpt.generate.suppression import SequenceSuppressionProcessor

PAPER = "Title: A tiny paper\n\nAbstract: We test the engine on a tiny model. It has a method."
SAMPLED = GenerationConfig(max_new_tokens=16, temperature=0.6, top_p=0.9, suppression=0.95, ignore_eos=True)


@pytest.fixture(scope="module")
def engine(model_dirs):
    return load_engine(EngineConfig(base_model=str(model_dirs / "base"), local_files_only=True,
                                    max_prompt_tokens=1024, max_new_tokens=64))


def _decoder(engine, batch_size=1, compile=False, **options):
    return _FastDecoder(engine.model, max_cache_len=engine.config.max_prompt_tokens + 64, tokenizer=engine.tokenizer,
                        compile=compile, batch_size=batch_size, **options)


# ------------------------------------------------------------------------------ sampling in the step

def test_sampled_frequencies_follow_the_processor_adjusted_softmax(engine):
    """Many rows sampled at once on logits concentrated on 6 tokens (one starts the marker): the
    frequencies match suppression -> temperature -> top-p -> softmax computed with the eager
    processors, and tokens cut by top-p never appear."""
    tok = engine.tokenizer
    gen = GenerationConfig(temperature=0.6, top_p=0.9, suppression=0.5)
    procs = engine._processors(gen)
    rows = 4000
    sampler = GraphSampler(tok, rows, 8, torch.device("cpu"))
    sampler.set(procs, sample=True)
    marker = sampler.suppress._sets["start"][0]
    chosen = [marker, 100, 200, 300, 400, 500]
    logits = torch.full((rows, len(tok)), -30.0)
    logits[:, chosen] = torch.tensor([1.0, 1.2, 0.8, 0.5, 0.0, -2.5])
    window = torch.full((rows, 2), 50)
    expected = torch.softmax(procs(window[:1], logits[:1].clone()), -1)[0]
    assert expected[500] == 0 and 0 < expected[marker] < 0.2  # top-p cut one, suppression took effect
    torch.manual_seed(0)
    counts = Counter()
    for _ in range(5):
        counts.update(sampler(window, logits).view(-1).tolist())
    n = 5 * rows
    assert set(counts) <= set(chosen[:5])
    for t in chosen:
        p = expected[t].item()
        assert abs(counts[t] / n - p) < 4 * (p * (1 - p) / n) ** 0.5 + 1e-9, (t, counts[t] / n, p)


def test_greedy_in_the_step_is_argmax_of_the_suppressed_scores(engine):
    gen = replace(SAMPLED, do_sample=False, suppression=1.0)
    procs = engine._processors(gen)
    sampler = GraphSampler(engine.tokenizer, 3, 4, torch.device("cpu"))
    sampler.set(procs, sample=False)
    torch.manual_seed(1)
    logits, window = torch.randn(3, len(engine.tokenizer)), torch.randint(0, 500, (3, 2))
    logits[:, sampler.suppress._sets["start"][0]] = 50.0  # the marker would win without suppression
    assert torch.equal(sampler(window, logits), procs(window, logits.clone()).argmax(-1, keepdim=True))


def test_same_seed_same_review_and_another_seed_another(engine):
    ids = engine.prompt_ids(PAPER, "4")
    dec = _decoder(engine)

    def run(seed):
        torch.manual_seed(seed)
        return dec.generate(ids, SAMPLED, engine._processors(SAMPLED), engine.end_ids)

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_gumbel_noise_is_a_pure_function_and_uniform_underneath():
    from reviewgpt.generate.sampling import gumbel_noise, wide_argmax

    seed, step = torch.tensor(12345), torch.tensor([7])
    g = gumbel_noise(seed, step, 3, 50_000)
    assert torch.equal(g, gumbel_noise(seed, step, 3, 50_000))
    assert not torch.equal(g[0], g[1]) and not torch.equal(g, gumbel_noise(seed, step + 1, 3, 50_000))
    u = torch.exp(-torch.exp(-g))  # back to the uniforms
    assert abs(u.mean().item() - 0.5) < 0.005 and abs(u.var().item() - 1 / 12) < 0.002
    x = torch.randn(4, 1000)
    x[1, [10, 700]] = 99.0  # a tie: the first index wins, as with torch.argmax
    assert torch.equal(wide_argmax(x, chunk=64), x.argmax(-1, keepdim=True))


def test_top_p_without_the_softmax_kernel_is_the_warpers_rule():
    """`top_p_split` against transformers' TopPLogitsWarper, both against the warper in float64:
    on flat to peaked 128k rows, several p, it misses the float64 result no more often than the
    float32 warper does, and differs from the float32 warper only in a few boundary tokens (float
    rounding of a cumulative mass within ~1e-7 of 1 - p). Suppressed (-inf) tokens stay removed, a
    dominant token alone is kept at small p, p = 1 keeps every token of positive probability, and
    the returned scores are the input's where kept."""
    from transformers import TopPLogitsWarper

    from reviewgpt.generate.sampling import top_p_split

    gen = torch.Generator().manual_seed(0)
    miss_ours = miss_warper = differ = 0
    for scale in (0.5, 1.0, 2.0, 8.0, 30.0):
        scores = torch.randn(8, 128_256, generator=gen) * scale
        for p in (0.1, 0.5, 0.9, 0.95):
            ours = top_p_split(scores, torch.tensor(p))
            warper = TopPLogitsWarper(p)(None, scores.clone())
            exact = TopPLogitsWarper(p)(None, scores.double()).isinf()
            miss_ours += (ours.isinf() != exact).sum().item()
            miss_warper += (warper.isinf() != exact).sum().item()
            differ += (ours.isinf() != warper.isinf()).sum().item()
            assert torch.equal(ours[~ours.isinf()], scores[~ours.isinf()])
    assert miss_ours <= miss_warper and differ <= 8, (miss_ours, miss_warper, differ)
    peaked = torch.randn(2, 128_256, generator=gen)
    peaked[:, 7] = 40.0
    peaked[:, 100:140] = -torch.inf
    assert torch.equal((~top_p_split(peaked, torch.tensor(0.5)).isinf()).nonzero()[:, 1], torch.tensor([7, 7]))
    assert torch.equal(top_p_split(peaked, torch.tensor(1.0)).isinf(), peaked.isinf())
    for p in (0.5, 0.9):
        assert torch.equal(top_p_split(peaked, torch.tensor(p)).isinf(),
                           TopPLogitsWarper(p)(None, peaked.clone()).isinf())


def test_decode_compile_options_reach_torch_compile(engine, monkeypatch):
    """The module setting (default: mode "reduce-overhead" as options) and a decoder's own options
    are what torch.compile gets."""
    from reviewgpt.generate import engine as engine_module

    seen = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: seen.append(kw) or fn)
    _decoder(engine, compile=True)._compiled_step()
    assert seen[-1]["options"] == engine_module.DECODE_COMPILE_OPTIONS
    assert torch._inductor.list_mode_options("reduce-overhead").items() <= engine_module.DECODE_COMPILE_OPTIONS.items()
    mine = {"triton.cudagraphs": True, "max_autotune_gemm": True}
    _FastDecoder(engine.model, max_cache_len=128, tokenizer=engine.tokenizer, compile_options=mine)._compiled_step()
    assert seen[-1]["options"] == mine and "mode" not in seen[-1]


def test_the_step_compiles_once_for_every_setting(engine):
    """Whole step traced by dynamo (no graph break); new settings (the slider, temperature, greedy)
    and new processor objects reuse the compiled step; greedy equals the eager loop's output."""
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    ids = engine.prompt_ids(PAPER, "4")
    dec = _decoder(engine)
    dec._step = torch.compile(dec._compiled_step(), backend="aot_eager", fullgraph=True, dynamic=False)
    for gen in (SAMPLED, replace(SAMPLED, suppression=0.0, temperature=1.0, top_p=1.0),
                replace(SAMPLED, do_sample=False, suppression=0.95)):
        with torch.inference_mode():  # as the engine runs it
            out = dec.generate(ids, gen, engine._processors(gen), engine.end_ids)
        assert len(out) == gen.max_new_tokens
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    assert not torch._dynamo.utils.counters["graph_break"]
    assert out == _decoder(engine).generate(ids, gen, engine._processors(gen), engine.end_ids)
    assert engine.tokenizer.decode(out, skip_special_tokens=True) == engine.generate(PAPER, "4", gen)


def test_probe_records_of_the_graph_equal_the_eager_processor(engine):
    """Sampling, batch 2: the recorded marker mass per step equals the eager processor's on the
    same window and logits, and the probe gets one record per token the loop read."""
    prompts = [engine.prompt_ids(PAPER, "4"), engine.prompt_ids("Short.", "4")]
    probe = MarkerProbe()
    torch.manual_seed(0)
    rows = _decoder(engine, batch_size=2).generate_rows(prompts, SAMPLED, engine._processors(SAMPLED, probe),
                                                        engine.end_ids)
    assert probe.steps == len(rows[0]) == SAMPLED.max_new_tokens
    for r, prompt in enumerate(prompts):
        seq = prompt + rows[r]
        ref = MarkerProbe()
        proc = SequenceSuppressionProcessor(engine.tokenizer, 0.95, probe=ref)
        with torch.inference_mode():
            logits = engine.model(input_ids=torch.tensor([seq[:-1]])).logits[0].float()
        for k in range(len(rows[r])):
            at = len(prompt) - 1 + k
            proc(torch.tensor([seq[:at + 1]]), logits[at:at + 1])
        assert probe.series(r)[0] == ref.series()[0]
        assert probe.series(r)[1] == pytest.approx(ref.series()[1], abs=1e-5)
        assert probe.series(r)[2] == pytest.approx(ref.series()[2], abs=1e-5)


# ------------------------------------------------------------------------------ fused projections

def _load(model_dirs, adapter: bool):
    model = AutoModelForCausalLM.from_pretrained(model_dirs / "base", dtype=torch.float32).eval()
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(model_dirs / "adapter")).eval()
    return model


@pytest.mark.parametrize("adapter", [False, True])
def test_fused_projections_give_the_same_logits(model_dirs, adapter):
    ref, fused = _load(model_dirs, adapter), _load(model_dirs, adapter)
    layers = fused.config.num_hidden_layers
    report = fuse_projections(fused)
    assert report.groups == 2 * layers and report.kinds == {"Linear": 2 * layers} and not report.skipped
    attn = (fused.base_model.model if adapter else fused).model.layers[0].self_attn
    q = attn.q_proj.base_layer if adapter else attn.q_proj
    assert isinstance(q, _Rows) and not list(q.parameters())  # the originals' weights are gone, not copied
    if adapter:
        assert attn.q_proj.lora_A  # the LoRA wrapper stays and adds its term
    n_ref = sum(p.numel() for p in ref.parameters())
    assert sum(p.numel() for p in fused.parameters()) == n_ref
    ids = torch.randint(0, 2000, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.allclose(fused(ids).logits, ref(ids).logits, atol=1e-5, rtol=1e-5)


def test_fused_nf4_codes_equal_the_originals_with_a_lora_on_top():
    """bitsandbytes' own quantizer on the dequantized concatenation writes the same 4-bit codes
    (blocks of 64 never straddle two projections) and the fused layer keeps the originals' block
    scales, so it computes with the very weights the three did; a peft LoRA on each projection
    (as on the NF4 GPU path with an adapter) still adds its term."""
    import bitsandbytes as bnb
    from peft import LoraConfig, inject_adapter_in_model

    torch.manual_seed(0)

    def nf4(out_features: int):
        layer = bnb.nn.Linear4bit(128, out_features, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4",
                                  compress_statistics=True, device="meta")
        layer.weight = bnb.nn.Params4bit(torch.randn(out_features, 128, dtype=torch.bfloat16), requires_grad=False,
                                         quant_type="nf4", blocksize=64, compress_statistics=True, module=layer)
        return layer.to("cpu")

    class Attn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.k_proj, self.v_proj = nf4(256), nf4(64), nf4(64)

        def forward(self, hidden_states):
            return torch.cat([self.q_proj(hidden_states), self.k_proj(hidden_states), self.v_proj(hidden_states)], -1)

    m = inject_adapter_in_model(LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj"]), Attn())
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # a fresh LoRA is a no-op: give it an effect
    dense = [bnb.functional.dequantize_4bit(p.base_layer.weight.data, p.base_layer.weight.quant_state)
             for p in (m.q_proj, m.k_proj, m.v_proj)]
    x = torch.randn(1, 3, 128, dtype=torch.bfloat16)
    with torch.no_grad():
        ref = m(x)
        lora_term = m.q_proj(x) - torch.nn.functional.linear(x, dense[0])
    assert lora_term.abs().max() > 0.1
    report = fuse_projections(m)
    assert report.kinds == {"Linear4bit": 1} and report.codes_identical is True
    fused = m.qkv_proj.weight
    assert torch.equal(bnb.functional.dequantize_4bit(fused.data, fused.quant_state), torch.cat(dense))
    with torch.no_grad():
        assert torch.allclose(m(x).float(), ref.float(), rtol=1e-2, atol=1e-2)


def test_decode_linears_route_one_row_layers_past_inductor(model_dirs):
    """route_decode_linears gives every plain linear (a LoRA wrapper's base layer too, LoRA's own
    A/B not) the step's routing: o_proj and down_proj take the few-row kernel at one row too (it
    needs a GPU or Triton's interpreter: tests/kernels/). Where the kernel does not run (here), the
    traced one-row step calls F.linear, no op of ours, and the logits do not move. `unroute` puts
    nn.Linear's own forward back."""
    from peft import PeftModel

    from reviewgpt.generate.decode_linears import route_decode_linears, unroute

    ids = torch.tensor([[5]])  # one row, as in the batch-1 decode step
    for adapter in (False, True):
        model = AutoModelForCausalLM.from_pretrained(model_dirs / "base").eval()
        if adapter:
            model = PeftModel.from_pretrained(model, model_dirs / "adapter").eval()
        layers = len([n for n, _ in model.named_modules() if n.endswith("mlp")])
        plain = [n for n, m in model.named_modules() if type(m) is torch.nn.Linear and "lora_" not in n]
        with torch.no_grad():
            before = model(input_ids=ids).logits
            assert route_decode_linears(model) == {"routed": len(plain), "one_row_on_triton": 2 * layers}
            graphs = []

            def backend(gm, _inputs):
                graphs.append(gm)
                return gm

            after = torch.compile(lambda x: model(input_ids=x).logits, backend=backend, fullgraph=True)(ids)
        ours = [n for g in graphs for n in g.graph.nodes if "reviewgpt" in str(n.target)]
        assert not ours and torch.equal(before, after)
        # where the kernel runs, exactly o_proj and down_proj take it at one row, every linear at two
        calls = []
        with torch.no_grad(), pytest.MonkeyPatch.context() as mp:
            from reviewgpt.generate import skinny_linear

            mp.setattr(skinny_linear, "available", lambda *a: True)
            mp.setattr(torch.ops.reviewgpt, "skinny_linear",
                       lambda x, w, b: calls.append(x.shape[:-1].numel()) or torch.nn.functional.linear(x, w, b),
                       raising=False)
            assert torch.equal(model(input_ids=ids).logits, before)
            assert calls == [1] * (2 * layers)
            calls.clear()
            model(input_ids=torch.tensor([[5], [6]]))
            assert calls == [2] * len(plain)
        assert unroute(model) == len(plain)
        assert not any("forward" in vars(m) for m in model.modules() if type(m) is torch.nn.Linear)
    # the one-row layers are the engine config's (EngineConfig.one_row_kernel_layers; a YAML list is a tuple)
    from reviewgpt.config import EngineConfig, from_dict

    cfg = from_dict(EngineConfig, {"one_row_kernel_layers": ["down_proj"]})
    assert cfg.one_row_kernel_layers == ("down_proj",)
    assert route_decode_linears(model, cfg.one_row_kernel_layers)["one_row_on_triton"] == layers


def test_fused_projections_are_routed_too(model_dirs):
    """prepare_linears fuses q|k|v and gate|up and then routes: the fused layers (new nn.Linear
    modules) get the decode-step routing as well, so the fused products reach the
    few-row kernel."""
    from reviewgpt.generate import decode_linears
    from reviewgpt.generate.engine import prepare_linears

    model = AutoModelForCausalLM.from_pretrained(model_dirs / "base").eval()
    report = prepare_linears(model)
    linears = {n: m for n, m in model.named_modules() if type(m) is torch.nn.Linear}
    assert report.groups == 2 * model.config.num_hidden_layers
    assert any(n.endswith("qkv_proj") for n in linears) and any(n.endswith("gate_up_proj") for n in linears)
    assert all(getattr(m.forward, "__func__", None) is decode_linears._forward for m in linears.values())
