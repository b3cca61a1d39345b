"""Scorecard of stored reviews against the human reviewers (issue #24), offline.

    python -m eval scorecard [--reviews outputs/eval/reviews.jsonl] [--human ../shared/data/iclr2017]
                             [--samples 1000] [--out scorecard.json]

Per system and schema in eval's reviews.jsonl: Spearman of its calibrated rating with the human mean,
AUROC and balanced accuracy of its P(accept) for the decision, mean bias against the humans, the
spread over reruns with other seeds, with 95% bootstrap CIs over papers; and the same figures for a
human baseline (one human against the others) on the same papers (reviewgpt/rating/scorecard.py)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from reviewgpt.rating.artifact import DEFAULT_DIR, default_model
from reviewgpt.rating.data import read_rated_reviews
from reviewgpt.rating.scorecard import Humans, read_review_rows, scorecard, to_json, to_markdown


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m eval scorecard", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reviews", default="outputs/eval/reviews.jsonl", help="eval's stored reviews")
    ap.add_argument("--human", default="../shared/data/iclr2017",
                    help="the human reviews with ratings and decisions (ICLR 2017 layout: paper/, review/)")
    ap.add_argument("--model", default=str(DEFAULT_DIR), help="rating model folder")
    ap.add_argument("--samples", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="also write the scorecard as JSON here")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if not Path(args.reviews).is_file():
        sys.exit(f"no stored reviews at {args.reviews}: run `python -m eval generate --config ...` first, "
                 "or pass --reviews")
    if not (Path(args.human) / "review").is_dir():
        sys.exit(f"no human reviews at {args.human} (expected the ICLR 2017 layout: paper/, review/)")
    rows = read_review_rows(args.reviews)
    if not rows:
        sys.exit(f"{args.reviews} holds no review rows (system, id, review)")
    humans = Humans.from_reviews(read_rated_reviews(args.human))
    model_meta = json.loads((Path(args.model) / "data.json").read_text())
    card = scorecard(rows, humans, default_model(args.model), set(model_meta["train"]["paper_ids"]),
                     args.samples, args.seed)
    if not card["papers"]:
        sys.exit("no paper is reviewed by every system and rated by humans: nothing to score")
    card["seconds"] = round(time.perf_counter() - t0, 1)
    print(to_markdown(card))
    print(f"\n({card['seconds']} s)")
    if args.out:
        Path(args.out).write_text(to_json(card))
