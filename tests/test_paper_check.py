"""A one-page table sheet is said not to look like a paper; real papers of every layout are not (issue #26)."""

from pathlib import Path

import pymupdf
import pytest

from app.paper_check import not_a_paper
from reviewgpt.ingest import extract

from .conftest import EXAMPLE_PDFS

FIXTURES = Path(__file__).parent / "fixtures" / "pdfs"


def table_sheet(path: Path) -> Path:
    """One page of a table: a title line and 30 rows of figures."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Quarterly results by region", fontsize=14)
    for r in range(30):
        page.insert_text((72, 102 + 18 * r), f"Region {r:02d}    {1000 + r * 37:>8}    {2000 + r * 13:>8}    "
                         f"{r * 3.5:>6.1f}%", fontsize=10)
    doc.save(path)
    return path


def test_a_table_sheet_does_not_look_like_a_paper(tmp_path):
    why = not_a_paper(extract(table_sheet(tmp_path / "table.pdf").read_bytes()))
    assert why and "does not look like a research paper" in why and "1 page" in why and "no abstract" in why


@pytest.mark.parametrize("pdf", sorted(FIXTURES.glob("*.pdf")) + list(EXAMPLE_PDFS), ids=lambda p: p.name)
def test_real_papers_look_like_papers(pdf):
    assert not_a_paper(extract(pdf.read_bytes())) is None
