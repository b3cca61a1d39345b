"""Folding text for comparison: what differs between a quote and the paper's text layer but not in
what it says.

A folded text keeps only letters and digits, lower-cased, after NFKD (ligatures such as "ﬁ" become
"fi", math alphanumerics such as "𝑥" become "x", accents drop) and with Greek letters spelled out
("λ" is "lambda"). Spaces, line breaks, line-end
hyphens ("hy-\\nphen"), punctuation and math operators all vanish, so a quote typed from the
rendered page matches the text layer however it was broken. Word changes do not vanish: a
changed content word changes the letters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

# Citations are skipped on both sides: reviewers leave "[4, 19]" and "(Smith et al., 2017)" out of
# what they quote, and skipping them cannot make a changed word match. A text folded with
# keep_citations=True keeps them: a quote that copies a citation, or starts or ends inside one, is
# verbatim there, and its highlight covers the citation it quotes.
_CITATION = re.compile(
    r"\[\s*\d+(?:\s*[,;–-]\s*\d+)*\s*\]"
    r"|\((?:[^()]{0,80}?(?:et al\.?|[A-Z][\w-]+),?\s+(?:19|20)\d\d[a-z]?)(?:\s*[;,]\s*[^()]{0,80}?(?:19|20)\d\d[a-z]?)*\)")


# Greek letters read as their names: a reviewer types "lambda" for the paper's λ (or 𝜆, ϵ, ϕ, ς).
_GREEK = dict(zip("αβγδεζηθικλμνξοπρστυφχψως",
                  "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
                  "sigma tau upsilon phi chi psi omega sigma".split()))


# Math operators are content: "y + z" and "y − z" differ, so do "10^k" and "10−k". They are kept (as
# one-character words); TeX markup (^, _, $, braces) is not, nor is a hyphen, which a line end or a
# compound ("high-dimensional" / "high dimensional") adds or drops.
_OPERATORS = {"+": "+", "=": "=", "<": "<", ">": ">", "≤": "≤", "≥": "≥", "≠": "≠", "≈": "≈", "±": "±",
              "×": "×", "÷": "÷", "∈": "∈", "∉": "∉", "⊂": "⊂", "⊆": "⊆", "∞": "∞", "∑": "∑", "∏": "∏", "∫": "∫",
              "√": "√", "∂": "∂", "∇": "∇", "−": "-", "⩽": "≤", "⩾": "≥"}
_BEFORE_MINUS = set(" \t\n([{=^,;:<>+")  # an ASCII "-" after one of these and before a letter or digit is a minus


def _operator(text: str, k: int) -> str:
    """The folded operator at text[k], or ""."""
    ch = text[k]
    if ch == "-":
        before = text[k - 1] if k else " "
        after = text[k + 1] if k + 1 < len(text) else " "
        return "-" if before in _BEFORE_MINUS and after.isalnum() else ""
    return _OPERATORS.get(ch, "")


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if ch.isascii():
        return ch.lower() if ch.isalnum() else ""
    return "".join(_GREEK.get(c, c) for c in unicodedata.normalize("NFKD", ch).lower() if c.isalnum())


@dataclass
class Folded:
    """A folded text with, per folded character, where it came from."""

    chars: str
    src: list[int]  # index of the source unit (character of a text, or word of a page) per char
    starts: bytearray  # 1 where a run of letters/digits starts (a word boundary)
    ends: bytearray  # 1 where such a run ends

    def at_boundaries(self, i: int, j: int) -> bool:
        """chars[i:j] starts and ends at word boundaries (not inside a word)."""
        return bool(self.starts[i]) and bool(self.ends[j - 1])

    def find_all(self, needle: str, lo: int = 0, hi: int | None = None, limit: int = 50) -> list[int]:
        """Start offsets of needle in chars[lo:hi] at word boundaries."""
        hi = len(self.chars) if hi is None else hi
        out: list[int] = []
        i = self.chars.find(needle, lo, hi)
        while i >= 0 and len(out) < limit:
            if self.at_boundaries(i, i + len(needle)):
                out.append(i)
            i = self.chars.find(needle, i + 1, hi)
        return out


class FoldBuilder:
    """Builds a Folded text piece by piece (a page's words, a document's characters)."""

    def __init__(self, keep_citations: bool = False) -> None:
        self._keep_citations = keep_citations
        self._chars: list[str] = []
        self._src: list[int] = []
        self._starts = bytearray()
        self._ends = bytearray()
        self._in_run = False

    def add(self, text: str, sources: Sequence[int] | None = None) -> None:
        """Append text; every folded char records sources[k] of its character k (default k)."""
        skip = bytearray(len(text))
        for m in () if self._keep_citations else _CITATION.finditer(text):
            skip[m.start():m.end()] = b"\x01" * (m.end() - m.start())
        for k, ch in enumerate(text):
            f = "" if skip[k] else _fold_char(ch)
            op = "" if f or skip[k] else _operator(text, k)
            if op:  # a one-character word of its own
                if self._in_run:
                    self._ends[-1] = 1
                self._chars.append(op)
                self._src.append(k if sources is None else sources[k])
                self._starts.append(1)
                self._ends.append(1)
                self._in_run = False
                continue
            if not f:
                if self._in_run:
                    self._ends[-1] = 1
                self._in_run = False
                continue
            for c in f:
                self._chars.append(c)
                self._src.append(k if sources is None else sources[k])
                self._starts.append(0 if self._in_run else 1)
                self._ends.append(0)
                self._in_run = True

    def build(self) -> Folded:
        if self._in_run:
            self._ends[-1] = 1
        return Folded("".join(self._chars), self._src, self._starts, self._ends)


def fold(text: str, keep_citations: bool = False) -> Folded:
    """Fold a text; src maps each folded char to its character offset in text."""
    b = FoldBuilder(keep_citations)
    b.add(text)
    return b.build()


def fold_words(text: str, keep_citations: bool = False) -> list[str]:
    """The folded words of a text (runs of letters/digits), in order."""
    f = fold(text, keep_citations)
    words, cur = [], []
    for c, e in zip(f.chars, f.ends):
        cur.append(c)
        if e:
            words.append("".join(cur))
            cur = []
    return words
