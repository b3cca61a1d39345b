"""PDF -> Document with PyMuPDF.

Steps: open (type, size, encryption, pages; junk before `%PDF-` is fine if MuPDF opens it) ->
per page: text spans with style and position, or OCR for a page that is a scanned image ->
drop what a reader cannot see (hidden_text, by rendering) -> layout (layout.py: running
headers/footers by repetition, reading order, paragraphs, headings, captions and footnotes kept
out of sentences) -> title, abstract, sections; references kept or dropped; every loss warned.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pymupdf

from reviewgpt.config import IngestConfig
from reviewgpt.errors import (CorruptPDFError, EmptyPDFError, EncryptedPDFError, NotAPDFError, PDFTooLargeError,
                              ScannedPDFError)
from reviewgpt.ingest import hidden_text as guard
from reviewgpt.ingest.document import Document, HiddenSpan
from reviewgpt.ingest.figures import set_apart_figure_text
from reviewgpt.ingest.layout import (FIGURE_CAPTION, Block, Line, assemble, clean_text, column_of, is_bold, is_italic,
                                     join_lines)

__all__ = ["extract", "join_lines"]

# Text of all kinds, no images (they make "dict" slow and are not needed), ligatures expanded by
# MuPDF, and no clipping to the media box so that text placed off the page reaches the guard.
_FLAGS = (pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES & ~pymupdf.TEXT_MEDIABOX_CLIP
          & ~pymupdf.TEXT_PRESERVE_LIGATURES)
_OCR_FLAGS = pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES & ~pymupdf.TEXT_PRESERVE_LIGATURES
# A page with this much upright text between its header and footer bands is read upright even when
# most of its text runs sideways (figure words): about a caption's worth.
UPRIGHT_BODY_CHARS = 150
# A page mostly covered by one image is a scan; when this share of its text is in an invisible
# render mode, that text is the scan's own OCR layer.
SCAN_COVER = 0.8
LAYER_SHARE = 0.8
TESSERACT_HINT = ("Tesseract OCR is not installed, so scanned pages cannot be read. Install it "
                  "(Debian/Ubuntu: `apt-get install tesseract-ocr`; Hugging Face Spaces: list "
                  "`tesseract-ocr` in packages.txt) or upload a PDF with a text layer.")


def _read_source(source: bytes | str | Path, cfg: IngestConfig) -> bytes:
    if not isinstance(source, (str, Path)):
        return bytes(source)
    path = Path(source)
    if path.is_dir():
        raise NotAPDFError(f"'{path}' is a folder, not a file. Please choose the paper's PDF file.")
    if not path.exists():
        raise NotAPDFError(f"There is no file at '{path}'. Please check the path of the PDF.")
    try:
        size = path.stat().st_size
        if size > cfg.max_bytes:
            raise PDFTooLargeError(_too_big(size, cfg))
        return path.read_bytes()
    except PermissionError as e:
        raise NotAPDFError(f"The file '{path}' cannot be read (permission denied). Check its permissions.") from e
    except OSError as e:
        raise NotAPDFError(f"The file '{path}' cannot be read ({e.strerror or e}).") from e


def _open(data: bytes, cfg: IngestConfig) -> pymupdf.Document:
    if len(data) > cfg.max_bytes:
        raise PDFTooLargeError(_too_big(len(data), cfg))
    if not data:
        raise NotAPDFError("The file is empty (0 bytes). Please upload a PDF of the paper.")
    if b"%PDF-" not in data:
        raise NotAPDFError("This file is not a PDF. Please upload the paper as a PDF file.")
    try:  # MuPDF repairs what it can (see _damage_warning for what that lost)
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as e:  # MuPDF raises its own error types for broken files
        raise CorruptPDFError(f"The PDF is damaged and cannot be read ({e}). "
                              "Try re-downloading or re-exporting it.") from e
    try:
        if doc.needs_pass:
            raise EncryptedPDFError("The PDF is password-protected. Please upload a copy without a password.")
        if doc.page_count == 0:
            if doc.is_repaired:
                cut = (" (the file is cut short: it has no end-of-file marker; was the download complete?)"
                       if b"%%EOF" not in data[-2048:] else "")
                raise CorruptPDFError(f"The PDF is damaged{cut}: no page could be recovered. Try re-downloading or "
                                      "re-exporting it.")
            raise EmptyPDFError("The PDF has no pages.")
        if doc.page_count > cfg.max_pages:
            raise PDFTooLargeError(
                f"The PDF has {doc.page_count} pages; the limit is {cfg.max_pages}. Upload the paper without "
                "long supplementary material.")
    except BaseException:  # a refused PDF must not keep its document (the whole file) in memory
        doc.close()
        raise
    return doc


def _skip_leading_junk(data: bytes) -> tuple[bytes, int]:
    """The file from its `%PDF-` header on, and how many bytes came before it. Writers (mail
    gateways, some web exports) prepend bytes; the PDF's offsets count from the header, so MuPDF's
    repair of the whole file loses text (a quarter of it on a real paper) where this reads all."""
    start = data.find(b"%PDF-", 0, 1024 * 1024)
    return (data[start:], start) if start > 0 else (data, 0)


def _declared_pages(data: bytes) -> int:
    """The page count the file's page tree declares (0 when it is in a compressed object stream)."""
    counts = [int(n) for n in re.findall(rb"/Type\s*/Pages\b[^>]{0,200}?/Count\s+(\d{1,5})", data)]
    counts += [int(n) for n in re.findall(rb"/Count\s+(\d{1,5})[^>]{0,200}?/Type\s*/Pages\b", data)]
    return max(counts, default=0)


def _lost_page(doc: pymupdf.Document, page: pymupdf.Page) -> bool:
    """A page of a repaired file whose content is gone (no content stream could be read)."""
    total = 0
    for xref in page.get_contents():
        try:
            total += len(doc.xref_stream(xref) or b"")
        except Exception:  # MuPDF: the object is missing from the cut file
            pass
    return total == 0


def _damage_warning(data: bytes, n_pages: int, lost: list[int]) -> str:
    """How much a repair lost, as far as the file tells: pages without content, pages declared but
    not found, and whether the file is cut short."""
    cut = b"%%EOF" not in data[-2048:]
    declared = _declared_pages(data)
    missing = max(0, declared - n_pages)
    total = max(declared, n_pages)
    why = " (the file is cut short: it has no end-of-file marker)" if cut else ""
    if not lost and not missing:
        return (f"The PDF was damaged{why} and has been repaired; all {n_pages} pages have content, but some "
                "text may be missing. Re-download or re-export it to be sure.")
    parts = []
    if lost:
        parts.append(f"page(s) {_ranges(lost)} came out empty")
    if missing:
        parts.append(f"{missing} declared page(s) were not found")
    n_lost = len(lost) + missing
    return (f"The PDF is damaged{why}: {n_lost} of its {total} pages ({100 * n_lost / total:.0f}%) could not be "
            f"read ({'; '.join(parts)}), so their text is missing from what the model reads. Re-download or "
            "re-export the PDF.")


def _too_big(n: int, cfg: IngestConfig) -> str:
    return f"The file is {n / 2**20:.1f} MB; the limit is {cfg.max_bytes / 2**20:.0f} MB."


def _image_cover(page: pymupdf.Page) -> float:
    """Share of the page covered by its largest image (a scan covers most of it)."""
    area = abs(page.rect) or 1.0
    best = 0.0
    for info in page.get_image_info():
        best = max(best, abs(pymupdf.Rect(info["bbox"]) & page.rect) / area)
    return best


def _graphics(drawn: list) -> list[tuple[float, float, float, float]]:
    """Boxes of what a page draws other than text (paths, images, shadings), from its get_bboxlog()."""
    return [tuple(r) for kind, r in drawn if kind.startswith(("fill-", "stroke-")) and "text" not in kind]


def _ocr_dict(page: pymupdf.Page, cfg: IngestConfig) -> dict:
    tp = page.get_textpage_ocr(flags=_OCR_FLAGS, language=cfg.ocr_language, dpi=cfg.ocr_dpi, full=True,
                               tessdata=cfg.ocr_tessdata)
    return page.get_text("dict", textpage=tp, flags=_OCR_FLAGS)


class _PageReader:
    """One page's spans -> guarded lines and blocks."""

    def __init__(self, cfg: IngestConfig, without_text: guard.TextRemoved | None) -> None:
        self.cfg = cfg
        self.without_text = without_text
        self.hidden: list[HiddenSpan] = []
        self.rotated_pages: list[int] = []
        self.layer_pages: list[int] = []  # scans whose own OCR text layer was read

    def read(self, page: pymupdf.Page, data: dict, pno: int, check: bool, scan: bool = False,
             ocr: bool = False, drawn: list | None = None) -> list[Block]:
        """`scan`: the page is an image that may carry its own OCR layer; `ocr`: `data` is OCR output
        (ours, or the layer's), whose blocks may hold both columns; `drawn`: the page's
        get_bboxlog(), read once for the guard and the figures."""
        lines = [ln for b in data["blocks"] if b.get("type") == 0 for ln in b["lines"]]
        spans = [(ln, s) for ln in lines for s in ln["spans"] if s["text"].strip()]
        reasons: list[str | None] = [None] * len(spans)
        if check and spans:
            probes = [guard.SpanProbe(tuple(s["bbox"]), s["text"], s["size"], s.get("alpha", 255),
                                      abs(ln["dir"][1]) > 0.7, s.get("color", 0))
                      for ln, s in spans]
            reasons = guard.classify_page(page, self.without_text, probes, self.cfg, drawn)
            if scan:
                reasons = self._ocr_layer(page, probes, reasons, pno)
        dropped = {id(s) for (_, s), why in zip(spans, reasons) if why and self.cfg.drop_hidden_text}
        for (_, s), why in zip(spans, reasons):
            if why:
                self.hidden.append(HiddenSpan(pno, clean_text(s["text"]).strip(), why))
        # Text set sideways: a margin stamp or figure label is dropped; a page mostly set sideways
        # (a landscape table) is read in its own direction.
        def sideways(ln: dict) -> bool:
            return abs(ln["dir"][1]) > 0.2
        n_side = sum(len(s["text"]) for ln in lines if sideways(ln) for s in ln["spans"])
        n_all = sum(len(s["text"]) for ln in lines for s in ln["spans"]) or 1
        # Upright text away from the page's edges (captions, prose: not a running header or page
        # number) means the page is upright with a sideways figure inside, not a landscape page.
        h = page.rect.height
        n_upright_body = sum(len(s["text"]) for ln in lines if not sideways(ln)
                             and 0.1 * h < ln["bbox"][1] < 0.9 * h for s in ln["spans"])
        read_sideways = n_side > 0.5 * n_all and n_upright_body < UPRIGHT_BODY_CHARS
        if read_sideways:
            self.rotated_pages.append(pno)
        blocks = []
        for b in data["blocks"]:
            if b.get("type") != 0:
                continue
            out: list[Line] = []
            for ln in b["lines"]:
                if sideways(ln) != read_sideways:
                    continue
                kept = [s for s in ln["spans"] if id(s) not in dropped]
                text = clean_text(_join_spans(kept)).strip()
                if not text:
                    continue
                vis = [s for s in kept if s["text"].strip()]
                bbox = tuple(ln["bbox"])
                if read_sideways:
                    bbox = _upright(bbox, ln["dir"], page.rect)
                # Bold when most of the line is (a heading may hold a word in another font).
                n_bold = sum(len(s["text"].strip()) for s in vis if is_bold(s["font"], s["flags"]))
                n_italic = sum(len(s["text"].strip()) for s in vis if is_italic(s["font"], s["flags"]))
                size = max(s["size"] for s in vis)
                n_vis = sum(len(s["text"].strip()) for s in vis)
                out.append(Line(text, size, n_bold >= 0.6 * n_vis, bbox, pno, italic=n_italic >= 0.6 * n_vis))
            # OCR puts both columns' lines of a row in one block, alternating: one block per column.
            for group in _column_runs(out, page.rect.width) if ocr else [out]:
                group = _merge_close_on_row(group)
                _mark_row_mates(group)
                if group:
                    x0 = min(ln.bbox[0] for ln in group)
                    blocks.append(Block(pno, (x0, min(ln.bbox[1] for ln in group), max(ln.bbox[2] for ln in group),
                                              max(ln.bbox[3] for ln in group)), group))
        return blocks


    def _ocr_layer(self, page: pymupdf.Page, probes: list[guard.SpanProbe], reasons: list[str | None],
                   pno: int) -> list[str | None]:
        """A scan whose text is (nearly) all an invisible layer carries its own OCR: that layer is
        read where the scan shows printed text under its words (in the writer's order, at no OCR
        cost); a layer word over blank paper stays hidden and reported."""
        invisible = sum(len(p.text) for p, why in zip(probes, reasons) if why == guard.RENDER_MODE)
        if invisible < LAYER_SHARE * sum(len(p.text) for p in probes):
            return reasons
        idx = [i for i, why in enumerate(reasons) if why == guard.RENDER_MODE]
        shown = guard.on_printed_text(page, [probes[i].bbox for i in idx], self.cfg)
        out = list(reasons)
        for i, ok in zip(idx, shown):
            if ok:
                out[i] = None
        self.layer_pages.append(pno)
        return out


def _join_spans(spans: list[dict]) -> str:
    """A line's spans as text. A superscript or subscript (a mark, a footnote number) set apart
    from the next word by a visible gap gets a space ("Θ⋆ with", not "Θ⋆with"): PDFs place that
    gap by position, not by a space character. So does the raised mark that opens a footnote
    ("1 OpenReview publishes...", not "1OpenReview"), which is set against its first word."""
    out = ""
    prev: dict | None = None
    for sp in spans:
        small = prev is not None and min(prev["size"], sp["size"]) <= 0.8 * max(prev["size"], sp["size"])
        note_mark = (prev is not None and out == prev["text"] and len(out.strip()) <= 3 and prev["size"] < sp["size"]
                     and prev["origin"][1] < sp["origin"][1] - 0.15 * sp["size"])
        if (prev is not None and out and not out[-1].isspace() and sp["text"][:1].isalnum() and small
                and (sp["bbox"][0] - prev["bbox"][2] >= 0.12 * max(prev["size"], sp["size"]) or note_mark)):
            out += " "
        out += sp["text"]
        prev = sp
    return out


def _column_runs(lines: list[Line], width: float) -> list[list[Line]]:
    """A block's lines split into the left column's, the right column's and full-width runs
    between them (each in its order), when the block holds lines of both columns."""
    sides = [column_of(ln, width) for ln in lines]
    if not ("L" in sides and "R" in sides):
        return [lines]
    runs: list[list[Line]] = []
    band: dict[str, list[Line]] = {"L": [], "R": []}
    for ln, sd in zip(lines, sides):
        if sd == "F":
            runs.extend(g for g in (band["L"], band["R"]) if g)
            band = {"L": [], "R": []}
            runs.append([ln])
        else:
            band[sd].append(ln)
    runs.extend(g for g in (band["L"], band["R"]) if g)
    return runs


def _merge_close_on_row(lines: list[Line]) -> list[Line]:
    """MuPDF splits a line at a wide space (justified headings): pieces on one row less than
    1.5 em apart are one line again."""
    out: list[Line] = []
    for ln in lines:
        prev = out[-1] if out else None
        if prev is not None:
            overlap = min(prev.bbox[3], ln.bbox[3]) - max(prev.bbox[1], ln.bbox[1])
            gap = ln.bbox[0] - prev.bbox[2]
            if overlap > 0.5 * min(prev.bbox[3] - prev.bbox[1], ln.bbox[3] - ln.bbox[1]) and 0 <= gap < 1.5 * ln.size:
                out[-1] = Line(f"{prev.text} {ln.text}", max(prev.size, ln.size), prev.bold and ln.bold,
                               (prev.bbox[0], min(prev.bbox[1], ln.bbox[1]), ln.bbox[2], max(prev.bbox[3], ln.bbox[3])),
                               ln.page, italic=prev.italic and ln.italic)
                continue
        out.append(ln)
    return out


def _plain(blocks: list[Block]) -> list[Block]:
    """OCR gives no font weight and noisy sizes: its lines all get the page's median size, so
    that only named lines and numbered lines in capitals can become headings (a numbered line in
    mixed case, "2.1 Template Styles" of the scan fixture, stays text: no style tells it apart)."""
    sizes = sorted(ln.size for b in blocks for ln in b.lines)
    if sizes:
        median = sizes[len(sizes) // 2]
        for b in blocks:
            for ln in b.lines:
                ln.size, ln.bold = median, False
    return blocks


def _mark_row_mates(lines: list[Line]) -> None:
    """Lines of one block side by side on one row are table cells (or a run-in heading and its
    text): `gapped`, never a heading. A section number beside its title does not count."""
    label = re.compile(r"(?:\d+(?:\.\d+)*|[A-Z](?:\.\d+)*|[IVX]+)\.?")
    for a in lines:
        for b in lines:
            if a is b or label.fullmatch(a.text) or label.fullmatch(b.text):
                continue
            overlap = min(a.bbox[3], b.bbox[3]) - max(a.bbox[1], b.bbox[1])
            if overlap > 0.5 * min(a.bbox[3] - a.bbox[1], b.bbox[3] - b.bbox[1]) and (
                    a.bbox[2] <= b.bbox[0] or b.bbox[2] <= a.bbox[0]):
                a.gapped = True
                break


def _upright(bbox: tuple, direction: tuple[float, float], rect: pymupdf.Rect) -> tuple:
    """The box as if the page were turned so that text running in `direction` runs left to right."""
    x0, y0, x1, y1 = bbox
    if direction[1] < 0:  # bottom to top: lines follow each other left to right
        return (rect.height - y1, x0, rect.height - y0, x1)
    return (y0, rect.width - x1, y1, rect.width - x0)


PageProgress = Callable[[int, int, bool], None]  # (pages read so far, pages, the next page is scanned: OCR)


def extract(source: bytes | str | Path, config: IngestConfig | None = None,
            on_page: PageProgress | None = None) -> Document:
    """Read a paper PDF into a Document, or raise a typed PDFError with a user-facing message.
    `on_page` is told before each page is read and once at the end (a progress bar: a scanned page is
    OCRed, seconds where a text page takes milliseconds)."""
    cfg = config or IngestConfig()
    data, skipped = _skip_leading_junk(_read_source(source, cfg))
    doc = _open(data, cfg)
    warnings: list[str] = []
    lost_pages: list[int] = []
    without_text = None
    ocr_pages: list[int] = []
    no_ocr_pages: list[int] = []
    try:
        without_text = guard.TextRemoved(data) if cfg.drop_hidden_text or cfg.report_hidden_text else None
        reader = _PageReader(cfg, without_text)
        pages: list[list[Block]] = []
        sizes: list[tuple[float, float]] = []
        page_texts: list[str] = []
        for i, page in enumerate(doc):
            pno = i + 1
            try:
                data_dict = page.get_text("dict", flags=_FLAGS, clip=pymupdf.INFINITE_RECT())
            except Exception as e:
                raise CorruptPDFError(f"Page {pno} of the PDF cannot be read ({e}).") from e
            if doc.is_repaired and _lost_page(doc, page):
                lost_pages.append(pno)
            # The image cover (a scan) is only looked up where it can matter: invisible text (a scan's
            # OCR layer) or little text on the page.
            spans = [s for b in data_dict["blocks"] if b.get("type") == 0 for ln in b["lines"] for s in ln["spans"]]
            maybe_scan = (sum(len(s["text"]) for s in spans) < 4 * cfg.min_chars_per_page
                          or any(s.get("alpha", 255) == 0 for s in spans))
            cover = _image_cover(page) if maybe_scan else 0.0
            scan = cover >= SCAN_COVER
            if on_page is not None:
                on_page(i, doc.page_count, scan)
            drawn = page.get_bboxlog() if without_text is not None else None  # the guard reads it on most pages
            blocks = reader.read(page, data_dict, pno, check=without_text is not None, scan=scan, ocr=scan,
                                 drawn=drawn)
            if reader.layer_pages[-1:] == [pno]:
                blocks = _plain(blocks)
            n_chars = sum(len(ln.text) for b in blocks for ln in b.lines)
            if n_chars < cfg.min_chars_per_page and cover > 0.3:
                try:
                    blocks = _plain(reader.read(page, _ocr_dict(page, cfg), pno, check=False, ocr=True)) or blocks
                    ocr_pages.append(pno)
                    # The scan's own layer, if any, did not lie on its printed text: ours replaces it,
                    # and its words stay reported as hidden.
                    if reader.layer_pages[-1:] == [pno]:
                        reader.layer_pages.pop()
                except Exception:  # PyMuPDF/MuPDF: no Tesseract or no language data
                    no_ocr_pages.append(pno)
            if any(FIGURE_CAPTION.match(b.text) for b in blocks):  # the drawings are read only where a figure is
                blocks = set_apart_figure_text(blocks, _graphics(page.get_bboxlog() if drawn is None else drawn),
                                               (page.rect.width, page.rect.height))
            pages.append(blocks)
            r = page.rect * page.derotation_matrix if page.rotation else page.rect
            sizes.append((abs(r.width), abs(r.height)))
            if page.rotation:
                reader.rotated_pages.append(pno)
            page_texts.append("\n".join(ln.text for b in blocks for ln in b.lines))
        for pno, page in enumerate(doc, start=1):
            for text, why in guard.hidden_sources(page):
                reader.hidden.append(HiddenSpan(pno, clean_text(text), why))
        if doc.get_ocgs():
            for pno, text in guard.hidden_layer_text(data, [p.get_text() for p in doc]):
                reader.hidden.append(HiddenSpan(pno, clean_text(text), guard.HIDDEN_LAYER))
        n_pages = doc.page_count
        if on_page is not None:
            on_page(n_pages, n_pages, False)
        meta_title = clean_text((doc.metadata or {}).get("title", "") or "").strip()
        repaired = doc.is_repaired
    finally:
        doc.close()
        if without_text is not None:
            without_text.close()

    n_chars = sum(len(t) for t in page_texts)
    if no_ocr_pages and n_chars < cfg.min_chars_per_page:
        raise ScannedPDFError("The PDF has no text layer (it looks scanned). " + TESSERACT_HINT)
    if ocr_pages and n_chars < cfg.min_chars_per_page:
        raise ScannedPDFError("The PDF's pages are images (it looks scanned) and OCR found no text in them. "
                              "Upload the original PDF from the publisher or arXiv.")
    if n_chars == 0:
        if repaired:
            raise CorruptPDFError("The PDF is damaged (truncated or corrupt) and no text could be recovered. "
                                  "Try re-downloading or re-exporting it.")
        raise EmptyPDFError("The PDF contains no readable text.")
    if ocr_pages:
        warnings.append(f"{_pages_are(ocr_pages)} scanned; {_its(ocr_pages)} text was read by OCR "
                        "(Tesseract) and may contain recognition errors.")
    if reader.layer_pages:
        warnings.append(f"{_pages_are(reader.layer_pages)} scanned; {_its(reader.layer_pages)} text was read from the "
                        "OCR text layer in the PDF and may contain recognition errors.")
    if no_ocr_pages:
        warnings.append(f"{_pages_are(no_ocr_pages)} scanned and {'was' if len(no_ocr_pages) == 1 else 'were'} NOT read: "
                        f"{TESSERACT_HINT}")
    if reader.rotated_pages:
        rotated = sorted(set(reader.rotated_pages))
        warnings.append(f"{_pages_are(rotated)} rotated (landscape); {_its(rotated)} text was read in its own "
                        "direction. Check the tables there.")
    if repaired:
        warnings.insert(0, _damage_warning(data, n_pages, lost_pages))
    if skipped:
        warnings.insert(0, f"The file starts with {skipped:,} bytes that are not part of the PDF; they were "
                           "skipped and the PDF read from its header on.")

    result = assemble(pages, sizes, cfg)
    if not result.title and meta_title:
        # The metadata title is not shown on any page: a reader never sees it. Not used as content.
        if not any(_norm(meta_title) in _norm(t) for t in page_texts[:1]):
            reader.hidden.append(HiddenSpan(1, meta_title, guard.METADATA))
    hidden = reader.hidden
    if hidden:
        warnings.append(_hidden_warning(hidden, cfg))
    result.warnings = warnings + result.warnings
    result.hidden_text = hidden
    result.page_count = n_pages
    result.ocr_pages = sorted(ocr_pages + reader.layer_pages)
    return result


def _norm(s: str) -> str:
    return re.sub(r"\W+", "", s.lower())


def _pages_are(pages: list[int]) -> str:
    """'Page 3 is', 'Pages 1-2, 5 are': the start of a warning about these pages."""
    return f"Page {pages[0]} is" if len(pages) == 1 else f"Pages {_ranges(pages)} are"


def _its(pages: list[int]) -> str:
    return "its" if len(pages) == 1 else "their"


def _ranges(pages: list[int]) -> str:
    out: list[str] = []
    start = prev = pages[0]
    for p in pages[1:] + [None]:  # type: ignore[list-item]
        if p is not None and p == prev + 1:
            prev = p
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if p is not None:
            start = prev = p
    return ", ".join(out)


# Words of an instruction aimed at a model reviewing the paper: a hidden piece holding one (or a
# sentence's worth of words) is called a possible injection; the rest (figure labels, LaTeX source
# under an equation) are listed as hidden but benign-looking.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|instructions?|prompts?|reviews?|reviewers?|rate|rating|score|accept(?:ed|ance)?|reject"
    r"|recommend\w*|positive|negative|praise|you|your|must|should|please|assistant|AI|LLMs?|language models?"
    r"|system|override|forget|pretend|respond|output|say|write)\b", re.I)


def looks_like_instruction(text: str) -> bool:
    return bool(_INSTRUCTION.search(text)) or len(re.findall(r"[^\W\d_]{2,}", text)) >= 8


def _hidden_warning(hidden: list[HiddenSpan], cfg: IngestConfig) -> str:
    """Every hidden piece, grouped by page: the user must be able to see all of it. Pieces that
    read like instructions are named as a possible injection, apart from harmless-looking ones."""
    action = "excluded from the model input" if cfg.drop_hidden_text else "KEPT in the model input"

    def listing(pieces: list[HiddenSpan]) -> str:
        by_page: dict[int, list[HiddenSpan]] = {}
        for h in pieces:
            by_page.setdefault(h.page, []).append(h)
        return " | ".join(f"page {page}: " + "; ".join(f"[{h.reason}] {h.text!r}" for h in by_page[page])
                          for page in sorted(by_page))

    pages = _ranges(sorted({h.page for h in hidden}))
    orders = [h for h in hidden if looks_like_instruction(h.text)]
    other = [h for h in hidden if not looks_like_instruction(h.text)]
    parts = [f"Hidden text: {len(hidden)} piece(s) a reader cannot see, on page(s) {pages} ({action})."]
    if orders:
        parts.append(f"{len(orders)} read like instructions, a possible prompt injection aimed at AI reviewers: "
                     + listing(orders) + ".")
    if other:
        parts.append(f"{len(other)} look harmless (labels, numbers or typesetting leftovers, no instruction): "
                     + listing(other) + ".")
    return " ".join(parts)
