"""The batched decode step's choice of when it applies (reviewgpt/generate/batched_step.py's
`supports`), which needs no kernel run. The step's kernels and forward are tested in
tests/kernels/test_batched_step.py (Triton's interpreter, or compiled on a CUDA GPU)."""


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
