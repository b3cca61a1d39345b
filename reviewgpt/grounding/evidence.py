"""What grounding says about one review item."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

# verified: the quote is in the paper's text (after normalisation), located where possible.
# related: no quote (or only short terms): the best BM25 passage, shown as related, not as a quote.
# not_found: a quote that is not in the paper, or nothing relevant retrieved.
Status = Literal["verified", "related", "not_found"]


@dataclass(frozen=True)
class Box:
    page: int  # 1-based
    rect: tuple[float, float, float, float]  # x0, y0, x1, y1 in PDF points (unrotated page), one line of the span


@dataclass
class Evidence:
    aspect: str
    item: int  # 1-based number of the item within its aspect
    title: str
    status: Status
    quote: str = ""  # the reviewer's quote as written ("" when the item quotes nothing)
    passage: str = ""  # the paper's text: the located quote, the related or the closest passage
    score: float | None = None
    score_kind: str = ""  # "exact" (verified), "bm25" (related), "fuzzy" (closest text to a quote not found)
    page: int | None = None  # first page of the span, None when it could not be placed on a page
    boxes: list[Box] = field(default_factory=list)

    @property
    def bbox(self) -> tuple[float, float, float, float] | None:
        """The union of the span's boxes on its first page."""
        rects = [b.rect for b in self.boxes if b.page == self.page]
        if not rects:
            return None
        return (min(r[0] for r in rects), min(r[1] for r in rects),
                max(r[2] for r in rects), max(r[3] for r in rects))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bbox"] = list(self.bbox) if self.bbox else None
        d["boxes"] = [{"page": b.page, "rect": [round(v, 2) for v in b.rect]} for b in self.boxes]
        if self.score is not None:
            d["score"] = round(self.score, 3)
        return d


STATUSES: tuple[Status, ...] = ("verified", "related", "not_found")


def counts(evidence: list[Evidence]) -> dict[str, int]:
    """How many items are verified / related / not found (every status present, zeros included)."""
    return {s: sum(e.status == s for e in evidence) for s in STATUSES}
