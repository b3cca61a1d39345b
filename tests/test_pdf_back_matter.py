"""What follows the references (an appendix with a plain heading) is kept; a page of sideways
figure words under an upright caption is read upright, not called rotated."""

import pymupdf

from reviewgpt.config import IngestConfig
from reviewgpt.ingest import extract

from .pdf_cases import LOREM

REFERENCE = ("[{i}] A. Author and B. Writer. A study of things number {i}. In Proceedings of the Conference on "
             "Methods, pages {i}0-{i}9, 20{i:02d}.")
CAPTION = ("Figure 3: An example of the attention mechanism following long-distance dependencies in the "
           "encoder self-attention in layer 5 of 6. Many of the attention heads attend to a distant word.")
FIGURE_WORDS = ["It", "is", "in", "this", "spirit", "that", "a", "majority", "of", "American", "governments",
                "have", "passed", "new", "laws", "since", "2009", "making", "the", "registration", "or",
                "voting", "process", "more", "difficult", "<EOS>", "<pad>"]


def _paper_with_appendix() -> bytes:
    d = pymupdf.open()
    page = d.new_page()
    page.insert_text((72, 72), "A Paper With an Appendix", fontsize=18, fontname="hebo")
    page.insert_text((72, 110), "1 Introduction", fontsize=12, fontname="hebo")
    page.insert_textbox(pymupdf.Rect(72, 120, 540, 700), LOREM * 6, fontsize=10)
    page = d.new_page()
    page.insert_text((72, 72), "References", fontsize=12, fontname="hebo")
    page.insert_textbox(pymupdf.Rect(72, 85, 540, 720), "\n".join(REFERENCE.format(i=i) for i in range(1, 16)),
                        fontsize=9)
    page = d.new_page()  # the appendix: a plain, unnumbered heading on its own page
    page.insert_text((72, 72), "Attention Visualizations", fontsize=12, fontname="hebo")
    page.insert_textbox(pymupdf.Rect(72, 85, 540, 200), "APPENDIXPROSE shows what the heads attend to. " + LOREM * 2,
                        fontsize=10)
    page = d.new_page()  # a figure of sideways words with its caption upright below
    for col in range(8):
        for row, word in enumerate(FIGURE_WORDS):
            page.insert_text((90 + 55 * col, 620 - 18 * row), word, fontsize=8, rotate=90)
    page.insert_textbox(pymupdf.Rect(72, 640, 540, 700), CAPTION, fontsize=10)
    return d.tobytes()


def test_appendix_after_the_references_is_kept_and_the_references_dropped():
    doc = extract(_paper_with_appendix())
    headings = [s.heading for s in doc.sections]
    assert doc.references_dropped and "References" not in headings
    assert "Attention Visualizations" in headings
    text = doc.to_text()
    assert "APPENDIXPROSE shows what the heads attend to." in text
    assert "A study of things number 3" not in text
    kept = extract(_paper_with_appendix(), IngestConfig(keep_references=True)).to_text()
    assert "A study of things number 3" in kept


def test_sideways_figure_words_do_not_make_a_page_rotated_and_its_caption_is_kept():
    doc = extract(_paper_with_appendix())
    assert not any("rotated" in w for w in doc.warnings), doc.warnings
    assert "Figure 3: An example of the attention mechanism" in doc.to_text()
