"""QLoRA supervised fine-tuning with TRL (the recipe), configured the way TRL's own `trl/scripts/sft.py` is.

Configuration: `TrlParser` over (`ReviewDataArguments`, `SFTConfig`, `ModelConfig`): one flat YAML
(`--config train/configs/recipe.yaml`) whose keys are the fields of those three dataclasses, command-line
flags that win over it (`--learning_rate 2e-4`), `--help` from the fields' metadata, and every TRL /
transformers option available without re-declaring it here. The quantisation and LoRA settings go
through TRL's `get_quantization_config` / `get_peft_config`; TRL's `SFTTrainer` loads the model from
its name with `model_init_kwargs` exactly as the TRL script does.

What this module adds to TRL's script:
- data: prepared examples (reviewgpt.training.data.prepare) -> the paper fitted to the prompt budget by
  `reviewgpt.prepare.model_input.prepare` (the same cut as the app) -> Llama 3.1 chat ids with a completion
  mask from `reviewgpt.prepare.chat.encode_example` (the same chat code as inference): loss on the review
  and its <|eot_id|> only;
- resume: an unset `resume_from_checkpoint` continues from the newest checkpoint in `output_dir`, if any;
- the saved adapter carries its training config (`final/train_config.yaml`, replayable with `--config`).

Memory: TRL's SFTTrainer projects only the completion positions through the LM head, in tiles, so no
(seq x 128k) fp32 logits exist; bf16 autocast keeps attention on the fused SDPA/flash kernels.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from reviewgpt.config import RECIPE_MAX_PROMPT_TOKENS, RECIPE_MAX_RESPONSE_TOKENS

log = logging.getLogger(__name__)

CONFIG_FILE = "train_config.yaml"  # written next to the final adapter


@dataclass
class ReviewDataArguments:
    """What the model is trained on (the part of the configuration TRL's script takes from a Hub dataset)."""

    train_file: str = field(default="outputs/data/train.jsonl",
                            metadata={"help": "Prepared training examples (python -m train.prepare_data)."})
    eval_file: str | None = field(default="outputs/data/val.jsonl",
                                  metadata={"help": "Prepared evaluation examples; used when eval_strategy is not 'no'."})
    schemas: list[str] = field(default_factory=lambda: ["7", "4"],
                               metadata={"help": "Which prepared targets to train on: '7' and/or '4' aspects."})
    max_prompt_tokens: int = field(default=RECIPE_MAX_PROMPT_TOKENS, metadata={
        "help": "The whole chat prompt (system + paper) is fitted to this many tokens, as in the app."})
    max_response_tokens: int = field(default=RECIPE_MAX_RESPONSE_TOKENS, metadata={
        "help": "Examples whose review (+ end token) is longer are dropped, never cut: a cut review would "
                "teach the model never to finish."})
    limit: int | None = field(default=None, metadata={"help": "Use only the first N examples (smoke runs)."})


# ------------------------------------------------------------------------------- configuration


def make_parser(extra: tuple[type, ...] = (), prog: str | None = None):
    """TRL's parser over (*extra, ReviewDataArguments, SFTConfig, ModelConfig)."""
    from trl import ModelConfig, SFTConfig, TrlParser

    return TrlParser((*extra, ReviewDataArguments, SFTConfig, ModelConfig), prog=prog)


def parse_args(argv: list[str] | None = None, extra: tuple[type, ...] = (), prog: str | None = None) -> tuple:
    """`--config FILE` plus flags -> one instance per dataclass (TRL's `parse_args_and_config`).

    Unknown keys, in the file or on the command line, are refused by name (with the closest known key)
    before any dataclass is built, so a typo never surfaces as some other field's error."""
    import sys

    parser = make_parser(extra, prog)
    args = list(sys.argv[1:] if argv is None else argv)
    keys: list[tuple[str, str]] = []
    if "--config" in args:
        path = args[args.index("--config") + 1]
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of keys to values")
        keys += [(k, path) for k in loaded if k != "env"]  # env: TRL sets these environment variables
    keys += [(a[2:].split("=")[0], "the command line") for a in args if a.startswith("--") and a != "--config"]
    dests = {a.dest for a in parser._actions}
    options = {o[2:] for a in parser._actions for o in a.option_strings if o.startswith("--")}
    unknown = [(k, where) for k, where in keys if k not in (options if where == "the command line" else dests)]
    if unknown:
        hints = []
        for key, where in unknown:
            close = difflib.get_close_matches(key, sorted(dests), n=1)
            hints.append(f"{key!r} in {where}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(f"unknown key {'; '.join(hints)}. Keys are the fields of "
                         f"{', '.join(t.__name__ for t in parser.dataclass_types)} (see --help).")
    return tuple(parser.parse_args_and_config(args))


def non_default_values(*configs: Any) -> dict[str, Any]:
    """The fields that differ from their dataclass defaults, flat: a config file that replays the run."""
    out: dict[str, Any] = {}
    for cfg in configs:
        values = cfg.to_dict() if hasattr(cfg, "to_dict") else dataclasses.asdict(cfg)  # to_dict: enums as strings
        for f in dataclasses.fields(cfg):
            if not f.init or f.name not in values or f.name.endswith("_token") or f.name == "hub_token":
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            value = values[f.name]
            if value != default and not (hasattr(default, "value") and default.value == value):
                out[f.name] = value
    return out


# ---------------------------------------------------------------------------------------- data


def tokenize_example(ex: dict[str, Any], tokenizer: Any, max_prompt_tokens: int) -> dict[str, Any]:
    """One prepared example -> input_ids + completion_mask (the paper as the app would cut it)."""
    from reviewgpt.prepare.chat import encode_example
    from reviewgpt.prepare.model_input import prepare
    from reviewgpt.training.data.prepare import example_document

    paper = example_document(ex)
    fitted = prepare(paper, ex["schema"], tokenizer, max_prompt_tokens)
    enc = encode_example(tokenizer, ex["schema"], fitted.text, ex["review"])
    return {**enc, "response_tokens": sum(enc["completion_mask"])}


def build_dataset(path: str | Path, tokenizer: Any, data: ReviewDataArguments):
    """A datasets.Dataset of input_ids/completion_mask; examples whose review is longer than
    max_response_tokens are dropped."""
    from datasets import Dataset

    from reviewgpt.training.data.prepare import read_examples

    wanted = {str(s).split("-")[0] for s in data.schemas}
    examples = [e for e in read_examples(path) if str(e["schema"]).split("-")[0] in wanted]
    if data.limit:
        examples = examples[: data.limit]
    if not examples:
        raise ValueError(f"{path}: no examples for schemas {sorted(wanted)}")
    ds = Dataset.from_list([{"id": e["id"], "schema": e["schema"], "paper": e["paper"], "review": e["review"]}
                            for e in examples])
    ds = ds.map(lambda e: tokenize_example(e, tokenizer, data.max_prompt_tokens),
                remove_columns=ds.column_names, desc=f"tokenize {Path(path).name}")
    before = len(ds)
    ds = ds.filter(lambda e: e["response_tokens"] <= data.max_response_tokens)
    if len(ds) < before:
        log.warning("%s: dropped %d examples with reviews over %d tokens", path, before - len(ds),
                    data.max_response_tokens)
    if len(ds) == 0:
        raise ValueError(f"{path}: every review is longer than max_response_tokens={data.max_response_tokens}")
    return ds.remove_columns(["response_tokens"])


# ------------------------------------------------------------------------------------- trainer


def check_args(data: ReviewDataArguments, training: Any, model: Any) -> None:
    """Refuse combinations that would silently train something else than asked."""
    if not model.model_name_or_path:
        raise ValueError("model_name_or_path is not set (the recipe: meta-llama/Llama-3.1-8B-Instruct)")
    longest = data.max_prompt_tokens + data.max_response_tokens
    if training.max_length is not None and training.max_length < longest:
        raise ValueError(f"max_length={training.max_length} would cut examples of up to {longest} tokens "
                         f"(max_prompt_tokens + max_response_tokens): set max_length to null or >= {longest}")
    if (model.load_in_4bit or model.load_in_8bit) and not torch.cuda.is_available():
        raise ValueError("load_in_4bit / load_in_8bit (QLoRA) needs a CUDA GPU with bitsandbytes: "
                         "pass --load_in_4bit false for a plain LoRA")
    if training.eval_strategy != "no" and not (data.eval_file and Path(data.eval_file).exists()):
        raise ValueError(f"eval_strategy={training.eval_strategy.value!r} but eval_file {data.eval_file!r} "
                         "does not exist: prepare it or pass --eval_strategy no")


def load_tokenizer(model: Any, training: Any) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model.model_name_or_path, revision=model.model_revision,
                                        trust_remote_code=training.trust_remote_code)
    if tok.pad_token is None and "<|finetune_right_pad_id|>" in tok.get_vocab():
        tok.pad_token = "<|finetune_right_pad_id|>"  # Llama 3.1's own padding token (TRL would pad with eos)
    return tok


def build_trainer(data: ReviewDataArguments, training: Any, model: Any, callbacks: list | None = None) -> Any:
    """Datasets and TRL's SFTTrainer, which loads the model (quantised per ModelConfig) and applies LoRA."""
    from trl import SFTTrainer, get_peft_config, get_quantization_config

    check_args(data, training, model)
    # As TRL's script: the model is loaded by the trainer from these (device placement included:
    # one copy per process under `accelerate launch`).
    training.model_init_kwargs = {
        "revision": model.model_revision, "trust_remote_code": training.trust_remote_code,
        "attn_implementation": model.attn_implementation, "dtype": model.dtype,
        **(training.model_init_kwargs or {})}
    if training.completion_only_loss is None:  # our examples carry a completion_mask: train on the review
        training.completion_only_loss = True
    tokenizer = load_tokenizer(model, training)
    train_ds = build_dataset(data.train_file, tokenizer, data)
    eval_ds = build_dataset(data.eval_file, tokenizer, data) if training.eval_strategy != "no" else None
    return SFTTrainer(model=model.model_name_or_path, args=training, train_dataset=train_ds, eval_dataset=eval_ds,
                      processing_class=tokenizer, quantization_config=get_quantization_config(model),
                      peft_config=get_peft_config(model), callbacks=callbacks)


def last_checkpoint(output_dir: str | Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None


def train(data: ReviewDataArguments, training: Any, model: Any, callbacks: list | None = None) -> Path:
    """Run (or resume) the fine-tune; returns the folder of the final peft adapter."""
    saved = non_default_values(data, training, model)  # before the trainer fills in derived values
    trainer = build_trainer(data, training, model, callbacks)
    resume = training.resume_from_checkpoint or last_checkpoint(training.output_dir)
    if resume:
        log.warning("resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    final = Path(training.output_dir) / "final"
    trainer.save_model(str(final))  # adapter_config.json + adapter_model.safetensors
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(final))
        (final / CONFIG_FILE).write_text(yaml.safe_dump(saved, sort_keys=False))
    return final
