"""Multi-process training on CPU (gloo): each rank trains on its own shard, gradients are averaged,
so every rank ends with the same weights. The same code runs one process per GPU under
`accelerate launch --config_file train/accelerate/ddp.yaml`. That two CPU processes train disjoint shards
and end with identical adapters is asserted (two ranks under torch.distributed.run, the real build_trainer) by
tests/test_bench_train.py::test_two_process_rows_report_identical_adapters_from_different_shards."""

import yaml

from .conftest import ROOT


def test_launcher_config_is_two_process_ddp():
    cfg = yaml.safe_load((ROOT / "train" / "accelerate" / "ddp.yaml").read_text())
    assert cfg["distributed_type"] == "MULTI_GPU" and cfg["num_processes"] == 2 and cfg["mixed_precision"] == "bf16"

