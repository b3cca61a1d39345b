"""Layout: styled lines of every page -> title, abstract, sections of paragraphs.

Decisions, each in one place:
- running headers/footers: the same text (digits ignored) near the top or bottom edge of many
  pages, and bare page numbers there (`strip_running_lines`);
- reading order: full-width blocks cut a page into bands; in a band the left column comes first;
- headings: a short block set apart by weight (font flags or names such as -Bold, -Medi,
  -Semibold, CMBX, ...TB) or size, numbered or not, never a table cell (`_is_heading`);
- paragraphs: a block is split where a line ends a sentence and the next is indented or the line
  is short; consecutive blocks are joined when the sentence goes on (column and page breaks);
- captions and footnotes are set aside and emitted after the paragraph they interrupt;
- line joins: hyphens of real line breaks are removed, compounds keep theirs (the document's
  own vocabulary decides), no space between CJK characters, ligatures and control characters
  normalised (`clean_text`).
Nothing is dropped here except running lines and, by option, the references.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass, field

from reviewgpt.config import IngestConfig
from reviewgpt.ingest.document import Document, Section

Box = tuple[float, float, float, float]


@dataclass
class Line:
    text: str
    size: float
    bold: bool
    bbox: Box
    page: int
    gapped: bool = False  # words set far apart on the line, as in a table row
    italic: bool = False  # most of the line is italic (IEEE journals' lettered subsections)


@dataclass
class Block:
    page: int
    bbox: Box
    lines: list[Line] = field(default_factory=list)
    table_cell: bool = False
    figure: bool = False  # text drawn inside a figure (figures.py): set apart like a caption, never a heading

    @property
    def text(self) -> str:
        return join_lines([ln.text for ln in self.lines])

    @property
    def size(self) -> float:
        return max((ln.size for ln in self.lines), default=0.0)

    def refit(self) -> None:
        self.bbox = (min(ln.bbox[0] for ln in self.lines), min(ln.bbox[1] for ln in self.lines),
                     max(ln.bbox[2] for ln in self.lines), max(ln.bbox[3] for ln in self.lines))


# ---------------------------------------------------------------------------------------------
# Characters and line joins

_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\ufffe\uffff]")
_CJK = re.compile(r"[\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff"
                  r"\uf900-\ufaff\uff00-\uffef]")


def clean_text(s: str) -> str:
    """Ligatures spelled out, control characters removed, tabs and newlines made spaces."""
    s = s.translate(_LIGATURES).replace("\t", " ").replace("\r", " ").replace("\n", " ")
    s = re.sub(r"\u00ad\s*$", "-", s).replace("\u00ad", "")  # soft hyphen: a break only at a line end
    return _CONTROL.sub("", s)


_HYPHENATED = re.compile(r"([^\W\d_]+)-$")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


def vocabulary(lines: list[str]) -> Counter[str]:
    """Word counts of the document (lower case), compounds and their parts, without the word
    fragments that a line-end hyphen cuts off."""
    vocab: Counter[str] = Counter()
    for line in lines:
        words = _WORD.findall(line.lower())
        if line.rstrip().endswith("-") and words:
            words = words[:-1]
        for w in words[1:]:  # the first word may be the tail of a hyphenated break
            vocab[w] += 1
            if "-" in w:
                vocab.update(w.split("-"))
    return vocab


def _keep_hyphen(head: str, tail: str, vocab: Counter[str] | None) -> bool:
    """Is "head-" + "tail" a compound ("well-known") rather than one word broken ("repre-sent")?"""
    if not vocab or not tail:
        return False
    h, t = head.lower(), tail.lower()
    joined, compound = h + t, f"{h}-{t}"
    if vocab[compound] or vocab[joined]:
        return vocab[compound] >= vocab[joined]
    return len(h) >= 3 and vocab[h] > 0 and vocab[t] > 0


def _join(left: str, right: str, vocab: Counter[str] | None) -> str:
    m = _HYPHENATED.search(left[-60:])  # the tail only: a search over the whole paragraph is quadratic
    tail = _WORD.match(right) if m else None
    if m and right[:1].islower():
        if _keep_hyphen(m.group(1), tail.group(0).split("-")[0] if tail else "", vocab):
            return left + right
        return left[:-1] + right
    if m and tail and vocab:  # a capital after the break ("Cite-" "See"): joined only on the document's word
        h, t = m.group(1).lower(), tail.group(0).split("-")[0].lower()
        if vocab[h + t] and vocab[h + t] >= vocab[f"{h}-{t}"]:
            return left[:-1] + right  # "CiteSee", "GROBID"
        if vocab[f"{h}-{t}"]:
            return left + right  # a capitalised compound ("Non-Linear")
    if _CJK.match(left[-1]) and _CJK.match(right[0]):
        return left + right
    return f"{left} {right}"


def join_lines(lines: list[str], vocab: Counter[str] | None = None) -> str:
    """Join wrapped lines into one paragraph, undoing end-of-line hyphenation ("repre-\\nsent")
    but keeping real compounds when `vocab` (the document's words) says so."""
    out = ""
    for raw in lines:
        line = raw.strip()
        if line:
            out = _join(out, line, vocab) if out else line
    return re.sub(r"[ \t]+", " ", out)


# ---------------------------------------------------------------------------------------------
# Styles

# Heading weight: bold families, and small capitals (CMCSC) that some classes use for headings.
_BOLD_WORD = re.compile(r"bold|black|heavy|semibold|demi|medi(?:um)?\b|-medi|cmbx|sfbx|ptmb|\bbx|cmcsc|smallcaps", re.I)
_BOLD_SUFFIX = re.compile(r"(?:TB|SB|-B|,B|\.B|Bd|BX|BXI|Bol)\d*$")


@functools.lru_cache(maxsize=4096)  # per span, over a few fonts
def is_italic(font: str, flags: int) -> bool:
    return bool(flags & 2) or bool(re.search(r"italic|oblique|-it\b|-ital|cmti|cmsl|ptmri|tiit", font, re.I))


@functools.lru_cache(maxsize=4096)
def is_bold(font: str, flags: int) -> bool:
    return bool(flags & 16) or bool(_BOLD_WORD.search(font)) or bool(_BOLD_SUFFIX.search(font))


def body_size(blocks: list[Block]) -> float:
    sizes: Counter[float] = Counter()
    for b in blocks:
        for ln in b.lines:
            sizes[round(ln.size * 2) / 2] += len(ln.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


# ---------------------------------------------------------------------------------------------
# Running headers and footers

_PAGE_NUMBER = re.compile(r"^\s*(?:page\s*)?[\divxlc]{1,6}(?:\s*(?:of|/)\s*\d{1,4})?\s*$", re.I)


def strip_running_lines(pages: list[list[Block]], sizes: list[tuple[float, float]], edge: float = 0.11) -> int:
    """Remove running headers/footers and page numbers in place; return how many lines went.

    A line near the top or bottom edge is a running line when the same text, digits ignored,
    recurs near an edge on a quarter of the pages (at least two), or when it is a bare page number.
    """
    def key(text: str) -> str:
        return re.sub(r"\s+", " ", re.sub(r"\d+", "#", text.lower())).strip()

    body = body_size([b for blocks in pages for b in blocks])

    def near_edge(ln: Line, h: float, reach: float = 1.0) -> bool:  # no larger than the body text
        band = reach * edge * h
        return (ln.bbox[3] < band or ln.bbox[1] > h - band) and ln.size <= body + 0.6

    def near_edge_wide(ln: Line, h: float) -> bool:  # the second line of a two-line running title
        return near_edge(ln, h, reach=1.5)

    def repeat_key(ln: Line) -> str:
        # A line with no letters ("111:2", a page label) runs at the same place on the pages it is on; a
        # table's numbers near the foot ("2.77234", "12537.64": "#.#") recur elsewhere and stay body text
        # (two tables set at the foot share a row's height, not its columns).
        k = key(ln.text)
        return k if any(c.isalpha() for c in k) else f"{k}@{round(ln.bbox[1] / 2)},{round((ln.bbox[0] + ln.bbox[2]) / 20)}"

    counts: Counter[str] = Counter()
    everywhere = Counter(key(ln.text) for blocks in pages for b in blocks for ln in b.lines)
    for blocks, (_, h) in zip(pages, sizes):
        counts.update({repeat_key(ln) for b in blocks for ln in b.lines if near_edge_wide(ln, h)})
    threshold = max(2, math.ceil(0.25 * len(pages)))
    # "44  Achim D. Brucker": an edge line led or ended by the printed page number, which runs with
    # the page index (the same offset on two pages or more), is a running header even if its text
    # appears once (even and odd pages carry different texts).
    offsets: Counter[int] = Counter()
    numbered: dict[int, int] = {}
    bare: dict[int, int] = {}  # bare numbers by line: their offset from the page index
    bare_offsets: Counter[int] = Counter()
    for pno, (blocks, (_, h)) in enumerate(zip(pages, sizes)):
        for b in blocks:
            for ln in b.lines:
                m = re.match(r"^(\d{1,4})\s+\S|.*\S\s+(\d{1,4})$", ln.text)
                if m and near_edge(ln, h):
                    off = int(m.group(1) or m.group(2)) - pno
                    numbered[id(ln)] = off
                    offsets[off] += 1
                elif near_edge(ln, h) and re.fullmatch(r"\s*\d{1,4}\s*", ln.text):
                    bare[id(ln)] = int(ln.text) - pno
                    bare_offsets[int(ln.text) - pno] += 1
    removed = 0
    for blocks, (_, h) in zip(pages, sizes):
        # A bare number is the page's number when it sits alone on its row or runs with the page index
        # (a figure label "1" or a table cell "7" near the top is neither); a header set on one row
        # with it ("44" ... "Achim D. Brucker") goes with it.
        edge_lines = [ln for b in blocks for ln in b.lines if near_edge(ln, h)]
        rows = [ln.bbox for ln in edge_lines if _PAGE_NUMBER.match(ln.text)
                and (bare_offsets[bare.get(id(ln), -10**6)] >= 2 or not _beside(ln, [o.bbox for o in edge_lines
                                                                                          if o is not ln]))]
        # A page that prints its number alone has no header led by it ("1 of the cubic centered"
        # at a column's foot is a subscript and the sentence's end).
        own_number = any(bare_offsets[bare.get(id(ln), -10**6)] >= 2 for ln in edge_lines)
        for b in blocks:
            # Weak evidence (a number, a row shared with the page number) removes a line only when
            # its block lies in the margin: a body line at a column's top or foot keeps its paragraph.
            in_margin = all(near_edge(ln, h) for ln in b.lines)

            def running(ln: Line) -> bool:
                if near_edge_wide(ln, h) and counts[repeat_key(ln)] >= threshold:
                    return True
                # A plain line in the margin (no heading's weight, number or capitals) repeated is
                # a running head naming the current section: "Introduction" over pages 3 and 5, or
                # over a section's only odd page, repeating the section's heading.
                plain = not (ln.bold or ln.text.isupper() or _NUMBERED.match(ln.text))
                section_head = plain and (counts[repeat_key(ln)] >= 2 or (
                    ln.bbox[3] < edge * h and len(ln.text.split()) <= 6 and everywhere[key(ln.text)] >= 2))
                return near_edge(ln, h) and in_margin and bool(
                    _PAGE_NUMBER.match(ln.text) or _beside(ln, rows) or section_head
                    or not own_number and offsets[numbered.get(id(ln), -10**6)] >= 2)

            keep = [ln for ln in b.lines if not running(ln)]
            removed += len(b.lines) - len(keep)
            if len(keep) != len(b.lines) and keep:
                b.lines = keep
                b.refit()
            b.lines = keep
        blocks[:] = [b for b in blocks if b.lines]
    return removed


def _beside(ln: Line, rows: list[Box]) -> bool:
    return any(min(ln.bbox[3], r[3]) - max(ln.bbox[1], r[1]) > 0.5 * (ln.bbox[3] - ln.bbox[1]) for r in rows)


# ---------------------------------------------------------------------------------------------
# Reading order and table cells

def column_of(b: Line | Block, width: float) -> str:
    """"L", "R" or "F" (full width, or across the middle) for a block or line of a page this wide."""
    mid = width / 2
    if b.bbox[2] <= mid + 10:
        return "L"
    if b.bbox[0] >= mid - 10:
        return "R"
    return "F"


def reading_order(blocks: list[Block], width: float) -> list[Block]:
    """Full-width blocks cut the page into bands; inside a band the left column is read before the
    right. A one-column page is all full-width or all-left blocks, so it reads top to bottom."""
    ordered: list[Block] = []
    band: list[Block] = []
    rows = _author_rows(blocks, width)

    def flush() -> None:
        ordered.extend(sorted((b for b in band if column_of(b, width) == "L"), key=lambda b: b.bbox[1]))
        ordered.extend(sorted((b for b in band if column_of(b, width) == "R"), key=lambda b: b.bbox[1]))
        band.clear()

    for b in sorted(blocks, key=lambda b: (b.bbox[1], b.bbox[0])):
        if id(b) in rows:
            if not any(id(o) in rows for o in ordered):  # the author rows, at their first block: each
                flush()  # column's stack (an author's name, department, e-mail) before the next column's
                members = [o for o in blocks if id(o) in rows]
                for side in ("L", "R"):
                    ordered.extend(sorted((o for o in members if column_of(o, width) == side), key=lambda o: o.bbox[1]))
        elif column_of(b, width) == "F":
            flush()
            ordered.append(b)
        else:
            band.append(b)
    flush()
    return ordered


def _centered(b: Block) -> bool:
    mid = (b.bbox[0] + b.bbox[2]) / 2
    return all(abs((ln.bbox[0] + ln.bbox[2]) / 2 - mid) <= 0.3 * ln.size for ln in b.lines)


def _author_rows(blocks: list[Block], width: float) -> set[int]:
    """Author blocks set side by side under the title (IEEE's "Name / Department / University /
    e-mail" stacks): centered blocks of page 1, one in each column, with the same top, above any
    paragraph of either column. The ids of the blocks of such rows."""
    if not blocks or blocks[0].page != 1:
        return set()
    paragraphs = [b for b in blocks if len(b.lines) >= 2 and not _centered(b) and column_of(b, width) != "F"]
    top = min((b.bbox[1] for b in paragraphs), default=float("inf"))
    cands = [b for b in blocks if b.bbox[3] <= top and _centered(b) and column_of(b, width) != "F"]
    rows: set[int] = set()
    for a in cands:
        if column_of(a, width) != "L":
            continue
        mates = [b for b in cands if column_of(b, width) == "R" and abs(b.bbox[1] - a.bbox[1]) <= 0.5 * a.size
                 and abs(len(b.lines) - len(a.lines)) <= 1]
        if mates:
            rows.update(id(b) for b in [a, *mates])
    if rows:  # only two stacks side by side: a third author in the middle (ACM) is read as before
        top, bottom = min(b.bbox[1] for b in blocks if id(b) in rows), max(b.bbox[3] for b in blocks if id(b) in rows)
        if any(id(b) not in rows and b.bbox[1] < bottom and b.bbox[3] > top for b in blocks):
            return set()
    return rows


def _merge_number_labels(blocks: list[Block]) -> list[Block]:
    """"3.2" and "Results" set apart on one baseline (MuPDF makes two blocks): one block."""
    out: list[Block] = []
    for b in sorted(blocks, key=lambda b: (round(b.bbox[1]), b.bbox[0])):
        prev = out[-1] if out else None
        if (prev and len(prev.lines) == 1 and _LABEL.fullmatch(prev.lines[0].text) and prev.figure == b.figure
                and abs(prev.bbox[1] - b.bbox[1]) < 2 and 0 <= b.bbox[0] - prev.bbox[2] < 40):
            first = b.lines[0]
            label = prev.lines[0]
            prev.lines[0] = Line(f"{label.text} {first.text}", max(first.size, label.size), first.bold and label.bold,
                                 (prev.bbox[0], first.bbox[1], first.bbox[2], first.bbox[3]), first.page,
                                 italic=first.italic)
            prev.lines.extend(b.lines[1:])
            prev.refit()
            continue
        out.append(b)
    return out


def _join_drop_caps(blocks: list[Block]) -> list[Block]:
    """A drop cap (IEEE journals' "P" two lines high, then "ARAMETER-EFFICIENT fine-tuning...") is
    the first letter of the line that starts just right of it, at its top."""
    firsts = [b.lines[0] for b in blocks]
    for b in blocks:
        for cap in list(b.lines):
            if not (len(cap.text) == 1 and cap.text.isupper()):
                continue
            word = next((ln for ln in firsts if ln is not cap and cap.size >= 2 * ln.size
                         and cap.bbox[2] - 1 <= ln.bbox[0] <= cap.bbox[2] + 0.8 * cap.size
                         and cap.bbox[1] - 2 <= ln.bbox[1] < (cap.bbox[1] + cap.bbox[3]) / 2), None)
            if word is not None:
                word.text = cap.text + word.text
                word.bbox = (cap.bbox[0], *word.bbox[1:])
                b.lines.remove(cap)
                if b.lines:
                    b.refit()
    return [b for b in blocks if b.lines]


def two_columns(blocks: list[Block], width: float) -> bool:
    """Is the page set in two columns (a few lines of text in each)?"""
    chars: Counter[str] = Counter()
    for b in blocks:
        chars[column_of(b, width)] += sum(len(ln.text) for ln in b.lines)
    return chars["L"] > 300 and chars["R"] > 300


def _mark_table_cells(blocks: list[Block], width: float) -> None:
    """A block with another block beside it in the same column is a table cell (or a figure label)."""
    cols = [column_of(b, width) for b in blocks]
    two = two_columns(blocks, width)
    for i, a in enumerate(blocks):
        for j, b in enumerate(blocks):
            if i == j or (two and {cols[i], cols[j]} == {"L", "R"}):
                continue
            overlap = min(a.bbox[3], b.bbox[3]) - max(a.bbox[1], b.bbox[1])
            lower = min(a.bbox[3] - a.bbox[1], b.bbox[3] - b.bbox[1])
            apart = a.bbox[2] <= b.bbox[0] or b.bbox[2] <= a.bbox[0]
            if apart and lower > 0 and overlap > 0.5 * lower:
                a.table_cell = True
                break


def _numbered_styled(ln: Line) -> bool:
    """A numbered line set as IEEE sets headings: in capitals ("III. METHOD", small capitals) or in
    italics ("A. Problem Setup")."""
    return bool(_NUMBERED.match(ln.text)) and (ln.italic or ln.text.isupper())


def _split_headings(block: Block) -> list[Block]:
    """Bold runs of 1-3 lines inside a block (a heading that MuPDF merged with the paragraph
    before or after it, or two headings in a row) become blocks of their own; so does a numbered
    line in capitals or italics set in another style than the line before or after it."""
    pieces: list[list[Line]] = [[block.lines[0]]]
    for prev, ln in zip(block.lines, block.lines[1:]):
        restyled = (ln.bold, ln.italic) != (prev.bold, prev.italic) and (
            _numbered_styled(ln) or _numbered_styled(prev))
        if ln.bold != prev.bold or (ln.bold and (_NUMBERED.match(ln.text) or _LABEL.fullmatch(ln.text))) or restyled:
            pieces.append([ln])
        else:
            pieces[-1].append(ln)
    if len(pieces) == 1:
        return [block]
    out: list[Block] = []
    for piece in pieces:
        heading_like = ((piece[0].bold or _numbered_styled(piece[0])) and len(piece) <= 3
                        and not piece[-1].text.endswith((",", ";")))
        if out and not heading_like and not (out[-1].lines[0].bold or _numbered_styled(out[-1].lines[0])):
            out[-1].lines.extend(piece)  # plain text stays one block
        elif out and not heading_like and out[-1].lines[0].bold and len(out[-1].lines) > 3:
            out[-1].lines.extend(piece)
        else:
            out.append(Block(block.page, block.bbox, list(piece)))
    for b in out:
        b.refit()
    return out


# ---------------------------------------------------------------------------------------------
# Headings, captions, footnotes

_LABEL = re.compile(r"(?:\d{1,2}(?:\.\d{1,2})*|[A-Z](?:\.\d{1,2})*|[IVX]{1,5})\.?")
_NUMBERED = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*\.?|[A-Z](?:\.\d{1,2})*\.?|[IVX]{1,5}\."
                       r"|(?:appendix|chapter)\s+[A-Z0-9]{1,3}[.:]?)\s+\S", re.I)
_NAMED = re.compile(
    r"^(abstract|introduction|related works?|background|preliminaries|methods?|methodology|approach|"
    r"experiments?|experimental (setup|results)|results|evaluation|analysis|discussion|conclusions?|"
    r"concluding remarks|summary|acknowledge?ments?|references|bibliography|appendix|appendices|"
    r"limitations|future work|keywords|index terms|ccs concepts|ethics statement|ethical considerations|"
    r"broader impacts?|impact statement|reproducibility( statement)?|data availability|author contributions|"
    r"conflicts? of interest|funding|supplementary material)\b.{0,60}$", re.I)
# "Figure 3:", "Tab. 2.", and IEEE's "TABLE IV" (capitals and a roman numeral, its title on the next line)
_CAPTION = re.compile(r"^(?:(?:figure|fig\.|table|tab\.|algorithm|listing|scheme|chart|plate)"
                      r"\s*[A-Z]?\d+[a-z]?\s*[.:|—–-]|(?-i:TABLE\s+[IVXLC]{1,6})\b)", re.I)
_THEOREM = re.compile(r"^(theorem|lemma|remark|corollary|definition|conjecture|axiom|example|proof|proposition|"
                      r"claim|assumption|note|hypothesis|observation|problem|exercise|step|case)\b", re.I)
_REFERENCES = re.compile(r"^(?:\d+\.?\s*)?(references|bibliography|literature cited|works cited)\s*$", re.I)
_ABSTRACT = re.compile(r"^abstract\s*[:.—–-]?\s*", re.I)


def _heading_kind(b: Block, body: float, bold_is_style: bool) -> str | None:
    """"numbered", "named" or "styled" when the block is a heading, else None."""
    if len(b.lines) > 3 or b.table_cell or b.figure:
        return None
    text = b.text.strip()
    if re.fullmatch(r"abstract[.:]?", text, re.I):  # set in any size (small capitals, 6 pt)
        return "named"
    words = text.split()
    if not text or len(text) > 120 or len(words) > 16 or _CAPTION.match(text) or text.endswith((",", ";")):
        return None
    # Mathematics is no heading; a "+" between words is ("LoRA + Prompt Tuning (LPT)").
    math = re.search(r"[=<>|∼≤≥∑∫]", text) or (
        "+" in text and not re.fullmatch(r"[^+]*\w{2,} \+ \w{2,}[^+]*", text))
    if not re.search(r"[^\W\d_]{3}", text) or _THEOREM.match(text) or math:
        return None
    if any(ln.gapped for ln in b.lines):  # cells of a table row
        return None
    if re.search(r"[^\W\d_]-$", text):  # a bold run-in lead broken mid-word ("...of informa-")
        return None
    latin = re.findall(r"[A-Za-z]{2,}", text)
    if latin and not re.search(r"[^\W\d_]", re.sub(r"[A-Za-z]", "", text)) and not any(
            re.search(r"(?i)[aeiouy]", w) for w in latin):  # "A ZZZZ": an equation's glyphs, no word
        return None
    bold = bold_is_style and all(ln.bold for ln in b.lines)
    larger = b.size >= body + 0.9
    caps = text.isupper()
    if b.size < body - 1.3 and not bold:
        return None
    numbered = bool(_NUMBERED.match(text))
    if text.endswith(".") and not numbered:  # "Data Classes." is a run-in paragraph heading
        return None
    # IEEE journals set "A. Subsection Title" in italics, on a line of its own.
    italic = (all(ln.italic for ln in b.lines) and len(b.lines) <= 2
              and bool(re.match(r"[A-Z]\.\s+[A-Z][A-Za-z]{2,}", text)))
    if numbered and (bold or larger or caps or italic):
        return "numbered"
    if _NAMED.match(text) and (bold or larger or caps or len(words) <= 3):
        return "named"
    # (a question may run longer: "How does the number of demonstrations change what the model learns?")
    if (bold or larger) and (len(words) <= 12 or text.endswith("?")) and text[0].isupper() and not text.endswith(":"):
        return "styled"
    return None


FIGURE_CAPTION = re.compile(r"^(?:figure|fig\.)\s*\d+", re.I)


def _in_figure(b: Block, after: list[Block]) -> bool:
    """Unnumbered, or lettered like a panel ("A (a) ..."), and a figure's caption is one of the next
    two blocks on the page: text drawn in the figure."""
    if _NUMBERED.match(b.text) and not re.match(r"^[A-Z]\s+\(", b.text):
        return False
    return any(a.page == b.page and FIGURE_CAPTION.match(a.text) for a in after)


def _tabular(b: Block) -> bool:
    """Table rows: mostly numbers, or a short cell beside other blocks."""
    tokens = b.text.split()
    numeric = sum(bool(re.fullmatch(r"[-+±]?\(?\d[\d.,%]*\)?", t)) for t in tokens)
    return (len(tokens) >= 4 and numeric >= 0.4 * len(tokens)) or (b.table_cell and len(tokens) <= 3)


def _merge_heading_runs(blocks: list[Block], body: float, bold_is_style: bool) -> list[Block]:
    """A heading broken over blocks ("IV. FLOATS: FIGURES, TABLES," / "ETC.", or a lone "3.2"
    above its title) is one heading: join such a block to the one just above it."""
    out: list[Block] = []
    for b in blocks:
        prev = out[-1] if out else None
        if (prev is not None and prev.page == b.page and 0 <= b.bbox[1] - prev.bbox[3] < 0.8 * b.size
                and not (prev.figure or b.figure)):
            lone_number = len(prev.lines) == 1 and _LABEL.fullmatch(prev.lines[0].text)
            goes_on = not prev.lines[-1].text.endswith(".") or b.lines[0].text[:1].islower()
            styled_pair = (len(prev.lines) + len(b.lines) <= 3 and abs(prev.size - b.size) < 0.6
                           and _styled(prev, body, bold_is_style) and _styled(b, body, bold_is_style))
            starts_new = bool(_NUMBERED.match(b.lines[0].text))  # "A RESEARCH METHODS" / "A.1 Part One"
            if lone_number or (styled_pair and goes_on and not starts_new):
                merged = Block(b.page, prev.bbox, prev.lines + b.lines)
                merged.refit()
                out[-1] = merged
                continue
        out.append(b)
    return out


def _styled(b: Block, body: float, bold_is_style: bool) -> bool:
    text = b.text
    return (not b.table_cell and len(text) < 100 and (bold_is_style and all(ln.bold for ln in b.lines)
            or b.size >= body + 0.9 or (text.isupper() and b.size >= body - 1.3)))


def _is_aside(b: Block, body: float, page_height: float) -> bool:
    """Captions, footnotes and small print (figure labels, table cells, reference lists): kept,
    but never inside a sentence of the body text."""
    text = b.text
    if b.figure or _CAPTION.match(text):
        return True
    if b.size <= body - 1.5:
        return True
    return b.size <= body - 0.9 and b.bbox[1] > 0.6 * page_height and bool(re.match(r"^[\d∗*†‡§¶⋆]", text))


_ENDS_SENTENCE = re.compile(r"[.!?:\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*(?:\s*\[?\d+\]?)?$")


def _continues(prev_line: Line, next_line: Line, right: float) -> bool:
    """Does the paragraph ending in `prev_line` (of a block whose right edge is `right`) go on with
    `next_line` (a column or page break, a float in between)?"""
    prev, nxt = prev_line.text, next_line.text
    if not prev or not nxt:
        return False
    if prev.endswith("-") and nxt[:1].islower():
        return True
    if _ENDS_SENTENCE.search(prev):
        return False
    if nxt[:1].islower() or nxt[:1] in "([{":
        return True
    # A sentence cut by a break fills its last line to the column edge.
    full = prev_line.bbox[2] >= right - 2.5 * prev_line.size
    return full and bool(re.search(r"[a-z,;]$", prev)) and not nxt.startswith(("•", "-", "–", "∗", "*"))


_LIST_ITEM = re.compile(r"^(?:[•◦▪‣∙·–—*-]|\(?(?:\d{1,2}|[a-z]|[ivx]{1,4})[.)])\s")


def _paragraphs(b: Block) -> list[list[Line]]:
    """Split a block where a sentence ends and the next line starts a new paragraph (indented, or
    the ending line is short)."""
    lines = b.lines
    left = sorted(ln.bbox[0] for ln in lines)[len(lines) // 2]
    right = max(ln.bbox[2] for ln in lines)
    paras = [[lines[0]]]
    for prev, ln in zip(lines, lines[1:]):
        ends = bool(_ENDS_SENTENCE.search(prev.text))
        short = prev.bbox[2] < right - 2 * prev.size
        indent = ln.bbox[0] > left + 0.7 * ln.size
        gap = ln.bbox[1] - prev.bbox[3] > 0.9 * ln.size
        # The text after a list item starts left of the item's marker ("• a release of the data." /
        # "The rest of the paper ...").
        after_item = (_LIST_ITEM.match(paras[-1][0].text) is not None
                      and ln.bbox[0] < paras[-1][0].bbox[0] - 0.5 * ln.size)
        if (ends and (short or indent or after_item)) or gap:
            paras.append([ln])
        else:
            paras[-1].append(ln)
    return paras


# ---------------------------------------------------------------------------------------------
# Assembly

# Footnote marks after a title ("... CLASS∗", "...Linebreak†"): a reference to a note, not title text.
_FOOTNOTE_MARKS = re.compile(r"[\s,]*[∗*†‡§¶⋆][\s,∗*†‡§¶⋆]*$")


_MASTHEAD = re.compile(r"^(?:the\s+)?(?:journal|proceedings|transactions|annals|bulletin|letters)\b.{0,60}$"
                       r"|^.{0,40}\b(?:journal|proceedings|transactions)\s+(?:of|on)\b.{0,50}$", re.I)


def _title_blocks(ordered: list[Block], body: float, sizes: list[tuple[float, float]]) -> list[Block]:
    """The largest text in the top 60% of page 1 (above body size), with same-size blocks after it."""
    first = [b for b in ordered if b.page == 1 and b.bbox[1] < 0.6 * sizes[0][1] and not b.figure
             and sum(c.isalpha() for c in b.text) >= 4 and len(b.lines) <= 4
             and not _NAMED.match(b.text) and not re.match(r"^\d+(\.\d+)*\.?\s", b.text)]
    if not first:
        return []
    # A journal's masthead ("Journal of Statistical Software") at the top is not the paper's title
    # when a large block follows below it.
    papers = [b for b in first if not (_MASTHEAD.search(b.text) and b.bbox[3] < 0.2 * sizes[0][1])]
    if papers and max(b.size for b in papers) >= body + 1.5:
        first = papers
    top = max(first, key=lambda b: b.size)
    if top.size < body + 1.5:
        return []
    i = ordered.index(top)
    out = []
    while i < len(ordered) and ordered[i].page == 1 and abs(ordered[i].size - top.size) < 0.6:
        out.append(ordered[i])
        i += 1
    return out


def assemble(pages: list[list[Block]], sizes: list[tuple[float, float]], cfg: IngestConfig) -> Document:
    strip_running_lines(pages, sizes)
    ordered: list[Block] = []
    for blocks, (w, _) in zip(pages, sizes):
        blocks = _merge_number_labels(_join_drop_caps(blocks))
        _mark_table_cells(blocks, w)
        page_blocks: list[Block] = []
        for b in reading_order(blocks, w):
            page_blocks.extend(_split_headings(b) if not (b.table_cell or b.figure) else [b])
        ordered.extend(page_blocks)
    body = body_size(ordered)
    body_chars = [ln for b in ordered for ln in b.lines if abs(ln.size - body) < 0.6]
    # Bold marks headings only when the body text is not bold itself (e.g. a "-Medium" body font).
    body_bold = sum(len(ln.text) for ln in body_chars if ln.bold)
    bold_is_style = body_bold < 0.5 * max(sum(len(ln.text) for ln in body_chars), 1)
    ordered = _merge_heading_runs(ordered, body, bold_is_style)
    vocab = vocabulary([ln.text for b in ordered for ln in b.lines])
    title_blocks = _title_blocks(ordered, body, sizes)
    col_right: dict[tuple[int, str], float] = {}  # right edge of each column of each page
    for b in ordered:
        k = (b.page, column_of(b, sizes[b.page - 1][0]))
        col_right[k] = max(col_right.get(k, 0.0), b.bbox[2])
    title = _FOOTNOTE_MARKS.sub("", " ".join(b.text for b in title_blocks))

    front: list[str] = []
    sections: list[Section] = []
    bodies: list[list[str]] = []  # paragraphs of each section
    paras = front
    open_para: list[Line] = []
    open_right = [0.0]  # right edge of the block that the open paragraph ends in
    asides: list[str] = []
    structured = False  # a numbered or named heading has been seen (front matter is over)

    open_aside: list[Line] = []
    aside_right = [0.0]
    aside_figure = [False]  # the open aside is a figure's own text

    def close_aside() -> None:
        if open_aside:
            asides.append(join_lines([ln.text for ln in open_aside], vocab))
            open_aside.clear()

    def close() -> None:
        if open_para:
            paras.append(join_lines([ln.text for ln in open_para], vocab))
            open_para.clear()
        close_aside()
        paras.extend(asides)
        asides.clear()

    for at, b in enumerate(ordered):
        if any(b is t for t in title_blocks):
            continue
        kind = _heading_kind(b, body, bold_is_style)
        if kind == "styled" and not structured or (structured and _ABSTRACT.match(b.text)):
            kind = None  # bold lines among the authors; "ABSTRACT" inside a figure
        nxt = ordered[at + 1] if at + 1 < len(ordered) else b
        below = nxt is not b and nxt.page == b.page and 0 <= nxt.bbox[1] - b.bbox[1] < 4 * b.size
        if kind in ("styled", "numbered") and below and _tabular(nxt):
            kind = None  # a table's header row or row label ("Dataset Result", "Macro Avg")
        if kind == "styled" and below and b.size < body - 0.5 and nxt.size < body - 0.5 and not b.text.isupper():
            kind = None  # a bold line in small print over more small print: a table's header
        if kind in ("styled", "numbered") and _in_figure(b, ordered[at + 1:at + 3]):
            kind = None  # a figure's lettering ("Image", "A (a) Image"): its caption comes next
        if kind:
            close()
            structured = True
            sections.append(Section(join_lines([ln.text for ln in b.lines]), ""))
            paras = []
            bodies.append(paras)
            continue
        if _is_aside(b, body, sizes[b.page - 1][1]):
            # Two footnotes in one block are two notes; a figure's own text never runs on into a caption
            # or note, nor they into it.
            same_kind = aside_figure[0] == b.figure
            for n, note in enumerate(_paragraphs(b)):
                if not (n == 0 and same_kind and open_aside and _continues(open_aside[-1], note[0], aside_right[0])):
                    close_aside()
                open_aside.extend(note)
            aside_right[0] = col_right.get((b.page, column_of(b, sizes[b.page - 1][0])), b.bbox[2])
            aside_figure[0] = b.figure
            continue
        for k, para in enumerate(_paragraphs(b)):
            if not (k == 0 and open_para and _continues(open_para[-1], para[0], open_right[0])):
                close()
            open_para.extend(para)
        open_right[0] = col_right.get((b.page, column_of(b, sizes[b.page - 1][0])), b.bbox[2])
    close()
    for s, body_paras in zip(sections, bodies):
        s.text = "\n\n".join(p for p in body_paras if p)
    return _finish(title, front, sections, cfg)


_YEAR = re.compile(r"\b(?:19|20)\d{2}[a-z]?\b")


def _reads_as_references(text: str) -> bool:
    """Reference entries carry a year every few dozen words; prose, even citing, far fewer. A
    section too short to tell (a heading and a line) counts as part of the list."""
    n_words = len(text.split())
    return n_words < 40 or len(_YEAR.findall(text)) >= 0.02 * n_words


def _finish(title: str, front: list[str], sections: list[Section], cfg: IngestConfig) -> Document:
    warnings: list[str] = []
    abstract = ""
    for s in sections:
        if _ABSTRACT.match(s.heading):
            abstract = (_ABSTRACT.sub("", s.heading) + " " + s.text).strip()
            sections.remove(s)
            break
    else:
        for i, para in enumerate(front):  # inline "Abstract—..." (IEEE, ACL, Elsevier styles)
            if _ABSTRACT.match(para) and len(para) > 60:
                abstract = _ABSTRACT.sub("", para).strip()
                del front[i]
                break
        else:  # an abstract without a label: the front paragraph with the most running prose
            # (a caption is no abstract: a one-page table sheet has nothing else)
            prose = [0 if _CAPTION.match(p) else len(re.findall(r"(?<![\w-])[a-z]{2,}(?![\w-])", p)) for p in front]
            best = next((i for i, n in enumerate(prose) if n >= 12), None)
            if best is not None:
                abstract = front.pop(best)
    if any(p.strip() for p in front):  # authors, affiliations, notes before the first heading: kept
        sections.insert(0, Section("", "\n\n".join(p for p in front if p.strip())))

    refs_dropped = False
    if not cfg.keep_references:
        kept, in_refs = [], False
        for s in sections:
            if _REFERENCES.match(s.heading):
                in_refs = refs_dropped = True
                continue
            # What follows the references is kept unless it reads as more references (a bold name in
            # the list taken for a heading): appendices, lettered or named or not ("Attention
            # Visualizations"), and back matter.
            if in_refs and not (re.match(r"^(appendix|appendices|supplementary)", s.heading, re.I)
                                or re.match(r"^[A-H](\.\d+)*\.?\s+[A-Z]", s.heading)
                                or not _reads_as_references(s.text)):
                continue
            in_refs = False
            kept.append(s)
        sections = kept
    if not any(s.heading for s in sections):
        warnings.append("No section headings were recognised; the text is kept as one block.")
    return Document(title=title, abstract=abstract, sections=sections, warnings=warnings,
                    references_dropped=refs_dropped)
