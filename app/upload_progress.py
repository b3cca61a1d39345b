"""What the page says while a PDF is read (issue #26): a scanned page is OCRed for seconds, a text page
is read in milliseconds, so the bar counts pages, says which page is being OCRed, and estimates the
time left from the pace measured so far in this upload (said as such), not from other uploads."""

from __future__ import annotations

import time
from typing import Any, Callable

from app.render import counted
from reviewgpt.ingest.pdf import PageProgress


def words(done: int, total: int, scan: bool, elapsed: float) -> str:
    """'Reading page 3 of 12 by OCR (a scanned page takes seconds); about 20 s left at the pace so far'."""
    if done >= total:
        return f"Read {counted(total, 'page')}; finding the sections..."
    line = f"Reading page {done + 1} of {total}" + (" by OCR (a scanned page takes seconds)" if scan else "")
    if done:
        line += f"; about {elapsed / done * (total - done):.0f} s left at the pace so far"
    return line


def reporter(progress: Callable[..., Any], clock: Callable[[], float] = time.monotonic) -> PageProgress:
    """An extract(on_page=...) callback that moves a gr.Progress bar."""
    start = clock()

    def on_page(done: int, total: int, scan: bool) -> None:
        progress((done, total), desc=words(done, total, scan, clock() - start), unit="pages")

    return on_page
