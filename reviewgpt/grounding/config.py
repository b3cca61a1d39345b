"""The grounding settings: one owner for each threshold."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GroundingConfig:
    # A quoted span shorter than this (in words) is a term, not a quote: the item is anchored by
    # retrieval instead (a one-word "quote" is found in any paper and proves nothing).
    min_quote_words: int = 3
    # Between two pieces of one quote on the PDF (a page break with its running header and footer,
    # a column break past a footnote) at most this many folded characters may be skipped.
    max_gap_chars: int = 600
    # A quote that is not verbatim gets the paper's closest span as its passage when the fuzzy
    # partial ratio (rapidfuzz, 0-100) reaches this; it stays "not found" either way.
    fuzzy_min: float = 90.0
    # A related passage shares at least this many distinct terms (stems, stop words out) with the item;
    # otherwise the item is "not found". A count, not a BM25 score: scores scale with the paper's size.
    min_shared_terms: int = 2
    # Retrieval passages: paragraphs merged up to about this many words, longer ones split.
    passage_words: int = 80
