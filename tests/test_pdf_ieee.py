"""IEEEtran papers, real LaTeX output (tests/fixtures/pdfs/ieee-src, built with pdflatex): headings,
author blocks, and nothing inserted between the two halves of a sentence (issue #27 items 4 and 6)."""

from pathlib import Path

import pytest

from reviewgpt.ingest import extract

PDFS = Path(__file__).parent / "fixtures" / "pdfs"
HEADINGS = ["I. INTRODUCTION", "II. RELATED WORK", "III. METHOD", "A. Problem Setup", "B. LoRA + Prompt Tuning (LPT)",
            "C. How does the number of demonstrations in the prompt change what the model learns?",
            "IV. EXPERIMENTS", "V. CONCLUSION"]


@pytest.fixture(scope="module", params=["ieee-conference", "ieee-journal"])
def doc(request):
    return extract(PDFS / f"{request.param}.pdf")


def paragraphs(doc) -> list[str]:
    return [p for s in doc.sections for p in s.text.split("\n\n")]


def test_roman_numbered_small_caps_and_italic_lettered_headings(doc):
    assert [s.heading for s in doc.sections if s.heading] == HEADINGS  # references dropped by default
    assert doc.title == "Parameter-Efficient Adapters for Review Generation"
    assert doc.abstract.startswith("We compare low-rank adapters")


def test_sentence_runs_on_past_the_footnote_and_the_figure(doc):
    # Column 1 ends "...trained on the reviews of a few", the footnote sits below it, the figure
    # (boxes and labels drawn with LaTeX's picture environment) tops column 2, then "thousand papers."
    paras = paragraphs(doc)
    sentence = next(p for p in paras if p.startswith("Automatic review generation"))
    assert "reviews of a few thousand papers. Early systems" in sentence
    for label in ("Input tokens", "Frozen encoder", "Soft prompt", "Low-rank update", "OpenReview"):
        assert label not in sentence
    # Kept, after the paragraph: the footnote, the figure's own text, then its caption.
    after = paras[paras.index(sentence) + 1:]
    assert any(p.startswith("1 OpenReview publishes the reviews") for p in after)  # the mark is not glued
    labels = next(i for i, p in enumerate(after) if p.startswith("Input tokens Frozen encoder Review head"))
    caption = next(i for i, p in enumerate(after) if p.startswith("Fig. 1. The combined adapter"))
    assert labels < caption


def test_bold_run_in_lead_broken_mid_word_stays_in_its_paragraph(doc):
    # "The existing human evaluation setups lack standardiza-" / "tion. Each study recruits ..." (bold lead)
    assert any(p.startswith("The existing human evaluation setups lack standardization. Each study recruits")
               for p in paragraphs(doc))


def test_list_items_and_the_text_after_them(doc):
    paras = paragraphs(doc)
    assert "• a release of the training scripts and the evaluation data." in paras
    assert any(p.startswith("The rest of the paper is organised as follows.") for p in paras)


def test_ieee_table_caption_is_set_apart(doc):
    assert any(p.startswith("TABLE I WIN RATE AGAINST THE HUMAN REVIEWS") for p in paragraphs(doc))


def test_conference_author_blocks_side_by_side_are_read_one_after_the_other():
    doc = extract(PDFS / "ieee-conference.pdf")
    front = doc.sections[0]
    assert front.heading == ""
    text = front.text.replace("\n\n", " ")
    assert text.index("Ada Lovelace") < text.index("ada@example.org") < text.index("Alan Turing") \
        < text.index("alan@example.org")
    assert not any("Turing" in s.heading or "Mathematics" in s.heading for s in doc.sections)


def test_journal_drop_cap_and_running_header():
    doc = extract(PDFS / "ieee-journal.pdf")
    intro = next(s for s in doc.sections if s.heading == "I. INTRODUCTION")
    assert intro.text.startswith("PARAMETER-EFFICIENT fine-tuning adapts a large language model")
    assert "CLASS FILES" not in doc.to_text()
    # The notes at the foot of column 1 stay separate notes (affiliation, dates, footnote 1).
    paras = paragraphs(doc)
    assert any(p.startswith("A. Lovelace is with the Department") and p.endswith("ada@example.org).") for p in paras)
    assert "Manuscript received April 19, 2024; revised August 16, 2024." in paras


def test_section_and_italic_subsection_in_one_block_are_two_headings():
    # An earlier build of ieee-journal.pdf had MuPDF put "III. METHOD" (small capitals) and the italic
    # "A. Problem Setup" just below it into one block; built here with the same fonts and spacing.
    import pymupdf

    from .pdf_cases import LOREM

    d = pymupdf.open()
    page = d.new_page()
    page.insert_text((150, 60), "A Paper in the IEEE Journal Style", fontsize=22, fontname="tiro")
    page.insert_text((72, 100), "I. INTRODUCTION", fontsize=10, fontname="tiro")
    page.insert_textbox(pymupdf.Rect(72, 106, 540, 200), LOREM * 2, fontsize=10, fontname="tiro")
    page.insert_text((250, 220), "III. M", fontsize=10, fontname="tiro")
    page.insert_text((250 + pymupdf.get_text_length("III. M", "tiro", 10), 220), "ETHOD", fontsize=8, fontname="tiro")
    page.insert_text((72, 235), "A. Problem Setup", fontsize=10, fontname="tiit")
    page.insert_textbox(pymupdf.Rect(72, 241, 540, 400), LOREM * 2, fontsize=10, fontname="tiro")
    texts = [" ".join("".join(s["text"] for s in ln["spans"]) for ln in b["lines"])
             for b in page.get_text("dict")["blocks"]]
    assert "III. METHOD A. Problem Setup" in texts  # one block, as MuPDF read the earlier build
    doc = extract(d.tobytes())
    assert [s.heading for s in doc.sections if s.heading] == ["I. INTRODUCTION", "III. METHOD", "A. Problem Setup"]
