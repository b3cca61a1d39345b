"""Hidden-text guard: find text a human reader cannot see (a known prompt-injection vector).

A span is hidden when any of these holds:
- invisible render mode (PDF text mode 3; PyMuPDF reports alpha 0), or fully transparent;
- font size below `min_visible_font_pt` (~2 pt is unreadable when printed);
- its colour is within `min_contrast` of the background under it (the topmost filled vector
  shape containing it, else the white page);
- it lies outside the page's visible area.
"""

from __future__ import annotations

from typing import Any

import pymupdf

from reviewgpt.config import IngestConfig

RGB = tuple[float, float, float]
WHITE: RGB = (1.0, 1.0, 1.0)


def _rgb(color: int) -> RGB:
    return ((color >> 16) & 255) / 255, ((color >> 8) & 255) / 255, (color & 255) / 255


Box = tuple[float, float, float, float]


class page_fills:
    """Filled shapes of a page as plain tuples (pymupdf.Rect arithmetic is slow in bulk), read
    lazily: most pages never need them."""

    def __init__(self, page: pymupdf.Page) -> None:
        self._page = page
        self._fills: list[tuple[Box, RGB]] | None = None

    def background_at(self, box: Box) -> RGB:
        if self._fills is None:
            self._fills = []
            for d in self._page.get_drawings():
                fill = d.get("fill")
                r = d["rect"]
                if fill is not None and (d.get("fill_opacity") or 1.0) > 0.5 and r.width > 1 and r.height > 1:
                    self._fills.append(((r.x0, r.y0, r.x1, r.y1), tuple(fill[:3])))  # type: ignore[arg-type]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        for (x0, y0, x1, y1), color in reversed(self._fills):  # drawn later = on top
            if x0 <= cx <= x1 and y0 <= cy <= y1:
                return color
        return WHITE


def _distance(a: RGB, b: RGB) -> float:
    return max(abs(x - y) for x, y in zip(a, b))


def _visible_fraction(box: Box, page: Box) -> float:
    w = min(box[2], page[2]) - max(box[0], page[0])
    h = min(box[3], page[3]) - max(box[1], page[1])
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
    return max(w, 0) * max(h, 0) / area


def classify_hidden(span: dict[str, Any], page_box: Box, fills: page_fills, cfg: IngestConfig) -> str | None:
    """Why the span is invisible to a reader, or None if it is visible."""
    if span.get("alpha", 255) == 0:
        return "invisible-render-mode"
    if span["size"] < cfg.min_visible_font_pt:
        return "tiny-font"
    box = tuple(span["bbox"])
    if _visible_fraction(box, page_box) < 0.5:  # type: ignore[arg-type]
        return "off-page"
    if _distance(_rgb(span["color"]), fills.background_at(box)) < cfg.min_contrast:  # type: ignore[arg-type]
        return "background-colour"
    return None
