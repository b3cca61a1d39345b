"""The README's train and eval commands, executed as written: each line is read from README.md and run
with `python -m` in a folder laid out as the repository is (its configs, the bundled demo model, and
../shared/data/iclr2017 beside it), so every relative path in the commands and configs means what it
means for a user. The OpenAI side (GPT-4 reviews, the judge) is the local stub server, reached as a user
reaches any compatible server: OPENAI_BASE_URL and OPENAI_API_KEY. The one change to a line is the
README's own key=value override: `limit=1` after the demo eval (its config's 20 papers are minutes of
CPU decoding). tests/test_cli.py parses the README's other command lines; the GPU ones (the 8B) are
not run here.
"""

from __future__ import annotations

import json

import pytest

from reviewgpt.config import EngineConfig
from reviewgpt.generate.engine import load_engine

from .conftest import ROOT
from .support.openai_server import API_KEY
from .support.readme_commands import readme_line, run, user_layout

SHARED = ROOT.parent / "shared" / "data" / "iclr2017"


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    """A checkout's layout without its outputs: configs and demo model linked, the shared data beside it."""
    assert SHARED.is_dir(), f"the README's data prep reads {SHARED} (../shared beside the checkout)"
    top = tmp_path_factory.mktemp("user")
    (top / "shared").symlink_to(ROOT.parent / "shared")
    return user_layout(top / "repo", "train", "eval", "assets")


def test_the_readme_cpu_training_commands_run_as_written(user_dir):
    """Data prep from the shipped config, then the CPU smoke fine-tune on what it wrote."""
    out = run(readme_line("python -m train.prepare_data --config train/configs/data.yaml"), user_dir)
    assert "train: outputs/data/train.jsonl" in out
    rows = [json.loads(x) for x in (user_dir / "outputs/data/train.jsonl").open()]
    assert len({r["id"] for r in rows}) > 300 and {r["schema"] for r in rows} == {"7", "4"}
    run(readme_line("python -m train.sft --config train/configs/cpu-smoke.yaml"), user_dir)
    state = json.loads((user_dir / "runs/cpu-smoke/checkpoint-4/trainer_state.json").read_text())
    assert state["global_step"] == 4
    final = user_dir / "runs/cpu-smoke/final"
    engine = load_engine(EngineConfig(base_model=str(ROOT / "assets/demo-model/base"), adapter=str(final),
                                      max_prompt_tokens=2048, local_files_only=True))
    assert engine.info.adapter == str(final) and not any("BASE model" in n for n in engine.info.notes)


def test_the_readme_demo_eval_commands_run_as_written(user_dir, openai_server):
    """A folder of papers as the test set, then generate, judge and report with the demo model."""
    openai_server.reset()
    stub = {"OPENAI_BASE_URL": openai_server.base_url, "OPENAI_API_KEY": API_KEY}
    run(readme_line("python -m train.prepare_data out_dir=outputs/data-demo"), user_dir)
    tests = [json.loads(x) for x in (user_dir / "outputs/data-demo/test.jsonl").open()]
    assert len({r["id"] for r in tests}) == len(list(SHARED.glob("content/*.json")))  # every paper a test paper
    argv = readme_line("python -m eval all --config eval/configs/demo.yaml") + ["limit=1"]
    out = run(argv, user_dir, stub)
    result = user_dir / "outputs/eval/demo"
    assert "report: outputs/eval/demo/report.md" in out
    reviews = [json.loads(x) for x in (result / "reviews.jsonl").open()]
    assert sorted({r["system"] for r in reviews}) == ["demo", "demo+supp", "gpt4o"]
    assert len(reviews) == 3 and all(r["review"].startswith("## ") for r in reviews)
    judged = [json.loads(x) for x in (result / "judgements.jsonl").open()]
    assert len(judged) == 3  # three matchups, one paper
    report = (result / "report.md").read_text()
    assert "demo+supp" in report and "gpt4o" in report
    assert len(openai_server.state.requests) == 1 + 3 * 2  # GPT-4o's review, each verdict in both orders
