"""A Llama-3.1-8B-shaped checkpoint with random weights, saved like a Hub model (no download).

Speed and memory depend on shapes, not values, so the benchmarks load it through the project's real
loading code (NF4 quantisation on load included). The tokenizer is the locally built Llama 3.1-style
one (a few thousand tokens); the model keeps the real 128,256-entry vocabulary.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from reviewgpt.training.data.papers import read_iclr2017
from reviewgpt.testing.local_tokenizer import build_llama31_tokenizer
from reviewgpt.testing.tiny_model import llama31_8b_config

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "iclr2017"


def corpus_text() -> str:
    return "\n\n".join(p.document.to_text() for p in read_iclr2017(FIXTURES))


def corpus_texts(n: int) -> list[str]:
    """n different long texts (the fixture papers, each starting at a different paper) for batches."""
    docs = [p.document.to_text() for p in read_iclr2017(FIXTURES)]
    return ["\n\n".join(docs[i % len(docs):] + docs[:i % len(docs)]) for i in range(n)]


def build(path: str | Path) -> Path:
    from transformers import LlamaForCausalLM

    path = Path(path)
    if (path / "config.json").exists():
        return path
    t0 = time.perf_counter()
    tok = build_llama31_tokenizer([corpus_text()], vocab_size=8192)
    cfg = llama31_8b_config(bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id,
                            eos_token_id=[tok.convert_tokens_to_ids(t) for t in ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")])
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    del model
    torch.cuda.empty_cache()
    print(f"random 8B checkpoint written to {path} in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def build_adapter(base: str | Path, path: str | Path, b_std: float = 0.01) -> Path:
    """A LoRA adapter shaped like the recipe's (r 16, alpha 32, every linear layer) for the checkpoint at
    `base`, with random non-zero B (a fresh LoRA is a no-op: B = 0), saved as peft saves it. Built on
    an empty model: the base weights are never read."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    path = Path(path)
    if (path / "adapter_config.json").exists():
        return path
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(base), dtype=torch.bfloat16)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora).to_empty(device="cuda")
    gen = torch.Generator(device="cuda").manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_A" in name:
                p.uniform_(-p.shape[1] ** -0.5, p.shape[1] ** -0.5, generator=gen)  # peft's kaiming bound
            elif "lora_B" in name:
                p.normal_(0.0, b_std, generator=gen)
    model.save_pretrained(path)
    del model
    torch.cuda.empty_cache()
    print(f"random recipe-shaped LoRA adapter written to {path}", flush=True)
    return path
