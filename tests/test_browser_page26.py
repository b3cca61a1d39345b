"""Issue #26 in a real browser: the two reviews aligned by aspect once a run ends, the session's run
history with two runs side by side, plain words on the controls, Generate off when nothing can run.
At 1366x768 and 390 px; screenshots in test-artifacts/page26/ (git-ignored, as test-artifacts/ is)."""

import json
import re

import pytest

from app.service import ReviewService
from app.settings import AppSettings
from app.ui import build, launch
from reviewgpt.config import OpenAIConfig
from reviewgpt.format.schema import EMPTY_MARKER, get_schema

from .conftest import MARKER_PAPER
from .support.openai_server import Step
from .test_app import _free_port
from .test_browser import (ARTIFACTS, advanced, browser, contexts, downloads, generate_and_wait, marker_app,  # noqa: F401
                           open_page, paste_paper, set_number, upload, TOAST)

pytestmark = pytest.mark.browser
SHOTS = ARTIFACTS / "page26"
CRITERIA = list(get_schema("4").criteria)
# GPT's review: items on every aspect but the third, which is empty
GPT_REVIEW = "\n\n".join(f"## {c}\n" + (EMPTY_MARKER if i == 2 else "\n".join(
    f"{n}. **GPT point {i}.{n}**: " + "a long explanation of the point that wraps over lines. " * (3 if i == 0 else 1)
    for n in (1, 2))) for i, c in enumerate(CRITERIA))


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def boxes(page, selector: str) -> list[dict]:
    return page.evaluate(f"""() => [...document.querySelectorAll({selector!r})].map(e => {{
        const r = e.getBoundingClientRect(); return {{top: r.top + window.scrollY, left: r.left, text: e.innerText}}; }})""")


def visible_text(page, outside: str = "") -> str:
    """The page's rendered text (closed accordions and hidden elements have none), minus `outside`."""
    return page.evaluate("""(outside) => {
        const skip = outside ? document.querySelector(outside) : null;
        if (skip) skip.dataset.hide = skip.style.display, skip.style.display = 'none';
        const t = document.body.innerText;
        if (skip) skip.style.display = skip.dataset.hide;
        return t; }""", outside)


def local_json(page) -> tuple[dict, dict[str, bytes]]:
    files = downloads(page)
    return json.loads(next(v for k, v in files.items() if k.endswith("results.json"))), files


@pytest.mark.parametrize("width,height", [(1366, 768), (390, 844)])
def test_the_two_reviews_are_aligned_by_aspect_once_the_run_ends(open_page, openai_server, width, height):
    openai_server.state.script.append(Step(content=GPT_REVIEW, match="Potential reasons"))
    page = open_page(width, height)
    paste_paper(page, MARKER_PAPER)
    page.get_by_label("4 aspects").check()
    set_number(page, "suppression", 0)
    advanced(page, temperature=1.0, seed=0)
    generate_and_wait(page)
    view = page.locator("#comparison")
    view.wait_for()
    shot(page, f"comparison-{width}.png")
    assert not page.locator("#local-review").is_visible()  # the streamed columns folded away ...
    page.get_by_text("Each review as written").click()  # ... one click from view
    page.locator("#local-review").wait_for()
    page.get_by_text("Each review as written").click()
    data, files = local_json(page)
    aspects = boxes(page, "#comparison .cmp-aspect")
    local = boxes(page, "#comparison .cmp-local.cmp-cell")
    gpt = boxes(page, "#comparison .cmp-gpt.cmp-cell")
    assert [a["text"].strip() for a in aspects] == CRITERIA and len(local) == len(gpt) == 4
    for i in range(4):
        if width > 700:  # one row per aspect: both cells start at the same height, local on the left
            assert abs(local[i]["top"] - gpt[i]["top"]) < 2 and local[i]["left"] < gpt[i]["left"], i
        else:  # stacked by aspect: the aspect, its local cell, its GPT cell, then the next aspect
            nxt = aspects[i + 1]["top"] if i < 3 else float("inf")
            assert aspects[i]["top"] < local[i]["top"] < gpt[i]["top"] < nxt, i
            assert "GPT-4o baseline" in gpt[i]["text"] and local[i]["text"].strip()
    # the page shows what the downloads say: every GPT item, the empty aspect, the local model's chances
    assert EMPTY_MARKER in gpt[2]["text"] and page.locator("#comparison .cmp-gpt .empty-badge").count() == 1
    for n in (1, 2):
        assert f"GPT point 0.{n}" in gpt[0]["text"] and f"GPT point 3.{n}" in gpt[3]["text"]
    local_md = next(v for k, v in files.items() if k.endswith("local-review.md")).decode()
    assert page.locator("#comparison .cmp-local .empty-badge").count() == local_md.count(EMPTY_MARKER)
    for i, m in enumerate(data["local"]["markers"]["aspects"]):
        if m["p_before"] is not None:
            assert f"{m['p_before']:.2f} without → {m['p_after']:.2f} with the slider" in local[i]["text"]
    foot = page.locator("#comparison .cmp-foot").inner_text()
    assert f"{data['gpt']['format']['empty'].__len__()} of 4 aspects empty" in foot
    assert "calibrated rating" in foot and "verified quotes" in foot


@pytest.mark.parametrize("width,height", [(1366, 768), (390, 844)])
def test_two_runs_are_kept_and_shown_side_by_side_with_what_changed(open_page, width, height):
    page = open_page(width, height)
    paste_paper(page, MARKER_PAPER)
    page.get_by_label("4 aspects").check()
    advanced(page, temperature=1.0, seed=0)
    results = {}
    for s in (0, 0.95):
        set_number(page, "suppression", s)
        generate_and_wait(page)
        results[s] = local_json(page)
    names = [set(f) for _, f in results.values()]
    # the names carry the settings, so they are shown whole at any width (Gradio would cut them to one line)
    clipped = page.evaluate("[...document.querySelectorAll('#downloads .filename .stem')]"
                            ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)")
    assert page.locator("#downloads .filename .stem").count() == 4 and clipped == []
    assert all(any("-4aspect-s0-t1-seed0-" in n for n in names[0]) for _ in [0])
    assert any("-4aspect-s0.95-t1-seed0-" in n for n in names[1]) and not names[0] & names[1]
    view = page.locator("#history-compare")
    view.wait_for()
    table = page.locator("#history-table").inner_text()
    assert re.search(r"\b1\b.*\b0\b", table) and "0.95" in table
    text = view.inner_text()
    assert "What changed: Run 1 → Run 2" in text and re.search(r"fewer empty aspects \(slider\)\s+0\s+0\.95", text)
    for number, s in ((1, 0), (2, 0.95)):
        data = results[s][0]
        empty = data["local"]["format"]["empty"]
        assert f"Run {number}: {len(empty)} of 4 aspects empty" in text
        for m in data["local"]["markers"]["aspects"]:
            if m["p_before"] is not None:
                assert f"{m['p_before']:.2f} without → {m['p_after']:.2f} with the slider" in text
    cells_a = boxes(page, "#history-compare .cmp-a.cmp-cell")
    cells_b = boxes(page, "#history-compare .cmp-b.cmp-cell")
    assert len(cells_a) == len(cells_b) == 4
    if width > 700:
        assert all(abs(a["top"] - b["top"]) < 2 for a, b in zip(cells_a, cells_b))
    page.locator("#history").scroll_into_view_if_needed()
    shot(page, f"history-{width}.png")
    # any two: pick run 2 against run 1 the other way round
    page.locator("#history-a input").click()
    page.locator("#history-a li[role=option][aria-label^='Run 2:']").click()
    page.locator("#history-b input").click()
    page.locator("#history-b li[role=option][aria-label^='Run 1:']").click()
    page.wait_for_function("document.querySelector('#history-compare').innerText.includes('Run 2 → Run 1')")


def test_the_controls_speak_plain_words_and_the_formula_is_behind_a_toggle(open_page):
    page = open_page()
    paste_paper(page, MARKER_PAPER)
    page.get_by_label("4 aspects").check()
    generate_and_wait(page)
    page.get_by_text("Each review as written").click()
    page.locator("#local-stats").wait_for()
    shown = visible_text(page)
    assert "Fewer empty aspects" in shown and "discourage the model from writing" in shown
    assert "chance of an empty aspect" in shown
    for developer_words in ("Suppression strength", "P(empty)", "before → after", "(1 - s)", "penalty"):
        assert developer_words not in shown, developer_words
    page.get_by_text("How the slider works").click()
    page.wait_for_function("document.body.innerText.includes('(1 - s) p / (1 - s p)')")
    assert "P(empty)" in page.locator("#slider-details").inner_text()
    assert "P(empty)" not in visible_text(page, outside="#slider-details")


def test_generate_is_off_when_neither_side_can_run(browser, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    service = ReviewService(AppSettings(base_model=str(tmp_path / "no-such-model"), demo=False,
                                        openai=OpenAIConfig(api_key=None, base_url=None)))
    service.load()  # fails: the folder does not exist
    assert service.engine is None and not service.can_run
    demo = build(service)
    port = _free_port()
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = ctx.new_page()
        page.goto(url)
        page.wait_for_selector("#generate")
        assert page.locator("#generate").is_disabled()
        assert "Local model not loaded" in page.locator("#banner").inner_text()
    finally:
        ctx.close()
        demo.close()


def test_the_papers_human_reviews_go_to_the_judge_and_into_the_downloads(open_page, openai_server):
    from .test_human_reviews import FIXTURE, ICLR

    page = open_page()
    paste_paper(page, MARKER_PAPER)
    page.get_by_label("4 aspects").check()
    page.get_by_text("The paper's human reviews").click()
    page.locator("#human-text textarea").fill(f"{ICLR[0]}\n---\n{ICLR[1]}")
    page.wait_for_function("document.querySelector('#human-info').innerText.includes('2 human reviews (pasted')")
    page.locator("#human-file input[type=file]").set_input_files(str(FIXTURE))  # a file wins over the box
    page.wait_for_function(f"document.querySelector('#human-info').innerText.includes('3 human reviews (from {FIXTURE.name}')")
    generate_and_wait(page)
    assert f"compares against 3 human reviews (from {FIXTURE.name}" in page.locator("#verdict").inner_text()
    judge = [r["body"]["messages"][1]["content"] for r in openai_server.state.requests
             if "meta-reviewer" in r["body"]["messages"][0]["content"]]
    assert len(judge) == 2 and all("[Human reviews: ground truth]" in p and ICLR[2] in p for p in judge)
    data, files = local_json(page)
    assert data["human_reviews"]["count"] == 3 and data["human_reviews"]["texts"] == ICLR
    assert "given: true" in next(v for k, v in files.items() if k.endswith("verdict.md")).decode()


def test_an_unreadable_upload_is_an_error_and_a_table_sheet_is_said_not_to_be_a_paper(open_page, tmp_path):
    from .test_paper_check import table_sheet

    page = open_page()
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"not really a pdf")
    upload(page, bad)
    toast = page.locator(TOAST).first
    toast.wait_for()
    box = page.locator("[data-testid='toast-body']").first
    # gradio 6 titles a raised gr.Error "Error" (it shows no custom title); a gr.Warning was titled "Warning"
    assert box.inner_text().startswith("Error") and "not a PDF" in box.inner_text()
    assert "Warning" not in box.inner_text()
    upload(page, table_sheet(tmp_path / "results-table.pdf"))
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    info = page.locator("#paper-info").inner_text()
    assert "does not look like a research paper" in info and "1 page" in info
    shot(page, "table-sheet-warning-1366.png")


def test_a_scanned_upload_shows_which_page_is_ocred_and_the_time_left(open_page, tmp_path):
    """Two scanned pages (about ten seconds of OCR each on 2 cores): the bar says which page is read by OCR
    and, from the second page on, the time left at the pace measured in this upload."""
    import pymupdf

    from .test_pdf_scan import SCAN

    src = pymupdf.open(SCAN)
    scan = pymupdf.open()
    for _ in range(2):
        page = scan.new_page(width=src[0].rect.width, height=src[0].rect.height)
        page.insert_image(page.rect, pixmap=src[0].get_pixmap(dpi=150, colorspace=pymupdf.csGRAY))
    scan.save(tmp_path / "scanned.pdf")
    page = open_page()
    page.evaluate("""() => { window.__said = [];
        new MutationObserver(() => window.__said.push(document.body.innerText))
            .observe(document.body, {subtree: true, childList: true, characterData: true}); }""")
    upload(page, tmp_path / "scanned.pdf")
    # on screen, on the status line: an element there with the words and a height (checked in one go)
    page.wait_for_function("""() => [...document.querySelectorAll('#status *')].some(e =>
        e.childElementCount === 0 && (e.innerText || '').includes('Reading page 2 of 2 by OCR')
        && e.getBoundingClientRect().height > 5)""")
    shot(page, "ocr-progress-1366.png")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    said = "\n".join(page.evaluate("window.__said"))
    assert "Reading page 1 of 2 by OCR" in said
    assert re.search(r"Reading page 2 of 2 by OCR \(a scanned page takes seconds\); about \d+ s left at the pace so far",
                     said)
    assert "read by OCR" in page.locator("#paper-info").inner_text()  # the ingest warning, once read
