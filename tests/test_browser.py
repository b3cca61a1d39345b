"""A real browser (Debian's Chromium, headless, driven by Playwright) uses the app as a person would."""

import os
import shutil

import pytest

from .conftest import EXAMPLE_PDFS, ROOT
from .test_app import app_url  # noqa: F401  (the running app fixture)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(app_url):  # noqa: F811
    if not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(app_url)
        yield page
        browser.close()


def test_upload_slide_generate_and_read_the_verdict(page, openai_server):
    openai_server.reset()
    page.set_default_timeout(90_000)
    page.locator("#pdf input[type=file]").set_input_files(str(EXAMPLE_PDFS[1]))
    page.wait_for_function("document.querySelector('#status').innerText.includes('Parsed')")
    assert "Beyond Summarization" in page.locator("#paper-info").inner_text()
    assert "INTRODUCTION" in page.locator("#paper-text textarea").input_value().upper()
    # move the suppression slider to 0.5 through its number box, as a keyboard user would
    box = page.locator("#suppression input[type=number]")
    box.fill("0.5")
    box.press("Enter")
    page.get_by_label("4 aspects").check()
    page.locator("#generate").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Done')")
    local = page.locator("#local-review").inner_text()
    gpt = page.locator("#gpt-review").inner_text()
    verdict = page.locator("#verdict").inner_text()
    assert local.strip() and "Significance and novelty" in gpt
    assert "both orders agree" in verdict or "disagree" in verdict or "Tie" in verdict
    assert "Empty or missing aspects" in page.locator("#gpt-stats").inner_text()
    body = [r["body"] for r in openai_server.state.requests]
    assert any("4 criteria" in b["messages"][0]["content"] for b in body)  # the 4-aspect choice reached GPT-4
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
    assert (ARTIFACTS / "app.png").stat().st_size > 20_000


def test_bad_pdf_shows_the_message_in_the_page(page, tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"not really a pdf")
    page.reload()  # a fresh page: the file box takes a new upload
    page.locator("#pdf input[type=file]").set_input_files(str(bad))
    page.wait_for_function("document.querySelector('#status').innerText.includes('not a PDF')")
