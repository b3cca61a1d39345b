"""Calibrated rating of single reviews (issue #24).

    python -m eval rate --reviews FILE.jsonl        # one {"review": "..."} a line; "-" reads stdin

prints one JSON object a line, in input order: {"rating", "low", "high", "p_accept", "calibrated",
"reason"}: the rating a reviewer who wrote this review would give on ICLR's 1-10 scale (calibrated
on ICLR 2017 reviews), its 80% interval and P(accept), as the `/rate` endpoint gives it (a review's own
'Overall rating: X / 10' line is not read). Text that is not an ML paper review gets
calibrated: false, the numbers null and the reason. A line that cannot be read gets {"line", "error"}
and the rest are still rated; the exit status is then 1."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Iterable

from reviewgpt.rating.artifact import DEFAULT_DIR, default_model


def read_lines(lines: Iterable[str]) -> list[tuple[int, str | None, str]]:
    """(line number, review text or None, error) for every non-blank line."""
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            out.append((n, None, f"not JSON ({e.msg})"))
            continue
        review = row.get("review") if isinstance(row, dict) else None
        if not isinstance(review, str):
            out.append((n, None, 'no "review" text on this line (expected {"review": "..."})'))
        else:
            out.append((n, review, ""))
    return out


def rate_lines(lines: Iterable[str], model_dir: str = str(DEFAULT_DIR)) -> list[dict[str, Any]]:
    rows = read_lines(lines)
    texts = [t for _, t, _ in rows if t is not None]
    ratings = iter(default_model(model_dir).rate_reviews(texts))  # as /rate: without a stated 'Overall rating' line
    return [next(ratings).to_dict() if t is not None else {"line": n, "error": err} for n, t, err in rows]


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m eval rate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reviews", required=True, help='JSONL, one {"review": "..."} a line; "-" for stdin')
    ap.add_argument("--model", default=str(DEFAULT_DIR), help="rating model folder (default: the bundled one)")
    args = ap.parse_args(argv)
    try:
        if args.reviews == "-":
            out = rate_lines(sys.stdin, args.model)
        else:
            with open(args.reviews) as f:
                out = rate_lines(f, args.model)
    except OSError as e:
        sys.exit(f"cannot read {args.reviews}: {e.strerror}")
    except UnicodeDecodeError as e:
        sys.exit(f"cannot read {args.reviews}: not UTF-8 text (byte {e.start})")
    if not out:
        sys.exit(f'{args.reviews} holds no reviews: expected one {{"review": "..."}} a line')
    for row in out:
        print(json.dumps(row))
    if any("error" in row for row in out):
        sys.exit(1)
