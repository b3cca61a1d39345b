"""The evidence section in a real browser (issue #23): each review item's mark and page as a person
sees them, a click that opens the page, a pasted review checked, the anchors in the JSON download;
at 1366x768 and at 390 px. Screenshots go to test-artifacts/."""

import json
import re

import pytest

from .support.openai_server import Step
from .conftest import MARKER_PAPER
from .test_browser import (browser, contexts, downloads, generate_and_wait, marker_app, open_page, paste_paper,  # noqa: F401
                           shot, upload)
from .test_grounding import ACROSS_COLUMNS, HYPHENATED, PDF

pytestmark = pytest.mark.browser

GPT_REVIEW = (
    "## Significance and novelty\n"
    f'1. **Accessibility**: A template that "{HYPHENATED}" is useful.\n\n'
    "## Potential reasons for acceptance\n"
    "1. **Clear guide**: The document class for ACM publications is explained well.\n\n"
    "## Potential reasons for rejection\n"
    '1. **Invented claim**: The authors write "our method outperforms every baseline by 40 points".\n\n'
    "## Suggestions for improvement\n"
    f'1. **Spacing**: Explain the manual spacing rules. (quote: "{ACROSS_COLUMNS}")\n'
)
LABEL = "#page-label"


def _items(page) -> list[str]:
    return [t.strip() for t in page.locator("#evidence-list .ev-item").all_inner_texts()]


@pytest.mark.parametrize("width,height", [(1366, 768), (390, 844)])
def test_evidence_marks_pages_and_highlights(open_page, openai_server, width, height):  # noqa: F811
    openai_server.state.script.append(Step(content=GPT_REVIEW, match="Potential reasons"))
    page = open_page(width, height)
    upload(page, PDF)
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    page.wait_for_function(f"document.querySelector('{LABEL}')?.innerText.includes('of 6')")
    page.get_by_label("4 aspects").check()
    generate_and_wait(page)
    page.wait_for_function("document.querySelectorAll('#evidence-list .ev-item').length >= 4")
    items = _items(page)
    gpt = [t for t in items if "Accessibility" in t or "Invented" in t or "Spacing" in t or "Clear guide" in t]
    assert any(t.startswith("✓ Verified quote · p. 1") and "Accessibility" in t for t in gpt), gpt
    assert any(t.startswith("✓ Verified quote · p. 2") and "Spacing" in t for t in gpt), gpt
    invented = next(t for t in gpt if "Invented" in t)
    assert invented.startswith("✗ Not found") and "not in the paper" in invented and "Verified" not in invented
    assert any(t.startswith("≈ Related passage · p.") and "Related passage (not a quote)" in t for t in gpt), gpt
    # the walk-through: a related item's mark read '≈ Related passage · p. 14 · BM25 4.3' (a score no reader knows)
    related = [t for t in items if t.startswith("≈ Related passage")]
    assert related and all(re.match(r"≈ Related passage · p\. \d+ — ", t) for t in related), related
    summary = page.locator("#evidence-list").inner_text()
    assert re.search(r"4 items: 2 verified, 1 related, 1 not found", summary), summary
    assert page.locator("#evidence-page img").is_visible()

    # clicking an item opens its page
    page.locator("#evidence-list .ev-item", has_text="Spacing").click()
    page.wait_for_function(f"document.querySelector('{LABEL}')?.innerText.includes('Page 2 of 6')")
    shot(page, f"evidence-{width}.png")
    page.locator("#evidence-list .ev-item", has_text="Accessibility").click()
    page.wait_for_function(f"document.querySelector('{LABEL}')?.innerText.includes('Page 1 of 6')")
    page.locator("#evidence").screenshot(path=f"test-artifacts/evidence-section-{width}.png")
    # the section fits the viewport's width (nothing to scroll sideways)
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1

    # the downloads carry the anchors
    files = downloads(page)
    data = json.loads(next(v for k, v in files.items() if k.endswith("results.json")))
    ev = data["gpt"]["evidence"]
    assert ev["counts"] == {"verified": 2, "related": 1, "not_found": 1}
    first = ev["items"][0]
    assert first["status"] == "verified" and first["page"] == 1 and first["boxes"] and first["quote"] == HYPHENATED
    assert data["local"]["evidence"] is not None  # the local model's items, anchored by retrieval


def test_a_pasted_review_is_checked_against_the_paper(open_page):  # noqa: F811
    page = open_page()
    upload(page, PDF)
    page.wait_for_function(f"document.querySelector('{LABEL}')?.innerText.includes('of 6')")
    page.get_by_text("Check a review of your own").click()
    page.locator("#pasted-review textarea").fill(
        "## Potential reasons for rejection\n"
        f'1. **Quote**: "{HYPHENATED.replace("necessary", "unnecessary")}"\n')
    page.locator("#check-review").click()
    page.wait_for_function("document.querySelector('#evidence-list').innerText.includes('Your review')")
    item = _items(page)[0]
    assert item.startswith("✗ Not found") and "Closest text (p. 1" in item, item
    page.locator("#evidence-list .ev-item").first.click()
    page.wait_for_function(f"document.querySelector('{LABEL}')?.innerText.includes('Page 1 of 6')")


def test_a_pasted_paper_is_grounded_without_pages(open_page, openai_server):  # noqa: F811
    review = ("## Significance and novelty\n1. **Scope**: They say \"small adapters read long papers\".\n\n"
              "## Potential reasons for acceptance\n<No related terms>\n\n## Potential reasons for rejection\n"
              "1. **Invented**: \"large adapters read short papers\".\n\n## Suggestions for improvement\n<No related terms>\n")
    openai_server.state.script.append(Step(content=review, match="Potential reasons"))
    page = open_page()
    paste_paper(page, MARKER_PAPER)
    page.get_by_label("4 aspects").check()
    generate_and_wait(page)
    page.wait_for_function("document.querySelector('#evidence-list').innerText.includes('Invented')")
    items = _items(page)
    assert any(t.startswith("✓ Verified quote · no page") and "Scope" in t for t in items), items
    assert any(t.startswith("✗ Not found") and "Invented" in t for t in items), items
    # no PDF, no page viewer: not an empty image box with page buttons that do nothing
    assert not page.locator("#page-label").is_visible() and not page.locator("#evidence-page").is_visible()


@pytest.mark.parametrize("width,height", [(1366, 768), (390, 844)])
def test_a_pasted_review_shows_its_calibrated_rating(open_page, width, height):  # noqa: F811
    """Issue #24: every review shown, a pasted one too, gets its rating +/- interval and chance of acceptance,
    labelled; the pasted review was grounded but not rated (no number on the page)."""
    from pathlib import Path

    from app.rating import rate, rating_text
    from reviewgpt.rating.data import read_rated_reviews

    human = read_rated_reviews(Path(__file__).parent / "fixtures" / "rating" / "iclr2017")[0].text
    review = f'## Potential reasons for rejection\n1. **Quote**: "{HYPHENATED}"\n\n{human}'
    expect = rate(review)
    page = open_page(width, height)
    upload(page, PDF)
    page.wait_for_function(f"document.querySelector('{LABEL}')?.innerText.includes('of 6')")
    page.get_by_text("Check a review of your own").click()
    page.locator("#pasted-review textarea").fill(review)
    page.locator("#check-review").click()
    page.wait_for_function("document.querySelector('#evidence-list').innerText.includes('Your review')")
    shown = page.locator("#evidence-list .ev-rating").inner_text()
    assert expect["calibrated"] and rating_text(expect) in shown, shown
    assert re.search(r"calibrated rating \(ICLR 1-10\): \d+\.\d \(80% interval \d+\.\d-\d+\.\d\) · "
                     r"chance of acceptance \d+%", shown), shown
    assert "The rating a reviewer who wrote this review would give (calibrated on ICLR 2017 reviews)." in shown
    page.locator("#evidence-list .ev-rating").scroll_into_view_if_needed()
    shot(page, f"evidence-pasted-rating-{width}.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
