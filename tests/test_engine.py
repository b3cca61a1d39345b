"""The local engine on a tiny Llama saved to disk with a real peft LoRA adapter (no download)."""

import threading

import pytest
import torch

from reviewgpt.prepare.chat import encode_prompt
from reviewgpt.config import EngineConfig, GenerationConfig
from reviewgpt.generate.engine import ReviewEngine, _FastDecoder, get_engine, load_engine
from reviewgpt.errors import ModelLoadError
from reviewgpt.testing.tiny_model import build_tiny_llama

PAPER = "Title: A tiny paper\n\nAbstract: We test the engine on a tiny model. It has a method and experiments."


def _engine(model_dirs, **kw):
    return load_engine(EngineConfig(base_model=str(model_dirs / "base"), local_files_only=True,
                                    max_prompt_tokens=2048, max_new_tokens=64, **kw))


GREEDY = GenerationConfig(max_new_tokens=24, do_sample=False, suppression=0.0)


def test_base_model_without_adapter_says_so(model_dirs):
    engine = _engine(model_dirs)
    assert engine.info.device == "cpu" and engine.info.precision == "fp32"
    assert any("BASE model" in n for n in engine.info.notes)
    assert "no adapter" in engine.info.describe()


def test_adapter_changes_the_output_and_matches_peft(model_dirs, tokenizer):
    from peft import PeftModel

    from peft import PeftModel as Peft

    base = _engine(model_dirs)
    tuned = _engine(model_dirs, adapter=str(model_dirs / "adapter"), merge_adapter=False)
    assert isinstance(tuned.model, Peft) and "LoRA adapter" in tuned.info.describe()
    assert "(merged)" not in tuned.info.describe()
    a, b = base.generate(PAPER, "4", GREEDY), tuned.generate(PAPER, "4", GREEDY)
    assert a != b
    # the engine's output is exactly what the peft model generates from the same prompt
    ref_model = PeftModel.from_pretrained(build_tiny_llama(tokenizer, seed=3), str(model_dirs / "adapter")).eval()
    ids = torch.tensor([encode_prompt(tokenizer, "4", PAPER)])
    out = ref_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False,
                             eos_token_id=tuned.end_ids)
    assert tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True) == b
    merged = _engine(model_dirs, adapter=str(model_dirs / "adapter"))  # merged by default (fp32 here)
    assert not isinstance(merged.model, Peft) and merged.info.adapter_merged
    assert "LoRA adapter (merged)" in merged.info.describe()
    assert merged.generate(PAPER, "4", GREEDY) == b


def test_streaming_yields_pieces_that_join_to_the_full_text(model_dirs):
    engine = _engine(model_dirs)
    pieces = list(engine.stream(PAPER, "7", GREEDY))
    assert len(pieces) > 1
    assert "".join(pieces) == engine.generate(PAPER, "7", GREEDY)


def test_stop_event_cancels_streaming(model_dirs):
    engine = _engine(model_dirs)
    stop = threading.Event()
    gen = GenerationConfig(max_new_tokens=64, do_sample=False, suppression=0.0, ignore_eos=True)
    got = []
    for piece in engine.stream(PAPER, "4", gen, stop=stop):
        got.append(piece)
        if len(got) == 3:
            stop.set()
    full = engine.generate(PAPER, "4", gen)
    assert len(engine.tokenizer("".join(got), add_special_tokens=False)["input_ids"]) < 16
    assert len(engine.tokenizer(full, add_special_tokens=False)["input_ids"]) >= 60


def test_closing_the_stream_stops_the_model(model_dirs):
    """A client that leaves (the API stream closed) must not keep the model writing behind the lock."""
    engine = _engine(model_dirs)
    gen = GenerationConfig(max_new_tokens=12_000, do_sample=False, suppression=0.0, ignore_eos=True)
    stream = engine.stream(PAPER, "4", gen)
    next(stream)
    stream.close()
    assert engine._lock.acquire(timeout=2)  # writing all 12,000 tokens takes far longer on the CPU
    engine._lock.release()


def test_seeded_sampling_is_reproducible(model_dirs):
    engine = _engine(model_dirs)
    gen = GenerationConfig(max_new_tokens=24, temperature=1.0, top_p=0.95, seed=7)
    assert engine.generate(PAPER, "4", gen) == engine.generate(PAPER, "4", gen)


def test_batched_generation_equals_one_by_one(model_dirs):
    engine = _engine(model_dirs)
    papers = [PAPER, "Title: Another\n\nA much longer text, " * 6, "Short."]
    batch = engine.generate_batch(papers, "4", GREEDY)
    assert batch == [engine.generate(p, "4", GREEDY) for p in papers]


def test_fast_decoder_loop_matches_generate(model_dirs):
    """The static-cache loop of the GPU path (run eagerly here) writes what generate() writes."""
    engine = _engine(model_dirs)
    ids = engine.prompt_ids(PAPER, "7")
    fast = _FastDecoder(engine.model, max_cache_len=len(ids) + 40, tokenizer=engine.tokenizer, compile=False)
    for gen in (GREEDY, GenerationConfig(max_new_tokens=24, do_sample=False, suppression=0.95)):
        out = fast.generate(ids, gen, engine._processors(gen), engine.end_ids)
        assert engine.tokenizer.decode(out, skip_special_tokens=True) == engine.generate(PAPER, "7", gen)


def test_fast_decoder_loop_matches_generate_with_sliding_window_layers(model_dirs):
    """A model whose cache layers are sliding-window layers (a window longer than the cache) keeps
    their own write counters in the decoder's cache (only full-attention layers write at the
    step's slot): the static-cache loop still writes what generate() writes."""
    engine = _engine(model_dirs)
    engine.model.config.sliding_window = 100_000  # read by the caches built from this config
    ids = engine.prompt_ids(PAPER, "7")
    fast = _FastDecoder(engine.model, max_cache_len=len(ids) + 40, tokenizer=engine.tokenizer, compile=False)
    assert {type(layer).__name__ for layer in fast.cache.layers} == {"StaticSlidingWindowLayer"}
    out = fast.generate(ids, GREEDY, engine._processors(GREEDY), engine.end_ids)
    assert engine.tokenizer.decode(out, skip_special_tokens=True) == engine.generate(PAPER, "7", GREEDY)
    full = _FastDecoder(_engine(model_dirs).model, max_cache_len=64, tokenizer=engine.tokenizer, compile=False)
    assert {type(layer).__name__ for layer in full.cache.layers} == {"StepSlotLayer"}


def test_prompt_over_budget_is_refused(model_dirs):
    engine = _engine(model_dirs)
    with pytest.raises(ValueError, match="over the budget"):
        engine.prompt_ids("word " * 5000, "4")
    fitted = engine.prepare("word " * 5000, "4")
    assert fitted.was_cut and len(engine.prompt_ids(fitted.text, "4")) <= 2048


def test_missing_model_gives_one_clear_error(tmp_path, model_dirs):
    with pytest.raises(ModelLoadError, match="not found|REVIEWGPT_BASE_MODEL"):
        load_engine(EngineConfig(base_model=str(tmp_path / "nope"), local_files_only=True))
    with pytest.raises(ModelLoadError, match="adapter|nope"):
        load_engine(EngineConfig(base_model=str(model_dirs / "base"), adapter=str(tmp_path / "nope"),
                                 local_files_only=True))


def test_engine_is_loaded_once_per_configuration(model_dirs):
    cfg = EngineConfig(base_model=str(model_dirs / "base"), local_files_only=True)
    assert get_engine(cfg) is get_engine(EngineConfig(base_model=str(model_dirs / "base"), local_files_only=True))
    assert isinstance(get_engine(cfg), ReviewEngine)


def test_gqa_decode_attention_matches_sdpa(model_dirs, tokenizer):
    """The GPU fast path's attention (no K/V expansion at decode) computes what stock SDPA does."""
    from transformers import AutoModelForCausalLM

    from reviewgpt.generate.attention import NAME

    ids = torch.tensor([encode_prompt(tokenizer, "4", PAPER)])
    outs = {}
    for impl in ("sdpa", NAME):
        model = AutoModelForCausalLM.from_pretrained(model_dirs / "base", attn_implementation=impl).eval()
        assert model.config.num_key_value_heads < model.config.num_attention_heads  # GQA really in play
        with torch.no_grad():
            gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=16,
                                 do_sample=False, output_logits=True, return_dict_in_generate=True)
        outs[impl] = gen
    assert torch.equal(outs["sdpa"].sequences, outs[NAME].sequences)
    for a, b in zip(outs["sdpa"].logits, outs[NAME].logits):
        assert torch.allclose(a, b, atol=1e-4)


def test_gqa_decode_with_a_mask_equals_expanded_sdpa():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from reviewgpt.generate.attention import sdpa_gqa_decode

    torch.manual_seed(0)
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 4, True
    q, k, v = torch.randn(2, 8, 1, 16), torch.randn(2, 2, 40, 16), torch.randn(2, 2, 40, 16)
    mask = torch.rand(2, 1, 1, 40) > 0.3  # a static cache's mask: some slots valid, the rest not
    mask[..., 0] = True
    ours, _ = sdpa_gqa_decode(module, q, k, v, mask, scaling=0.25)
    ref, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.25)
    assert ours.shape == ref.shape == (2, 1, 8, 16)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_a_load_error_names_a_hub_id_as_one_and_a_path_as_a_folder():
    """One rule (config.looks_like_path) for what a model source is: a Hub id ("owner/name") that cannot
    be fetched is not called a missing folder, a path is."""
    from reviewgpt.generate.engine import _explain_os_error

    hub = _explain_os_error(EngineConfig(base_model="meta-llama/Llama-3.1-8B-Instruct"), OSError("no connection"))
    assert "Hub is unreachable" in hub and not hub.startswith("Model folder not found")
    path = _explain_os_error(EngineConfig(base_model="./runs/base"), OSError("no file"))
    assert path.startswith("Model folder not found or incomplete: ./runs/base")


def test_auto_precision_takes_bf16_where_it_fits_and_nf4_where_it_does_not(model_dirs):
    """bf16 merged decodes faster than NF4 + LoRA on a GPU with the memory for it (198.3 vs 169.7-173.5
    tok/s, H200): `auto` took NF4 on every GPU. The 8B's bf16 weights are 14.96 GiB; 1.35x that must be free."""
    from reviewgpt.generate.engine import BF16_HEADROOM, auto_precision, bf16_weight_bytes

    base = model_dirs / "base"
    loaded = load_engine(EngineConfig(base_model=str(base), local_files_only=True, merge_adapter=False)).model
    assert bf16_weight_bytes(str(base), local_files_only=True) == 2 * sum(p.numel() for p in loaded.parameters())
    assert bf16_weight_bytes(str(base / "missing"), local_files_only=True) is None
    gib, weights = 2**30, int(14.96 * 2**30)
    assert auto_precision(weights, 139 * gib, nf4_ok=True)[0] == "bf16"  # an H200
    assert auto_precision(weights, 22 * gib, nf4_ok=True)[0] == "bf16"  # a 24 GB card (A10G, L4)
    choice, why = auto_precision(weights, 15 * gib, nf4_ok=True)  # a 16 GB card (T4)
    assert choice == "nf4" and f"{BF16_HEADROOM * weights / gib:.1f} GiB" in why and "15.0 GiB free" in why
    assert auto_precision(weights, 15 * gib, nf4_ok=False)[0] == "bf16"  # no bitsandbytes: bf16, said
    assert "unavailable" in auto_precision(weights, 15 * gib, nf4_ok=False)[1]
    assert auto_precision(None, None, nf4_ok=True)[0] == "nf4"  # unknown (e.g. ZeroGPU outside its slot): as before
