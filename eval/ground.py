"""Ground a review in its paper: one JSON line per item.

    python -m eval ground --pdf PAPER.pdf --review REVIEW.md [--schema 7]

Each line: {aspect, item, title, quote, status: verified|related|not_found, page, bbox, boxes,
passage, score, score_kind}. The review is read in the review format (reviewgpt.format); a
download's YAML header is skipped. The schema is the one whose aspects the review names, unless given.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from reviewgpt.errors import PDFError
from reviewgpt.format.schema import SCHEMAS
from reviewgpt.grounding import PaperIndex, ground_review
from reviewgpt.grounding.ground import guess_schema
from reviewgpt.ingest import extract

_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)


def review_text(raw: str) -> str:
    """A review file's text without a download's YAML header."""
    return _FRONT_MATTER.sub("", raw.replace("\r\n", "\n"), count=1)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m eval ground", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pdf", required=True, type=Path, help="the paper")
    p.add_argument("--review", required=True, type=Path, help="the review (Markdown, the review format)")
    p.add_argument("--schema", choices=sorted(SCHEMAS), help="4 or 7 aspects (default: from the review's headers)")
    args = p.parse_args(argv)
    for path in (args.pdf, args.review):
        if not path.is_file():
            p.error(f"{path}: no such file")
    review = review_text(args.review.read_text(encoding="utf-8", errors="replace"))
    schema = args.schema or guess_schema(review)
    try:
        index = PaperIndex.build(extract(args.pdf), args.pdf)
    except PDFError as e:
        p.error(f"{args.pdf}: {e}")
    evidence = ground_review(index, review, schema)
    if not evidence:
        print(f"{args.review}: no review items found for the {schema}-aspect schema", file=sys.stderr)
    for ev in evidence:
        print(json.dumps(ev.to_dict(), ensure_ascii=False))


if __name__ == "__main__":
    main()
