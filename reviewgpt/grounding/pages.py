"""The PDF's words, in the order PyMuPDF reads them, folded into one stream across pages.

One stream for the whole paper is what lets a quote run across a line, column or page break; the
running header, footer or footnote a break puts between its pieces is skipped by the locator. The
words are folded twice: citations skipped (`folded`) and kept (`literal`, for a quote that copies one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pymupdf

from reviewgpt.grounding.evidence import Box
from reviewgpt.grounding.fold import FoldBuilder, Folded


# a footnote's raised mark glued to its first word in the text layer ("1OpenReview", "3For"): the mark is
# read as a word of its own, so a quote of the footnote starts at a word boundary (the Document sets it apart too)
_MARK = re.compile(r"^(\d{1,2})(?=[^\W\d_]{2})")


def _split_mark(text: str, rect: tuple[float, float, float, float]) -> list[tuple[str, tuple[float, float, float, float]]]:
    """A word as (text, rect) pieces: its leading mark apart, each piece's width its share of the letters."""
    m = _MARK.match(text)
    if not m:
        return [(text, rect)]
    x0, y0, x1, y1 = rect
    cut = x0 + (x1 - x0) * len(m.group(1)) / len(text)
    return [(m.group(1), (x0, y0, cut, y1)), (text[m.end():], (cut, y0, x1, y1))]


@dataclass(frozen=True)
class Word:
    page: int  # 1-based
    rect: tuple[float, float, float, float]
    line: tuple[int, int]  # (block, line) on its page: the words of one line share it
    text: str


@dataclass
class PageWords:
    words: list[Word]
    folded: Folded  # src = index into words; citations skipped
    literal: Folded  # the same with citations kept

    @classmethod
    def read(cls, pdf: str | Path | bytes | pymupdf.Document) -> "PageWords":
        doc = pdf if isinstance(pdf, pymupdf.Document) else (
            pymupdf.open(stream=pdf, filetype="pdf") if isinstance(pdf, bytes) else pymupdf.open(pdf))
        words: list[Word] = []
        b, lit = FoldBuilder(), FoldBuilder(keep_citations=True)
        try:
            for pno in range(1, doc.page_count + 1):
                page = doc[pno - 1]
                # sort=False keeps the content stream's order: columns one after the other, as typeset.
                # A page is folded as one text (words joined by spaces) so a citation split over
                # several words is still recognised and skipped.
                parts: list[str] = []
                sources: list[int] = []
                for x0, y0, x1, y1, word, block, line, _ in page.get_text("words", sort=False):
                    for text, rect in _split_mark(word, (x0, y0, x1, y1)):
                        parts.append(text + " ")
                        sources += [len(words)] * (len(text) + 1)
                        words.append(Word(pno, rect, (block, line), text))
                for builder in (b, lit):
                    builder.add("".join(parts) + "\n", sources + [len(words) - 1])
        finally:
            if doc is not pdf:
                doc.close()
        return cls(words, b.build(), lit.build())

    def stream(self, literal: bool) -> Folded:
        return self.literal if literal else self.folded

    def boxes(self, spans: list[tuple[int, int]], literal: bool = False) -> list[Box]:
        """One box per line touched by the folded spans (of `stream(literal)`), in reading order."""
        src = self.stream(literal).src
        ids: list[int] = []
        for i, j in spans:
            for w in range(src[i], src[j - 1] + 1):
                if not ids or ids[-1] != w:
                    ids.append(w)
        out: list[Box] = []
        key = None
        for w in ids:
            word = self.words[w]
            k = (word.page, word.line)
            if k == key:
                r = out[-1].rect
                out[-1] = Box(word.page, (min(r[0], word.rect[0]), min(r[1], word.rect[1]),
                                          max(r[2], word.rect[2]), max(r[3], word.rect[3])))
            else:
                out.append(Box(word.page, word.rect))
                key = k
        return out
