"""QLoRA supervised fine-tuning with TRL (the recipe), shared by train/ and its benchmark.

Data: prepared examples (reviewgpt.training.data.prepare) -> the paper fitted to the prompt budget with the
model's tokenizer (reviewgpt.prepare.budget, as in the app) -> Llama 3.1 chat ids with a completion mask
(reviewgpt.prepare.chat.encode_example): loss on the review and its <|eot_id|> only.

Model: NF4 double-quant base with bf16 compute (bitsandbytes) on CUDA, else bf16/fp32; LoRA on
all linear layers (peft); gradient checkpointing; FlashAttention-2 or SDPA. Memory: TRL's
SFTTrainer projects only the completion positions through the LM head, in tiles, so no
(seq x 128k) fp32 logits exist; bf16 autocast keeps attention on the fused SDPA/flash kernels.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from reviewgpt.prepare.budget import fit_to_budget
from reviewgpt.prepare.chat import encode_example
from reviewgpt.config import DEFAULT_BASE_MODEL, RECIPE_MAX_PROMPT_TOKENS, RECIPE_MAX_RESPONSE_TOKENS, register
from reviewgpt.training.data.papers import PaperRecord
from reviewgpt.generate.hardware import can_quantize_4bit, choose_attention, nf4_config

log = logging.getLogger(__name__)


@register
@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"


@register
@dataclass
class TrainConfig:
    base_model: str = DEFAULT_BASE_MODEL
    tokenizer: str | None = None  # default: the base model's
    train_file: str = "outputs/data/train.jsonl"
    eval_file: str | None = "outputs/data/val.jsonl"
    schemas: list[str] = field(default_factory=lambda: ["7", "4"])  # which prepared targets to train on
    output_dir: str = "runs/llama31-8b-reviewer"
    quantization: str = "nf4"  # "nf4" (QLoRA, CUDA + bitsandbytes) | "none"
    attn_implementation: str = "auto"
    max_prompt_tokens: int = RECIPE_MAX_PROMPT_TOKENS
    max_response_tokens: int = RECIPE_MAX_RESPONSE_TOKENS
    per_device_batch_size: int = 1
    gradient_accumulation_steps: int = 16  # effective batch 16 on one GPU (the recipe)
    learning_rate: float = 1e-4
    num_train_epochs: float = 3.0
    max_steps: int = -1
    lr_scheduler_type: str = "cosine"
    warmup_steps: float = 0.03  # < 1: a fraction of the steps
    weight_decay: float = 0.0
    save_steps: int = 100
    eval_steps: int = 100
    logging_steps: int = 10
    save_total_limit: int | None = None  # keep every checkpoint (the recipe used checkpoint 1,800)
    gradient_checkpointing: bool = True
    optim: str = "auto"  # auto: paged 8-bit AdamW for QLoRA on CUDA, else torch AdamW
    seed: int = 0
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    resume: bool = True  # continue from the newest checkpoint in output_dir if there is one
    limit: int | None = None  # first N examples (smoke runs)
    lora: LoraSettings = field(default_factory=LoraSettings)
    hf_token: str | None = None


# ------------------------------------------------------------------------------------ data


def tokenize_example(ex: dict[str, Any], tokenizer: Any, max_prompt_tokens: int) -> dict[str, Any]:
    """One prepared example -> input_ids + completion_mask (paper fitted to the prompt budget)."""
    paper = PaperRecord.from_json({"id": ex["id"], **ex["paper"]}).document
    fitted = fit_to_budget(paper, tokenizer, ex["schema"], max_prompt_tokens)
    enc = encode_example(tokenizer, ex["schema"], fitted.text, ex["review"])
    return {**enc, "prompt_tokens": fitted.prompt_tokens,
            "response_tokens": sum(enc["completion_mask"])}


def build_dataset(path: str | Path, tokenizer: Any, cfg: TrainConfig):
    """A datasets.Dataset of input_ids/completion_mask; examples whose review is longer than
    max_response_tokens are dropped (cutting them would teach the model never to finish)."""
    from datasets import Dataset

    from reviewgpt.training.data.prepare import read_examples

    wanted = {str(s).split("-")[0] for s in cfg.schemas}
    examples = [e for e in read_examples(path) if str(e["schema"]).split("-")[0] in wanted]
    if cfg.limit:
        examples = examples[: cfg.limit]
    if not examples:
        raise ValueError(f"{path}: no examples for schemas {sorted(wanted)}")
    ds = Dataset.from_list([{"id": e["id"], "schema": e["schema"], "paper": e["paper"], "review": e["review"]}
                            for e in examples])
    ds = ds.map(lambda e: tokenize_example(e, tokenizer, cfg.max_prompt_tokens),
                remove_columns=ds.column_names, desc=f"tokenize {Path(path).name}")
    before = len(ds)
    ds = ds.filter(lambda e: e["response_tokens"] <= cfg.max_response_tokens)
    if len(ds) < before:
        log.warning("%s: dropped %d examples with reviews over %d tokens", path, before - len(ds),
                    cfg.max_response_tokens)
    if len(ds) == 0:
        raise ValueError(f"{path}: every review is longer than max_response_tokens={cfg.max_response_tokens}")
    return ds.remove_columns(["prompt_tokens", "response_tokens"])


# ----------------------------------------------------------------------------------- model


def load_tokenizer(cfg: TrainConfig) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(cfg.tokenizer or cfg.base_model, token=cfg.hf_token or os.environ.get("HF_TOKEN"))
    if tok.pad_token is None:
        tok.pad_token = "<|finetune_right_pad_id|>"  # Llama 3.1's own padding token
    return tok


def load_base_model(cfg: TrainConfig) -> Any:
    """The base model for QLoRA: NF4 + bf16 compute on CUDA; bf16 (CUDA) or fp32 (CPU) otherwise."""
    from transformers import AutoModelForCausalLM

    notes: list[str] = []
    cuda = torch.cuda.is_available()
    kwargs: dict[str, Any] = dict(attn_implementation=choose_attention(cfg.attn_implementation, cuda, notes),
                                  token=cfg.hf_token or os.environ.get("HF_TOKEN"))
    if cuda:
        # One process per GPU under `accelerate launch`: each loads its own copy on its own device.
        kwargs.update(dtype=torch.bfloat16, device_map={"": int(os.environ.get("LOCAL_RANK", 0))})
        if cfg.quantization == "nf4" and can_quantize_4bit(cuda, notes):
            kwargs["quantization_config"] = nf4_config()
        elif cfg.quantization == "nf4":
            notes.append("training bf16 LoRA instead of QLoRA")
    else:
        kwargs["dtype"] = torch.float32
        if cfg.quantization == "nf4":
            notes.append("no CUDA GPU: training an fp32 LoRA instead of QLoRA")
    for n in notes:
        log.warning(n)
    model = AutoModelForCausalLM.from_pretrained(cfg.base_model, **kwargs)
    model.config.use_cache = False  # incompatible with gradient checkpointing; generation turns it back on
    return model


def lora_config(cfg: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")


def sft_config(cfg: TrainConfig, has_eval: bool, quantized: bool) -> Any:
    from trl import SFTConfig

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    optim = cfg.optim
    if optim == "auto":
        optim = "paged_adamw_8bit" if quantized else ("adamw_torch_fused" if cuda else "adamw_torch")
    return SFTConfig(
        output_dir=cfg.output_dir,
        max_length=cfg.max_prompt_tokens + cfg.max_response_tokens,
        completion_only_loss=True,  # pre-tokenised data: use our completion_mask (the review + <|eot_id|>)
        packing=False,
        per_device_train_batch_size=cfg.per_device_batch_size,
        per_device_eval_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=cfg.eval_steps,
        logging_steps=cfg.logging_steps,
        gradient_checkpointing=cfg.gradient_checkpointing,
        bf16=bf16,
        optim=optim,
        seed=cfg.seed,
        report_to=cfg.report_to,
        use_cpu=not cuda,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def build_trainer(cfg: TrainConfig, callbacks: list | None = None) -> Any:
    """Tokenizer, datasets, model and TRL's SFTTrainer (LoRA applied by the trainer through peft)."""
    from trl import SFTTrainer

    tokenizer = load_tokenizer(cfg)
    train_ds = build_dataset(cfg.train_file, tokenizer, cfg)
    eval_ds = build_dataset(cfg.eval_file, tokenizer, cfg) if cfg.eval_file and Path(cfg.eval_file).exists() else None
    model = load_base_model(cfg)
    quantized = getattr(model, "is_loaded_in_4bit", False)
    return SFTTrainer(model=model, args=sft_config(cfg, eval_ds is not None, quantized), train_dataset=train_ds,
                      eval_dataset=eval_ds, processing_class=tokenizer, peft_config=lora_config(cfg),
                      callbacks=callbacks)


def last_checkpoint(output_dir: str | Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None


def train(cfg: TrainConfig, callbacks: list | None = None) -> Path:
    """Run (or resume) the fine-tune; returns the folder of the final peft adapter."""
    trainer = build_trainer(cfg, callbacks)
    resume = last_checkpoint(cfg.output_dir) if cfg.resume else None
    if resume:
        log.warning("resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    final = Path(cfg.output_dir) / "final"
    trainer.save_model(str(final))  # adapter_config.json + adapter_model.safetensors
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(final))
        (final / "train_config.yaml").write_text(_yaml(asdict(cfg)))
    return final


def _yaml(d: dict) -> str:
    import yaml

    return yaml.safe_dump(d, sort_keys=False)
