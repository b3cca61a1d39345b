"""The first page of the PDF as a small image (a nicety: the text is what matters)."""

from __future__ import annotations

import io
from pathlib import Path

import pymupdf
from PIL import Image


def first_page(path: str | Path, dpi: int = 60) -> Image.Image | None:
    try:
        with pymupdf.open(path) as doc:
            if not doc.page_count:
                return None
            return Image.open(io.BytesIO(doc[0].get_pixmap(dpi=dpi).tobytes("png")))
    except Exception:  # an unreadable page has already been reported by the parser
        return None
