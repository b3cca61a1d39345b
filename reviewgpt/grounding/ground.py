"""Grounding a review: one Evidence per item."""

from __future__ import annotations

from functools import partial

from reviewgpt.format.review_format import ReviewItem, parse
from reviewgpt.format.schema import SCHEMAS, ReviewSchema, get_schema
from reviewgpt.grounding.evidence import Evidence
from reviewgpt.grounding.fold import fold_words
from reviewgpt.grounding.index import PaperIndex
from reviewgpt.grounding.quotes import pieces, quoted_spans


def ground_item(index: PaperIndex, aspect: str, number: int, item: ReviewItem) -> Evidence:
    """Verified when every quote of the item is in the paper; not found when one is not (its closest
    span, if near, as the passage); an item that quotes nothing gets its best BM25 passage as related."""
    text = f"{item.title}: {item.explanation}" if item.title else item.explanation
    make = partial(Evidence, aspect, number, item.title)
    # a quote counts when one of its pieces (between ellipses) has min_quote_words words; shorter
    # spans are terms ("the loss") that any paper contains
    quotes = [q for q in quoted_spans(text)
              if max(len(fold_words(p)) for p in pieces(q) or [q]) >= index.config.min_quote_words]
    if quotes:
        found = []
        for q in quotes:
            hit = index.find_quote(pieces(q))
            if hit is None:
                near = index.closest(q)
                if near is None:
                    return make(status="not_found", quote=q)
                span, score = near
                return make(status="not_found", quote=q, passage=span.text, score=score,
                            score_kind="fuzzy", page=span.page, boxes=span.boxes)
            found.append(hit)
        boxes = [b for f in found for b in f.boxes]
        return make(status="verified", quote=" | ".join(quotes),
                    passage=" | ".join(f.text for f in found), score=100.0, score_kind="exact",
                    page=boxes[0].page if boxes else None, boxes=boxes)
    rel = index.related(text)
    if rel is None:
        return make(status="not_found")
    _, span, score = rel
    return make(status="related", passage=span.text, score=score, score_kind="bm25",
                page=span.page, boxes=span.boxes)


def ground_review(index: PaperIndex, review: str, schema: ReviewSchema | str | int) -> list[Evidence]:
    """Every item of a review (text in the review format, parsed by reviewgpt.format) grounded."""
    parsed = parse(review, get_schema(schema)).review
    return [ground_item(index, aspect, n, item)
            for aspect, items in parsed.sections.items() for n, item in enumerate(items, 1)]


def guess_schema(review: str) -> str:
    """'7' or '4': the schema whose criteria the review's headers name most often (7 on a tie)."""
    def present(key: str) -> int:
        return sum(c.present for c in parse(review, key).report.criteria)
    return max(SCHEMAS, key=lambda k: (present(k), k == "7"))
