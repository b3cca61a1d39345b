"""Llama-architecture models built from a config (no download): tiny ones for tests and the demo,
and the Llama-3.1-8B shape with random weights for benchmarks (speed depends on shape only)."""

from __future__ import annotations

from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

LLAMA31_8B_SHAPE = dict(
    hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
    num_key_value_heads=8, vocab_size=128256, max_position_embeddings=131072, rope_theta=500000.0,
    rms_norm_eps=1e-5, tie_word_embeddings=False,
    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192},
)


def tiny_llama_config(tokenizer: Any, hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                      intermediate: int = 128, max_positions: int = 16384, init_range: float = 0.2) -> LlamaConfig:
    # init_range: with tied embeddings at the usual 0.02 the final RMSNorm caps a tiny model's logits
    # near zero, and a LoRA on its linear layers could never make it confident.
    return LlamaConfig(initializer_range=init_range,
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions, rope_theta=500000.0, tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|begin_of_text|>"),
        eos_token_id=[tokenizer.convert_tokens_to_ids(t) for t in ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")],
        pad_token_id=tokenizer.pad_token_id,
    )


def build_tiny_llama(tokenizer: Any, seed: int = 0, **shape: Any) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(tokenizer, **shape))
    model.generation_config.eos_token_id = model.config.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def llama31_8b_config(**overrides: Any) -> LlamaConfig:
    return LlamaConfig(**{**LLAMA31_8B_SHAPE, **overrides})
