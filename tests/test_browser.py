"""A real browser (Debian's Chromium, headless, driven by Playwright) uses the app as a person would.

One app (a tiny model trained to write the empty marker, the local OpenAI-compatible server), one
browser; each test opens its own page. Screenshots go to test-artifacts/.
"""

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from app.settings import AppSettings
from reviewgpt.config import OpenAIConfig
from reviewgpt.format.schema import EMPTY_MARKER, get_schema

from .conftest import EXAMPLE_PDFS, MARKER_PAPER, ROOT, marker_review
from .support.openai_server import API_KEY, Step
from .test_app import start_app

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
STATUS = "document.querySelector('#status').innerText"
FINISHED = f"/Done|failed|Stopped|No verdict|Both reviews done/.test({STATUS})"
RUNNING = f"/Starting|Waiting for the GPU|Writing|judge is/.test({STATUS})"

pytestmark = pytest.mark.browser
TOAST = ".toast-body, [data-testid='toast-body']"


@pytest.fixture(scope="module")
def marker_app(marker_model_dir, openai_server):
    url, demo, service = start_app(AppSettings(
        base_model=str(marker_model_dir), demo=False, max_new_tokens=160,
        openai=OpenAIConfig(api_key=API_KEY, base_url=openai_server.base_url, max_retries=0)))
    yield url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def contexts(browser):
    """One browser context per window size for a module's tests, each test with pages of its own: a page
    opened in a context that has loaded the app before takes its scripts from that context's caches
    (Chromium 1.0-1.2 CPU-s a page load against 2.6-3.6 in a fresh context; this file, the walk and the
    evidence files 195 -> 176 CPU-s). The app keeps nothing in the browser between pages (no cookies or
    storage of its own); a test that needs a second person opens its page with `fresh=True`."""
    made: dict[tuple[int, int], object] = {}
    yield made
    for ctx in made.values():
        ctx.close()


@pytest.fixture
def open_page(browser, contexts, marker_app, openai_server):
    openai_server.reset()
    pages, own = [], []

    def _open(width: int = 1366, height: int = 768, fresh: bool = False):
        """`fresh`: in a context of its own (another person's browser), not the module's shared one."""
        ctx = None if fresh else contexts.get((width, height))
        if ctx is None:
            ctx = browser.new_context(viewport={"width": width, "height": height},
                                      permissions=["clipboard-read", "clipboard-write"])
            if fresh:
                own.append(ctx)
            else:
                contexts[width, height] = ctx
        page = ctx.new_page()
        pages.append(page)
        page.set_default_timeout(90_000)
        page.goto(marker_app)
        page.wait_for_selector("#generate")
        return page

    yield _open
    for page in pages:
        page.close()
    for ctx in own:
        ctx.close()


def shot(page, name: str, full: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full)


def set_number(page, elem_id: str, value, attempts: int = 5) -> None:
    """Type a value into a slider's number box as a person would, until the slider shows it.

    A box inside an accordion that has just opened can be mounted again after the first keystrokes
    (the typed value is then lost), so typing is retried; a slider that never takes the value fails.
    """
    box = page.locator(f"#{elem_id} input[type=number]")
    shows = f"Math.abs(Number(document.querySelector('#{elem_id} input[type=range]').value) - {float(value)}) < 1e-6"
    for attempt in range(attempts):
        box.fill(str(value))
        box.press("Enter")
        box.blur()
        try:
            page.wait_for_function(shows, timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise


def paste_paper(page, text: str) -> None:
    page.get_by_text("Paper text the models read").click()
    page.locator("#paper-text textarea").fill(text)


def advanced(page, temperature: float, seed: int) -> None:
    page.get_by_text("Advanced", exact=True).click()
    set_number(page, "temperature", temperature)
    page.locator("#seed input").fill(str(seed))


def upload(page, path) -> None:
    """As a person does: remove the current file (if any) with the box's Clear button, then choose one."""
    box, clear = page.locator("#pdf"), page.locator("#pdf button[aria-label='Clear']")
    if clear.count():
        shown = box.inner_text()
        clear.click()
        # the empty drop zone back (the old file's name gone) before the new file is chosen, as a person
        # sees it: a file set on the box's input while Clear was still re-drawing it can be dropped
        expect(clear).to_have_count(0)
        expect(box).not_to_have_text(shown)
    page.locator("#pdf input[type=file]").set_input_files(str(path))
    try:
        wait_file_shown(page, Path(path).name)
    except PlaywrightTimeout as e:
        raise AssertionError(f"{Path(path).name} chosen but not shown; the box says {box.inner_text()!r}, "
                             f"{page.locator('#pdf input[type=file]').count()} file inputs; status "
                             f"{page.locator('#status').inner_text()!r}") from e


def wait_file_shown(page, name: str, timeout: float = 60_000) -> None:
    """The file box shows `name`. Gradio draws a long name as its stem and its extension apart (the stem is
    cut with an ellipsis where narrow), with whitespace between them in the text: '2304.02623v1 .pdf' (a
    wait for the name as one string timed out in CI with the file shown and parsed)."""
    page.wait_for_function("(n) => document.querySelector('#pdf').innerText.replace(/\\s+/g, '').includes(n)",
                           arg=re.sub(r"\s+", "", name), timeout=timeout)


def generate_and_wait(page) -> str:
    page.locator("#generate").click()
    page.wait_for_function(RUNNING)  # not the previous run's final status
    page.wait_for_function(FINISHED)
    return page.locator("#status").inner_text()


def show_columns(page) -> None:
    """Open the folded "Each review as written" section (a finished run shows the aligned view instead)."""
    if not page.locator("#local-review").is_visible():
        page.get_by_text("Each review as written").click()
        page.locator("#local-review").wait_for()


def downloads(page) -> dict[str, bytes]:
    """Every file in the Downloads box, fetched as the browser would (name -> content)."""
    out = {}
    for a in page.locator("#downloads a[href]").all():
        href = a.get_attribute("href")
        name = href.split("/")[-1]
        out[name] = page.request.get(href).body()
    return out


def body_of(md: bytes) -> str:
    """A downloaded review without its front matter."""
    text = md.decode()
    return text.split("\n---\n", 1)[1] if text.startswith("---\n") else text


def test_every_header_and_marker_of_the_download_is_visible(open_page, openai_server):
    """Defect 1: the marker used to be eaten (with all after it) by the Markdown renderer."""
    gpt_review = marker_review("4")  # the GPT side writes markers too: both columns are checked
    openai_server.state.script.append(Step(content=gpt_review, match="Potential reasons"))
    page = open_page()
    paste_paper(page, MARKER_PAPER)
    page.get_by_label("4 aspects").check()
    set_number(page, "suppression", 0)
    advanced(page, temperature=1.0, seed=0)
    status = generate_and_wait(page)
    show_columns(page)
    shot(page, "marker-badges.png", full=True)
    files = downloads(page)
    local_md = body_of(next(v for k, v in files.items() if k.endswith("local-review.md")))
    gpt_md = body_of(next(v for k, v in files.items() if k.endswith("gpt-review.md")))
    assert local_md.count(EMPTY_MARKER) >= 2, f"precondition: the sampled review has markers\n{local_md}"
    for column, md in (("local-review", local_md), ("gpt-review", gpt_md)):
        visible = page.locator(f"#{column}").inner_text()
        headers = re.findall(r"^## (.+)$", md, re.M)
        assert headers and all(h.strip() in visible for h in headers), (column, headers, visible)
        assert visible.count(EMPTY_MARKER) == md.count(EMPTY_MARKER), (column, visible)
        badges = page.locator(f"#{column} .empty-badge")
        assert badges.count() == md.count(EMPTY_MARKER) and badges.first.is_visible()
    # the P(empty) shown per aspect are the numbers of the run's marker report (JSON download)
    report = json.loads(next(v for k, v in files.items() if k.endswith("results.json")))["local"]["markers"]
    stats = page.locator("#local-stats").inner_text()
    assert report["strength"] == 0 and f"{report['empty_count']} of 4 aspects empty" in stats
    for a in report["aspects"]:
        if a["p_before"] is not None:
            assert a["p_before"] == a["p_after"]  # s = 0
            assert f"{a['p_before']:.2f} → {a['p_after']:.2f}" in stats
    assert "Done" in status


CLIPPED_HEADERS = """col => {
  // headers a person cannot see without scrolling inside a box: outside an ancestor that clips
  const box = document.getElementById(col);
  const out = [];
  for (const h of box.querySelectorAll('h1,h2,h3')) {
    const r = h.getBoundingClientRect();
    for (let a = h.parentElement; a && a !== document.body; a = a.parentElement) {
      const o = getComputedStyle(a).overflowY;
      if (o === 'visible') continue;
      const b = a.getBoundingClientRect();
      if (r.top < b.top - 1 || r.bottom > b.bottom + 1) { out.push(h.innerText); break; }
    }
  }
  return out;
}"""


def test_a_long_review_is_shown_whole_not_cut_inside_a_box(open_page, openai_server):
    """Walk-through defect: a 560 px box hid the last aspects of a 7-aspect review behind an inner scroll."""
    long_review = "\n\n".join(f"## {c}\n" + "\n".join(f"{i}. **Point {i}**: " + "the method is clear and well argued. " * 6
                                                      for i in range(1, 4))
                              for c in get_schema("7").criteria)
    openai_server.state.script.append(Step(content=long_review))
    page = open_page()
    paste_paper(page, MARKER_PAPER)
    page.get_by_label("7 aspects").check()
    generate_and_wait(page)
    show_columns(page)
    shot(page, "long-review.png", full=True)
    headers = page.locator("#gpt-review h2").all_inner_texts()
    assert len(headers) == 7, headers  # precondition: the long review is on the page
    for column in ("local-review", "gpt-review", "comparison"):  # comparison: the aligned view (issue #26)
        assert page.evaluate(CLIPPED_HEADERS, column) == [], column


def test_new_or_failed_upload_clears_the_old_results_and_stops_the_run(open_page, openai_server, tmp_path):
    """Defect 3: results of the previous paper stayed on the page under the new title."""
    page = open_page()
    paste_paper(page, MARKER_PAPER)
    generate_and_wait(page)
    assert page.locator("#local-review").inner_text().strip() and page.locator("#downloads").is_visible()
    upload(page, EXAMPLE_PDFS[1])
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    for column in ("local-review", "gpt-review", "verdict", "local-stats", "gpt-stats"):
        assert not page.locator(f"#{column}").inner_text().strip(), column
    assert not page.locator("#downloads").is_visible()
    # a run in flight for this paper, then a failed upload: cleared, and the run stops
    openai_server.state.script.append(Step(delay_s=4))
    page.locator("#generate").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Writing')")
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"not really a pdf")
    upload(page, bad)
    page.wait_for_function("document.querySelector('#upload-msg').innerText.includes('not a PDF')")
    time.sleep(5)  # longer than the delayed GPT answer: a run still going would write its results now
    # the columns' section is hidden then: the columns are off the page (not rendered, or not visible)
    for column in ("local-review", "gpt-review"):
        box = page.locator(f"#{column}")
        assert box.count() == 0 or not box.is_visible(), column
    assert not page.locator("#as-written").is_visible()
    assert not page.locator("#verdict").inner_text().strip()
    assert "Done" not in page.locator("#status").inner_text()
    assert not page.locator("#downloads").is_visible()


def test_errors_and_the_start_of_the_reviews_are_where_the_eye_is(open_page, tmp_path):
    """Defect 4: on a 1366x768 screen, errors show as a toast and at the upload box; after a long
    paper is parsed, Generate and the start of both review columns are on screen."""
    page = open_page(1366, 768)
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"not really a pdf")
    upload(page, bad)
    toast = page.locator(TOAST).first
    toast.wait_for()
    page.wait_for_timeout(600)  # let the toast finish sliding in before measuring where it is
    assert "not a PDF" in toast.inner_text()
    msg = page.locator("#upload-msg")
    assert "not a PDF" in msg.inner_text()
    shot(page, "error-1366x768.png")
    for el in (toast, msg):
        box = el.bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 768
    import pymupdf

    long_pdf = tmp_path / "long-paper.pdf"
    doc = pymupdf.open()
    for p in (EXAMPLE_PDFS[0], EXAMPLE_PDFS[2], EXAMPLE_PDFS[0]):
        doc.insert_pdf(pymupdf.open(p))
    doc.save(long_pdf)
    assert doc.page_count >= 39
    page.reload()
    upload(page, long_pdf)
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    assert not page.locator("#upload-msg").inner_text().strip()  # the old error went with the old file
    shot(page, "parsed-long-paper-1366x768.png")
    for sel in ("#generate", "#stop", "#local-title", "#gpt-title"):
        box = page.locator(sel).bounding_box()
        assert box and box["y"] + min(box["height"], 40) <= 768, (sel, box)
    details = page.locator("#paper-info details")
    assert details.count() == 1 and details.get_attribute("open") is None  # dropped sections folded away


def test_labels_say_which_model_and_which_side_failed(open_page, openai_server):
    """Defect 5: user words for the models, systems named in the verdict, no "Done." after a failure."""
    page = open_page()
    title = page.locator("#local-title").inner_text()
    assert title.splitlines()[0].strip() and "·" not in title.splitlines()[0]  # the words first ...
    assert "fp32" in page.locator("#local-title .model-detail").inner_text()  # ... the technical line second
    assert "GPT-4o baseline" in page.locator("#gpt-title").inner_text()
    paste_paper(page, MARKER_PAPER)
    generate_and_wait(page)
    verdict = page.locator("#verdict").inner_text()
    assert "GPT-4o" in verdict and not re.search(r"\b[AB] has\b", verdict)  # the stub says "A has N chars"
    openai_server.state.script.append(Step(status=401, match="Potential reasons"))
    status = generate_and_wait(page)
    shot(page, "gpt-side-failed.png", full=True)
    assert "Done" not in status and "GPT-4o baseline failed" in status and "API key" in status
    assert "GPT-4o baseline failed" in page.locator("#gpt-review").inner_text()
    assert "GPT-4o baseline failed" in page.locator(TOAST).first.inner_text()  # a failure during the run: a toast
    assert page.locator("#local-review").inner_text().strip()  # the other side's review stands
    files = downloads(page)  # complete, not partial: the local review finished
    assert files and not any("PARTIAL" in name for name in files), list(files)
    data = json.loads(next(v for k, v in files.items() if k.endswith("results.json")))
    assert data["status"] == "one_side_failed" and "API key" in data["gpt"]["error"]


def test_a_side_that_is_off_is_said_without_a_toast_after_every_run(browser, marker_model_dir, monkeypatch):
    """Walk-through: with no OpenAI key (a normal setup) every run raised a warning toast that covered the
    controls. The banner says the GPT side is off; a run says it once in its column and status, no toast."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    url, demo, _ = start_app(AppSettings(base_model=str(marker_model_dir), demo=False, max_new_tokens=40,
                                         openai=OpenAIConfig(api_key=None, base_url=None)))
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = ctx.new_page()
        page.set_default_timeout(90_000)
        page.goto(url)
        page.wait_for_selector("#generate")
        assert "OPENAI_API_KEY" in page.locator("body").inner_text()  # the banner
        paste_paper(page, MARKER_PAPER)
        status = generate_and_wait(page)
        page.wait_for_timeout(1000)  # a toast would be on screen by now
        assert "GPT-4o baseline is off" in status and "failed" not in status and "Done" not in status
        assert "is off" in page.locator("#gpt-review").inner_text()
        assert page.locator("#local-review").inner_text().strip()
        assert page.locator(TOAST).count() == 0
    finally:
        ctx.close()
        demo.close()


def test_downloads_are_named_after_the_paper_and_record_the_run(open_page):
    """Defect 6."""
    page = open_page()
    upload(page, EXAMPLE_PDFS[1])
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    advanced(page, temperature=0.8, seed=7)
    generate_and_wait(page)
    files = downloads(page)
    assert files and all(name.startswith("beyond-summarization") for name in files), list(files)
    data = json.loads(next(v for k, v in files.items() if k.endswith("results.json")))
    assert data["paper"]["pdf_sha256"] == hashlib.sha256(EXAMPLE_PDFS[1].read_bytes()).hexdigest()
    assert data["paper"]["title"].startswith("Beyond Summarization")
    assert data["settings"] == {"schema": "7", "suppression": 0.95, "temperature": 0.8, "seed": 7,
                                "max_new_tokens": 160}
    assert data["models"]["local"]["base_model"] and data["models"]["gpt"]["model"] == "gpt-4o"
    assert data["model_input"]["source"] == "parsed" and "dropped_sections" in data["model_input"]
    assert data["started_at"] and data["finished_at"] and data["app_version"] and data["status"] == "done"
    review = next(v for k, v in files.items() if k.endswith("local-review.md")).decode()
    assert review.startswith("---\n") and "pdf_sha256:" in review and "seed: 7" in review
    # issue #26: no absolute local paths; the GPT review's header records the GPT side's settings only
    assert all(b"/tmp/" not in v and str(ROOT).encode() not in v for v in files.values())
    assert data["models"]["local"]["base_model"].endswith("(local folder)")
    gpt_head = next(v for k, v in files.items() if k.endswith("gpt-review.md")).decode().split("\n---\n")[0]
    settings = yaml.safe_load(gpt_head.removeprefix("---\n"))["settings"]
    assert settings == {"schema": "7", "temperature": 0.8}


def second_tab_waits(open_page, openai_server, delay_s: float):
    """Two tabs with the same paper: the first one's run holds the GPU slot (its GPT side answers after
    `delay_s`), the second one's Generate waits in the queue and says so. Returns (first, second)."""
    openai_server.state.script.append(Step(delay_s=delay_s, match="Potential reasons"))
    first, second = open_page(), open_page(fresh=True)  # two people, two browsers
    for page in (first, second):
        paste_paper(page, MARKER_PAPER)
    first.locator("#generate").click()
    first.wait_for_function("document.querySelector('#status').innerText.includes('Writing')")
    second.locator("#generate").click()
    second.wait_for_function("document.querySelector('#status').innerText.includes('Waiting for the GPU')")
    return first, second


def test_a_second_user_sees_that_it_waits_for_the_gpu(open_page, openai_server):
    """Defect 7: two tabs; the second one's run waits in the queue and says so."""
    first, second = second_tab_waits(open_page, openai_server, delay_s=6)
    second.wait_for_function("/queue/i.test(document.body.innerText)")  # Gradio's queue position
    shot(second, "second-user-waiting.png")
    second.wait_for_function("document.querySelector('#status').innerText.includes('Done')", timeout=60_000)
    assert second.locator("#local-review").inner_text().strip()


def test_stop_copy_and_full_aspect_names(open_page, openai_server):
    """Defect 8: Stop with nothing running; a stopped run's partial downloads; copy; whole aspect names."""
    page = open_page()
    assert page.locator("#stop").is_disabled()  # nothing running: nothing to press (test_browser_walk.py)
    paste_paper(page, MARKER_PAPER)
    generate_and_wait(page)
    local = next(v for k, v in downloads(page).items() if k.endswith("local-review.md"))
    show_columns(page)
    page.evaluate("navigator.clipboard.writeText('nothing copied yet')")  # not an earlier test's copy
    page.locator("#local-copy").click()
    clip = page.evaluate("navigator.clipboard.readText()").strip()
    assert clip and (clip == body_of(local).split("\n", 1)[-1].strip() or clip in body_of(local))
    stats = page.locator("#gpt-stats").inner_text()
    assert all(c in stats for c in get_schema("7").criteria)  # long aspect names whole
    openai_server.state.script.append(Step(delay_s=5, match="Potential reasons"))
    page.locator("#generate").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Writing')")
    page.locator("#stop").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Stopped')")
    shot(page, "stopped-run.png", full=True)
    files = downloads(page)
    # GPT (held 5 s) was cut short, and so the run; the local review is marked only if Stop cut it
    # (test_browser_walk.py::test_a_review_finished_before_stop_is_not_marked_partial)
    assert files and all("PARTIAL" in name for name in files if not name.endswith("local-review.md")), list(files)
    data = json.loads(next(v for k, v in files.items() if k.endswith(".json")))
    assert data["status"] == "partial" and data["phase"] == "stopped"


def test_an_edit_of_the_text_is_what_the_models_read_and_is_recorded(open_page, openai_server):
    page = open_page()
    upload(page, EXAMPLE_PDFS[1])
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    page.get_by_text("Paper text the models read").click()
    box = page.locator("#paper-text textarea")
    info = page.locator("#paper-info")
    assert "edited" not in info.inner_text() and "The models read" in info.inner_text()
    box.fill("Title: My corrected title\n\n" + box.input_value().split("\n\n", 1)[1])
    box.blur()  # the line under the title says the edit is what the models read (issue #26)
    page.wait_for_function("document.querySelector('#paper-info').innerText.includes('Your edited text')")
    assert "is what the models read" in info.inner_text() and "Sections left out" not in info.inner_text()
    shot(page, "edited-text.png")
    generate_and_wait(page)
    data = json.loads(next(v for k, v in downloads(page).items() if k.endswith("results.json")))
    assert data["model_input"]["source"] == "edited"
    sent = [r["body"]["messages"][1]["content"] for r in openai_server.state.requests]
    assert sent and all("My corrected title" in s for s in sent)  # GPT-4 and the judge read the edit


def test_a_queued_run_cancelled_before_it_starts_says_so_and_stays_said(open_page, openai_server):
    """Issue #26: Stop on a run still waiting for the GPU said "Cancelled before it started." and the
    line then went blank when the queued event came up."""
    first, second = second_tab_waits(open_page, openai_server, delay_s=5)
    second.locator("#stop").click()
    second.wait_for_function("document.querySelector('#status').innerText.includes('Cancelled before it started')")
    first.wait_for_function(FINISHED, timeout=60_000)  # the slot frees: the cancelled event comes up and does nothing
    time.sleep(2)
    assert second.locator("#status").inner_text().strip() == "Cancelled before it started."
    assert not second.locator("#local-review").inner_text().strip()


def test_a_lone_user_never_sees_waiting_for_the_gpu(open_page):
    """Issue #26: "Waiting for the GPU" flashed before every run of a user alone on the app."""
    page = open_page()
    paste_paper(page, MARKER_PAPER)
    page.evaluate("""() => { window.__said = [];
        new MutationObserver(() => window.__said.push(document.querySelector('#status').innerText))
            .observe(document.querySelector('#status'), {subtree: true, childList: true, characterData: true}); }""")
    generate_and_wait(page)
    said = page.evaluate("window.__said")
    assert said and not any("Waiting for the GPU" in t for t in said), said


def test_each_sides_calibrated_rating_is_in_the_verdict_area_and_the_downloads(open_page, openai_server):
    """Issue #24: the GPT side answers with a real human ICLR 2017 review (a held-out paper): its
    rating, interval and chance of acceptance are the bundled rating model's; the tiny local model's
    text is not an ML review and is said to have no calibrated rating, with no number."""
    from app.rating import rate
    from reviewgpt.rating.data import read_rated_reviews

    human = read_rated_reviews(ROOT / "tests" / "fixtures" / "rating" / "iclr2017")[0].text
    openai_server.state.script.append(Step(content=human, match="Potential reasons"))
    page = open_page()
    paste_paper(page, MARKER_PAPER)
    generate_and_wait(page)
    verdict = page.locator("#verdict").inner_text()
    shot(page, "calibrated-rating.png", full=True)
    expect = rate(human)
    assert expect["calibrated"], expect
    assert "Calibrated rating" in verdict and "calibrated on ICLR 2017 reviews" in verdict
    assert f"{expect['rating']:.1f} (80% interval {expect['low']:.1f}-{expect['high']:.1f})" in verdict
    assert f"{expect['p_accept']:.0%}" in verdict and "chance of acceptance" in verdict and "P(accept)" not in verdict
    files = downloads(page)
    data = json.loads(next(v for k, v in files.items() if k.endswith("results.json")))
    assert data["gpt"]["rating"]["rating"] == expect["rating"]
    local = data["local"]["rating"]
    assert local["calibrated"] is (local["rating"] is not None)
    if not local["calibrated"]:
        assert "no calibrated rating" in verdict and local["reason"] in verdict.replace("\n", " ")
    gpt_head = next(v for k, v in files.items() if k.endswith("gpt-review.md")).decode().split("\n---\n")[0]
    assert yaml.safe_load(gpt_head.removeprefix("---\n"))["calibrated_rating"]["p_accept"] == expect["p_accept"]
