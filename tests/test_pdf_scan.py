"""Scanned two-column pages: read in column order, from the scan's own OCR text layer when it has
one (tests/fixtures/pdfs/scan-two-column-ocr-layer.pdf: page 2 of the ACM sigconf sample, scanned
at 200 dpi and OCRed by Tesseract into an image with an invisible text layer), else by OCR."""

from pathlib import Path

import pymupdf

from benchmarks.score_pdf import norm
from reviewgpt.config import IngestConfig
from reviewgpt.ingest import extract

from .pdf_cases import INJECTION

FIXTURES = Path(__file__).parent / "fixtures" / "pdfs"
SCAN = FIXTURES / "scan-two-column-ocr-layer.pdf"
SOURCE = FIXTURES / "acm-sigconf.pdf"  # the page that was scanned: its second
# Headings of the page, left column then right: the order a reader takes.
IN_ORDER = ["2 TEMPLATE OVERVIEW", "2.1 Template Styles", "2.2 Template Parameters", "3 MODIFICATIONS",
            "4 TYPEFACES", "5 TITLE INFORMATION", "6 AUTHORS AND AFFILIATIONS"]


def _in_column_order(text: str) -> None:
    pos = [text.find(h) for h in IN_ORDER]
    assert all(p >= 0 for p in pos) and pos == sorted(pos), list(zip(IN_ORDER, pos))
    # Each column's lines stay together: a left-column sentence is not cut by a right-column line.
    assert "the “acmart” document class can be used to prepare many different kinds of documentation" in text


def _share_of_page_words(text: str) -> float:
    words = pymupdf.open(SOURCE)[1].get_text().split()
    got = norm(text)
    return sum(norm(w) in got for w in words) / len(words)


def test_scan_with_ocr_layer_is_read_from_the_layer_in_column_order():
    doc = extract(SCAN)
    assert doc.ocr_pages == [1] and not doc.hidden_text, doc.hidden_text
    assert any("OCR text layer" in w for w in doc.warnings), doc.warnings
    text = doc.to_text()
    _in_column_order(text)
    assert _share_of_page_words(text) >= 0.9


def test_layer_words_over_blank_paper_are_hidden_and_reported():
    d = pymupdf.open(SCAN)
    d[0].insert_text((60, 760), INJECTION, fontsize=8, render_mode=3)  # under the last lines: blank paper
    doc = extract(d.tobytes())
    assert INJECTION not in doc.to_text()
    assert any("IGNORE" in h.text for h in doc.hidden_text)
    _in_column_order(doc.to_text())  # the rest of the layer is still read


def test_scan_without_a_layer_is_ocred_in_column_order():
    src = pymupdf.open(SCAN)
    d = pymupdf.open()
    page = d.new_page(width=src[0].rect.width, height=src[0].rect.height)
    page.insert_image(page.rect, pixmap=src[0].get_pixmap(dpi=150, colorspace=pymupdf.csGRAY))
    doc = extract(d.tobytes(), IngestConfig(ocr_dpi=150))
    assert doc.ocr_pages == [1]
    _in_column_order(doc.to_text())


def test_extract_tells_its_progress_page_by_page_and_which_pages_it_ocrs():
    """Issue #26: the page shows progress while a scan is OCRed; extract says, before each page, how far it
    is and whether the next page is a scan, then once at the end."""
    src = pymupdf.open(SCAN)
    d = pymupdf.open()
    d.insert_pdf(pymupdf.open(SOURCE), from_page=0, to_page=0)  # a text page, then a scanned one
    page = d.new_page(width=src[0].rect.width, height=src[0].rect.height)
    page.insert_image(page.rect, pixmap=src[0].get_pixmap(dpi=150, colorspace=pymupdf.csGRAY))
    calls = []
    doc = extract(d.tobytes(), IngestConfig(ocr_dpi=150), on_page=lambda *a: calls.append(a))
    assert doc.ocr_pages == [2]
    assert calls == [(0, 2, False), (1, 2, True), (2, 2, False)]
