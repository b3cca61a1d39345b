"""Finding a quote's words in a folded stream, in pieces when a break puts other text between them.

A quote copied from a rendered page is contiguous on the page but not always in the text layer:
a page break puts the running footer and header between its halves, a column break a footnote or
a float. The locator finds the longest contiguous run of the quote's words (the anchor) and extends
it piece by piece, each next piece within `max_gap` folded characters of the last. Every word of the
quote must be placed, in order; otherwise the quote is not located.
"""

from __future__ import annotations

from reviewgpt.grounding.fold import Folded

Span = tuple[int, int]  # folded offsets [start, end)


def _longest(words: list[str], i: int, hits) -> tuple[int, list[int]]:
    """The largest j > i with hits(join(words[i:j])) non-empty, and those hits (binary search)."""
    lo, hi = i + 1, len(words)
    best: tuple[int, list[int]] = (i, [])
    while lo <= hi:
        mid = (lo + hi) // 2
        found = hits("".join(words[i:mid]))
        if found:
            best, lo = (mid, found), mid + 1
        else:
            hi = mid - 1
    return best


def _extend(words: list[str], stream: Folded, anchor: Span, i: int, j: int, max_gap: int) -> list[Span] | None:
    spans = [anchor]
    pos = anchor[1]
    while j < len(words):  # rightwards: first occurrence after the last piece
        def right(s: str, pos: int = pos) -> list[int]:
            return stream.find_all(s, pos, min(len(stream.chars), pos + max_gap + len(s)), limit=1)
        k, found = _longest(words, j, right)
        if k == j:
            return None
        spans.append((found[0], found[0] + len("".join(words[j:k]))))
        pos, j = spans[-1][1], k
    pos = anchor[0]
    while i > 0:  # leftwards: the longest suffix ending closest before the first piece
        best: tuple[int, int] | None = None
        for k in range(i - 1, -1, -1):
            piece = "".join(words[k:i])
            found = stream.find_all(piece, max(0, pos - max_gap - len(piece)), pos)
            if not found:
                break
            best = (k, found[-1])
        if best is None:
            return None
        k, start = best
        spans.insert(0, (start, start + len("".join(words[k:i]))))
        pos, i = start, k
    return spans


def locate(words: list[str], stream: Folded, max_gap: int, tries: int = 10, lo: int = 0, hi: int | None = None,
           last: bool = False) -> list[Span] | None:
    """Spans of the stream covering all words in order, or None when they are not all there.

    The quote starts in stream[lo:hi]; the first such place, or the last with `last`."""
    if not words or not stream.chars:
        return None
    hi = len(stream.chars) if hi is None else hi
    lo = max(0, lo)

    def hits(s: str) -> list[int]:
        found = stream.find_all(s, lo, hi, limit=10_000 if last else tries)
        return found[::-1][:tries] if last else found

    whole = hits("".join(words))
    if whole:
        return [(whole[0], whole[0] + len("".join(words)))]
    # Anchors: the quote cut greedily into maximal runs each found somewhere (a break ends a run), the
    # longest first; when one cannot be extended to the whole quote (a phrase another page repeats),
    # the next is tried.
    anchors = []
    i = 0
    while i < len(words):
        j, found = _longest(words, i, hits)
        if j == i:
            return None  # a word that is nowhere in the stream
        anchors.append((j - i, i, j, found))
        i = j
    for _, i, j, found in sorted(anchors, key=lambda a: -a[0])[:tries]:
        n = len("".join(words[i:j]))
        for start in found:
            spans = _extend(words, stream, (start, start + n), i, j, max_gap)
            if spans is not None:
                return spans
    return None
