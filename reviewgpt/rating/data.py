"""Rated human reviews: (paper id, review text, rating, paper accepted) from the ICLR 2017 layout,
and the fixed held-out split by paper that the rating model is measured on."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from reviewgpt.training.data.papers import iclr2017_reviews, split_of

# The held-out split: one owner. A paper is in exactly one part, so no paper's reviews are both
# fitted on and measured on.
SPLIT_SEED = 24
TEST_FRAC = 0.2

_RATING = re.compile(r"^\s*(\d+)\s*:")


@dataclass(frozen=True)
class RatedReview:
    paper_id: str
    text: str
    rating: int  # ICLR 1-10
    accepted: bool  # the paper's decision: Accept (Oral/Poster); Reject and workshop invitations are not

    @property
    def split(self) -> str:
        return "test" if is_held_out(self.paper_id) else "train"


def is_held_out(paper_id: str) -> bool:
    """Whether a paper is in the held-out part (its reviews measured on, never fitted on)."""
    return split_of(paper_id, SPLIT_SEED, 0.0, TEST_FRAC) == "test"


def parse_rating(label: str) -> int | None:
    """'8: Top 50% of accepted papers, clear accept' -> 8; anything else -> None."""
    m = _RATING.match(label or "")
    return int(m.group(1)) if m else None


def is_accept(decision: str) -> bool:
    return (decision or "").strip().lower().startswith("accept")


def read_rated_reviews(root: str | Path) -> list[RatedReview]:
    """Every review with a readable rating and text, in file order (paper/ and review/ joined by id;
    content/ is not needed)."""
    out: list[RatedReview] = []
    for pid, paper, reviews in iclr2017_reviews(root):
        accepted = is_accept(paper.get("decision", ""))
        for r in reviews:
            rating = parse_rating(r.get("rating", ""))
            if rating is not None:
                out.append(RatedReview(pid, r["review"].strip(), rating, accepted))
    return out


def data_manifest(root: str | Path, reviews: list[RatedReview]) -> dict:
    """What a model was fitted on: the files (name -> sha256) and counts, so an artifact names its data."""
    root = Path(root)
    ids = sorted({r.paper_id for r in reviews})
    files = {}
    for pid in ids:
        for sub, suffix in (("paper", "paper"), ("review", "review")):
            f = root / sub / f"{pid}_{suffix}.json"
            files[f"{sub}/{f.name}"] = hashlib.sha256(f.read_bytes()).hexdigest()
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return {"source": root.name, "papers": len(ids), "reviews": len(reviews), "sha256": digest,
            "paper_ids": ids, "files": files}
