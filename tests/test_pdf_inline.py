"""Marks set by position: a superscript followed by a word after a visible gap is not glued to it."""

import pymupdf

from benchmarks.score_pdf import load_cases
from reviewgpt.ingest import extract

from .pdf_cases import LOREM


def test_superscript_followed_by_a_gap_gets_a_space():
    # acmsmall sample, page 1: "BEN TROVATO" "∗" (8 pt, raised) then, 3.2 pt further, "and G.K.M. TOBIN":
    # the gap is a position, not a space character.
    case = next(c for c in load_cases() if c.name == "acm-small-journal")
    text = extract(case.pdf).to_text()
    assert "BEN TROVATO∗ and G.K.M. TOBIN" in text and "TROVATO∗and" not in text


def test_a_mark_set_against_its_word_stays_joined():
    d = pymupdf.open()
    page = d.new_page()
    page.insert_text((72, 72), "A Paper With Marks", fontsize=18, fontname="hebo")
    page.insert_text((72, 120), "Scores x", fontsize=10)
    page.insert_text((72 + pymupdf.get_text_length("Scores x", "helv", 10), 122), "ij", fontsize=7)
    page.insert_textbox(pymupdf.Rect(72, 140, 540, 400), LOREM * 3, fontsize=10)
    assert "Scores xij" in extract(d.tobytes()).to_text()
