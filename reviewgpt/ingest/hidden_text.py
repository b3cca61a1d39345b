"""Hidden-text guard: find text that a human reader cannot see (a known prompt-injection vector).

"Visible" means "changes what a reader sees". The page is rendered twice at `guard_dpi` (where
6 pt text is legible): as it is, and with all its text removed (MuPDF's redaction filter, images
and drawings left alone). A span whose box looks the same in both renders is invisible, whatever
the reason: covered by a shape or image drawn after it, outside a clip path, transparent or nearly
so, in the colour of the image or gradient behind it, hidden by its render mode. Rendering cannot
judge legibility, so text too small or too squeezed to read is caught by its size, and text placed
off the page by its position. Hidden layers and hidden annotations are not drawn and not extracted
by MuPDF; `hidden_sources` reports what they hold so that the user sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymupdf

from reviewgpt.config import IngestConfig

Box = tuple[float, float, float, float]

# Why a span is hidden (HiddenSpan.reason).
OFF_PAGE = "off-page"
RENDER_MODE = "invisible-render-mode"
TINY = "too-small"
SQUEEZED = "too-squeezed"
COVERED = "not-drawn (covered or clipped)"
LOW_CONTRAST = "low-contrast (faint, transparent or the colour of what is behind it)"
HIDDEN_LAYER = "hidden-layer"
HIDDEN_ANNOT = "hidden-annotation"
METADATA = "metadata-only"


# Glyphs narrower than this (points, or 6% of the size) cannot be told apart (horizontal scaling).
MIN_GLYPH_PT = 1.0
# Text under this opacity is a faint trace (an injection at 2% opacity), not something one reads.
MIN_OPACITY = 0.1
# Text in the colour of what is behind it is visible only if it changes this share of its box's pixels
# clearly (0.07 or more on every span of the real papers; 0.002 for white text crossing a table's
# grid lines).
MIN_CHANGED_SHARE = 0.02


@dataclass
class SpanProbe:
    """What the guard needs to know of one text span (from MuPDF's "dict" output)."""
    bbox: Box
    text: str
    size: float
    alpha: int
    sideways: bool = False  # the line runs vertically
    color: int = 0  # sRGB as MuPDF gives it (0xRRGGBB)


class Redacted:
    """The document once more, with one kind of content removed from every page (MuPDF's
    redaction filter): all text (the "without" side of the test), or all images and drawings
    (the text alone). Built lazily, page by page, from the same bytes; the input is never changed."""

    def __init__(self, data: bytes, keep_text: bool = False) -> None:
        self._doc = pymupdf.open(stream=data, filetype="pdf")
        self._keep_text = keep_text

    def page(self, pno: int) -> pymupdf.Page:
        page = self._doc[pno]
        page.add_redact_annot(pymupdf.Rect(-1e5, -1e5, 1e5, 1e5))
        if self._keep_text:
            page.apply_redactions(images=pymupdf.PDF_REDACT_IMAGE_REMOVE,
                                  graphics=pymupdf.PDF_REDACT_LINE_ART_REMOVE_IF_TOUCHED,
                                  text=pymupdf.PDF_REDACT_TEXT_NONE)
        else:
            page.apply_redactions(images=pymupdf.PDF_REDACT_IMAGE_NONE,
                                  graphics=pymupdf.PDF_REDACT_LINE_ART_NONE,
                                  text=pymupdf.PDF_REDACT_TEXT_REMOVE)
        return page

    def close(self) -> None:
        self._doc.close()


class TextRemoved:
    """Both redacted copies that the guard renders against."""

    def __init__(self, data: bytes) -> None:
        self.without_text = Redacted(data)
        self._data = data
        self._text_only: Redacted | None = None

    def text_only(self, pno: int) -> pymupdf.Page:
        if self._text_only is None:
            self._text_only = Redacted(self._data, keep_text=True)
        return self._text_only.page(pno)

    def page(self, pno: int) -> pymupdf.Page:
        return self.without_text.page(pno)

    def close(self) -> None:
        self.without_text.close()
        if self._text_only is not None:
            self._text_only.close()


def _pixels(page: pymupdf.Page, dpi: int) -> np.ndarray:
    pix = page.get_pixmap(dpi=dpi, alpha=False, colorspace=pymupdf.csRGB)
    return np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, pix.n)


def _drawn_under_text(drawn: list[tuple[str, Box]], boxes: list[Box]) -> bool:
    """Does anything but text (paths, images, shadings) touch a text box? MuPDF's log of what the
    page draws (`drawn`: Page.get_bboxlog()) answers without rendering; only then is the
    text-removed page worth rendering."""
    other = np.array([r for kind, r in drawn if "text" not in kind], dtype=np.float32).reshape(-1, 4)
    if not len(other):
        return False
    b = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    touch = ((other[:, None, 0] < b[None, :, 2]) & (b[None, :, 0] < other[:, None, 2])
             & (other[:, None, 1] < b[None, :, 3]) & (b[None, :, 1] < other[:, None, 3]))
    return bool(touch.any())


def _cheap_reason(p: SpanProbe, page_box: Box, cfg: IngestConfig) -> str | None:
    """Reasons that rendering cannot decide (legibility, position)."""
    x0, y0, x1, y1 = p.bbox
    w = min(x1, page_box[2]) - max(x0, page_box[0])
    h = min(y1, page_box[3]) - max(y0, page_box[1])
    area = max((x1 - x0) * (y1 - y0), 1e-6)
    if max(w, 0) * max(h, 0) / area < 0.5:
        return OFF_PAGE
    if p.alpha == 0:
        return RENDER_MODE
    if p.alpha < MIN_OPACITY * 255:  # a trace of ink the rendering may still correlate with the text
        return LOW_CONTRAST
    along, across = (y1 - y0, x1 - x0) if p.sideways else (x1 - x0, y1 - y0)
    if p.size < cfg.min_visible_font_pt or across < cfg.min_visible_font_pt:
        return TINY
    n = len(p.text.strip())
    # Glyphs narrower than this cannot be told apart (horizontal scaling, e.g. "1 Tz").
    if n >= 3 and along / n < max(MIN_GLYPH_PT, 0.06 * p.size):
        return SQUEEZED
    return None


def classify_page(page: pymupdf.Page, without_text: TextRemoved | None, spans: list[SpanProbe],
                  cfg: IngestConfig, drawn: list[tuple[str, Box]] | None = None) -> list[str | None]:
    """Per span: why it is invisible, or None if a reader sees it. `drawn`: the page's
    get_bboxlog(), when the caller has it already."""
    r = page.rect
    # Text boxes are in unrotated page space; the rendering is of the page as shown.
    w, h = (r.height, r.width) if page.rotation % 180 else (r.width, r.height)
    page_box = (0.0, 0.0, w, h)
    # A lone mark ("." "," "1") cannot carry an instruction, and at the guard's resolution a
    # period may change too few pixels to count: not judged.
    judged = [sum(map(str.isalnum, p.text)) >= 2 for p in spans]
    reasons = [_cheap_reason(p, page_box, cfg) if ok else None for p, ok in zip(spans, judged)]
    todo = [i for i, why in enumerate(reasons) if why is None and judged[i]]
    if not todo or without_text is None:
        return reasons
    with_px = _pixels(page, cfg.guard_dpi)
    if _drawn_under_text(page.get_bboxlog() if drawn is None else drawn, [spans[i].bbox for i in todo]):
        without_px = _pixels(without_text.page(page.number), cfg.guard_dpi)
    else:  # nothing but text where the text is: without it the page is blank there
        without_px = np.full_like(with_px, 255)
    if with_px.shape != without_px.shape:  # cannot compare; keep the text (never drop on doubt)
        return reasons
    see = cfg.min_visible_change
    faint = max(see // 8, 3)
    # |with - without| per pixel (largest channel); masks of the pixels changed clearly / faintly.
    absdiff = np.maximum(with_px, without_px) - np.minimum(with_px, without_px)
    diff = np.maximum(np.maximum(absdiff[..., 0], absdiff[..., 1]), absdiff[..., 2])  # (.max(axis=2) is slow)
    clear, faintly = diff >= see, diff >= faint
    scale = cfg.guard_dpi / 72
    H, W = diff.shape
    regions: dict[int, tuple[int, int, int, int]] = {}
    turn = page.rotation_matrix if page.rotation else None
    for i in todo:
        x0, y0, x1, y1 = pymupdf.Rect(spans[i].bbox) * turn if turn is not None else spans[i].bbox
        c0, c1 = max(int(x0 * scale), 0), min(int(np.ceil(x1 * scale)), W)
        r0, r1 = max(int(y0 * scale), 0), min(int(np.ceil(y1 * scale)), H)
        if c1 <= c0 or r1 <= r0:
            reasons[i] = OFF_PAGE
            continue
        # A legible glyph changes at least a couple of pixels clearly; text in the colour of what is
        # behind it, a share of its box (white text over a white table changes only where it crosses
        # the black grid lines).
        n_clear = np.count_nonzero(clear[r0:r1, c0:c1])
        if n_clear >= 2 and (n_clear >= MIN_CHANGED_SHARE * (r1 - r0) * (c1 - c0)
                             or not _same_colour_as_behind(spans[i].color, without_px[r0:r1, c0:c1], see)):
            continue
        if np.count_nonzero(faintly[r0:r1, c0:c1]) >= 2:
            reasons[i] = LOW_CONTRAST
            continue
        # Nothing changed: the text is in the colour of what is behind it, or something hides it.
        if _same_colour_as_behind(spans[i].color, without_px[r0:r1, c0:c1], see):
            reasons[i] = LOW_CONTRAST
        else:
            reasons[i] = COVERED
            regions[i] = (r0, r1, c0, c1)
    if regions:
        _drawn_otherwise(page, without_text, with_px, regions, reasons, cfg)
    return reasons


def _same_colour_as_behind(colour: int, behind_px: np.ndarray, see: int) -> bool:
    behind = np.median(behind_px.reshape(-1, 3), axis=0)
    own = np.array([(colour >> 16) & 255, (colour >> 8) & 255, colour & 255])
    return bool(np.abs(own - behind).max() < see)


def _drawn_otherwise(page: pymupdf.Page, without_text: TextRemoved, with_px: np.ndarray,
                     regions: dict[int, tuple[int, int, int, int]], reasons: list[str | None],
                     cfg: IngestConfig) -> None:
    """Text that the page shows by other means is visible: figure exporters draw glyph outlines
    over an invisible text layer, as OCR tools put invisible text over a scan. Either the page
    looks like the text alone would (correlation), or what covers the text looks like a line of
    text (ink on 3-60% of the box, against the box's own background), not a plain shape."""
    alone = _pixels(without_text.text_only(page.number), cfg.guard_dpi).mean(axis=2)
    shown = with_px.mean(axis=2)
    for i, (r0, r1, c0, c1) in regions.items():
        a = shown[r0:r1, c0:c1]
        if alone.shape == shown.shape:
            b = alone[r0:r1, c0:c1]
            if a.std() > 1 and b.std() > 1 and float(np.corrcoef(a.ravel(), b.ravel())[0, 1]) >= 0.6:
                reasons[i] = None
                continue
        if a.size >= 20:
            rgb = with_px[r0:r1, c0:c1].astype(np.int16)
            away = np.abs(rgb - np.median(rgb.reshape(-1, 3), axis=0)).max(axis=2)
            ink = float((away >= cfg.min_visible_change // 2).mean())
            if 0.03 <= ink <= 0.6:
                reasons[i] = None


def on_printed_text(page: pymupdf.Page, boxes: list[Box], cfg: IngestConfig) -> list[bool]:
    """Per box of a scan's invisible text layer: does the scan show printed text there (ink on
    3-90% of the box, darker than its paper), so that the layer
    transcribes what a reader sees? A layer word over blank paper or a flat area is not shown."""
    px = _pixels(page, cfg.guard_dpi).mean(axis=2)
    scale = cfg.guard_dpi / 72
    H, W = px.shape
    turn = page.rotation_matrix if page.rotation else None
    out = []
    for box in boxes:
        x0, y0, x1, y1 = pymupdf.Rect(box) * turn if turn is not None else box
        c0, c1 = max(int(x0 * scale), 0), min(int(np.ceil(x1 * scale)), W)
        r0, r1 = max(int(y0 * scale), 0), min(int(np.ceil(y1 * scale)), H)
        a = px[r0:r1, c0:c1]
        if a.size < 4:
            out.append(False)
            continue
        paper = np.percentile(a, 90)  # the lightest tenth: the paper behind the letters
        ink = float((paper - a >= cfg.min_visible_change // 2).mean())
        out.append(0.03 <= ink <= 0.9)
    return out


def hidden_sources(page: pymupdf.Page) -> list[tuple[str, str]]:
    """(text, reason) of what this page holds but never shows: hidden annotations."""
    found = []
    for annot in page.annots():
        flags = annot.flags
        hidden = flags & (pymupdf.PDF_ANNOT_IS_HIDDEN | pymupdf.PDF_ANNOT_IS_NO_VIEW | pymupdf.PDF_ANNOT_IS_INVISIBLE)
        text = (annot.info.get("content") or "").strip()
        if hidden and text:
            found.append((text, HIDDEN_ANNOT))
    return found


def hidden_layer_text(data: bytes, visible_text: list[str]) -> list[tuple[int, str]]:
    """(page, line) of text that only shows with every optional-content layer switched on: the
    layers the viewer hides. MuPDF neither draws nor extracts it; it is reported, not read."""
    doc = pymupdf.open(stream=data, filetype="pdf")
    try:
        off = [c["number"] for c in doc.layer_ui_configs() if not c["on"]]
        if not off:
            return []
        for number in off:
            doc.set_layer_ui_config(number, action=0)  # 0: switch on
        found = []
        for pno, page in enumerate(doc):
            seen = set(visible_text[pno].split("\n")) if pno < len(visible_text) else set()
            for line in page.get_text().split("\n"):
                if line.strip() and line not in seen:
                    found.append((pno + 1, line.strip()))
        return found
    finally:
        doc.close()
