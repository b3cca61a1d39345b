"""Optimizer steps of the real QLoRA training path on the Llama-3.1-8B shape (random weights), on one
GPU or data-parallel on several.

    python -m benchmarks.bench_train --seq 12288 16384 --out benchmarks/results/train.jsonl
    NCCL_NVLS_ENABLE=0 python -m benchmarks.bench_train --seq 12288 --steps 6 --processes 1 2 \\
        --out benchmarks/results/train_2gpu_h100.jsonl -- --disable_tqdm true

Builds the same SFTTrainer as `python -m train.sft` (reviewgpt.training.sft.build_trainer: NF4 base,
LoRA r=16 on all linear layers, gradient checkpointing, SDPA/flash, TRL's completion-only LM head)
on synthetic examples of the given length (prompt = length - 1,150 tokens, review ~1,100 tokens; each
example a different paper), batch 1 per GPU, no accumulation; times steps 2..N (step 1 includes
allocator warm-up). Reports per-step seconds, tokens/s in all, peak GiB per GPU
(torch.cuda.max_memory_allocated).

Each process count runs in its own child: 1 process as `python -m train.sft` runs (one visible GPU),
N > 1 under the project's launcher, `accelerate launch --config_file train/accelerate/ddp.yaml
--num_processes N` (one process and one NF4 copy per GPU, DDP). Every rank writes what it trained on and
a SHA-256 of its LoRA weights after the last step: the row says whether the ranks saw different
examples and still ended with bit-identical adapters (DDP averaged the gradients), and, next to a
1-process row, the scaling efficiency = tokens/s(N) / (N x tokens/s(1)).

Flags after `--` go to the training configuration, as on `python -m train.sft`'s command line
(e.g. `-- --load_in_4bit false --use_cpu true` for a CPU run of the mechanics; see tests/test_bench_train.py).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from reviewgpt.config import RECIPE_MAX_RESPONSE_TOKENS
from reviewgpt.format.review_format import Review, ReviewItem, render
from reviewgpt.format.schema import SEVEN_ASPECT
from reviewgpt.training.sft import build_trainer, parse_args

from .random_llama8b import build, corpus_text, corpus_texts

ROOT = Path(__file__).resolve().parents[1]
DDP_CONFIG = ROOT / "train" / "accelerate" / "ddp.yaml"
# {n}: number of processes; the worker's `-m benchmarks.bench_train --worker ...` follows
ACCELERATE = (f"{shlex.quote(sys.executable)} -m accelerate.commands.launch"
              f" --config_file {shlex.quote(str(DDP_CONFIG))} --num_processes {{n}}")


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepClock(TrainerCallback):
    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []

    def on_step_begin(self, args, state, control, **kw):
        _sync()
        self.starts.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kw):
        _sync()
        self.ends.append(time.perf_counter())


def synthetic_data(path: Path, n: int, tokenizer) -> None:
    """n examples, each a different paper (the fixture corpus starting at a different paper), so that
    data-parallel ranks train on different inputs; the same ~1,100-token review."""
    text = corpus_text()
    chars = 400
    while True:  # the longest review that stays within the recipe's 1,150-token response limit
        review = render(Review(SEVEN_ASPECT.name, {c: [ReviewItem(f"Point {i}", text[i * chars:(i + 1) * chars])
                                                       for i in range(3)] for c in SEVEN_ASPECT.criteria}))
        if len(tokenizer(review, add_special_tokens=False)["input_ids"]) <= 1100:
            break
        chars -= 25
    rows = [{"id": f"bench{i}", "schema": "7", "paper": {"title": f"Benchmark {i}", "abstract": "", "sections": [
        {"heading": "1 Introduction", "text": paper}]}, "review": review} for i, paper in enumerate(corpus_texts(n))]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


# ------------------------------------------------------------------------------------ one rank


def worker(seq: int, ckpt: str, data: str, steps: int, report_dir: str, train_flags: list[str]) -> None:
    """One process (one rank): build the recipe's trainer, train `steps` steps, write rank<r>.json."""
    args = parse_args(["--config", str(ROOT / "train" / "configs" / "recipe.yaml"), "--model_name_or_path", ckpt,
                       "--train_file", data, "--eval_strategy", "no", "--output_dir", f"{report_dir}/run",
                       "--max_prompt_tokens", str(seq - RECIPE_MAX_RESPONSE_TOKENS),
                       "--gradient_accumulation_steps", "1", "--max_steps", str(steps), "--save_steps", str(10**9),
                       "--logging_steps", "1", "--report_to", "none",
                       *train_flags])
    clock = StepClock()
    trainer = build_trainer(*args, callbacks=[clock])
    seen: list[dict] = []
    step = trainer.training_step

    def recording_step(model, inputs, *a, **kw):  # what this rank trains on: its own shard under DDP
        ids = inputs["input_ids"]
        seen.append({"sha": hashlib.sha1(ids.cpu().numpy().tobytes()).hexdigest()[:12], "tokens": int(ids.numel())})
        return step(model, inputs, *a, **kw)

    trainer.training_step = recording_step
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    _sync()
    rank, world = trainer.args.process_index, trainer.args.world_size
    lora = sorted((n, p.detach()) for n, p in trainer.model.named_parameters() if p.requires_grad)
    digest = hashlib.sha256()
    for name, p in lora:  # bitwise: the ranks' adapters must be the same bytes, not merely close
        digest.update(name.encode())
        digest.update(p.contiguous().cpu().view(torch.uint8).numpy().tobytes())
    wrapped = trainer.model_wrapped
    cuda = torch.cuda.is_available()
    report = {
        "rank": rank, "world": world, "device": str(trainer.args.device),
        "gpu": torch.cuda.get_device_name() if cuda else "cpu",
        "weights_on": sorted({str(p.device) for p in trainer.model.parameters()}),
        "wrapper": type(wrapped).__name__, "find_unused_parameters": getattr(wrapped, "find_unused_parameters", None),
        "gradient_checkpointing_kwargs": trainer.args.gradient_checkpointing_kwargs,
        "step_s": [e - s for s, e in zip(clock.starts, clock.ends)], "inputs": seen,
        "trained_tokens": sum(1 for x in trainer.train_dataset[0]["labels"] if x != -100),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "attn": trainer.model.config._attn_implementation, "optim": trainer.args.optim,
        "quantized_4bit": bool(getattr(trainer.model.get_base_model(), "is_loaded_in_4bit", False)),
        "lora_params": sum(p.numel() for _, p in lora), "lora_sha256": digest.hexdigest(),
        "lora_b_abs": float(sum(p.float().abs().sum() for n, p in lora if "lora_B" in n)),
        "losses": [round(h["loss"], 3) for h in trainer.state.log_history if "loss" in h]}
    Path(report_dir, f"rank{rank}.json").write_text(json.dumps(report))
    del trainer
    gc.collect()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


# ---------------------------------------------------------------------------- the orchestrator


def worker_command(n: int, launch: str, seq: int, ckpt: str, data: Path, steps: int, report_dir: str,
                   train_flags: list[str]) -> list[str]:
    prefix = [sys.executable] if n == 1 else shlex.split(launch.format(n=n))
    return [*prefix, "-m", "benchmarks.bench_train", "--worker", "--seq", str(seq), "--checkpoint", ckpt,
            "--data", str(data), "--steps", str(steps), "--report-dir", report_dir,
            "--train-flags", json.dumps(train_flags)]


def combine(n: int, reports: list[dict]) -> dict:
    """The ranks' reports -> one row. Step s: per step, the slowest rank (DDP ranks wait for each other
    in the gradient all-reduce), mean over steps 2..N. Tokens per step: all ranks' examples."""
    reports = sorted(reports, key=lambda r: r["rank"])
    timed = [max(r["step_s"][i] for r in reports) for i in range(1, min(len(r["step_s"]) for r in reports))]
    step_s = sum(timed) / len(timed)
    tokens = sum(sum(x["tokens"] for x in r["inputs"][1:len(timed) + 1]) for r in reports) / len(timed)
    shards = [{x["sha"] for x in r["inputs"]} for r in reports]
    first = reports[0]
    return {
        "gpu": first["gpu"], "processes": n, "world": first["world"], "wrapper": first["wrapper"],
        "find_unused_parameters": first["find_unused_parameters"],
        "seq_len": round(tokens / n), "trained_tokens": first["trained_tokens"], "steps_timed": len(timed),
        "step_s": round(step_s, 3), "tokens_per_s": round(tokens / step_s, 0),
        "peak_gib_per_gpu": [r["peak_gib"] for r in reports], "devices": [r["device"] for r in reports],
        "weights_on": [r["weights_on"] for r in reports],
        # across ranks (None for one process)
        "inputs_disjoint": (all(a.isdisjoint(b) for i, a in enumerate(shards) for b in shards[i + 1:])
                            if n > 1 else None),
        "lora_identical": len({r["lora_sha256"] for r in reports}) == 1 if n > 1 else None,
        "lora_sha256": first["lora_sha256"][:16],
        "lora_params": first["lora_params"], "lora_b_abs": round(first["lora_b_abs"], 4),
        "attn": first["attn"], "optim": first["optim"], "quantized_4bit": first["quantized_4bit"],
        "rank_step_s": [[round(s, 3) for s in r["step_s"]] for r in reports],
        "losses": first["losses"]}  # as logged: the mean over ranks


def run(n: int, seq: int, ckpt: str, steps: int, launch: str, train_flags: list[str]) -> dict:
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix=f"bench_train_{n}p_") as tmp:
        data = Path(tmp) / "train.jsonl"
        synthetic_data(data, n * steps, AutoTokenizer.from_pretrained(ckpt))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env.setdefault("NCCL_NVLS_ENABLE", "0")  # no NVLink multicast on shared hosts
        if n == 1 and torch.cuda.is_available():  # one visible GPU: the one-GPU recipe, as `python -m train.sft`
            env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
        cmd = worker_command(n, launch, seq, ckpt, data, steps, tmp, train_flags)
        print("$", shlex.join(cmd), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=ROOT, check=True)
        wall = time.perf_counter() - t0
        reports = [json.loads(p.read_text()) for p in sorted(Path(tmp).glob("rank*.json"))]
    if len(reports) != n:
        raise RuntimeError(f"{n} processes launched but {len(reports)} ranks reported")
    return {**combine(n, reports), "launch_wall_s": round(wall, 1)}


def main() -> None:
    argv = sys.argv[1:]
    train_flags = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seq", nargs="+", type=int, default=[12288, 16384])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--processes", nargs="+", type=int, default=[1],
                   help="process counts to measure, one after the other (1 = one GPU; N = DDP over N GPUs)")
    p.add_argument("--launch", default=ACCELERATE,
                   help="launcher for N > 1 processes ({n} = N), followed by `-m benchmarks.bench_train ...`")
    p.add_argument("--checkpoint", default="/tmp/llama8b-random")
    p.add_argument("--out", default="benchmarks/results/train.jsonl")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--report-dir", help=argparse.SUPPRESS)
    p.add_argument("--train-flags", help=argparse.SUPPRESS)  # the worker's copy of the flags after `--`
    args = p.parse_args(argv)
    if args.worker:
        worker(args.seq[0], args.checkpoint, args.data, args.steps, args.report_dir, json.loads(args.train_flags))
        return
    ckpt = str(build(args.checkpoint))
    with open(args.out, "a") as f:
        for seq in args.seq:
            single = None
            for n in args.processes:
                row = run(n, seq, ckpt, args.steps, args.launch, train_flags)
                if n == 1:
                    single = row
                elif single is not None:
                    row["scaling_efficiency"] = round(row["tokens_per_s"] / (n * single["tokens_per_s"]), 3)
                print(json.dumps(row), flush=True)
                f.write(json.dumps(row) + "\n")
                f.flush()


if __name__ == "__main__":
    main()
