"""Figure text inside body paragraphs (issue #27 item 6): how many lines drawn inside a figure end up
in a paragraph of the body text, between the two halves of a sentence or glued to one.

    python -m benchmarks.figure_text PDF...           # e.g. ../shared/pdfs/*.pdf tests/fixtures/pdfs/*.pdf
    python -m benchmarks.figure_text --show PDF...    # and list each line found inside a paragraph

A figure is found independently of the parser: an image or one of PyMuPDF's own clusters of vector
drawings (`Page.cluster_drawings`) with a figure caption ("Fig. 3", "Figure 3") starting at most
80 pt below it, overlapping it horizontally. Its lines are the horizontal text lines inside it (or
between it and its caption), with at least 4 characters and 2 letters. A body line is a horizontal
line of four words or more outside every figure. A figure line counts as "in the body" when the
parser's output has it (case and spacing as on the page) inside a paragraph that also holds a body
line of the same page (a caption is not such a paragraph): figure text mixed into the prose instead
of set apart after it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pymupdf

from reviewgpt.config import IngestConfig
from reviewgpt.ingest import extract

_CAPTION = re.compile(r"^\s*(?:figure|fig\.)\s*\d+", re.I)


def _space(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def figure_regions(page: pymupdf.Page, lines: list[tuple[pymupdf.Rect, str]]) -> list[pymupdf.Rect]:
    """Images and drawing clusters with a figure caption just below them, each grown down to its
    caption (axis titles sit between a plot and its caption)."""
    shapes = [pymupdf.Rect(i["bbox"]) for i in page.get_image_info()]
    try:
        shapes += list(page.cluster_drawings())
    except Exception:  # PyMuPDF: a page whose drawings it cannot cluster
        pass
    out = []
    for r in shapes:
        if r.width < 30 or r.height < 20 or abs(r) > 0.8 * abs(page.rect):
            continue
        below = [bb for bb, t in lines if _CAPTION.match(t) and r.y1 - 2 <= bb.y0 <= r.y1 + 80
                 and min(r.x1, bb.x1) - max(r.x0, bb.x0) > 0]
        if below:
            out.append(pymupdf.Rect(r.x0, r.y0, r.x1, min(bb.y0 for bb in below)))
    return out


def count(path: Path, show: bool = False) -> tuple[int, int]:
    """(figure lines, figure lines inside body paragraphs) for one PDF."""
    doc = extract(path, IngestConfig(keep_references=True))
    paragraphs = [_space(p) for s in doc.sections for p in s.text.split("\n\n")] + [_space(doc.abstract)]
    pdf = pymupdf.open(path)
    n_fig = n_mixed = 0
    for page in pdf:
        lines = []
        for b in page.get_text("dict", flags=pymupdf.TEXTFLAGS_TEXT)["blocks"]:
            for ln in b.get("lines", []):
                if abs(ln["dir"][1]) < 0.2:
                    lines.append((pymupdf.Rect(ln["bbox"]), _space("".join(s["text"] for s in ln["spans"]))))
        regions = figure_regions(page, lines)
        inside = [x for x in lines if any(r.intersects(x[0]) and (x[0] & r).get_area() >= 0.6 * x[0].get_area()
                                          for r in regions)]
        fig = [t for _, t in inside if len(t) >= 4 and len(re.findall(r"[^\W\d_]", t)) >= 2 and not _CAPTION.match(t)]
        inside_ids = {id(x) for x in inside}
        body = [t for x in lines if id(x) not in inside_ids
                for t in [x[1]] if len(re.findall(r"[^\W\d_]{2,}", t)) >= 4]
        for t in fig:
            n_fig += 1
            hit = next((p for p in paragraphs
                        if t in p and not _CAPTION.match(p) and any(bt in p for bt in body)), None)
            if hit is not None:
                n_mixed += 1
                if show:
                    i = hit.find(t)
                    print(f"    page {page.number + 1}: {t!r} in ...{hit[max(0, i - 60):i + len(t) + 60]!r}")
    return n_fig, n_mixed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pdfs", nargs="+", type=Path)
    ap.add_argument("--show", action="store_true")
    args = ap.parse_args()
    total_fig = total_mixed = 0
    print("| PDF | figure lines | inside body paragraphs |")
    print("|---|---|---|")
    for path in args.pdfs:
        n_fig, n_mixed = count(path, args.show)
        total_fig, total_mixed = total_fig + n_fig, total_mixed + n_mixed
        print(f"| {path.name} | {n_fig} | {n_mixed} |")
    print(f"total: {total_mixed} of {total_fig} figure lines inside body paragraphs")


if __name__ == "__main__":
    main()
