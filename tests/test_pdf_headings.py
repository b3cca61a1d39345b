"""Headings: as precise as they are complete (issue #27 targets), on the real papers and built cases."""

import pymupdf

from benchmarks.score_pdf import load_cases, page_words, parse_ours, score
from reviewgpt.ingest import extract

from .pdf_cases import LOREM


def test_heading_precision_and_recall_on_the_real_papers():
    right = wrong = expected = 0
    for case in load_cases():
        r, w, e = score(parse_ours(case.pdf), case, page_words(case))["heading_counts"]
        right, wrong, expected = right + r, wrong + w, expected + e
    assert right / (right + wrong) >= 0.97 and right / expected >= 0.98, (right, wrong, expected)


def _small_caps(page: pymupdf.Page, x: float, y: float, label: str, word: str) -> None:
    """An IEEE conference heading: "I. INTRODUCTION" in small capitals (first letter 10 pt, the rest 8 pt)."""
    head = f"{label} {word[0]}"
    page.insert_text((x, y), head, fontsize=10, fontname="tiro")
    page.insert_text((x + pymupdf.get_text_length(head, "tiro", 10), y), word[1:], fontsize=8, fontname="tiro")


def _ieee_like() -> bytes:
    d = pymupdf.open()
    page = d.new_page()
    page.insert_text((150, 60), "A Conference Paper in the IEEE Style", fontsize=22, fontname="tiro")
    _small_caps(page, 120, 130, "I.", "INTRODUCTION")
    page.insert_textbox(pymupdf.Rect(54, 136, 294, 330), LOREM * 2, fontsize=10, fontname="tiro")
    # A bold run-in paragraph lead that wraps mid-word: a paragraph, not a heading.
    page.insert_text((54, 350), "Misrepresentation or fabrication of informa-", fontsize=10, fontname="tibo")
    page.insert_textbox(pymupdf.Rect(54, 354, 294, 500), "tion in documents is a risk. " + LOREM, fontsize=10,
                        fontname="tiro")
    _small_caps(page, 380, 130, "II.", "METHOD")
    page.insert_text((318, 150), "A. LoRA + Prompt Tuning (LPT)", fontsize=10, fontname="tiit")  # italic subsection
    page.insert_textbox(pymupdf.Rect(318, 156, 558, 330), LOREM * 2, fontsize=10, fontname="tiro")
    # A table: a bold header row over rows of numbers.
    page.insert_text((360, 350), "Table 1: Results on three datasets.", fontsize=9, fontname="tiro")
    page.insert_text((380, 366), "Dataset Result", fontsize=10, fontname="tibo")
    for i, row in enumerate(["Data1 0.12345", "Data2 0.67890", "Data3 0.54321"]):
        page.insert_text((380, 380 + 12 * i), row, fontsize=10, fontname="tiro")
    page.insert_textbox(pymupdf.Rect(318, 430, 558, 700), LOREM * 2, fontsize=10, fontname="tiro")
    return d.tobytes()


def test_ieee_style_headings_and_what_is_no_heading():
    doc = extract(_ieee_like())
    assert [s.heading for s in doc.sections] == ["I. INTRODUCTION", "II. METHOD", "A. LoRA + Prompt Tuning (LPT)"]
    text = doc.to_text()
    assert "Misrepresentation or fabrication of information in documents is a risk." in text
    assert "Dataset Result" in text  # kept as text, not made a section


def test_long_question_heading():
    d = pymupdf.open()
    page = d.new_page()
    page.insert_text((72, 60), "A Paper With Questions", fontsize=18, fontname="hebo")
    page.insert_text((72, 100), "1 Introduction", fontsize=12, fontname="hebo")
    page.insert_textbox(pymupdf.Rect(72, 110, 540, 250), LOREM * 2, fontsize=10)
    question = "How does the number of demonstrations in the prompt change what the model learns?"  # 14 words
    page.insert_text((72, 270), question, fontsize=10, fontname="hebo")
    page.insert_textbox(pymupdf.Rect(72, 280, 540, 500), LOREM * 2, fontsize=10)
    assert [s.heading for s in extract(d.tobytes()).sections] == ["1 Introduction", question]
