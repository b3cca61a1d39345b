import json

import pytest

from reviewgpt.config import EngineConfig, GenerationConfig, load_config
from reviewgpt.training.data.papers import split_of
from reviewgpt.training.data.prepare import PrepareConfig, prepare, read_examples
from reviewgpt.generate.engine import load_engine
from reviewgpt.format.review_format import parse
from reviewgpt.training.sft import TrainConfig, build_trainer, train

from .conftest import FIXTURES


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


def _cfg(data_dir, tiny_base_dir, tmp_path, **kw):
    return TrainConfig(base_model=str(tiny_base_dir), train_file=str(data_dir / "train.jsonl"),
                       eval_file=str(data_dir / "val.jsonl"), output_dir=str(tmp_path / "run"),
                       max_prompt_tokens=384, max_response_tokens=1150, report_to=[], **kw)


def test_labels_mask_the_prompt_and_train_the_review_and_end_token(data_dir, tiny_base_dir, tmp_path, tokenizer):
    trainer = build_trainer(_cfg(data_dir, tiny_base_dir, tmp_path))
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
    cfg = _cfg(data_dir, tiny_base_dir, tmp_path, max_steps=40, learning_rate=1e-2, gradient_accumulation_steps=1,
               per_device_batch_size=2, save_steps=20, eval_steps=20, logging_steps=10, warmup_steps=0,
               lr_scheduler_type="constant", limit=4, schemas=["4"])
    cfg.lora.r, cfg.lora.alpha = 16, 32
    final = train(cfg)
    losses = [h["loss"] for h in json.load(open(tmp_path / "run" / "checkpoint-40" / "trainer_state.json"))["log_history"]
              if "loss" in h]
    assert len(losses) == 4 and losses[-1] < losses[0] * 0.8, losses
    assert (final / "adapter_config.json").exists() and (final / "adapter_model.safetensors").exists()
    assert (tmp_path / "run" / "checkpoint-20").is_dir()  # saved every save_steps
    engine = load_engine(EngineConfig(base_model=str(tiny_base_dir), adapter=str(final), max_prompt_tokens=384,
                                      local_files_only=True))
    assert not any("BASE model" in n for n in engine.info.notes)
    ex = next(e for e in read_examples(data_dir / "train.jsonl") if e["schema"] == "4")
    from reviewgpt.training.data.papers import PaperRecord
    paper = engine.fit(PaperRecord.from_json({"id": ex["id"], **ex["paper"]}).document, "4").text
    text = engine.generate(paper, "4", GenerationConfig(max_new_tokens=40, do_sample=False, suppression=0.0))
    assert text.startswith("## Significance")  # it learned how its reviews start


def test_config_from_yaml_with_overrides(tmp_path):
    cfg = load_config(TrainConfig, "train/configs/recipe.yaml", ["lora.r=8", "learning_rate=2e-4"])
    assert cfg.lora.r == 8 and cfg.lora.alpha == 32 and cfg.learning_rate == 2e-4
    assert (cfg.max_prompt_tokens, cfg.max_response_tokens, cfg.gradient_accumulation_steps, cfg.save_steps,
            cfg.num_train_epochs) == (11138, 1150, 16, 100, 3)
    with pytest.raises(ValueError, match="unknown"):
        load_config(TrainConfig, None, ["nonsense=1"])


def test_interrupted_training_resumes_from_the_newest_checkpoint(data_dir, tiny_base_dir, tmp_path):
    from transformers import TrainerCallback

    class CountSteps(TrainerCallback):
        def __init__(self):
            self.steps = []

        def on_step_end(self, args, state, control, **kw):
            self.steps.append(state.global_step)

    kw = dict(per_device_batch_size=1, gradient_accumulation_steps=1, save_steps=2, logging_steps=1, limit=3,
              schemas=["4"])
    first = _cfg(data_dir, tiny_base_dir, tmp_path, max_steps=2, **kw)
    first.eval_file = None
    train(first)  # "interrupted" after step 2: checkpoint-2 is on disk
    second = _cfg(data_dir, tiny_base_dir, tmp_path, max_steps=4, **kw)
    second.eval_file = None
    counter = CountSteps()
    train(second, callbacks=[counter])
    assert counter.steps == [3, 4]  # continued from checkpoint-2; steps 1-2 were not trained again
    assert (tmp_path / "run" / "checkpoint-4").is_dir()
