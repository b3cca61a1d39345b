"""Run by tests under `torch.distributed.run` (2 CPU processes, gloo): trains through the real
build_trainer path and writes, per rank, what it saw and where its LoRA weights ended up."""

import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import TrainerCallback

from reviewgpt.training.sft import build_trainer, parse_args

base, data, out = sys.argv[1:4]
ROOT = Path(__file__).resolve().parents[2]
args = parse_args(["--config", str(ROOT / "train" / "configs" / "recipe.yaml"), "--model_name_or_path", base,
                   "--train_file", data, "--eval_strategy", "no", "--output_dir", str(Path(out) / "run"),
                   "--load_in_4bit", "false", "--dtype", "float32", "--bf16", "false", "--optim", "adamw_torch",
                   "--use_cpu", "true", "--max_steps", "3", "--per_device_train_batch_size", "1",
                   "--gradient_accumulation_steps", "1", "--learning_rate", "1e-2", "--report_to", "none", "--save_steps", "1000000",
                   "--max_prompt_tokens", "256", "--schemas", "4", "--gradient_checkpointing", "false"])
seen: list[str] = []


class Probe(TrainerCallback):
    def on_train_end(self, args, state, control, model=None, **kw):
        lora = {n: p.detach().double() for n, p in model.named_parameters() if p.requires_grad}
        rank = dist.get_rank()
        Path(out, f"rank{rank}.json").write_text(json.dumps({
            "rank": rank, "world": dist.get_world_size(), "backend": dist.get_backend(), "inputs": seen,
            "lora_sum": sum(float(p.sum()) for p in lora.values()),
            "lora_b_abs": sum(float(p.abs().sum()) for n, p in lora.items() if "lora_B" in n)}))


trainer = build_trainer(*args, callbacks=[Probe()])
step = trainer.training_step


def recording_step(model, inputs, *a, **kw):
    seen.append(hashlib.sha1(inputs["input_ids"].numpy().tobytes()).hexdigest()[:12])
    return step(model, inputs, *a, **kw)


trainer.training_step = recording_step
torch.manual_seed(0)
trainer.train()
