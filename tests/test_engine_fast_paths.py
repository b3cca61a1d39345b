"""The GPU decoding paths' logic, run eagerly on the CPU with a tiny Llama: the batched static-cache
loop against batch 1 and generate(), declared processor look-back, the generate-static wiring."""

from dataclasses import replace

import pytest
import torch
from transformers import LogitsProcessorList

from reviewgpt.config import EngineConfig, GenerationConfig
from reviewgpt.errors import ModelLoadError
from reviewgpt.generate.engine import ReviewEngine, _FastDecoder, build_logits_processors, load_engine, lookback
from reviewgpt.generate.marker_probe import MarkerProbe

PAPERS = ["Title: A tiny paper\n\nAbstract: We test the engine on a tiny model. It has a method.",
          "Title: Another\n\nA much longer text, with more words in it, " * 5,
          "Short."]
GREEDY = GenerationConfig(max_new_tokens=20, do_sample=False, suppression=0.0, ignore_eos=True)


@pytest.fixture(scope="module")
def engine(model_dirs):
    return load_engine(EngineConfig(base_model=str(model_dirs / "base"), local_files_only=True,
                                    max_prompt_tokens=1024, max_new_tokens=64))


def _decoder(engine, batch_size: int) -> _FastDecoder:
    return _FastDecoder(engine.model, max_cache_len=engine.config.max_prompt_tokens + 64, tokenizer=engine.tokenizer,
                        compile=False,
                        batch_size=batch_size)


@pytest.mark.parametrize("suppression", [0.0, 0.95])
def test_batched_loop_writes_what_batch_one_writes(engine, suppression):
    """Greedy: every row of the batched static-cache loop (left-aligned prompts of different
    lengths, padding slots masked) equals the batch-1 loop and generate() for that prompt."""
    gen = replace(GREEDY, suppression=suppression)
    prompts = [engine.prompt_ids(p, "4") for p in PAPERS]
    assert len({len(p) for p in prompts}) == 3  # really different lengths: padding in play
    batched = _decoder(engine, 3).generate_rows(prompts, gen, engine._processors(gen), engine.end_ids)
    one = _decoder(engine, 1)
    for ids, row, paper in zip(prompts, batched, PAPERS):
        assert row == one.generate(ids, gen, engine._processors(gen), engine.end_ids)
        assert engine.tokenizer.decode(row, skip_special_tokens=True) == engine.generate(paper, "4", gen)
    assert len(batched[0]) == 20


def test_each_row_stops_at_its_own_end_token(engine):
    prompts = [engine.prompt_ids(p, "4") for p in PAPERS]
    one = _decoder(engine, 1)
    free = [one.generate(ids, GREEDY, engine._processors(GREEDY), engine.end_ids) for ids in prompts]
    end = free[0][6]  # a token row 0 writes: declare it an end token, the rows stop at different steps
    gen = replace(GREEDY, ignore_eos=False)
    rows = _decoder(engine, 3).generate_rows(prompts, gen, engine._processors(gen), [end])
    for row, ref in zip(rows, free):
        expected = ref[:ref.index(end)] if end in ref else ref
        assert row == expected
    assert len(rows[0]) <= 6


def test_a_smaller_batch_is_padded_into_the_existing_decoder(engine):
    dec = _decoder(engine, 3)
    prompts = [engine.prompt_ids(p, "4") for p in PAPERS[:2]]
    rows = dec.generate_rows(prompts, GREEDY, engine._processors(GREEDY), engine.end_ids)
    assert len(rows) == 2
    assert rows == dec.generate_rows(prompts + [prompts[0]], GREEDY, engine._processors(GREEDY), engine.end_ids)[:2]


def test_probe_on_the_batched_loop_reads_each_row_like_batch_one(engine):
    gen = GenerationConfig(max_new_tokens=12, do_sample=False, suppression=0.95, ignore_eos=True)
    prompts = [engine.prompt_ids(p, "4") for p in PAPERS[:2]]
    probe = MarkerProbe()
    _decoder(engine, 2).generate_rows(prompts, gen, engine._processors(gen, probe), engine.end_ids)
    for r, ids in enumerate(prompts):
        ref = MarkerProbe()
        _decoder(engine, 1).generate(ids, gen, engine._processors(gen, ref), engine.end_ids)
        assert probe.series(r)[0] == ref.series()[0]
        assert probe.series(r)[1] == pytest.approx(ref.series()[1], abs=1e-5)


def test_lookback_is_declared_and_unbounded_processors_leave_the_fast_path(engine):
    sampled = GenerationConfig(temperature=0.6, top_p=0.9, suppression=0.95)
    procs = engine._processors(sampled)
    assert len(procs) == 3 and lookback(procs) == 2  # suppression reads 2, the warpers 0
    assert lookback(engine._processors(replace(sampled, suppression=0.0))) == 0
    penalised = engine._processors(replace(sampled, repetition_penalty=1.2))
    assert lookback(penalised) is None  # repetition penalty reads all of input_ids
    with pytest.raises(ValueError, match="lookback"):
        _decoder(engine, 1).generate(engine.prompt_ids(PAPERS[0], "4"), GREEDY, penalised, engine.end_ids)
    assert all(getattr(p, "lookback", None) == 2 for p in build_logits_processors(engine.tokenizer, sampled))


def test_repetition_penalty_is_applied_through_the_processor_list(engine):
    gen = replace(GREEDY, repetition_penalty=0.5)
    # < 1 favours tokens already present (the prompt): it must change the output
    assert engine.generate(PAPERS[0], "4", gen) != engine.generate(PAPERS[0], "4", GREEDY)
    # same as transformers' own repetition_penalty argument
    ids = torch.tensor([engine.prompt_ids(PAPERS[0], "4")])
    out = engine.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=20,
                                min_new_tokens=20, do_sample=False, repetition_penalty=0.5,
                                eos_token_id=engine.end_ids, pad_token_id=engine.end_ids[0])
    assert engine.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True) == engine.generate(PAPERS[0], "4", gen)


def test_generate_static_decoder_writes_what_eager_generate_writes(engine):
    """decoder="generate-static" hands generate() one reusable StaticCache per batch size (on a GPU
    generate() then compiles its step; on the CPU it runs the same code eagerly)."""
    info = replace(engine.info, fast_decoding=True)
    static = ReviewEngine(engine.model, engine.tokenizer, info, replace(engine.config, decoder="generate-static"))
    assert static._fast is None
    gen = replace(GREEDY, suppression=0.95)
    assert static.generate(PAPERS[0], "4", gen) == engine.generate(PAPERS[0], "4", gen)
    cache = static._static_caches[1]
    assert static.generate(PAPERS[0], "4", gen) == engine.generate(PAPERS[0], "4", gen)
    assert static._static_caches[1] is cache  # reused, not reallocated
    assert static.generate_batch(PAPERS, "4", gen) == engine.generate_batch(PAPERS, "4", gen)


def test_unknown_decoder_is_refused(model_dirs):
    with pytest.raises(ModelLoadError, match="unknown decoder"):
        load_engine(EngineConfig(base_model=str(model_dirs / "base"), local_files_only=True, decoder="fastest"))


def test_processor_list_type_is_kept(engine):
    assert isinstance(engine._processors(GREEDY), LogitsProcessorList)


def test_batched_loop_runs_an_unmerged_lora_adapter(model_dirs):
    """Eval's path on a GPU with the fine-tuned adapter (a PeftModel, projections fused under LoRA):
    the batched decoder builds its step (it once crashed building it on a PeftModel) and writes what
    batch 1 writes, the same on a second decoder."""
    from peft import PeftModel

    from reviewgpt.generate.fused import fuse_projections

    lora = load_engine(EngineConfig(base_model=str(model_dirs / "base"), adapter=str(model_dirs / "adapter"),
                                    merge_adapter=False, local_files_only=True, max_prompt_tokens=1024,
                                    max_new_tokens=64))
    assert isinstance(lora.model, PeftModel)
    fuse_projections(lora.model)  # as load_engine does on a GPU
    prompts = [lora.prompt_ids(p, "4") for p in PAPERS[:2]]
    rows = [_decoder(lora, 2).generate_rows(prompts, GREEDY, lora._processors(GREEDY), lora.end_ids)
            for _ in range(2)]
    one = _decoder(lora, 1)
    assert rows[0] == rows[1] == [one.generate(ids, GREEDY, lora._processors(GREEDY), lora.end_ids) for ids in prompts]


def test_a_model_input_is_not_encoded_again(engine, monkeypatch):
    """The ids `prepare` counted are the ids the model reads: the engine takes them from the
    ModelInput (no second encoding) and writes what it writes from the text."""
    from reviewgpt.generate import engine as engine_module

    mi = engine.prepare(PAPERS[1], "4")
    assert mi.prompt_ids_for(engine.tokenizer) == engine.prompt_ids(mi.text, "4")
    from_text = engine.generate(mi.text, "4", GREEDY)
    calls = []
    real = engine_module.encode_prompt
    monkeypatch.setattr(engine_module, "encode_prompt", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert engine.generate(mi, "4", GREEDY) == from_text and not calls
    assert engine.generate(mi, "7", GREEDY) and len(calls) == 1  # another schema: its own prompt


def test_linears_the_kernel_cannot_take_are_said_once(model_dirs, caplog, monkeypatch):
    """prepare_linears on a machine where the few-row kernel cannot run (here: no GPU, no
    interpreter) says so once, with the reason, and leaves the model computing what it computed."""
    import logging

    from transformers import AutoModelForCausalLM

    from reviewgpt.generate import fallback
    from reviewgpt.generate.engine import KERNEL_NEEDS, prepare_linears

    monkeypatch.setattr(fallback, "_SAID", set())
    ids = torch.tensor([[5, 6, 7]])
    with caplog.at_level(logging.WARNING, logger="reviewgpt.fallback"), torch.no_grad():
        for _ in range(2):
            model = AutoModelForCausalLM.from_pretrained(model_dirs / "base").eval()
            before = model(input_ids=ids).logits
            prepare_linears(model)
            assert torch.allclose(model(input_ids=ids).logits, before, atol=1e-5)
    said = [r.getMessage() for r in caplog.records if r.name == "reviewgpt.fallback"]
    assert said == [f"few-row Triton linears not used, F.linear (cuBLAS) instead: {KERNEL_NEEDS}"]


def test_the_sdpa_attention_never_calls_the_split_kv_kernel(monkeypatch):
    """split_kv_attention=False picks `attention.NAME_SDPA`: one query token goes to SDPA even where
    the kernel would run (here made to look available, and to fail if called)."""
    import torch.nn.functional as F

    from reviewgpt.generate import attention, decode_attention

    monkeypatch.setattr(decode_attention, "available", lambda *a: True)
    monkeypatch.setattr(torch.ops.reviewgpt, "decode_attention", lambda *a: pytest.fail("the kernel was called"),
                        raising=False)
    q, k, v = torch.randn(2, 4, 1, 16), torch.randn(2, 2, 10, 16), torch.randn(2, 2, 10, 16)
    mask = torch.ones(2, 1, 1, 10, dtype=torch.bool)
    out, _ = attention.sdpa_gqa(None, q, k, v, mask, scaling=0.25, decode_slots_used=torch.tensor([10]),
                                decode_first_slots=torch.zeros(2, dtype=torch.long))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.25, enable_gqa=True).transpose(1, 2)
    assert torch.allclose(out, ref)


def test_graph_tree_state_is_handed_to_a_decoding_thread(monkeypatch):
    """Before PyTorch 2.13 only the importing thread had inductor's CUDA graph trees' state: the engine
    hands it to the thread that decodes (the app streams from a worker thread)."""
    import threading

    from reviewgpt.generate import engine as engine_module

    local, state = threading.local(), {"tree_manager_containers": {}, "tree_manager_locks": {}}
    monkeypatch.setattr(engine_module, "_GRAPH_TREES", (local, state))
    seen = []

    def worker():
        seen.append(hasattr(local, "tree_manager_containers"))
        engine_module._share_cudagraph_state()
        seen.append(all(getattr(local, k) is v for k, v in state.items()))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [False, True]
