"""Nothing the reader sees is dropped silently: running lines go, body lines beside numbers stay."""

import pymupdf

from benchmarks.score_pdf import Case, Parsed, dropped_lines, load_cases, norm, parse_ours
from reviewgpt.ingest import extract

from .pdf_cases import LOREM

# Each page's lines differ in words, not only digits (a line repeated at the top of pages, digits
# aside, is a running line).
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]


def _two_column_pages(n: int = 3, label: str | None = None, running: tuple[str, ...] = ()) -> bytes:
    """n two-column pages with their number at the foot; page 2 has a figure in the left column
    whose label `label` sits on the row of the right column's first line, near the top."""
    d = pymupdf.open()
    for p in range(n):
        page = d.new_page()
        for k, text in enumerate(running):  # a running title set on two lines
            page.insert_text((72, 80 + 12 * k), text, fontsize=8)  # the second below the edge band
        top = 100 if running else 60
        left = pymupdf.Rect(72, top, 290, 700)
        if p == 1 and label is not None:
            page.draw_rect(pymupdf.Rect(72, top, 290, 200), color=(0, 0, 0))
            page.insert_text((180, top + 9), label, fontsize=7)
            left = pymupdf.Rect(72, 210, 290, 700)
        page.insert_textbox(left, f"Left column {WORDS[p]}. " + LOREM * 5, fontsize=10)
        first = f"FIRSTLINE{WORDS[p]} of the right column runs on into the next line "
        page.insert_textbox(pymupdf.Rect(320, top, 540, 700), first + LOREM * 5, fontsize=10)
        page.insert_text((300, 770), str(p + 1), fontsize=9)
    return d.tobytes()


def test_body_line_beside_a_figure_label_or_table_cell_number_is_kept():
    for label in ["1", "7"]:  # a figure label, a table cell: bare numbers that are no page number
        text = extract(_two_column_pages(label=label)).to_text()
        for p in range(3):
            assert f"FIRSTLINE{WORDS[p]} of the right column" in text, (label, p)
        assert "\n3\n" not in text and not text.rstrip().endswith("3")  # page numbers still go


def test_sentence_ending_in_the_foot_band_after_a_subscript_is_kept():
    # Elsevier sample, page 2: "...irreducible representation 1Γ+" / "1 of the cubic centered", the
    # second line led by a subscript "1" at the column's foot: it is no header led by a page number.
    case = next(c for c in load_cases() if c.name == "elsevier-5p")
    assert "of the cubic centered" in extract(case.pdf).to_text()


def test_two_line_running_title_goes_on_every_page():
    pdf = _two_column_pages(n=6, running=("Neural Methods for Natural Language", "Processing Notes"))
    text = extract(pdf).to_text()
    assert "Processing Notes" not in text and "Natural Language" not in text
    assert all(f"FIRSTLINE{WORDS[p]} of the right column" in text for p in range(6))


def test_dropped_line_count_sees_a_missing_line():
    case = next(c for c in load_cases() if c.name == "revtex-aps")
    full = parse_ours(case.pdf)
    assert dropped_lines(full, case) == []
    # The same output without one paragraph: its lines are counted, with their page.
    para = max(full.body.split("\n\n"), key=len)
    lost = dropped_lines(Parsed(full.title, full.abstract, full.headings, full.body.replace(para, "")), case)
    assert lost and all(isinstance(p, int) and p >= 1 for p, _ in lost)
    assert all(norm(t) in norm(para) for _, t in lost), lost
    empty = Case("x", case.pdf, case.title, case.abstract, case.headings)
    assert len(dropped_lines(Parsed("", "", [], ""), empty)) > 50


def test_table_numbers_at_the_foot_of_two_pages_are_kept_and_page_numbers_go():
    """revtex-aps sets two tables at the foot of pages 4 and 5, rows at the same heights: their numbers
    ("12537.64", "300.0": the same digit-free shape) recur near the edge but not at the same place, so
    they are body text; the page numbers at the top go."""
    case = next(c for c in load_cases() if c.name == "revtex-aps")
    doc = extract(case.pdf)
    text = doc.to_text()
    for number in ("2.77234", "0.69", "12537.64", "37.66345", "86.37", "300.0", "3.001"):
        assert number in text, number
    lines = text.splitlines()
    assert not any(ln.strip() == str(p) for ln in lines for p in range(2, 8))  # no bare page number left
