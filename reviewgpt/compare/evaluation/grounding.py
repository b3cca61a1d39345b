"""Per system: the share of its review items that are verified quotes, related passages or not found
in the paper (reviewgpt.grounding against the paper's full Document; eval papers have no PDF, so no pages)."""

from __future__ import annotations

from dataclasses import dataclass

from reviewgpt.grounding import STATUSES, PaperIndex, counts, ground_review
from reviewgpt.ingest.document import Document


@dataclass
class GroundingStats:
    system: str
    schema: str
    reviews: int
    items: int
    quoted: int  # items that quote the paper (verified, or a quote not found)
    verified: float  # shares of items
    related: float
    not_found: float


def grounding_stats(system: str, schema: str, reviews: list[tuple[str, Document, str]],
                    indexes: dict[str, PaperIndex] | None = None) -> GroundingStats:
    """reviews: (paper id, paper, review text). `indexes` caches one index per paper id across systems."""
    indexes = {} if indexes is None else indexes
    evidence = []
    for pid, doc, text in reviews:
        index = indexes.get(pid)
        if index is None:
            index = indexes[pid] = PaperIndex.build(doc)
        evidence += ground_review(index, text, schema)
    c = counts(evidence)
    n = len(evidence)
    shares = {s: c[s] / n if n else float("nan") for s in STATUSES}
    return GroundingStats(system, schema, len(reviews), n, sum(1 for e in evidence if e.quote),
                          shares["verified"], shares["related"], shares["not_found"])
