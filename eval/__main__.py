"""Evaluation CLI: one command per stage, plus `all`.

    python -m eval generate --config eval/configs/recipe.yaml    # reviews.jsonl   (resumable)
    python -m eval judge    --config eval/configs/recipe.yaml    # judgements.jsonl (resumable)
    python -m eval report   --config eval/configs/recipe.yaml    # report.md, results.json, PNGs
    python -m eval all      --config eval/configs/recipe.yaml    # the three in turn

Any config key can be overridden as key=value (limit=20 judge_concurrency=16). Results are keyed by
fingerprints of their configuration: a rerun does exactly what changed settings require.
The fine-tuned model on a server: eval/configs/served.yaml (README, "Scaling out").

Tools that work on single reviews rather than on a configured run live in their own modules and take
their own flags: `python -m eval TOOL --help` (TOOLS below).
"""

import argparse
import importlib
import logging
import sys

from reviewgpt.cli_errors import user_errors
from reviewgpt.config import load_config
from reviewgpt.compare.evaluation.config import EvalConfig
from reviewgpt.compare.evaluation.report import report
from reviewgpt.compare.evaluation.stages import generate, judge


# Subcommands owned by their own module (eval/<name>.py with `main(argv)`), e.g. `python -m eval ground`.
TOOLS = ("ground", "rate", "scorecard")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The stage, --config and key=value overrides, in any order (intermixed: plain parse_args takes
    no override after --config)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["generate", "judge", "report", "all"])
    p.add_argument("--config", default="eval/configs/recipe.yaml")
    p.add_argument("overrides", nargs="*", help="key=value config overrides (e.g. limit=20)")
    return p.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in TOOLS:
        importlib.import_module(f"eval.{argv[0]}").main(argv[1:])
        return
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    with user_errors("every review and verdict written so far is kept; the same command continues "
                     "with the rest"):
        cfg = load_config(EvalConfig, args.config, args.overrides)
        if args.stage in ("generate", "all"):
            generate(cfg)
        if args.stage in ("judge", "all"):
            judge(cfg)
        if args.stage in ("report", "all"):
            print(f"report: {report(cfg)}")


if __name__ == "__main__":
    main()
