"""Stage 1: papers + human reviews -> aggregated 4/7-aspect targets, split into train/val/test JSONL.

    python -m train.prepare_data --config train/configs/data.yaml [aggregator=llm llm_model=gpt-4o]
"""

import logging

from reviewgpt.cli_errors import user_errors
from reviewgpt.config import cli_args, load_config
from reviewgpt.training.data.prepare import PrepareConfig, prepare


def main(argv: list[str] | None = None) -> None:
    args = cli_args(__doc__, "train/configs/data.yaml").parse_intermixed_args(argv)  # overrides before or after --config
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    with user_errors("the splits finished so far are written; LLM targets already received are cached "
                     "and the same command does not ask for them again"):
        cfg = load_config(PrepareConfig, args.config, args.overrides)
        for name, path in prepare(cfg).items():
            print(f"{name}: {path}")


if __name__ == "__main__":
    main()
