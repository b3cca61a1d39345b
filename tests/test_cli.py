"""The README's eval and data-prep command lines parse as written: key=value overrides before or after --config."""

import re
import shlex
from pathlib import Path

import pytest

from eval.__main__ import parse
from reviewgpt.config import EngineConfig, cli_args, load_config
from reviewgpt.compare.evaluation.config import EvalConfig

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _commands(prefix: str) -> list[list[str]]:
    lines = re.findall(rf"^{re.escape(prefix)} (.*?)(?:\s+#.*)?$", README, flags=re.M)
    return [shlex.split(line) for line in lines]


def test_every_readme_eval_command_parses_with_its_overrides():
    commands = _commands("python -m eval")
    assert any("--config" in c and c.index("--config") < len(c) - 2 for c in commands)  # overrides after --config
    for argv in commands:
        args = parse(argv)
        assert args.stage == argv[0]
        assert args.overrides == [a for a in argv if "=" in a and not a.startswith("--")]
        if args.overrides and Path(args.config).exists():
            cfg = load_config(EvalConfig, args.config, args.overrides)  # the overrides reach the config
            for pair in args.overrides:
                key, value = pair.split("=", 1)
                assert str(getattr(cfg, key)) == value


def test_data_prep_overrides_in_any_position():
    parser = cli_args("data prep", "train/configs/data.yaml")
    for argv in (["--config", "a.yaml", "max_items=2"], ["max_items=2", "--config", "a.yaml"]):
        args = parser.parse_intermixed_args(argv)
        assert args.config == "a.yaml" and args.overrides == ["max_items=2"]
    for argv in _commands("python -m train.prepare_data"):
        assert parser.parse_intermixed_args(argv).overrides == [a for a in argv if "=" in a and not a.startswith("--")]


def test_an_unknown_override_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown EngineConfig keys: \\['precison'\\]"):
        load_config(EngineConfig, None, ["precison=bf16"])


def test_the_demo_eval_config_reads_the_bundled_model_as_the_app_does():
    """eval/configs/demo.yaml: the bundled demo model with its own budget, review length and schema
    guide (assets/demo-model/engine.yaml), so nothing is copied by hand."""
    from reviewgpt.config import bundled_engine_config

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(EvalConfig, root / "eval/configs/demo.yaml")
    bundled = bundled_engine_config(root / "assets/demo-model")
    local = [s for s in cfg.systems if s.kind == "local"]
    assert len(local) == 2 and cfg.max_prompt_tokens == bundled.max_prompt_tokens
    for s in local:
        assert (root / s.engine.base_model).samefile(bundled.base_model)
        assert (root / s.engine.adapter).samefile(bundled.adapter)
        assert s.engine.schema_guide == bundled.schema_guide and s.generation.max_new_tokens == bundled.max_new_tokens
