"""The batched decode step's forward (reviewgpt/generate/batched_step.py): its folded kernels and the
whole step in Triton's interpreter on the CPU, in float16 (numpy has no bfloat16), against the
eager ops and the model's own forward."""

from tests.test_decode_attention import _interpreted


def test_batched_step_computes_the_models_forward(model_dirs):
    """RMSNorm folded into the product (row sums of squares from partials), SiLU x up into a fused
    gate|up's epilogue, the residual add into the product's epilogue, and RMSNorm + q|k|v + RoPE +
    the K/V cache write: as close to float64 as the eager float16 ops (x1.2 + 1e-5; q, k and v
    each), the partial sums of squares add up to the output's, no other cache slot written.
    The tiny model's step: logits within 1e-2 of its own forward's with the same argmax; the engine's decode loop at
    batch 2 runs this forward (a q|k|v+RoPE product, a gate|up one and 2 residual products a layer
    a step, plus lm_head's) and writes the greedy tokens the model's forward writes, and those of
    each prompt decoded alone at batch 1 (a tiny model with 32-dim heads: the q|k|v program takes
    >= 16 dims of each half of a head)."""
    r = _interpreted("batched-step", str(model_dirs / "base"))
    for part in ("norm", "residual", "glu"):
        assert r[part]["ours_err"] <= 1.2 * r[part]["torch_err"] + 1e-5, (part, r[part])
    assert r["residual"]["parts_shape"] == [3, 3] and r["residual"]["squares_rel"] < 1e-5
    assert r["glu"]["shape"] == [3, 96]
    for part, errs in r["rope"].items():
        assert errs["ours_err"] <= 1.2 * errs["torch_err"] + 1e-5, (part, errs)
    assert r["rope_shape"] == [3, 4, 1, 32] and r["rope_other_slots_untouched"]
    assert r["ours_forward"] == "batched_step"
    assert r["plain_forward"].startswith("model (off")
    steps = r["new_tokens"] - 1
    assert r["calls"] == {"rms_norm_linear": (r["layers"] + 1) * steps, "residual_linear": 2 * r["layers"] * steps,
                          "norm_qkv_rope": r["layers"] * steps}
    assert r["logits_rel"] < 1e-2 and r["logits_argmax_equal"], r
    assert r["ours"] == r["plain"] == r["batch1"]  # and each prompt decoded alone (batch 1: the model's forward)
    assert len(r["ours"]) == 2 and all(len(row) == r["new_tokens"] for row in r["ours"])


def test_batched_step_says_when_it_does_not_apply(tokenizer):
    """`supports` turns down what the folded forward does not compute (the model's forward runs
    then): one row, the switch off, unfused projections, projections wrapped by an unmerged LoRA,
    a dynamic RoPE; a fused plain model gets as far as the kernel's own check (no GPU here)."""
    from peft import LoraConfig, get_peft_model

    from reviewgpt.generate import batched_step as bs
    from reviewgpt.generate.step_cache import StepSlotCache
    from reviewgpt.generate.fused import fuse_projections
    from reviewgpt.testing.tiny_model import build_tiny_llama

    plain = build_tiny_llama(tokenizer, hidden=128, intermediate=256)
    cache = StepSlotCache(plain.config, 32)
    assert bs.supports(plain, cache, 1) == "1 rows"
    assert bs.supports(plain, cache, 2) == "projections not fused, or wrapped by LoRA"
    lora = get_peft_model(build_tiny_llama(tokenizer, hidden=128, intermediate=256),
                          LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    fuse_projections(lora)
    assert bs.supports(lora, cache, 2) == "projections not fused, or wrapped by LoRA"  # the PeftModel itself
    assert bs.supports(lora.base_model.model, cache, 2) == "projections not fused, or wrapped by LoRA"
    fuse_projections(plain)
    assert bs.supports(plain, cache, 2) == "the few-row kernel does not take these weights"  # CPU, no interpreter
    plain.model.rotary_emb.rope_type = "dynamic"
    assert bs.supports(plain, cache, 2) == "rope type dynamic"
