"""One optimizer step of the real QLoRA training path on the Llama-3.1-8B shape (random weights).

    python -m benchmarks.bench_train --seq 12288 16384 --out benchmarks/results/train.jsonl

Builds the same SFTTrainer as `python -m train.sft` (reviewgpt.training.sft.build_trainer: NF4 base,
LoRA r=16 on all linear layers, gradient checkpointing, SDPA/flash, TRL's completion-only LM head)
on synthetic examples of the given length (prompt = length - 1,150 tokens, review ~1,100 tokens),
batch 1, no accumulation; times steps 2..N (step 1 includes allocator warm-up). Reports peak GiB
(torch.cuda.max_memory_allocated) and tokens/s.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from reviewgpt.config import RECIPE_MAX_RESPONSE_TOKENS
from reviewgpt.format.review_format import Review, ReviewItem, render
from reviewgpt.format.schema import SEVEN_ASPECT
from reviewgpt.training.sft import build_trainer, parse_args

from .random_llama8b import build, corpus_text


class StepClock(TrainerCallback):
    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []

    def on_step_begin(self, args, state, control, **kw):
        torch.cuda.synchronize()
        self.starts.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kw):
        torch.cuda.synchronize()
        self.ends.append(time.perf_counter())


def synthetic_data(path: Path, n: int, tokenizer) -> None:
    text = corpus_text()
    chars = 400
    while True:  # the longest review that stays within the recipe's 1,150-token response limit
        review = render(Review(SEVEN_ASPECT.name, {c: [ReviewItem(f"Point {i}", text[i * chars:(i + 1) * chars])
                                                       for i in range(3)] for c in SEVEN_ASPECT.criteria}))
        if len(tokenizer(review, add_special_tokens=False)["input_ids"]) <= 1100:
            break
        chars -= 25
    row = {"id": "bench", "schema": "7", "paper": {"title": "Benchmark", "abstract": "", "sections": [
        {"heading": "1 Introduction", "text": text}]}, "review": review}
    path.write_text("\n".join(json.dumps({**row, "id": f"bench{i}"}) for i in range(n)) + "\n")


def run(seq: int, ckpt: str, steps: int) -> dict:
    data = Path(f"/tmp/bench_train_{seq}.jsonl")
    from transformers import AutoTokenizer
    synthetic_data(data, steps, AutoTokenizer.from_pretrained(ckpt))
    args = parse_args(["--config", "train/configs/recipe.yaml", "--model_name_or_path", ckpt, "--train_file", str(data),
                       "--eval_strategy", "no", "--output_dir", f"/tmp/bench_run_{seq}",
                       "--max_prompt_tokens", str(seq - RECIPE_MAX_RESPONSE_TOKENS), "--gradient_accumulation_steps", "1",
                       "--max_steps", str(steps), "--save_steps", str(10**9), "--logging_steps", "1", "--report_to", "none"])
    clock = StepClock()
    trainer = build_trainer(*args, callbacks=[clock])
    tokens = len(trainer.train_dataset[0]["input_ids"])
    trained = sum(1 for x in trainer.train_dataset[0]["labels"] if x != -100)
    torch.cuda.reset_peak_memory_stats()
    trainer.train()
    step_s = [e - s for s, e in zip(clock.starts, clock.ends)][1:]
    mean = sum(step_s) / len(step_s)
    row = {"seq_len": tokens, "trained_tokens": trained, "steps_timed": len(step_s), "step_s": round(mean, 3),
           "tokens_per_s": round(tokens / mean, 0), "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
           "attn": trainer.model.config._attn_implementation, "optim": trainer.args.optim,
           "quantized_4bit": bool(getattr(trainer.model, "is_loaded_in_4bit", False) or
                                  getattr(trainer.model.get_base_model(), "is_loaded_in_4bit", False)),
           "losses": [round(h["loss"], 3) for h in trainer.state.log_history if "loss" in h]}
    del trainer
    gc.collect()
    torch.cuda.empty_cache()
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seq", nargs="+", type=int, default=[12288, 16384])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--checkpoint", default="/tmp/llama8b-random")
    p.add_argument("--out", default="benchmarks/results/train.jsonl")
    args = p.parse_args()
    ckpt = str(build(args.checkpoint))
    with open(args.out, "a") as f:
        for seq in args.seq:
            row = {"gpu": torch.cuda.get_device_name(), **run(seq, ckpt, args.steps)}
            print(json.dumps(row), flush=True)
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
