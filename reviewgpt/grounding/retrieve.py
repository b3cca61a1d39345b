"""Related passages: the paper cut into passages, ranked by BM25 (bm25s, English stop words, Snowball stems)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import bm25s  # type: ignore[import-untyped]
import Stemmer  # type: ignore[import-not-found]

from reviewgpt.ingest.document import Document

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])")


@dataclass(frozen=True)
class Passage:
    heading: str
    text: str


def passages(document: Document, words: int) -> list[Passage]:
    """Each section's paragraphs, sentences packed up to about `words` words a passage."""
    out: list[Passage] = []
    for heading, block in document.section_texts():
        for para in re.split(r"\n\s*\n|\n", block):
            cur: list[str] = []
            n = 0
            for sentence in _SENTENCE_END.split(para.strip()):
                cur.append(sentence)
                n += len(sentence.split())
                if n >= words:
                    out.append(Passage(heading, " ".join(cur)))
                    cur, n = [], 0
            if cur:
                # a short tail joins the previous passage of its paragraph rather than standing alone
                if out and n < words // 4 and out[-1].heading == heading and para.find(out[-1].text[:40]) >= 0:
                    out[-1] = Passage(heading, out[-1].text + " " + " ".join(cur))
                else:
                    out.append(Passage(heading, " ".join(cur)))
    return [p for p in out if p.text.strip()]


class Retriever:
    def __init__(self, items: list[Passage]) -> None:
        self.passages = items
        self._stemmer = Stemmer.Stemmer("english")
        self._bm25 = bm25s.BM25()
        self._terms: list[set[str]] = []
        if items:
            tokens = self._tokens([p.text for p in items])
            self._terms = [set(t) for t in tokens]
            self._bm25.index(tokens, show_progress=False)

    def _tokens(self, texts: list[str]) -> list[list[str]]:
        return bm25s.tokenize(texts, stopwords="en", stemmer=self._stemmer, return_ids=False,
                              show_progress=False)

    def best(self, query: str) -> tuple[Passage, float, int] | None:
        """The best passage for query, its BM25 score and how many distinct terms it shares with the
        query; None when nothing shares a term with it."""
        tokens = self._tokens([query])
        if not self.passages or not tokens[0]:
            return None
        ids, scores = self._bm25.retrieve(tokens, k=1, show_progress=False, n_threads=0)
        score, i = float(scores[0, 0]), int(ids[0, 0])
        return (self.passages[i], score, len(self._terms[i] & set(tokens[0]))) if score > 0 else None
