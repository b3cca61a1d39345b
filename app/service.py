"""What the UI and the API endpoints do, without Gradio: PDF -> paper -> prompt -> two reviews -> verdict.

One ReviewService per process: the local model is loaded once and shared by every request (the
engine serialises GPU generation with its own lock); the GPT-4 side is optional.
"""

from __future__ import annotations

import json
import logging
import queue
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pymupdf

from reviewgpt.prepare.budget import BudgetResult
from reviewgpt.config import GenerationConfig, IngestConfig
from reviewgpt.ingest.document import Document
from reviewgpt.generate.engine import ReviewEngine, get_engine
from reviewgpt.errors import ModelLoadError, OpenAIConfigError, ReviewGPTError
from reviewgpt.generate.gpt_reviewer import GPTReviewer
from reviewgpt.compare.judge import PairwiseJudge, Verdict
from reviewgpt.generate.openai_client import NO_KEY_MESSAGE, OpenAIChat
from reviewgpt.ingest import extract
from reviewgpt.format.review_format import ParseReport, parse

from .settings import AppSettings

log = logging.getLogger(__name__)

try:  # ZeroGPU on Hugging Face Spaces: a GPU is attached only while a decorated call runs
    import spaces

    _gpu = spaces.GPU(duration=180)
except ImportError:  # locally: a no-op
    def _gpu(fn):
        return fn


@dataclass
class Paper:
    document: Document
    text: str  # the paper as the model reads it (before the budget)
    preview_png: bytes | None
    budget: BudgetResult | None


@dataclass
class Side:
    """One review column's progress."""
    name: str
    text: str = ""
    error: str | None = None
    done: bool = False


@dataclass
class Outcome:
    local: Side
    gpt: Side
    verdict: Verdict | None = None
    verdict_note: str = ""
    files: list[str] = field(default_factory=list)


class ReviewService:
    def __init__(self, settings: AppSettings, ingest: IngestConfig | None = None) -> None:
        self.settings = settings
        self.ingest = ingest or IngestConfig()
        self.engine: ReviewEngine | None = None
        self.load_error: str | None = None
        self.is_demo = settings.use_demo()
        self._chat: OpenAIChat | None = None
        self.gpt_error: str | None = None
        try:
            self._chat = OpenAIChat(settings.openai)
        except OpenAIConfigError as e:
            self.gpt_error = str(e)

    # ----------------------------------------------------------------- model
    def load(self) -> None:
        """Load the local model once (errors are kept and shown, the rest of the app still works)."""
        try:
            self.engine = get_engine(self.settings.engine_config())
        except (ModelLoadError, FileNotFoundError) as e:
            self.load_error = str(e)
            log.error("local model not loaded: %s", e)

    @property
    def local_name(self) -> str:
        return self.engine.info.describe() if self.engine else "local model (not loaded)"

    @property
    def gpt_name(self) -> str:
        return self.settings.openai.reviewer_model

    def banner(self) -> str:
        lines = []
        if self.is_demo and self.engine:
            lines.append("**Demo model.** No GPU here, so this runs the tiny demo-scale model bundled in `assets/` "
                         "(trained by `train/build_demo.py`). It shows the pipeline working, not review quality. "
                         "Set `REVIEWGPT_BASE_MODEL` / `REVIEWGPT_ADAPTER` on a GPU machine for the real 8B reviewer.")
        if self.engine:
            lines += [f"Note: {n}" for n in self.engine.info.notes if "BASE model" in n]
        if self.load_error:
            lines.append(f"**Local model not loaded:** {self.load_error}")
        if self.gpt_error:
            lines.append(f"**{self.gpt_error}**")
        return "\n\n".join(lines)

    # ----------------------------------------------------------------- paper
    def read_pdf(self, data: bytes | str | Path, schema: str = "7") -> Paper:
        """Raise a PDFError (user-facing message) or return the parsed paper with its budget."""
        doc = extract(data, self.ingest)
        return Paper(doc, doc.to_text(), _preview(data), self.fit(doc, schema))

    def fit(self, paper: Document | str, schema: str) -> BudgetResult | None:
        return self.engine.fit(paper, schema) if self.engine else None

    def model_input(self, text: str, schema: str, document: Document | None = None) -> str:
        """The paper text within the prompt budget: the section policy when the text is the parsed
        one, a plain cut when the user edited it."""
        if not self.engine:
            return text
        source = document if document is not None and document.to_text() == text else text
        return self.engine.fit(source, schema).text

    # ----------------------------------------------------------------- reviews
    def stream_local(self, text: str, schema: str, suppression: float, temperature: float,
                     stop: threading.Event | None = None) -> Iterator[str]:
        """The fine-tuned model's review, accumulated text after each piece."""
        if not self.engine:
            raise ModelLoadError(self.load_error or "the local model is not loaded")
        gen = GenerationConfig(max_new_tokens=self.engine.config.max_new_tokens, suppression=suppression,
                               temperature=temperature, do_sample=temperature > 0)
        out = ""
        for piece in _gpu(self.engine.stream)(text, schema, gen, stop=stop):
            out += piece
            yield out

    def stream_gpt(self, text: str, schema: str, temperature: float) -> Iterator[str]:
        if not self._chat:
            raise OpenAIConfigError(self.gpt_error or NO_KEY_MESSAGE)
        out = ""
        for piece in GPTReviewer(self._chat, temperature=temperature).stream(text, schema):
            out += piece
            yield out

    def judge(self, text: str, schema: str, review_a: str, review_b: str,
              human_reviews: list[str] | None = None) -> Verdict:
        if not self._chat:
            raise OpenAIConfigError(self.gpt_error or NO_KEY_MESSAGE)
        return PairwiseJudge(self._chat).compare(schema, text, review_a, review_b, human_reviews)

    def run_both(self, text: str, schema: str, suppression: float, temperature: float,
                 stop: threading.Event) -> Iterator[Outcome]:
        """Both reviews streamed side by side (each in its own thread), then the verdict."""
        out = Outcome(Side(self.local_name), Side(self.gpt_name))
        updates: queue.Queue = queue.Queue()

        def pump(side: Side, stream_fn) -> None:
            try:
                for t in stream_fn():
                    if stop.is_set():
                        break
                    side.text = t
                    updates.put(1)
            except ReviewGPTError as e:
                side.error = str(e)
            except Exception as e:  # never a stack trace in the UI; the log has it
                log.exception("review failed")
                side.error = f"{type(e).__name__}: {e}"
            finally:
                side.done = True
                updates.put(1)

        threads = [threading.Thread(target=pump, args=(out.local, lambda: self.stream_local(
                       text, schema, suppression, temperature, stop)), daemon=True)]
        if self._chat:
            threads.append(threading.Thread(target=pump, args=(out.gpt, lambda: self.stream_gpt(
                text, schema, temperature)), daemon=True))
        else:
            out.gpt.error, out.gpt.done = self.gpt_error, True
        for t in threads:
            t.start()
        last = 0.0
        while not (out.local.done and out.gpt.done):
            try:
                updates.get(timeout=0.2)
            except queue.Empty:
                pass
            if time.monotonic() - last > 0.1:
                last = time.monotonic()
                yield out
        if stop.is_set():
            yield out
            return
        if out.local.error or out.gpt.error:
            out.verdict_note = "No verdict: it needs both reviews." if self._chat else (self.gpt_error or "")
        else:
            try:
                out.verdict = self.judge(text, schema, out.local.text, out.gpt.text)
            except ReviewGPTError as e:
                out.verdict_note = f"No verdict: {e}"
        out.files = self.export(out, schema)
        yield out

    def export(self, out: Outcome, schema: str) -> list[str]:
        """The two reviews (Markdown) and everything as JSON, for download."""
        folder = Path(tempfile.mkdtemp(prefix="review-"))
        files = []
        for fname, side in (("llama_review.md", out.local), ("gpt4_review.md", out.gpt)):
            if side.text:
                (folder / fname).write_text(f"<!-- {side.name} -->\n{side.text}\n")
                files.append(str(folder / fname))
        data = {"schema": schema,
                "local": {"model": out.local.name, "review": out.local.text, "error": out.local.error,
                          "report": parse(out.local.text, schema).report.to_dict() if out.local.text else None},
                "gpt": {"model": out.gpt.name, "review": out.gpt.text, "error": out.gpt.error,
                        "report": parse(out.gpt.text, schema).report.to_dict() if out.gpt.text else None},
                "verdict": out.verdict.to_dict() if out.verdict else None, "verdict_note": out.verdict_note}
        (folder / "results.json").write_text(json.dumps(data, indent=2))
        files.append(str(folder / "results.json"))
        if out.verdict:
            (folder / "verdict.md").write_text(verdict_markdown(out.verdict, out.local.name, out.gpt.name))
            files.append(str(folder / "verdict.md"))
        return files


# --------------------------------------------------------------------------- rendering helpers


def _preview(data: bytes | str | Path, pages: int = 1) -> bytes | None:
    try:
        doc = pymupdf.open(data) if not isinstance(data, (bytes, bytearray)) else pymupdf.open(stream=data, filetype="pdf")
        return doc[0].get_pixmap(dpi=70).tobytes("png") if doc.page_count else None
    except Exception:  # a preview is a nicety; the text matters
        return None


def verdict_markdown(v: Verdict, name_a: str, name_b: str) -> str:
    names = {"A": name_a, "B": name_b, "tie": "tie"}
    lines = [f"### {v.summary(name_a, name_b)}", "", v.rationale or ""]
    if v.aspects:
        lines += ["", "| aspect | better |", "|---|---|"] + [f"| {c} | {names.get(w, w)} |" for c, w in v.aspects.items()]
    return "\n".join(lines)


def stats_markdown(report: ParseReport) -> str:
    rows = ["| aspect | items | empty |", "|---|---|---|"]
    for c in report.criteria:
        state = "missing" if not c.present else ("yes" if c.empty else "")
        rows.append(f"| {c.criterion[:60]} | {c.item_count} | {state} |")
    extra = f"\n\nUnknown sections: {', '.join(h for h, _ in report.unknown_sections)}" if report.unknown_sections else ""
    return f"Empty or missing aspects: {report.empty_rate:.0%}\n\n" + "\n".join(rows) + extra


def describe_paper(paper: Paper) -> str:
    d = paper.document
    parts = [f"**{d.title or '(no title found)'}** · {d.page_count} pages · {len(d.sections)} sections"]
    if paper.budget:
        parts.append(paper.budget.summary())
    parts += [f"**Warning:** {w}" for w in d.warnings]
    return "\n\n".join(parts)


def as_api_dict(paper: Paper) -> dict[str, Any]:
    d = paper.document
    return {"title": d.title, "abstract": d.abstract, "pages": d.page_count,
            "sections": [s.heading for s in d.sections], "text": paper.text, "warnings": d.warnings,
            "hidden_text": [{"page": h.page, "text": h.text, "reason": h.reason} for h in d.hidden_text],
            "budget": paper.budget.summary() if paper.budget else None}
