"""The paper with its evidence drawn on it: highlight annotations on a copy of the PDF (PyMuPDF),
and a page of that copy as an image for the page's viewer."""

from __future__ import annotations

from pathlib import Path

import pymupdf

from reviewgpt.grounding.evidence import Evidence

# RGB 0..1: verified quotes green, related passages yellow, the closest text to a quote not found red
COLORS = {"verified": (0.45, 0.85, 0.45), "related": (1.0, 0.85, 0.2), "not_found": (1.0, 0.55, 0.55)}
NOTES = {"verified": "verified quote", "related": "related passage (no quote)",
         "not_found": "closest text to a quote NOT found in the paper"}


def annotate(pdf: str | Path | bytes, evidence: list[tuple[str, Evidence]], out: str | Path) -> Path:
    """Write a copy of the PDF with one highlight per evidence box; each says who wrote which item.

    evidence: (review name, evidence) pairs, e.g. ("GPT-4", ev)."""
    doc = pymupdf.open(stream=pdf, filetype="pdf") if isinstance(pdf, bytes) else pymupdf.open(pdf)
    try:
        for who, ev in evidence:
            for box in ev.boxes:
                page = doc[box.page - 1]
                # the word boxes are in the unrotated page's space; annotations want that space too
                annot = page.add_highlight_annot(pymupdf.Rect(box.rect))
                annot.set_colors(stroke=COLORS[ev.status])
                annot.set_info(title=who, content=f"{NOTES[ev.status]}: {ev.aspect}, item {ev.item}"
                                                  + (f" ({ev.title})" if ev.title else ""))
                annot.update()
        out = Path(out)
        doc.save(out, garbage=1, deflate=True)
    finally:
        doc.close()
    return out


def render_page(pdf: str | Path, page: int, dpi: int = 110) -> bytes:
    """One page (1-based) of a PDF as PNG bytes, its annotations drawn."""
    with pymupdf.open(pdf) as doc:
        page = max(1, min(page, doc.page_count))
        return doc[page - 1].get_pixmap(dpi=dpi, annots=True).tobytes("png")
