import json
from pathlib import Path

import pytest
import yaml

import torch
from trl import get_peft_config, get_quantization_config

from reviewgpt.config import (DEFAULT_BASE_MODEL, RECIPE_MAX_PROMPT_TOKENS, RECIPE_MAX_RESPONSE_TOKENS, EngineConfig,
                              GenerationConfig)
from reviewgpt.training.data.papers import read_iclr2017, split_of
from reviewgpt.training.data.prepare import PrepareConfig, example_document, prepare, read_examples
from reviewgpt.generate.engine import load_engine
from reviewgpt.format.review_format import parse
from reviewgpt.training.sft import CONFIG_FILE, build_trainer, parse_args, train

from .conftest import FIXTURES, ROOT

RECIPE = str(ROOT / "train" / "configs" / "recipe.yaml")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    prepare(PrepareConfig(source=str(FIXTURES / "iclr2017"), out_dir=str(out), val_frac=0.2, test_frac=0.2))
    return out


def test_prepare_writes_split_targets_in_the_review_format(data_dir):
    rows = {s: read_examples(data_dir / f"{s}.jsonl") for s in ("train", "val", "test")}
    ids = {s: {r["id"] for r in rs} for s, rs in rows.items()}
    assert sum(len(v) for v in ids.values()) == 12 and not (ids["train"] & ids["test"])
    for s, rs in rows.items():
        for r in rs:
            assert r["split"] == s == split_of(r["id"], 0, 0.2, 0.2)  # deterministic by (seed, id)
            assert r["aggregator"] == "extractive" and r["human_reviews"]
            assert not parse(r["review"], r["schema"]).report.missing
    assert {r["schema"] for r in rows["train"]} == {"7", "4"}
    assert any("<No related terms>" in r["review"] for rs in rows.values() for r in rs)


def test_llm_aggregation_through_the_openai_client_is_cached(openai_env, tmp_path):
    cfg = PrepareConfig(source=str(FIXTURES / "iclr2017"), out_dir=str(tmp_path / "d"), aggregator="llm",
                        cache_dir=str(tmp_path / "cache"), schemas=["4"], limit=3, llm_model="agg-model")
    prepare(cfg)
    assert len(openai_env.state.requests) == 3
    assert openai_env.state.requests[0]["body"]["model"] == "agg-model"
    rows = [json.loads(x) for s in ("train", "val", "test") for x in (tmp_path / "d" / f"{s}.jsonl").open()]
    assert all(r["aggregator"] == "llm:agg-model" and "aggregated reviewer" in r["review"] for r in rows)
    prepare(cfg)  # a rerun (or a resumed one) asks nothing again
    assert len(openai_env.state.requests) == 3
    cfg.llm_model = "another-model"  # another aggregator: its targets are made again, not served from the cache
    prepare(cfg)
    assert len(openai_env.state.requests) == 6 and openai_env.state.requests[-1]["body"]["model"] == "another-model"


def _args(data_dir, tiny_base_dir, tmp_path, *flags):
    """The recipe's YAML with the overrides a CPU run needs, as a user would pass them."""
    return parse_args(["--config", RECIPE, "--model_name_or_path", str(tiny_base_dir),
                       "--train_file", str(data_dir / "train.jsonl"), "--eval_file", str(data_dir / "val.jsonl"),
                       "--output_dir", str(tmp_path / "run"), "--max_prompt_tokens", "384",
                       "--load_in_4bit", "false", "--dtype", "float32", "--bf16", "false", "--optim", "adamw_torch",
                       "--gradient_checkpointing", "false", "--report_to", "none", *flags])


def test_labels_mask_the_prompt_and_train_the_review_and_end_token(data_dir, tiny_base_dir, tmp_path, tokenizer):
    trainer = build_trainer(*_args(data_dir, tiny_base_dir, tmp_path))
    row = trainer.train_dataset[0]
    ids, labels = row["input_ids"], row["labels"]
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    header = tokenizer("<|start_header_id|>assistant<|end_header_id|>\n\n", add_special_tokens=False)["input_ids"]
    start = max(i for i in range(len(ids)) if ids[i:i + len(header)] == header) + len(header)
    assert all(l == -100 for l in labels[:start])  # system prompt, paper, assistant header: ignored
    assert labels[start:] == ids[start:] and ids[-1] == eot  # review + <|eot_id|>: trained
    assert tokenizer.decode(ids[start:-1]).startswith("## ")
    assert len(ids) - start <= 1150 and start <= 384


def test_cpu_sft_smoke_run_learns_and_its_adapter_loads_in_the_engine(data_dir, tiny_base_dir, tmp_path):
    args = _args(data_dir, tiny_base_dir, tmp_path, "--max_steps", "24", "--learning_rate", "1e-2",
                 "--gradient_accumulation_steps", "1", "--per_device_train_batch_size", "2", "--save_steps", "12",
                 "--eval_steps", "12", "--logging_steps", "6", "--warmup_steps", "0", "--lr_scheduler_type", "constant",
                 "--limit", "4", "--schemas", "4")
    final = train(*args)
    losses = [h["loss"] for h in json.load(open(tmp_path / "run" / "checkpoint-24" / "trainer_state.json"))["log_history"]
              if "loss" in h]
    assert len(losses) == 4 and losses[-1] < losses[0] * 0.8, losses
    assert (final / "adapter_config.json").exists() and (final / "adapter_model.safetensors").exists()
    assert (tmp_path / "run" / "checkpoint-12").is_dir()  # saved every save_steps
    # The adapter carries its training config, and that file replays the run's settings.
    replay = parse_args(["--config", str(final / CONFIG_FILE)])
    assert replay[0].limit == 4 and replay[0].schemas == ["4"] and replay[0].max_prompt_tokens == 384
    assert replay[1].max_steps == 24 and replay[1].learning_rate == 1e-2 and replay[2].lora_r == 16
    assert replay[2].model_name_or_path == str(tiny_base_dir) and replay[2].load_in_4bit is False
    engine = load_engine(EngineConfig(base_model=str(tiny_base_dir), adapter=str(final), max_prompt_tokens=384,
                                      local_files_only=True))
    assert not any("BASE model" in n for n in engine.info.notes)
    ex = next(e for e in read_examples(data_dir / "train.jsonl") if e["schema"] == "4")
    paper = engine.prepare(example_document(ex), "4").text
    text = engine.generate(paper, "4", GenerationConfig(max_new_tokens=40, do_sample=False, suppression=0.0))
    assert text.startswith("## Significance")  # it learned how its reviews start


def test_recipe_yaml_parses_to_the_recipe():
    data, training, model = parse_args(["--config", RECIPE, "--use_cpu", "true"])  # use_cpu: bf16 check on CPU
    assert (data.max_prompt_tokens, data.max_response_tokens) == (RECIPE_MAX_PROMPT_TOKENS, RECIPE_MAX_RESPONSE_TOKENS)
    assert (data.max_prompt_tokens, data.max_response_tokens) == (11_138, 1_150)
    assert training.per_device_train_batch_size * training.gradient_accumulation_steps == 16  # effective batch
    assert training.learning_rate == 1e-4 and training.num_train_epochs == 3
    assert training.save_strategy == "steps" and training.save_steps == 100 and training.bf16
    assert training.max_length is None and training.gradient_checkpointing and training.optim == "paged_adamw_8bit"
    assert model.model_name_or_path == DEFAULT_BASE_MODEL and model.use_peft and model.lora_r == 16
    quant = get_quantization_config(model)  # TRL's own translation of ModelConfig
    assert quant.load_in_4bit and quant.bnb_4bit_quant_type == "nf4" and quant.bnb_4bit_use_double_quant
    assert quant.bnb_4bit_compute_dtype == torch.bfloat16
    peft = get_peft_config(model)
    assert (peft.r, peft.lora_alpha, peft.lora_dropout, peft.target_modules) == (16, 32, 0.05, "all-linear")


def test_command_line_overrides_win_over_the_yaml():
    data, training, model = parse_args(["--config", RECIPE, "--use_cpu", "true", "--learning_rate", "2e-4",
                                        "--lora_r", "8", "--schemas", "4", "--max_prompt_tokens", "4096"])
    assert training.learning_rate == 2e-4 and model.lora_r == 8 and model.lora_alpha == 32
    assert data.schemas == ["4"] and data.max_prompt_tokens == 4096 and training.save_steps == 100


def test_unknown_keys_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key 'learning_rat' in the command line \(did you mean 'learning_rate'"):
        parse_args(["--config", RECIPE, "--learning_rat", "1e-4"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 1.0e-4\nquantization: nf4\n")  # a key of the old home-grown config
    with pytest.raises(ValueError, match="unknown key 'quantization' in"):
        parse_args(["--config", str(bad)])


def test_a_short_max_length_that_would_cut_examples_is_refused(data_dir, tiny_base_dir, tmp_path):
    with pytest.raises(ValueError, match="max_length=1024 would cut"):
        build_trainer(*_args(data_dir, tiny_base_dir, tmp_path, "--max_length", "1024"))


def test_interrupted_training_resumes_from_the_newest_checkpoint(data_dir, tiny_base_dir, tmp_path):
    from transformers import TrainerCallback

    class CountSteps(TrainerCallback):
        def __init__(self):
            self.steps = []

        def on_step_end(self, args, state, control, **kw):
            self.steps.append(state.global_step)

    kw = ["--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "1", "--save_steps", "2",
          "--logging_steps", "1", "--limit", "3", "--schemas", "4", "--eval_strategy", "no"]
    train(*_args(data_dir, tiny_base_dir, tmp_path, "--max_steps", "2", *kw))  # "interrupted": checkpoint-2 on disk
    counter = CountSteps()
    train(*_args(data_dir, tiny_base_dir, tmp_path, "--max_steps", "4", *kw), callbacks=[counter])
    assert counter.steps == [3, 4]  # continued from checkpoint-2; steps 1-2 were not trained again
    assert (tmp_path / "run" / "checkpoint-4").is_dir()


def test_bundled_demo_model_reads_2048_tokens_fits_in_git_and_writes_the_layout():
    demo = ROOT / "assets" / "demo-model"
    spec = yaml.safe_load((demo / "engine.yaml").read_text())
    assert set(spec) >= {"base_model", "adapter", "max_prompt_tokens", "max_new_tokens"}
    assert spec["max_prompt_tokens"] >= 2048  # title, abstract, introduction
    assert sum(f.stat().st_size for f in demo.rglob("*") if f.is_file()) <= 25 * 2**20
    metrics = json.loads((demo / "metrics.json").read_text())
    assert metrics["rates"]["held_out_papers"] == 50 and metrics["rates"]["prompt_tokens"]["min"] > 2000
    engine = load_engine(EngineConfig(base_model=str(demo / spec["base_model"]), adapter=str(demo / spec["adapter"]),
                                      max_prompt_tokens=spec["max_prompt_tokens"], local_files_only=True))
    paper = next(read_iclr2017(FIXTURES / "iclr2017")).document
    fitted = engine.prepare(paper, "7")
    assert fitted.budget.prompt_tokens > 2000  # the fixture paper is long enough to fill the budget
    text = engine.generate(fitted.text, "7", GenerationConfig(max_new_tokens=24, do_sample=False, suppression=0.0))
    assert text.startswith("## How to evaluate the idea of the paper")
