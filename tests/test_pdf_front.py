"""Title and abstract: a journal's masthead is not the title, a table caption is not the abstract."""

import pymupdf

from benchmarks.score_pdf import load_cases
from reviewgpt.ingest import extract

from .pdf_cases import LOREM


def test_masthead_above_the_title_is_not_the_title():
    d = pymupdf.open()
    page = d.new_page()
    page.insert_text((72, 50), "Journal of Statistical Software", fontsize=20, fontname="tibo")
    page.insert_text((72, 66), "May 2024, Volume 109, Issue 3.", fontsize=9, fontname="tiro")
    page.insert_text((72, 120), "Fitting Mixed Models to Long Data", fontsize=17, fontname="tibo")
    page.insert_text((72, 145), "Ada Author", fontsize=11, fontname="tiro")
    page.insert_text((72, 180), "Abstract", fontsize=11, fontname="tibo")
    page.insert_textbox(pymupdf.Rect(72, 186, 540, 300), LOREM * 2, fontsize=10, fontname="tiro")
    page.insert_text((72, 330), "1. Introduction", fontsize=12, fontname="tibo")
    page.insert_textbox(pymupdf.Rect(72, 340, 540, 700), LOREM * 5, fontsize=10, fontname="tiro")
    doc = extract(d.tobytes())
    assert doc.title == "Fitting Mixed Models to Long Data"
    assert "Journal of Statistical Software" in doc.to_text()  # kept as text
    assert doc.abstract.startswith("Deep networks")


def test_table_sheet_caption_is_not_an_abstract():
    d = pymupdf.open()
    page = d.new_page()
    page.insert_text((72, 60), "Supplementary Results Sheet", fontsize=18, fontname="tibo")
    caption = ("Table 1: Accuracy of the three models on the held-out split, averaged over five seeds, with the "
               "standard deviation in brackets and the best result of each row in bold face for the reader.")
    page.insert_textbox(pymupdf.Rect(72, 90, 540, 140), caption, fontsize=10, fontname="tiro")
    for i, row in enumerate(["Model A 81.2 (0.3) 77.9 (0.4)", "Model B 82.5 (0.2) 78.1 (0.5)"]):
        page.insert_text((72, 160 + 14 * i), row, fontsize=10, fontname="tiro")
    doc = extract(d.tobytes())
    assert not doc.abstract.startswith("Table 1")
    assert "Table 1: Accuracy of the three models" in doc.to_text()


def test_real_journal_masthead_and_section_running_heads():
    # nwejm sample article: "North-Western European Journal of Mathematics" and the journal's logo
    # above the title; odd pages carry the current section's name as running head ("Introduction"
    # over pages 3 and 5, "Acknowledgments" over page 13 only, above the heading itself).
    case = next(c for c in load_cases() if c.name == "nwejm-masthead")
    doc = extract(case.pdf)
    assert doc.title == "Article’s Title (English)"
    headings = [s.heading for s in doc.sections if s.heading]
    assert headings.count("Introduction") == 1 and headings.count("Acknowledgments") == 1
    intro = "\n\n".join(s.text for s in doc.sections if s.heading == "Introduction")
    assert "\n\nIntroduction\n\n" not in f"\n\n{intro}\n\n"  # the running head is not a paragraph of it
