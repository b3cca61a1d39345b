"""Run by tests under `torch.distributed.run` (2 CPU processes, gloo): trains through the real
build_trainer path and writes, per rank, what it saw and where its LoRA weights ended up."""

import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import TrainerCallback

from reviewgpt.training.sft import TrainConfig, build_trainer

base, data, out = sys.argv[1:4]
cfg = TrainConfig(base_model=base, train_file=data, eval_file=None, output_dir=str(Path(out) / "run"),
                  quantization="none", max_steps=3, per_device_batch_size=1, gradient_accumulation_steps=1,
                  learning_rate=1e-2, report_to=[], save_steps=10**6, max_prompt_tokens=256,
                  max_response_tokens=1150, resume=False, schemas=["4"], gradient_checkpointing=False)
seen: list[str] = []


class Probe(TrainerCallback):
    def on_train_end(self, args, state, control, model=None, **kw):
        lora = {n: p.detach().double() for n, p in model.named_parameters() if p.requires_grad}
        rank = dist.get_rank()
        Path(out, f"rank{rank}.json").write_text(json.dumps({
            "rank": rank, "world": dist.get_world_size(), "backend": dist.get_backend(), "inputs": seen,
            "lora_sum": sum(float(p.sum()) for p in lora.values()),
            "lora_b_abs": sum(float(p.abs().sum()) for n, p in lora.items() if "lora_B" in n)}))


trainer = build_trainer(cfg, callbacks=[Probe()])
step = trainer.training_step


def recording_step(model, inputs, *a, **kw):
    seen.append(hashlib.sha1(inputs["input_ids"].numpy().tobytes()).hexdigest()[:12])
    return step(model, inputs, *a, **kw)


trainer.training_step = recording_step
torch.manual_seed(0)
trainer.train()
