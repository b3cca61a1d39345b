"""The final walk-through of issue #26 at 1366x768 and 390x844, in a real browser: what it found and what
each fix shows. The run pickers' labels end before their arrow and every run setting is on a phone's
screen; Stop is off unless a run is queued or streaming; Generate is off without paper text (after a
failed upload too, which also shows no model lines); no server address on the page; the calibrated
rating in plain words. Screenshots in test-artifacts/walk/ (git-ignored)."""

import re
import threading

import pymupdf
import pytest
from playwright.sync_api import expect

import app.ui
from app.service import ReviewService
from app.ui import START_HINT

from .conftest import EXAMPLE_PDFS, FIXTURES, MARKER_PAPER
from .support.openai_server import Step
from .test_browser import (ARTIFACTS, FINISHED, browser, contexts, generate_and_wait, marker_app, open_page,  # noqa: F401
                           TOAST, downloads, paste_paper, upload)
from .test_browser_page26 import visible_text

# A state the page shows after an update is waited for (up to 20 s on a loaded machine), not read at once:
# the status line and a button's state can arrive in separate updates.
expect.set_options(timeout=20_000)

pytestmark = pytest.mark.browser
SHOTS = ARTIFACTS / "walk"
WIDTHS = [(1366, 768), (390, 844)]


def shot(page, name: str, selector: str | None = None) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(400)  # the buttons' colour transition ends (for the picture only)
    (page.locator(selector) if selector else page).screenshot(path=str(SHOTS / name))


def encrypted_pdf(path):
    """A one-page paper saved with a password: the app cannot read it."""
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Deep networks read long papers. " * 5)
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner")
    return path


# per element: the part of it a person sees, i.e. its box cut by every ancestor that clips (overflow not
# visible) and by the window; reports those cut short on the left or right
CUT_SIDEWAYS = """sel => [...document.querySelectorAll(sel)].filter(e => {
  const r = e.getBoundingClientRect();
  if (r.left < -1 || r.right > window.innerWidth + 1) return true;
  for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
    if (getComputedStyle(a).overflowX === 'visible') continue;
    const b = a.getBoundingClientRect();
    if (r.left < b.left - 1 || r.right > b.right + 1) return true;
  }
  return false; }).map(e => e.innerText)"""

# a dropdown's text area (its box less its right padding) against its arrow's box
PICKER_GEOMETRY = """id => { const root = document.getElementById(id);
  const input = root.querySelector('input[role=combobox]'), arrow = root.querySelector('.icon-wrap');
  const r = input.getBoundingClientRect(), pad = parseFloat(getComputedStyle(input).paddingRight);
  return {text_right: r.right - pad, arrow_left: arrow.getBoundingClientRect().left,
          overflows: input.scrollWidth > input.clientWidth, value: input.value}; }"""


@pytest.mark.parametrize("width,height", WIDTHS)
def test_the_run_pickers_and_every_run_setting_fit_the_screen(open_page, width, height):
    page = open_page(width, height)
    paste_paper(page, MARKER_PAPER)
    page.get_by_label("4 aspects").check()
    for _ in range(2):
        generate_and_wait(page)
    page.locator("#history-compare").wait_for()
    page.wait_for_function("document.querySelector('#history-b input').value.startsWith('Run 2:')")
    page.locator("#history").scroll_into_view_if_needed()
    shot(page, f"history-{width}.png", "#history")
    for picker in ("history-a", "history-b"):
        g = page.evaluate(PICKER_GEOMETRY, picker)
        assert g["value"].startswith("Run "), g
        assert g["text_right"] <= g["arrow_left"], g  # the label ends before the arrow
        if width < 700:
            assert g["overflows"], g  # precondition: at 390 px the label is longer than its box
    # every run's every setting on screen, none cut off at the table's or the window's edge
    assert page.evaluate(CUT_SIDEWAYS, "#history-table td") == []
    shown = page.locator("#history-table").inner_text()
    seeds = re.findall(r"seed (\d+)", page.locator("#history-a input").input_value() + " "
                       + page.locator("#history-b input").input_value())
    assert len(seeds) == 2 and all(s in shown for s in seeds)
    assert re.search(r"\b\d of 4\b", shown)  # the last column, empty aspects
    if width < 700:  # a card per run: each value with its setting's name
        assert f"seed: {seeds[0]}" in shown and "GPT side: on" in shown and "empty aspects: " in shown


def test_stop_is_on_only_while_a_run_is_queued_or_streaming(open_page, openai_server):
    openai_server.state.script.append(Step(delay_s=3, match="Potential reasons"))
    page = open_page()
    stop = page.locator("#stop")
    expect(stop).to_be_disabled()
    idle_colour = stop.evaluate("e => getComputedStyle(e).backgroundColor")
    shot(page, "stop-idle-1366.png")
    paste_paper(page, MARKER_PAPER)
    page.locator("#generate").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Writing')")
    expect(stop).to_be_enabled()
    assert stop.evaluate("e => getComputedStyle(e).backgroundColor") != idle_colour  # it looks different too
    page.locator("#generate").scroll_into_view_if_needed()
    shot(page, "stop-running-1366.png")
    page.wait_for_function(FINISHED)
    page.wait_for_function("document.querySelector('#stop').disabled")


class Hold:
    """A point in the app's code held until the test lets it go (the app runs in this process): what the
    page shows meanwhile is asserted without racing the app."""

    def __init__(self) -> None:
        self.reached, self.release = threading.Event(), threading.Event()

    def __call__(self) -> None:
        self.reached.set()
        self.release.wait(60)


@pytest.fixture
def hold():
    h = Hold()
    yield h
    h.release.set()  # a failed test leaves no handler waiting


def test_stop_is_off_at_once_and_generate_meanwhile_says_the_run_is_stopping(open_page, hold, monkeypatch):
    """Pressed while streaming, Stop is off while the run still winds down ("Stopping..."), not only once
    it has ended; Generate pressed then says the run is stopping (it said "Stop it first" with Stop off).
    The local model's stream is held open after Stop, so the run is still winding down while it is looked at."""
    original = ReviewService.stream_local

    def held_local(self, mi, gen, stop=None):
        yield from original(self, mi, gen, stop)
        stop.wait(60)  # the review stays open until Stop is pressed...
        hold()  # ...and ends when the test says

    monkeypatch.setattr(ReviewService, "stream_local", held_local)
    monkeypatch.setattr("app.run.STOP_DRAIN_S", 60)  # the run waits for the held stream
    page = open_page()
    stop, status = page.locator("#stop"), page.locator("#status")
    paste_paper(page, MARKER_PAPER)
    page.locator("#generate").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Writing')")
    page.wait_for_function("!document.querySelector('#stop').disabled")
    stop.click()
    assert hold.reached.wait(30)  # the run is winding down, held
    page.wait_for_function("document.querySelector('#status').innerText.includes('Stopping')")
    expect(stop).to_be_disabled()  # while the run still winds down (held: it cannot end meanwhile)
    page.locator("#generate").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Stopping the current run')")
    assert "press Generate when it has stopped" in status.inner_text() and "Stop it first" not in status.inner_text()
    expect(stop).to_be_disabled()
    hold.release.set()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Stopped')")
    expect(stop).to_be_disabled()
    expect(page.locator("#generate")).to_be_enabled()


def test_stop_pressed_while_a_run_is_set_up_cancels_it(open_page, hold, monkeypatch):
    """Stop pressed after the run's event started but before the run existed found neither a run nor a
    queued press: "Nothing is running.", and the run then streamed to its end, unstoppable."""
    original, started = ReviewService.new_run, []

    def held_new_run(self, *args, **kwargs):
        hold()
        return original(self, *args, **kwargs)

    def execute(self, run):
        started.append(run)
        return original_execute(self, run)

    original_execute = ReviewService.execute
    monkeypatch.setattr(ReviewService, "new_run", held_new_run)
    monkeypatch.setattr(ReviewService, "execute", execute)
    page = open_page()
    paste_paper(page, MARKER_PAPER)
    page.locator("#generate").click()
    assert hold.reached.wait(30)  # on_generate is setting the run up
    page.wait_for_function("!document.querySelector('#stop').disabled")
    page.locator("#stop").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Cancelled before it started')")
    expect(page.locator("#stop")).to_be_disabled()
    hold.release.set()
    page.wait_for_timeout(1500)  # a run that started anyway says "Writing" within a fraction of this
    assert not started, "the run started after Stop"
    assert "Cancelled before it started" in page.locator("#status").inner_text()
    assert not page.locator("#local-review").inner_text().strip()


def test_generate_is_off_while_a_file_is_read(open_page, hold, monkeypatch):
    """Reading a PDF can take tens of seconds (OCR): Generate stayed on (the box held the old text) and a
    run started then streamed the old text into the new paper's page, with Stop off."""
    original = app.ui.read_paper

    def held_read(*args, **kwargs):
        hold()
        return original(*args, **kwargs)

    monkeypatch.setattr(app.ui, "read_paper", held_read)
    page = open_page()
    go = page.locator("#generate")
    paste_paper(page, MARKER_PAPER)
    page.wait_for_function("!document.querySelector('#generate').disabled")
    upload(page, EXAMPLE_PDFS[1])
    assert hold.reached.wait(30)  # the file is being read
    expect(go).to_be_disabled()  # held: the file cannot be read meanwhile
    expect(page.locator("#status")).to_contain_text("Reading the PDF")  # and why it is off
    page.locator("#generate").scroll_into_view_if_needed()
    shot(page, "upload-in-progress-1366.png")
    hold.release.set()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    page.wait_for_function("!document.querySelector('#generate').disabled")  # the new paper's text: on again
    expect(page.locator("#stop")).to_be_disabled()


@pytest.mark.parametrize("width,height", WIDTHS)
def test_generate_is_off_without_paper_text_to_review(open_page, tmp_path, width, height):
    page = open_page(width, height)
    go = page.locator("#generate")
    expect(go).to_be_disabled()
    expect(page.locator("#status")).to_contain_text(START_HINT)
    shot(page, f"start-{width}.png")
    paste_paper(page, MARKER_PAPER)
    page.wait_for_function("!document.querySelector('#generate').disabled")  # pasted text can be reviewed
    upload(page, encrypted_pdf(tmp_path / "locked.pdf"))  # the box is emptied: nothing to review
    page.wait_for_function("document.querySelector('#upload-msg').innerText.includes('password')")
    page.wait_for_function("document.querySelector('#generate').disabled")
    assert "No paper text to review" in page.locator("#status").inner_text()  # the reason, on the status line
    page.locator("#upload-msg").scroll_into_view_if_needed()
    shot(page, f"failed-upload-{width}.png")
    page.locator("#status").scroll_into_view_if_needed()
    shot(page, f"failed-upload-buttons-{width}.png")
    upload(page, EXAMPLE_PDFS[1])
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    page.wait_for_function("!document.querySelector('#generate').disabled")


@pytest.mark.parametrize("width,height", WIDTHS)
def test_a_failed_upload_shows_no_model_lines_and_the_page_no_server_address(
        open_page, openai_server, tmp_path, width, height):
    page = open_page(width, height)
    upload(page, encrypted_pdf(tmp_path / "locked.pdf"))
    page.wait_for_function("document.querySelector('#upload-msg').innerText.includes('password')")
    expect(page.locator("#as-written")).to_be_hidden()
    shown = visible_text(page)
    assert "Each review as written" not in shown
    assert "fp32" not in shown and "gpt-4o via" not in shown  # no model lines beside a failed upload
    upload(page, EXAMPLE_PDFS[1])
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    expect(page.locator("#as-written")).to_be_visible()
    expect(page.locator("#local-raw")).to_be_hidden()  # shown whole
    expect(page.locator("#gpt-raw")).to_be_hidden()
    # the GPT side's model is named, its server's address is not (the downloads keep it for provenance)
    title = page.locator("#gpt-title").inner_text()
    assert "gpt-4o via an OpenAI-compatible server" in title
    host = re.sub(r"^https?://", "", openai_server.base_url).split("/")[0]
    assert host not in visible_text(page) and host not in page.locator("#gpt-title").inner_html()
    shot(page, f"parsed-{width}.png")


def test_the_calibrated_rating_is_said_in_plain_words(open_page, openai_server):
    """GPT answers with a paper's own text: the rating model's gate turns it down, in words a
    researcher reads ("does not read like a peer review"), and the chance of acceptance is said so."""
    from reviewgpt.rating.data import read_rated_reviews
    from reviewgpt.training.data.papers import read_iclr2017

    from app.rating import rate

    human = read_rated_reviews(FIXTURES / "rating" / "iclr2017")[0].text
    paper = " ".join(next(iter(read_iclr2017(FIXTURES / "iclr2017"))).document.to_text().split()[200:460])
    assert not rate(paper)["calibrated"] and rate(human)["calibrated"]  # preconditions
    page = open_page()
    paste_paper(page, MARKER_PAPER)
    for answer in (paper, human):
        openai_server.state.script.append(Step(content=answer, match="Potential reasons"))
        generate_and_wait(page)
        verdict = page.locator("#verdict").inner_text()
        foot = page.locator("#comparison .cmp-foot").inner_text()
        for developer_words in ("P(accept)", "P(review)", "not calibrated"):
            assert developer_words not in visible_text(page), developer_words
        if answer is paper:
            assert "no calibrated rating: this text does not read like a peer review" in foot
            assert "GPT-4o baseline: no calibrated rating: this text does not read like a peer review" in verdict
        else:
            r = rate(human)
            assert f"chance of acceptance {r['p_accept']:.0%}" in foot
            assert re.search(rf"chance of acceptance\s*(\S+\s*)?{r['p_accept']:.0%}", verdict), verdict
    page.locator("#verdict").scroll_into_view_if_needed()
    shot(page, "rating-words-1366.png", "#verdict")


def test_one_page_and_one_scanned_page_are_said_in_the_singular(open_page):
    """The fresh-user walk-through: a one-page scan with an OCR layer read '1 pages' and 'Page(s) 1 are
    scanned images'."""
    from .test_pdf_scan import SCAN

    page = open_page()
    upload(page, SCAN)
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    info = page.locator("#paper-info").inner_text()
    assert re.search(r"· 1 page · \d+ sections", info), info
    assert "Page 1 is scanned; its text was read from the OCR text layer in the PDF" in info
    assert "1 pages" not in info and "Page(s)" not in info
    shot(page, "one-page-scan-1366.png", "#paper-info")


def test_each_download_name_ends_with_its_extension_on_a_phone(open_page):
    """At 390 px a download's long name wraps; its '.md' stood beside the name's first line, far from
    where the name ends."""
    page = open_page(390, 844)
    paste_paper(page, MARKER_PAPER)
    generate_and_wait(page)
    page.locator("#downloads a[href]").first.wait_for()
    rows = page.evaluate("""() => [...document.querySelectorAll('#downloads td.filename')].map(td => {
        const s = td.querySelector('.stem'), stem = s.getBoundingClientRect();
        const range = document.createRange(); range.selectNodeContents(s);
        const last = [...range.getClientRects()].pop(), ext = td.querySelector('.ext').getBoundingClientRect();
        return {name: td.innerText, gap: ext.left - last.right, line: parseFloat(getComputedStyle(s).lineHeight), stem_height: stem.height,
                stem_bottom: stem.bottom, ext_top: td.querySelector('.ext').getBoundingClientRect().top}; })""")
    assert len(rows) >= 3, rows
    for r in rows:
        assert r["stem_height"] > 2 * r["line"], r  # the name wraps at this width (else this shows nothing)
        assert r["ext_top"] > r["stem_bottom"] - 1.5 * r["line"], r  # the extension is on the name's last line
        assert abs(r["gap"]) < 1, r  # ... right after it: no blank before ".md" (it read "review .md")
    page.locator("#downloads").scroll_into_view_if_needed()
    shot(page, "downloads-390.png", "#downloads")


@pytest.mark.parametrize("width,height", WIDTHS)
def test_a_good_upload_after_a_bad_one_closes_the_old_error(open_page, tmp_path, width, height):
    """The walk-through: a PNG renamed .pdf, then a real paper: 'Error: This file is not a PDF' still
    stood over the page (for its 10 s) while the status read 'Parsed'."""
    page = open_page(width, height)
    bad = tmp_path / "picture.pdf"
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 40, 40), False)
    pix.clear_with(200)
    bad.write_bytes(pix.tobytes("png"))
    upload(page, bad)
    page.locator(TOAST, has_text="not a PDF").first.wait_for()
    upload(page, EXAMPLE_PDFS[1])
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    # neither the toast nor the upload message (the toast is closed in the browser: waited for)
    expect(page.locator("body")).not_to_contain_text("not a PDF", use_inner_text=True)
    assert page.locator("#upload-msg").inner_text().strip() == "" or not page.locator("#upload-msg").is_visible()
    shot(page, f"good-after-bad-{width}.png")


def test_a_review_finished_before_stop_is_not_marked_partial(open_page, openai_server, monkeypatch):
    """The walk-through: Stop pressed while the local model still wrote, after GPT's review had ended
    ('GPT-4o baseline finished.' on the status line): the whole GPT review was downloaded as
    '-gpt-review-PARTIAL.md' with 'the run was stopped before it finished', and the rating said it was of
    a partial review. The local model's stream is held open after a few pieces until Stop."""
    original = ReviewService.stream_local

    def slow_local(self, mi, gen, stop=None):
        for i, item in enumerate(original(self, mi, gen, stop)):
            yield item
            if i == 5:
                stop.wait(60)  # still writing when Stop is pressed
                return

    monkeypatch.setattr(ReviewService, "stream_local", slow_local)
    page = open_page()
    paste_paper(page, MARKER_PAPER)
    page.locator("#generate").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('GPT-4o baseline finished')")
    page.locator("#stop").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Stopped')")
    page.locator("#downloads a[href]").first.wait_for()
    files = downloads(page)
    gpt = next(k for k in files if "-gpt-review" in k)
    local = next(k for k in files if "-local-review" in k)
    assert gpt.endswith("-gpt-review.md") and local.endswith("-local-review-PARTIAL.md"), list(files)
    assert "Partial" not in files[gpt].decode() and "status: done" in files[gpt].decode()
    assert "Partial:" in files[local].decode() and "status: partial" in files[local].decode()
    verdict = page.locator("#verdict").inner_text()
    assert "Of a partial review, the run was stopped before its end: " in verdict
    assert "end: GPT" not in verdict and "GPT-4o baseline." not in verdict.split("before its end:")[1].split("\n")[0]
    assert "a review cut short is marked partial" in page.locator("#status").inner_text()
    # the side-by-side view names the review Stop cut, not both
    foot = page.locator("#comparison .cmp-foot").inner_text()
    cut = foot.split("partial: the run was stopped before the end of ")[1].split(")")[0]
    assert cut and "GPT" not in cut, foot
    page.locator("#verdict").scroll_into_view_if_needed()
    shot(page, "stopped-after-gpt-1366.png")


def test_a_file_chosen_while_the_last_one_is_read_is_read_next(open_page, hold, monkeypatch, tmp_path):
    """A file chosen (after the box's Clear) while the last one is still read must end as the page: in CI
    under load the new file's reading was dropped (a .then's default trigger mode) and the page stayed on
    "Upload a PDF" beside the new file; and with reads running side by side, a slow read of the old file
    (OCR takes tens of seconds) that ended last put the old file's outcome over the new one. The old
    file's read is held here until the new one has had time to be read."""
    original, old_done = app.ui.read_paper, threading.Event()

    def held_read(path, *args, **kwargs):
        if "picture" not in str(path):
            return original(path, *args, **kwargs)
        hold()
        try:
            return original(path, *args, **kwargs)
        finally:
            old_done.set()

    monkeypatch.setattr(app.ui, "read_paper", held_read)
    page = open_page()
    bad = tmp_path / "picture.pdf"
    bad.write_bytes(b"not a pdf at all")
    upload(page, bad)
    assert hold.reached.wait(30)  # the old file is being read
    upload(page, EXAMPLE_PDFS[1])  # Clear, then the paper; returns once the box shows it
    page.wait_for_timeout(2000)  # time for the new file's read, were it run beside the held one
    hold.release.set()
    assert old_done.wait(30)
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    page.wait_for_timeout(1500)  # the old file's outcome, were it sent after, arrives within a fraction of this
    expect(page.locator("#status")).to_contain_text("Parsed")
    expect(page.locator("#generate")).to_be_enabled()
    assert "Beyond Summarization" in page.locator("#paper-info").inner_text()  # the new paper (2304.02623)
    assert "not a PDF" not in page.locator("#upload-msg").inner_text()
