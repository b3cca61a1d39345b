"""The training benchmark's data-parallel mechanics on CPU: the same script that times 1 and 2 GPUs
(`python -m benchmarks.bench_train --processes 1 2`) runs its 2-process measurement under a launcher
(here torchrun with gloo instead of accelerate's DDP config), and its row says whether the ranks
trained on different examples and ended with bit-identical LoRA weights. The 1-process row (the same
worker, started without a launcher) is not trained here, a third training process for CI's two cores; the
last test checks how it is started and how the N-process row's scaling efficiency is computed from it."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

CPU = ["--load_in_4bit", "false", "--dtype", "float32", "--bf16", "false", "--optim", "adamw_torch",
       "--use_cpu", "true", "--learning_rate", "1e-2"]  # gradient checkpointing stays on, as in the recipe


@pytest.mark.slow
def test_two_process_rows_report_identical_adapters_from_different_shards(tmp_path, tiny_base_dir):
    out = tmp_path / "rows.jsonl"
    launch = f"{sys.executable} -m torch.distributed.run --standalone --nproc_per_node {{n}}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "benchmarks.bench_train", "--checkpoint", str(tiny_base_dir), "--seq", "1406",
           "--steps", "3", "--processes", "2", "--launch", launch, "--out", str(out), "--", *CPU]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [two] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (two["processes"], two["world"]) == (2, 2)
    assert two["wrapper"] == "DistributedDataParallel" and two["find_unused_parameters"] is False
    assert two["inputs_disjoint"]  # each rank trained on its own examples (so sameness is not trivial) ...
    assert two["lora_b_abs"] > 0 and two["lora_identical"]  # ... and yet the adapters moved and are the same bytes
    assert two["seq_len"] > 1200 and two["steps_timed"] == 2 and two["tokens_per_s"] > 0
    assert "scaling_efficiency" not in two  # no 1-process row to divide by


def test_a_row_of_several_processes_says_its_scaling_over_the_one_process_row(tmp_path, monkeypatch):
    """The orchestration around the measured runs (each run stands in here by its tokens/s): one process
    starts without a launcher, N under it, and the N-process row divides by N x the 1-process row."""
    from benchmarks import bench_train

    commands = []

    def measured(n, seq, ckpt, steps, launch, flags):
        commands.append(bench_train.worker_command(n, launch, seq, ckpt, tmp_path / "train.jsonl", steps, "r", flags))
        return {"processes": n, "tokens_per_s": {1: 1000.0, 2: 1800.0}[n]}

    monkeypatch.setattr(bench_train, "build", lambda path: path)
    monkeypatch.setattr(bench_train, "run", measured)
    out = tmp_path / "rows.jsonl"
    monkeypatch.setattr(sys, "argv", ["bench_train", "--seq", "1406", "--processes", "1", "2", "--out", str(out),
                                      "--launch", "torchrun --nproc_per_node {n}"])
    bench_train.main()
    one, two = [json.loads(line) for line in out.read_text().splitlines()]
    assert "scaling_efficiency" not in one and two["scaling_efficiency"] == 0.9  # 1800 / (2 x 1000)
    assert commands[0][0] == sys.executable and commands[1][:3] == ["torchrun", "--nproc_per_node", "2"]
