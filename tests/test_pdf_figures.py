"""Text drawn inside figures is set apart from the sentences around it (issue #27 item 6)."""

import pymupdf

from benchmarks.score_pdf import load_cases
from reviewgpt.ingest import extract
from reviewgpt.ingest.figures import figure_regions
from reviewgpt.ingest.layout import Block

from .pdf_cases import LOREM


def test_region_is_the_graphics_above_the_caption_and_what_stands_beside_them():
    caption = Block(1, (200.0, 300.0, 400.0, 310.0))  # centered under the figure, one column
    right = (300.0, 150.0, 420.0, 280.0)  # ends just above the caption
    left = (150.0, 200.0, 240.0, 250.0)  # a narrower sub-figure beside it, ending higher
    far_above = (100.0, 20.0, 500.0, 40.0)  # a rule at the top of the page: not part of the figure
    below = (100.0, 400.0, 500.0, 500.0)  # under the caption
    assert figure_regions([caption], [right, left, far_above, below], (612, 792)) == [(150.0, 150.0, 420.0, 300.0)]
    assert figure_regions([caption], [far_above, below], (612, 792)) == []


def test_sub_figure_labels_do_not_open_the_next_paragraph():
    # pmlr-sample page 7: sub-figures "A" and "B" with sub-captions "(a) Image" "(b) Image B" above
    # "Figure 4: ..."; the paragraph below the caption starts "Note that a very narrow sub-float".
    case = next(c for c in load_cases() if c.name == "pmlr-sample")
    paras = extract(case.pdf).to_text().split("\n\n")
    assert any(p.startswith("Note that a very narrow sub-float will leave little space") for p in paras)
    assert not any("Image Note that" in p for p in paras)
    assert "Figure 2: Image Created Using LATEX Code" in paras  # a caption does not run on into figure text


def test_labels_of_a_drawn_diagram_between_two_halves_of_a_sentence():
    d = pymupdf.open()
    page = d.new_page()
    page.insert_text((72, 60), "A Paper With a Diagram", fontsize=18, fontname="hebo")
    page.insert_text((72, 100), "1 Introduction", fontsize=12, fontname="hebo")
    assert page.insert_textbox(pymupdf.Rect(72, 110, 540, 200), LOREM + "The encoder reads the tokens and the",
                               fontsize=10) > 0
    for x, label in ((80, "Token embedder"), (250, "Attention block"), (420, "Output layer")):
        page.draw_rect(pymupdf.Rect(x, 220, x + 110, 250), color=(0, 0, 0))
        page.insert_text((x + 8, 239), label, fontsize=10)
    page.insert_text((72, 280), "Figure 1: The model.", fontsize=9)
    assert page.insert_textbox(pymupdf.Rect(72, 290, 540, 400), "decoder writes the review. " + LOREM, fontsize=10) > 0
    text = extract(d.tobytes()).to_text()
    assert "The encoder reads the tokens and the decoder writes the review." in text
    assert "Token embedder" in text and "Figure 1: The model." in text  # kept, after the paragraph
    assert text.index("decoder writes the review.") < text.index("Token embedder") < text.index("Figure 1")
