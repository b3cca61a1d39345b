"""Damaged files: text is read from the PDF's header on, and what a repair loses is said in figures."""

import os

import pytest

from reviewgpt.errors import CorruptPDFError
from reviewgpt.ingest import extract

from .conftest import EXAMPLE_PDFS

CITESEE = next(p for p in EXAMPLE_PDFS if p.name == "2302.07302v1.pdf")
PAPERMAGE = next(p for p in EXAMPLE_PDFS if p.name == "papermage.pdf")


def test_junk_before_the_header_loses_no_text():
    # MuPDF's repair of the whole file read 72% of this paper's text under a generic warning.
    data = CITESEE.read_bytes()
    clean = extract(data)
    doc = extract(os.urandom(2000) + data)
    assert doc.to_text() == clean.to_text()
    assert any("2,000 bytes" in w and "skipped" in w for w in doc.warnings), doc.warnings
    assert not any("damaged" in w for w in doc.warnings)


def test_truncated_file_says_which_pages_are_lost():
    data = PAPERMAGE.read_bytes()
    doc = extract(data[: len(data) // 2])
    warning = next(w for w in doc.warnings if "damaged" in w)
    assert "cut short" in warning and "10 of its 13 pages" in warning and "4-13" in warning, warning
    assert doc.title and len(doc.to_text()) < len(extract(data).to_text())


def test_file_cut_before_any_page_is_an_error_that_says_so():
    data = PAPERMAGE.read_bytes()
    with pytest.raises(CorruptPDFError, match="cut short"):
        extract(data[: len(data) // 3])
