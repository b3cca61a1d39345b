"""The spans a review item quotes from the paper."""

from __future__ import annotations

import re

# "…", “…”, «…», and '…' / ‘…’ only when opened after a space or bracket (not an apostrophe).
_QUOTED = re.compile(
    r"\"(?P<a>[^\"\n]{2,}?)\""
    r"|“(?P<b>[^”\n]{2,}?)”"
    r"|«(?P<c>[^»\n]{2,}?)»"
    r"|(?:(?<=^)|(?<=[\s(\[]))[‘'](?P<d>[^’'\n]{2,}?)[’'](?=[\s.,;:)\]!?]|$)"
)
# A reviewer's ellipsis between two pieces of one quote.
_ELLIPSIS = re.compile(r"\s*(?:\[\s*(?:\.{2,}|…)\s*\]|\(\s*(?:\.{2,}|…)\s*\)|\.{2,}|…)\s*")


def quoted_spans(text: str) -> list[str]:
    """Every quoted span of text, as written (without the quotation marks), in order."""
    return [next(g for g in m.groups() if g is not None).strip() for m in _QUOTED.finditer(text)]


def pieces(quote: str) -> list[str]:
    """A quote split at the reviewer's ellipses: each piece must be in the paper, in order."""
    return [p for p in _ELLIPSIS.split(quote) if p.strip()]
