"""One review run: both reviews side by side, then the verdict, with an explicit phase.

The phase says what the page shows (nothing is guessed from empty fields): QUEUED until the GPU
slot is free, GENERATING while either review is written, JUDGING, then one of DONE,
ONE_SIDE_FAILED (the other side's review stands, no verdict), STOPPED (the user stopped it; what
was written is kept and marked partial) or FAILED (neither side produced a review).
"""

from __future__ import annotations

import contextlib

import contextvars
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable, Iterator

from reviewgpt.compare.judge import Verdict
from reviewgpt.errors import ReviewGPTError
from reviewgpt.prepare.model_input import ModelInput

from .human_reviews import HumanReviews
from .labels import ModelLabel

log = logging.getLogger(__name__)


class RunPhase(str, Enum):
    QUEUED = "queued"
    GENERATING = "generating"
    JUDGING = "judging"
    DONE = "done"
    ONE_SIDE_FAILED = "one_side_failed"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in (RunPhase.QUEUED, RunPhase.GENERATING, RunPhase.JUDGING)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunSettings:
    schema: str
    suppression: float
    temperature: float
    seed: int
    max_new_tokens: int


@dataclass
class Side:
    """One review column."""
    label: ModelLabel
    text: str = ""
    error: str | None = None
    off: bool = False  # never started: not configured (the banner says so), as opposed to failing mid-run
    done: bool = False
    complete: bool = False  # its stream ended by itself: not cut short by Stop or an error
    markers: Any | None = None  # MarkerReport (local model only)
    evidence: list | None = None  # reviewgpt.grounding Evidence per item, set when the run ends (issue #23)
    rating: dict | None = None  # calibrated rating (app/rating.py), set when the run ends (issue #24)
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def error_verb(self) -> str:
        """How a side with an error is said: it was off (never started) or it failed."""
        return "is off" if self.off else "failed"


@dataclass
class Run:
    paper_title: str
    pdf_name: str | None
    pdf_sha256: str | None
    model_input: ModelInput
    settings: RunSettings
    local: Side
    gpt: Side
    phase: RunPhase = RunPhase.QUEUED
    verdict: Verdict | None = None
    verdict_note: str = ""
    started_at: str = field(default_factory=now)
    finished_at: str | None = None
    files: list[str] = field(default_factory=list)
    number: int = 0  # its number in the browser session's run history (app/history.py); 0: an API run
    human: HumanReviews = field(default_factory=HumanReviews)  # the paper's human reviews, for the judge
    stop: threading.Event = field(default_factory=threading.Event, repr=False)
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def partial(self) -> bool:
        """The reviews are incomplete: stopped, or still being written."""
        return self.phase is RunPhase.STOPPED or self.phase.active

    def cut_short(self, side: Side) -> bool:
        """This side's review is incomplete (a review that had ended before Stop is whole)."""
        return self.partial and not side.complete

    def status(self) -> str:
        """One line for the status bar, naming the side that failed and why."""
        a, b = self.local, self.gpt
        if self.stop.is_set() and self.phase.active:  # winding down: the stream's next update must not say "Writing"
            return "Stopping..."
        if self.phase is RunPhase.QUEUED:
            return "Waiting for the GPU: another review is being written. Your run starts when it is free."
        if self.phase is RunPhase.GENERATING:
            done = [s.label.title for s in (a, b) if s.done and not s.error]
            return "Writing both reviews..." + (f" ({', '.join(done)} finished.)" if done else "")
        if self.phase is RunPhase.JUDGING:
            return "Both reviews written. The judge is comparing them..."
        if self.phase is RunPhase.STOPPED:
            return "Stopped. What was written so far is kept; a review cut short is marked partial in the downloads."
        errs = [s for s in (a, b) if s.error]
        failed = [f"{s.label.title} {s.error_verb}: {s.error}" for s in errs]
        if self.phase is RunPhase.FAILED:
            if all(s.off for s in errs):  # nothing failed: neither side is set up (the banner says how)
                return "Nothing to run: " + " ".join(f"{s.label.title} is off." for s in errs)
            return ("Both sides failed. " if not any(s.off for s in errs) else "No review: ") + " ".join(failed)
        if self.phase is RunPhase.ONE_SIDE_FAILED:
            ok = [s.label.title for s in (a, b) if not s.error]
            # a side that is off: its column and the banner say why; the status line only names it
            named = [f"{s.label.title} is off." if s.off else line for s, line in zip(errs, failed)]
            return f"{' and '.join(ok)} finished; " + " ".join(named) + " No verdict."
        return "Done: both reviews and the verdict." if self.verdict else f"Both reviews done. {self.verdict_note}"


Stream = Callable[[], Iterator[Any]]
STOP_DRAIN_S = 5.0  # how long a stopped run waits for the local model's last piece and marker report


def drive(run: Run, local: Stream | None, gpt: Stream | None, judge: Callable[[str, str], Verdict] | None,
          unavailable: dict[str, str], poll_s: float = 0.1) -> Iterator[Run]:
    """Write both reviews (each in its own thread), then judge; yield the run after each change.

    `local` yields text pieces and, last, optionally a marker report; `gpt` yields text pieces.
    A missing stream is a side that cannot run, with its reason in `unavailable`.
    """
    updates: queue.Queue = queue.Queue()
    run.phase = RunPhase.GENERATING

    def pump(side: Side, stream: Stream, drains: bool) -> None:
        """`drains`: the stream itself honours run.stop (the local model ends within a token, then yields
        its marker report): it is read to its end, so a stopped review keeps its P(empty) column.
        Otherwise (the GPT side) Stop closes the stream at once: the request ends now."""
        side.started_at = now()
        try:
            with contextlib.closing(stream()) as items:
                for item in items:
                    if run.stop.is_set() and not drains:
                        break
                    if isinstance(item, str):
                        side.text += item
                    else:
                        side.markers = item
                    updates.put(1)
            side.complete = not run.stop.is_set()
        except ReviewGPTError as e:
            side.error = str(e)
        except Exception as e:  # never a stack trace on the page; the log has it
            log.exception("review failed")
            side.error = f"{type(e).__name__}: {e}"
        finally:
            side.done, side.finished_at = True, now()
            updates.put(1)

    threads: dict[str, threading.Thread] = {}
    for key, side, stream in (("local", run.local, local), ("gpt", run.gpt, gpt)):
        if stream is None:
            side.error, side.off, side.done = unavailable.get(key, "not available"), True, True
            continue
        ctx = contextvars.copy_context()  # ZeroGPU reads the Gradio request from the context
        threads[key] = threading.Thread(target=ctx.run, args=(pump, side, stream, key == "local"), daemon=True)
    for t in threads.values():
        t.start()
    last = 0.0
    while not (run.local.done and run.gpt.done) and not run.stop.is_set():
        try:
            updates.get(timeout=poll_s)
        except queue.Empty:
            pass
        if time.monotonic() - last >= poll_s:
            last = time.monotonic()
            yield run
    if run.stop.is_set():
        # "Stopping..." now, from this stream: an update sent just before Stop could land after Stop's own
        # reply and leave the page saying "Writing" for the whole drain
        yield run
        if "local" in threads:  # its last tokens and marker report, before the run is exported
            threads["local"].join(timeout=STOP_DRAIN_S)
        finish(run, RunPhase.STOPPED)
        yield run
        return
    errors = [s for s in (run.local, run.gpt) if s.error]
    if len(errors) == 2:
        finish(run, RunPhase.FAILED)
    elif errors:
        run.verdict_note = "No verdict: it needs both reviews."
        finish(run, RunPhase.ONE_SIDE_FAILED)
    elif judge is None:
        run.verdict_note = "No verdict: " + unavailable.get("judge", "the judge is not configured.")
        finish(run, RunPhase.DONE)
    else:
        run.phase = RunPhase.JUDGING
        yield run
        verdict: list = []

        def ask() -> None:
            try:
                verdict.append(judge(run.local.text, run.gpt.text))
            except ReviewGPTError as e:
                run.verdict_note = f"No verdict: {e}"
            except Exception as e:
                log.exception("judge failed")
                run.verdict_note = f"No verdict: {type(e).__name__}: {e}"

        t = threading.Thread(target=contextvars.copy_context().run, args=(ask,), daemon=True)
        t.start()
        while t.is_alive() and not run.stop.is_set():  # Stop must not wait for the judge's answer
            t.join(poll_s)
        if run.stop.is_set():
            finish(run, RunPhase.STOPPED)
        else:
            run.verdict = verdict[0] if verdict else None
            finish(run, RunPhase.DONE)
    yield run


_FINISH = threading.Lock()  # Stop (UI thread) and drive (worker thread) may finish a run at once


def finish(run: Run, phase: RunPhase) -> None:
    """End the run in `phase`, once: the first caller's phase and time stand."""
    with _FINISH:
        if run.finished.is_set():
            return
        run.phase, run.finished_at = phase, now()
        run.finished.set()
