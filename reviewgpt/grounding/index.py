"""One paper made searchable: its Document's folded text, its PDF's words, its BM25 passages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pymupdf
from rapidfuzz import fuzz

from reviewgpt.grounding.config import GroundingConfig
from reviewgpt.grounding.evidence import Box
from reviewgpt.grounding.fold import Folded, fold, fold_words
from reviewgpt.grounding.locate import Span, locate
from reviewgpt.grounding.pages import PageWords
from reviewgpt.grounding.retrieve import Passage, Retriever, passages
from reviewgpt.ingest.document import Document


@dataclass
class Found:
    """A span of the paper: its text as the Document has it, and where it is on the pages."""

    text: str
    boxes: list[Box] = field(default_factory=list)

    @property
    def page(self) -> int | None:
        return self.boxes[0].page if self.boxes else None


_CLOSE = {"]": "[", ")": "("}


def _closed(text: str, i: int, j: int) -> str:
    """text[i:j], and the closing brackets right after it of those it opens: a span ends at its last
    letter or digit, so a quoted citation would read '[46, 13' where the paper has '[46, 13])'."""
    while j < len(text) and text[j] in _CLOSE and text.count(_CLOSE[text[j]], i, j) > text.count(text[j], i, j):
        j += 1
    return text[i:j]


@dataclass
class PaperIndex:
    document: Document
    config: GroundingConfig
    text: str  # the Document's text (what the models read)
    folded: Folded  # ... folded; src = character offsets into text; citations skipped
    literal: Folded  # ... folded with citations kept
    pages: PageWords | None  # None without a PDF (a pasted paper): nothing can be placed on a page
    retriever: Retriever

    @classmethod
    def build(cls, document: Document, pdf: str | Path | bytes | pymupdf.Document | None = None,
              config: GroundingConfig | None = None) -> "PaperIndex":
        cfg = config or GroundingConfig()
        text = document.to_text()
        return cls(document, cfg, text, fold(text), fold(text, keep_citations=True),
                   PageWords.read(pdf) if pdf is not None else None,
                   Retriever(passages(document, cfg.passage_words)))

    def _text_of(self, spans: list[Span], literal: bool = False) -> str:
        src = (self.literal if literal else self.folded).src
        return " … ".join(_closed(self.text, src[i], src[j - 1] + 1) for i, j in spans)

    def place(self, text: str) -> list[Box]:
        """The boxes of a text of the paper on the PDF's pages ([] when it cannot be placed)."""
        if self.pages is None:
            return []
        words = fold_words(text)
        spans = locate(words, self.pages.folded, self.config.max_gap_chars)
        if spans is None and len(words) > 24:
            # a long passage whose layer order differs somewhere: its opening words still give the page
            spans = locate(words[:12], self.pages.folded, self.config.max_gap_chars)
        return self.pages.boxes(spans) if spans else []

    def find_quote(self, pieces: list[str]) -> Found | None:
        """The quote (its pieces in order) in the Document's text, or None: verbatim up to folding.

        First with citations kept (a quote that copies a citation is highlighted with it; one that starts
        or ends inside a citation is only verbatim so), then skipped (a quote that leaves them out)."""
        pieces = [p for p in pieces if fold_words(p)]  # a piece of punctuation or a bare citation says nothing
        if not pieces:
            return None
        found: Found | None = None
        for literal in (True, False):
            words = [fold_words(p, keep_citations=literal) for p in pieces]
            spans = self._find_pieces(words, self.literal if literal else self.folded)
            if spans is not None:
                found = Found(self._text_of(spans, literal), self._place_pieces(words, spans, literal))
                if found.boxes or self.pages is None:
                    return found
        return found  # in the text, not placed on a page either way

    @staticmethod
    def _find_pieces(pieces: list[list[str]], folded: Folded) -> list[Span] | None:
        spans: list[Span] = []
        pos = 0
        for words in pieces:
            needle = "".join(words)
            hits = folded.find_all(needle, pos, limit=1) if needle else []
            if not hits:
                return None
            spans.append((hits[0], hits[0] + len(needle)))
            pos = spans[-1][1]
        return spans

    def _place_pieces(self, pieces: list[list[str]], spans: list[Span], literal: bool) -> list[Box]:
        """The pieces of a quote on the pages: the longest first, then each other piece nearest to its
        neighbour, as far from it as in the Document's text (plus a break's gap)."""
        if self.pages is None:
            return []
        stream, gap = self.pages.stream(literal), self.config.max_gap_chars
        a = max(range(len(pieces)), key=lambda k: len("".join(pieces[k])))
        placed: dict[int, list[Span]] = {}
        anchor = locate(pieces[a], stream, gap)
        if anchor is None:
            return []
        placed[a] = anchor
        for k in range(a + 1, len(pieces)):  # after the anchor: the first place within reach
            if k - 1 not in placed:
                break
            lo = placed[k - 1][-1][1]
            got = locate(pieces[k], stream, gap, lo=lo, hi=lo + spans[k][1] - spans[k - 1][1] + gap)
            if got:
                placed[k] = got
        for k in range(a - 1, -1, -1):  # before it: the last place within reach
            if k + 1 not in placed:
                break
            hi = placed[k + 1][0][0]
            reach = spans[k + 1][0] - spans[k][0] + gap
            got = locate(pieces[k], stream, gap, lo=hi - reach, hi=hi, last=True)
            if got:
                placed[k] = got
        return self.pages.boxes([sp for k in sorted(placed) for sp in placed[k]], literal)

    def closest(self, quote: str) -> tuple[Found, float] | None:
        """The paper's span closest to a quote that is not verbatim (rapidfuzz partial ratio >= fuzzy_min)."""
        needle = "".join(fold_words(quote))
        if not needle:
            return None
        al = fuzz.partial_ratio_alignment(needle, self.folded.chars, score_cutoff=self.config.fuzzy_min)
        if al is None or al.dest_end <= al.dest_start:
            return None
        i, j = al.dest_start, al.dest_end
        while i > 0 and not self.folded.starts[i]:  # whole words: the alignment may cut one
            i -= 1
        while j < len(self.folded.chars) and not self.folded.ends[j - 1]:
            j += 1
        text = self._text_of([(i, j)])
        return Found(text, self.place(text)), float(al.score)

    def related(self, query: str) -> tuple[Passage, Found, float] | None:
        """The best BM25 passage for a query, if it shares at least min_shared_terms terms with it."""
        best = self.retriever.best(query)
        if best is None or best[2] < self.config.min_shared_terms:
            return None
        passage, score, _ = best
        return passage, Found(passage.text, self.place(passage.text)), score
