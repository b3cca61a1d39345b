"""PDF -> Document with PyMuPDF.

Steps: validate (type, size, encryption, pages) -> per page, text spans with style and position ->
drop what a reader cannot see (hidden-text guard) -> drop rotated margin text (arXiv stamps) and
running headers/footers/page numbers -> order blocks by column -> join lines (de-hyphenated) ->
split into sections by heading style -> title, abstract, sections; references kept or dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pymupdf

from reviewgpt.config import IngestConfig
from reviewgpt.ingest.document import Document, HiddenSpan, Section
from reviewgpt.errors import (CorruptPDFError, EmptyPDFError, EncryptedPDFError, NotAPDFError, PDFTooLargeError,
                      ScannedPDFError)
from reviewgpt.ingest.hidden_text import classify_hidden, page_fills

# Text of all kinds, no images (images make "dict" slow and are not needed), and no clipping to
# the media box so that text placed off the page reaches the hidden-text guard.
_FLAGS = (pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES & ~pymupdf.TEXT_MEDIABOX_CLIP)
_BOLD = 16
_NUMBERED_HEADING = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[A-H](?:\.\d+)*\.?|[IVX]+\.)\s+[A-Z][^.!?]{0,90}$")
_NAMED_HEADING = re.compile(
    r"^(abstract|introduction|related work|background|method(s|ology)?|experiments?|results|discussion|"
    r"conclusions?|acknowledge?ments?|references|bibliography|appendix|appendices|limitations|"
    r"future work|evaluation|keywords|ethics statement)\b.{0,40}$", re.I)
_REFERENCES = re.compile(r"^(?:\d+\.?\s*)?(references|bibliography|literature cited)\s*$", re.I)
_ABSTRACT = re.compile(r"^abstract\s*[:.—-]?\s*", re.I)
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s*)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?\s*$", re.I)


@dataclass
class _Line:
    text: str
    size: float
    bold: bool


@dataclass
class _Block:
    page: int
    bbox: tuple[float, float, float, float]
    lines: list[_Line] = field(default_factory=list)

    @property
    def text(self) -> str:
        return join_lines([ln.text for ln in self.lines])

    @property
    def size(self) -> float:
        return max((ln.size for ln in self.lines), default=0.0)


def join_lines(lines: list[str]) -> str:
    """Join wrapped lines into one paragraph, undoing end-of-line hyphenation ("repre-\\nsent")."""
    out = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if re.search(r"[A-Za-z]-$", out) and line[:1].islower():
            out = out[:-1] + line
        elif out:
            out += " " + line
        else:
            out = line
    return re.sub(r"[ \t]+", " ", out)


def _open(source: bytes | str | Path, cfg: IngestConfig) -> pymupdf.Document:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise NotAPDFError(f"No such file: {path.name}")
        if path.stat().st_size > cfg.max_bytes:
            raise PDFTooLargeError(_too_big(path.stat().st_size, cfg))
        data = path.read_bytes()
    else:
        data = bytes(source)
    if len(data) > cfg.max_bytes:
        raise PDFTooLargeError(_too_big(len(data), cfg))
    if not data:
        raise NotAPDFError("The file is empty (0 bytes). Please upload a PDF of the paper.")
    if b"%PDF-" not in data[:1024]:
        raise NotAPDFError("This file is not a PDF. Please upload the paper as a PDF file.")
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as e:  # MuPDF raises its own error types for broken files
        raise CorruptPDFError(f"The PDF is damaged and cannot be read ({e}). Try re-downloading or re-exporting it.") from e
    if doc.needs_pass:
        raise EncryptedPDFError("The PDF is password-protected. Please upload a copy without a password.")
    if doc.page_count == 0:
        if doc.is_repaired:
            raise CorruptPDFError("The PDF is damaged: no page could be recovered. Try re-exporting it.")
        raise EmptyPDFError("The PDF has no pages.")
    if doc.page_count > cfg.max_pages:
        raise PDFTooLargeError(
            f"The PDF has {doc.page_count} pages; the limit is {cfg.max_pages}. Upload the paper without "
            "long supplementary material.")
    return doc


def _too_big(n: int, cfg: IngestConfig) -> str:
    return f"The file is {n / 2**20:.1f} MB; the limit is {cfg.max_bytes / 2**20:.0f} MB."


def _page_blocks(page: pymupdf.Page, pno: int, cfg: IngestConfig, hidden: list[HiddenSpan]) -> list[_Block]:
    try:
        data = page.get_text("dict", flags=_FLAGS, clip=pymupdf.INFINITE_RECT())
    except Exception as e:
        raise CorruptPDFError(f"Page {pno} of the PDF cannot be read ({e}).") from e
    fills = page_fills(page)
    r = page.rect
    page_box = (r.x0, r.y0, r.x1, r.y1)
    blocks = []
    for b in data["blocks"]:
        if b.get("type") != 0:
            continue
        block = _Block(pno, tuple(b["bbox"]))
        for line in b["lines"]:
            if abs(line["dir"][1]) > 0.2:  # rotated text: arXiv side stamps, figure labels
                continue
            kept = []
            for span in line["spans"]:
                if not span["text"].strip():
                    kept.append(span)
                    continue
                reason = classify_hidden(span, page_box, fills, cfg)
                if reason:
                    hidden.append(HiddenSpan(pno, span["text"].strip(), reason))
                    if cfg.drop_hidden_text:
                        continue
                kept.append(span)
            text = "".join(s["text"] for s in kept).strip()
            if text:
                sizes = [s["size"] for s in kept if s["text"].strip()]
                bold = all(s["flags"] & _BOLD or "Bold" in s["font"] or s["font"].endswith("B")
                           for s in kept if s["text"].strip())
                block.lines.append(_Line(text, max(sizes), bold))
        blocks.extend(_split_leading_heading(block))
    return blocks


def _split_leading_heading(block: _Block) -> list[_Block]:
    """A bold run of 1-4 lines at the top of a block, followed by plain lines, is a run-in heading
    that MuPDF merged with its paragraph: give it its own block."""
    if not block.lines:
        return []
    k = 0
    while k < len(block.lines) and block.lines[k].bold:
        k += 1
    if 0 < k <= 4 and k < len(block.lines):
        head = _Block(block.page, block.bbox, block.lines[:k])
        rest = _Block(block.page, block.bbox, block.lines[k:])
        return [head, rest]
    return [block]


def _reading_order(blocks: list[_Block], width: float) -> list[_Block]:
    """Order blocks for one- and two-column pages.

    Full-width blocks cut the page into bands; inside a band the left column is read before the
    right. A one-column page is all full-width or all-left blocks, so it reads top to bottom.
    """
    mid = width / 2
    def kind(b: _Block) -> str:
        x0, _, x1, _ = b.bbox
        if x1 <= mid + 10:
            return "L"
        if x0 >= mid - 10:
            return "R"
        return "F"
    ordered: list[_Block] = []
    band: list[_Block] = []
    def flush() -> None:
        ordered.extend(sorted((b for b in band if kind(b) == "L"), key=lambda b: b.bbox[1]))
        ordered.extend(sorted((b for b in band if kind(b) == "R"), key=lambda b: b.bbox[1]))
        band.clear()
    for b in sorted(blocks, key=lambda b: (b.bbox[1], b.bbox[0])):
        if kind(b) == "F":
            flush()
            ordered.append(b)
        else:
            band.append(b)
    flush()
    return ordered


def _strip_running_lines(pages: list[list[_Block]], heights: list[float]) -> None:
    """Remove running headers/footers and page numbers (in place).

    A line in the top or bottom 8% of a page is dropped when it is a bare page number, or when the
    same text (digits ignored) recurs in that margin on at least half of the pages (and twice).
    """
    def key(text: str) -> str:
        return re.sub(r"\d+", "#", text.lower()).strip()
    def in_margin(b: _Block, h: float) -> bool:
        return b.bbox[3] < 0.08 * h or b.bbox[1] > 0.92 * h
    counts: Counter[str] = Counter()
    for blocks, h in zip(pages, heights):
        counts.update({key(ln.text) for b in blocks if in_margin(b, h) for ln in b.lines})
    threshold = max(2, len(pages) // 2)
    for blocks, h in zip(pages, heights):
        for b in blocks:
            if in_margin(b, h):
                b.lines = [ln for ln in b.lines
                           if not (_PAGE_NUMBER.match(ln.text) or counts[key(ln.text)] >= threshold)]
        blocks[:] = [b for b in blocks if b.lines]


def _body_size(blocks: list[_Block]) -> float:
    sizes: Counter[float] = Counter()
    for b in blocks:
        for ln in b.lines:
            sizes[round(ln.size, 1)] += len(ln.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


def _is_heading(b: _Block, body: float) -> bool:
    if len(b.lines) > 4:
        return False
    text = " ".join(ln.text for ln in b.lines).strip()
    if not text or len(text) > 100 or len(text.split()) > 14 or text.endswith((".", ",", ";")) and not _NUMBERED_HEADING.match(text):
        return False
    styled = all(ln.bold for ln in b.lines) or b.size >= body + 0.9
    if _NAMED_HEADING.match(text) and (styled or text.isupper() or len(text.split()) <= 3):
        return True
    return styled and bool(_NUMBERED_HEADING.match(text) or text.isupper())


def extract(source: bytes | str | Path, config: IngestConfig | None = None) -> Document:
    """Read a paper PDF into a Document, or raise a typed PDFError with a user-facing message."""
    cfg = config or IngestConfig()
    doc = _open(source, cfg)
    try:
        hidden: list[HiddenSpan] = []
        pages = [_page_blocks(page, i + 1, cfg, hidden) for i, page in enumerate(doc)]
        heights = [page.rect.height for page in doc]
        width = doc[0].rect.width
        n_pages = doc.page_count
        has_images = any(page.get_images(full=False) for page in doc)
        meta_title = (doc.metadata or {}).get("title", "") or ""
        repaired = doc.is_repaired
    finally:
        doc.close()

    n_chars = sum(len(ln.text) for blocks in pages for b in blocks for ln in b.lines)
    if repaired and n_chars < cfg.min_chars_per_page * n_pages:
        raise CorruptPDFError("The PDF is damaged (truncated or corrupt) and too little text could be recovered. "
                              "Try re-downloading or re-exporting it.")
    if n_chars < cfg.min_chars_per_page * n_pages:
        if has_images:
            raise ScannedPDFError(
                "The PDF has no text layer (it looks scanned). Run OCR on it first, or upload the "
                "original PDF from the publisher or arXiv.")
        raise EmptyPDFError("The PDF contains no readable text.")

    _strip_running_lines(pages, heights)
    ordered = [b for blocks in pages for b in _reading_order(blocks, width)]
    body = _body_size(ordered)
    doc = _assemble(ordered, body, n_pages, hidden, cfg, meta_title)
    if repaired:
        doc.warnings.insert(0, "The PDF was damaged and has been repaired; some text may be missing.")
    return doc


def _assemble(blocks: list[_Block], body: float, n_pages: int, hidden: list[HiddenSpan],
              cfg: IngestConfig, meta_title: str) -> Document:
    # Title: the largest text on page 1 (above body size), else the PDF's metadata title.
    first = [b for b in blocks if b.page == 1]
    title = ""
    title_blocks: list[_Block] = []
    if first:
        top = max(first, key=lambda b: b.size)
        if top.size > body + 1.5:
            # A title may span several blocks of the same size, one after another.
            i = blocks.index(top)
            while i < len(blocks) and blocks[i].page == 1 and abs(blocks[i].size - top.size) < 0.6:
                title_blocks.append(blocks[i])
                i += 1
            title = " ".join(b.text for b in title_blocks)
    title = title or meta_title.strip()

    sections: list[Section] = []
    front: list[str] = []  # text before the first heading (authors, affiliations, inline abstract)
    current: Section | None = None
    for b in blocks:
        if any(b is t for t in title_blocks):
            continue
        if _is_heading(b, body):
            current = Section(" ".join(ln.text for ln in b.lines).strip(), "")
            sections.append(current)
            continue
        if current is None:
            front.append(b.text)
        else:
            current.text = f"{current.text}\n\n{b.text}" if current.text else b.text

    abstract = ""
    for s in sections:
        if _ABSTRACT.match(s.heading):
            abstract = (_ABSTRACT.sub("", s.heading) + " " + s.text).strip()
            sections.remove(s)
            break
    else:
        # Inline "Abstract—..." paragraphs (IEEE/ACL styles) in the front matter.
        for para in front:
            if _ABSTRACT.match(para):
                abstract = _ABSTRACT.sub("", para).strip()
                break

    warnings = []
    refs_dropped = False
    if not cfg.keep_references:
        kept = []
        in_refs = False
        for s in sections:
            if _REFERENCES.match(s.heading):
                in_refs, refs_dropped = True, True
                continue
            # Appendices after the references are kept: they start with a lettered or named heading.
            if in_refs and not (re.match(r"^(appendix|appendices|supplementary)", s.heading, re.I)
                                or re.match(r"^[A-H](\.\d+)*\.?\s+[A-Z]", s.heading)):
                continue
            in_refs = False
            kept.append(s)
        sections = kept
    if not sections:
        warnings.append("No section headings were recognised; the text is kept as one block.")
        sections = [Section("", "\n\n".join(front))]
    if hidden:
        pages = sorted({h.page for h in hidden})
        action = "excluded from the model input" if cfg.drop_hidden_text else "KEPT in the model input"
        warnings.append(
            f"Hidden text found on page(s) {', '.join(map(str, pages))} ({len(hidden)} spans, "
            f"{action}); it may be a prompt injection aimed at AI reviewers: "
            + "; ".join(f"p{h.page} [{h.reason}] {h.text[:80]!r}" for h in hidden[:5]))
    return Document(title=title, abstract=abstract, sections=sections, page_count=n_pages,
                    warnings=warnings, hidden_text=hidden, references_dropped=refs_dropped)
