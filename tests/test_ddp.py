"""Multi-process training on CPU (gloo): each rank trains on its own shard, gradients are averaged,
so every rank ends with the same weights. The same code runs one process per GPU under
`accelerate launch --config_file train/accelerate/ddp.yaml`."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from reviewgpt.training.data.prepare import PrepareConfig, prepare

from .conftest import FIXTURES, ROOT


def test_launcher_config_is_two_process_ddp():
    cfg = yaml.safe_load((ROOT / "train" / "accelerate" / "ddp.yaml").read_text())
    assert cfg["distributed_type"] == "MULTI_GPU" and cfg["num_processes"] == 2 and cfg["mixed_precision"] == "bf16"


@pytest.mark.slow
def test_two_cpu_processes_keep_identical_weights(tmp_path, tiny_base_dir):
    prepare(PrepareConfig(source=str(FIXTURES / "iclr2017"), out_dir=str(tmp_path / "data"), schemas=["4"],
                          val_frac=0.0, test_frac=0.0))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",  # a free port
           str(ROOT / "tests" / "support" / "ddp_probe.py"), str(tiny_base_dir), str(tmp_path / "data" / "train.jsonl"),
           str(tmp_path)]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 and r["backend"] == "gloo" for r in ranks), ranks
    assert len(ranks[0]["inputs"]) == 3 and set(ranks[0]["inputs"]).isdisjoint(ranks[1]["inputs"])  # own shards
    assert ranks[0]["lora_b_abs"] > 0  # LoRA B starts at zero: the weights really moved
    assert ranks[0]["lora_sum"] == pytest.approx(ranks[1]["lora_sum"], rel=1e-9)  # gradients were synchronised
