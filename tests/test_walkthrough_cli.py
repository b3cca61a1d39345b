"""What a user of eval/ and train/ hits on the command line (README walk-through): one message naming
the problem instead of a traceback, resumed runs that say what they kept, nothing written lost."""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pytest

from reviewgpt.compare.evaluation.stages import generate, review_store
from reviewgpt.compare.evaluation.store import JsonlStore
from reviewgpt.compare.evaluation.systems import load_tokenizer
from reviewgpt.config import OpenAIConfig
from reviewgpt.errors import ModelLoadError, OpenAIServiceError
from reviewgpt.rating import metrics as M

from .conftest import FIXTURES
from .support.eval_configs import local_vs_gpt
from .support.openai_server import API_KEY, default_review


# ------------------------------------------------------------------ python -m eval rate, bad input

def _rate(argv, capsys):
    from eval.rate import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code, capsys.readouterr()


def test_rate_an_empty_file_says_it_holds_no_reviews(tmp_path, capsys):
    f = tmp_path / "empty.jsonl"
    f.write_text("\n")
    code, out = _rate(["--reviews", str(f)], capsys)
    assert "holds no reviews" in str(code) and str(f) in str(code) and out.out == ""


def test_rate_a_file_of_only_unreadable_lines_reports_each_line(tmp_path, capsys):
    f = tmp_path / "bad.jsonl"
    f.write_text('not json\n{"text": "no review key"}\n')
    code, out = _rate(["--reviews", str(f)], capsys)
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert code == 1 and [r["line"] for r in rows] == [1, 2] and "not JSON" in rows[0]["error"]


def test_rate_a_file_that_is_not_utf8_says_so(tmp_path, capsys):
    f = tmp_path / "latin1.jsonl"
    f.write_bytes('{"review": "caf\xe9"}\n'.encode("latin-1"))
    code, _ = _rate(["--reviews", str(f)], capsys)
    assert "not UTF-8" in str(code)


# ------------------------------------------------------------------ config and model errors: one line

@pytest.mark.parametrize("module, argv, expected", [
    ("eval.__main__", ["generate", "--config", "eval/configs/demo.yaml", "limt=3"],
     "unknown EvalConfig keys: ['limt'] (did you mean 'limit'?)"),
    ("train.prepare_data", ["--config", "train/configs/data.yaml", "agregator=llm"],
     "unknown PrepareConfig keys: ['agregator'] (did you mean 'aggregator'?)"),
    ("eval.__main__", ["report", "--config", "eval/configs/no-such.yaml"], "cannot read the config"),
])
def test_a_config_mistake_ends_the_cli_with_one_line(module, argv, expected):
    import importlib

    with pytest.raises(SystemExit) as e:
        importlib.import_module(module).main(argv)
    assert str(e.value.code).startswith("error: ") and expected in str(e.value.code)


def test_a_mistyped_model_folder_is_named_as_missing():
    with pytest.raises(ModelLoadError, match="model folder not found: assets/demo-modl/base"):
        load_tokenizer("assets/demo-modl/base")


def test_a_timeout_under_a_second_is_said_as_given(openai_env):
    from reviewgpt.remote.openai_client import OpenAIChat

    openai_env.state.default_delay_s = 1.0
    chat = OpenAIChat(OpenAIConfig(api_key=API_KEY, base_url=openai_env.base_url, timeout_s=0.25, max_retries=0))
    with pytest.raises(OpenAIServiceError, match=r"did not answer within 0\.25 s"):
        chat.complete([{"role": "user", "content": "hi"}], model="gpt-4o")


# ------------------------------------------------------------------ scorecard: few papers, no warning flood

def test_undefined_figures_are_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(M.spearman(np.array([5.0, 5.0, 5.0]), np.array([1.0, 2.0, 3.0])))
        assert np.isnan(M.balanced_accuracy(np.array([1, 1, 1]), np.array([0.2, 0.7, 0.9])))
        assert M.balanced_accuracy(np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.2, 0.8])) == 0.5


# ------------------------------------------------------------------ resumed runs

def test_a_row_written_after_a_cut_line_is_read_back(tmp_path):
    path = tmp_path / "reviews.jsonl"
    path.write_text(json.dumps({"key": "a"}) + "\n" + '{"key": "b", "rev')  # killed mid-write
    store = JsonlStore(path, lambda r: r["key"])
    assert store.skipped == 1 and "a" in store
    store.add({"key": "b", "review": "redone"})
    again = JsonlStore(path, lambda r: r["key"])
    assert again.get("b") == {"key": "b", "review": "redone"} and again.skipped == 1


class _Runner:
    batch_size = 1

    def review(self, texts, schema):
        from reviewgpt.format.schema import get_schema

        return [default_review(list(get_schema(schema).criteria), "walk") for _ in texts]


def test_generate_says_what_it_kept_when_resumed(tmp_path, data_file, model_dirs, openai_env, caplog):
    cfg = local_vs_gpt(tmp_path, data_file, model_dirs, openai_env, limit=3, max_prompt_tokens=512,
                       max_new_tokens=20, bootstrap_samples=10)
    runners = {s.name: _Runner() for s in cfg.systems}
    generate(cfg, systems=runners)
    store = review_store(cfg)
    rows = store.path.read_text().splitlines()
    store.path.write_text("\n".join(rows[:-1]) + "\n")  # the last review was never written
    with caplog.at_level(logging.INFO):
        generate(cfg, systems=runners)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("generate ")]
    assert "generate gpt4 4-aspect: 2 of 3 papers already in" in said[-1] and said[-1].endswith("1 to write")
    assert len(review_store(cfg)) == 9 and len(store.path.read_text().splitlines()) == 9


def test_llm_data_prep_estimates_only_what_it_will_ask_for(tmp_path, openai_env, caplog):
    from reviewgpt.training.data.prepare import PrepareConfig, prepare

    cfg = PrepareConfig(source=str(FIXTURES / "iclr2017"), out_dir=str(tmp_path / "data"), schemas=["4"],
                        aggregator="llm", cache_dir=str(tmp_path / "cache"), limit=2,
                        openai=OpenAIConfig(api_key=API_KEY, base_url=openai_env.base_url))
    prepare(cfg)
    assert len(openai_env.state.requests) == 2
    next((tmp_path / "cache").glob("*.json")).unlink()  # one target lost: a run interrupted before it
    with caplog.at_level(logging.WARNING):
        prepare(cfg)
    said = [r.getMessage() for r in caplog.records if "LLM aggregation" in r.getMessage()][-1]
    assert "1 targets already in" in said and "1 to ask for" in said
    assert len(openai_env.state.requests) == 3


def test_ctrl_c_and_a_users_error_end_the_cli_with_one_line(capsys):
    """Ctrl-C: exit status 130 and what is kept; a ReviewGPTError: `error: <message>`, status 1; anything
    else is a bug and keeps its traceback."""
    from reviewgpt.cli_errors import user_errors
    from reviewgpt.errors import ConfigError

    with pytest.raises(SystemExit) as stopped:
        with user_errors("the rows written so far are kept; run the same command to go on"):
            raise KeyboardInterrupt
    assert stopped.value.code == 130
    assert "interrupted: the rows written so far are kept" in capsys.readouterr().err
    with pytest.raises(SystemExit) as failed:
        with user_errors("-"):
            raise ConfigError("unknown EvalConfig keys: ['limt']")
    assert failed.value.code == "error: unknown EvalConfig keys: ['limt']"
    with pytest.raises(ZeroDivisionError):
        with user_errors("-"):
            1 / 0
