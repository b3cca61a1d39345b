"""GPU check: every shipped decoding configuration writes what the model's own forward predicts.

    python -m benchmarks.check_decode [--steps 32] [--out FILE.jsonl]

For each configuration of bench_decode.CONFIGS (Llama-3.1-8B shape, random weights, the random
recipe-shaped LoRA adapter; 11k-token prompts): greedy decoding with suppression 0.95 through the
engine's path for that configuration (compiled step, eager or static generate()), then
one eager forward of the same model over prompt + written tokens. At each step the reference is the
argmax of the suppressed logits (the engine's own suppression processor) given the tokens before:
teacher-forced, so one near-tie does not derail the rest. Reported: the share of steps whose token
is the reference's argmax, and at the others how far the written token's score sits below the
argmax, in standard deviations of that step's scores. Random weights give near-uniform logits, so
two bf16 implementations disagree at near-ties (gap ~0.01-0.1 sd); a wrong path (a dropped adapter, a
wrong position or cache slot) writes tokens several sd below the argmax. For unmerged adapters a
control compares with the base model's forward (adapter disabled): the adapter must matter.
"""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext
from typing import Any

import torch

from reviewgpt.config import GenerationConfig
from reviewgpt.generate.engine import ReviewEngine
from reviewgpt.generate.suppression import SequenceSuppressionProcessor

MAX_GAP_SD = 0.25  # a written token this far below the reference argmax fails the check


def reference_gaps(engine: ReviewEngine, prompt: list[int], written: list[int], suppression: float,
                   disable_adapter: bool = False) -> list[float]:
    """Per written token: (reference argmax score - its score) / sd of the step's suppressed scores."""
    model = engine.model
    ids = torch.tensor([prompt + written], device=engine.device)
    ctx = model.disable_adapter() if disable_adapter else nullcontext()
    with torch.inference_mode(), ctx:
        logits = model(input_ids=ids, logits_to_keep=len(written) + 1).logits[0, :-1].float()
    proc = SequenceSuppressionProcessor(engine.tokenizer, suppression)
    gaps = []
    for t, token in enumerate(written):
        scores = proc(ids[:, :len(prompt) + t], logits[t:t + 1].clone())[0]
        finite = scores[scores.isfinite()]
        gaps.append(float((scores.max() - scores[token]) / finite.std()))
    return gaps


def check(engine: ReviewEngine, prompts: list[list[int]], steps: int = 32, suppression: float = 0.95) -> dict[str, Any]:
    """Greedy tokens of `engine`'s path for these prompts (batch = len(prompts)) against its model's forward."""
    gen = GenerationConfig(max_new_tokens=steps, do_sample=False, suppression=suppression, ignore_eos=True)
    if len(prompts) == 1:
        written = [engine._generate_ids(prompts[0], gen)]
    else:
        written = engine._generate_batch_ids(prompts, gen)
    gaps = [g for p, w in zip(prompts, written) for g in reference_gaps(engine, p, w, suppression)]
    row = {"steps": len(gaps), "agree": round(sum(g == 0 for g in gaps) / len(gaps), 3),
           "max_gap_sd": round(max(gaps), 3), "ok": max(gaps) <= MAX_GAP_SD}
    if hasattr(engine.model, "disable_adapter"):  # an unmerged adapter: without it, the tokens must not fit
        base = [g for p, w in zip(prompts, written) for g in reference_gaps(engine, p, w, suppression, True)]
        row.update(control_agree_without_adapter=round(sum(g == 0 for g in base) / len(base), 3),
                   control_max_gap_sd=round(max(base), 3))
        row["ok"] = row["ok"] and max(base) > MAX_GAP_SD
    return row


def main() -> None:
    from benchmarks import bench_decode

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    bench_decode.run(bench_decode.CONFIGS, out=args.out, check_steps=args.steps, time_it=False)


if __name__ == "__main__":
    main()
