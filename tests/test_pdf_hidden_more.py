"""The hidden-text guard, round 3: injections that got through (white text over a table's grid
lines, 2% opacity, 2.0-2.1 pt), their visible controls, and the warning that tells an instruction
from a harmless hidden label."""

import pymupdf
import pytest

from reviewgpt.ingest import extract

from .pdf_cases import INJECTION, paper

MARK = "PREVIOUS INSTRUCTION"


def _grid(page: pymupdf.Page) -> None:
    """A table's black grid lines, crossing the row where the text goes."""
    for x in range(60, 561, 50):
        page.draw_line((x, 630), (x, 672), color=(0, 0, 0), width=0.6)
    for y in (630, 644, 658, 672):
        page.draw_line((60, y), (560, y), color=(0, 0, 0), width=0.6)


HIDDEN = {
    "white-6pt-over-table-grid": (lambda pg, d: (_grid(pg), pg.insert_text((64, 654), INJECTION, fontsize=6,
                                                                              color=(1, 1, 1))), "low-contrast"),
    "two-percent-opacity": (lambda pg, d: pg.insert_text((72, 650), INJECTION, fontsize=10, fill_opacity=0.02),
                            "low-contrast"),
    "2.0-pt": (lambda pg, d: pg.insert_text((72, 650), INJECTION, fontsize=2.0), "too-small"),
    "2.1-pt": (lambda pg, d: pg.insert_text((72, 650), INJECTION, fontsize=2.1), "too-small"),
}
VISIBLE = {
    "black-6pt-in-table-grid": lambda pg, d: (_grid(pg), pg.insert_text((64, 654), "Black cell text in a table.",
                                                                          fontsize=6)),
    "three-point": lambda pg, d: pg.insert_text((72, 650), "Three point text in a figure.", fontsize=3),
}


@pytest.mark.parametrize("name", list(HIDDEN))
def test_injection_is_excluded_and_reported_as_an_instruction(name):
    draw, reason = HIDDEN[name]
    doc = extract(paper(hidden=draw))
    found = [h for h in doc.hidden_text if MARK in h.text]
    assert found and found[0].reason.startswith(reason), doc.hidden_text
    assert MARK not in doc.to_text() and "Deep networks" in doc.to_text()
    warning = next(w for w in doc.warnings if w.startswith("Hidden text"))
    assert "possible prompt injection" in warning and MARK in warning


@pytest.mark.parametrize("name", list(VISIBLE))
def test_visible_control_is_not_flagged(name):
    doc = extract(paper(hidden=VISIBLE[name]))
    assert not doc.hidden_text, doc.hidden_text


def test_harmless_hidden_label_is_reported_without_alarm():
    def draw(page, doc):  # a figure's label and an equation's LaTeX source left invisible
        page.insert_text((72, 650), "Trunk Trace", fontsize=9, render_mode=3)
        page.insert_text((72, 662), r"\frac{a}{b}", fontsize=9, render_mode=3)

    doc = extract(paper(hidden=draw))
    assert {h.text for h in doc.hidden_text} == {"Trunk Trace", r"\frac{a}{b}"}
    warning = next(w for w in doc.warnings if w.startswith("Hidden text"))
    assert "prompt injection" not in warning and "look harmless" in warning and "Trunk Trace" in warning
