"""The app's model side, without Gradio: one ReviewService per process.

It loads the local model once (shared by every request; the engine serialises generation), owns
the GPT-4 side when a key is set, and turns a paper into what every model reads through
`reviewgpt.prepare.model_input.prepare()` (the only place that decides it). `engine` is any
`reviewgpt.reviewer.Reviewer`: the local ReviewEngine, or the served reviewer chosen in settings.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from reviewgpt.compare.judge import PairwiseJudge, Verdict
from reviewgpt.config import RECIPE_MAX_PROMPT_TOKENS, EngineConfig, GenerationConfig, IngestConfig
from reviewgpt.errors import ModelLoadError, OpenAIConfigError, ReviewGPTError
from reviewgpt.generate.engine import get_engine
from reviewgpt.generate.marker_probe import MarkerReport
from reviewgpt.ingest import extract
from reviewgpt.ingest.document import Document
from reviewgpt.ingest.pdf import PageProgress
from reviewgpt.prepare.model_input import ModelInput, prepare
from reviewgpt.remote.gpt_reviewer import GPTReviewer
from reviewgpt.remote.openai_client import NO_KEY_MESSAGE, OpenAIChat
from reviewgpt.reviewer import Reviewer

from . import gpu
from .human_reviews import HumanReviews
from .labels import OPENAI_HOST, ModelLabel, gpt_label, local_label, without_credentials
from .run import Run, RunSettings, Side, drive
from .settings import AppSettings
from .version import app_version

log = logging.getLogger(__name__)


@dataclass
class Paper:
    """A parsed upload: the Document the models read from, and the file it came from."""
    document: Document
    filename: str
    sha256: str

    @property
    def title(self) -> str:
        return self.document.title or Path(self.filename).stem


def read_paper(path: str | Path, ingest: IngestConfig, on_page: PageProgress | None = None) -> Paper:
    """Raise a PDFError (user-facing message) or return the parsed paper (`on_page`: see extract)."""
    data = Path(path).read_bytes()
    return Paper(extract(data, ingest, on_page), Path(path).name, hashlib.sha256(data).hexdigest())


def _public(ref: str | None) -> str | None:
    """A model reference as a download may show it: a Hub id as it is, a local folder by its name only
    (an absolute path would tell the reader about the machine it ran on)."""
    if ref and os.path.isdir(ref):
        return f"{Path(ref).name} (local folder)"
    return ref


PARSED_KEPT = 64  # parsed papers remembered for API callers (oldest forgotten first)
PARSED_ID_PREFIX, PARSED_ID_HEX = "parsed:", 16  # /parse's id: "parsed:" + the first 16 hex of its text's sha256


class UnknownPaperId(ReviewGPTError):
    """A /parse id that this service does not hold (never parsed here, forgotten, or the app restarted)."""


class ReviewService:
    def __init__(self, settings: AppSettings, ingest: IngestConfig | None = None) -> None:
        self.settings = settings
        self.ingest = ingest or IngestConfig()
        self._parsed: dict[str, Document] = {}  # text sha256 -> the Document /parse made it from (remember)
        self._running, self._running_lock = 0, threading.Lock()  # runs executing now (`busy`)
        self.engine: Reviewer | None = None
        self.engine_key: str | None = None
        self.load_error: str | None = None
        self.is_demo = settings.use_demo()
        self._chat: OpenAIChat | None = None
        self.gpt_error: str | None = None
        try:
            self._chat = OpenAIChat(settings.openai)
        except OpenAIConfigError as e:
            self.gpt_error = str(e)

    # ----------------------------------------------------------------- model
    def load(self, engine: Reviewer | None = None) -> None:
        """Load the local model once, placed on the GPU at start-up (ZeroGPU's convention too).
        Errors are kept and shown; the rest of the app still works."""
        try:
            if engine is None and self.settings.local_backend() == "served":  # an inference server
                from reviewgpt.remote.served_reviewer import ServedReviewer

                engine = ServedReviewer(self.settings.served_config())
            elif engine is None:
                engine = get_engine(self.settings.engine_config())
            self.engine = engine
            self.engine_key = gpu.register(engine)
            log.info("local model: %s (%s)", self.local_label.title, engine.info.describe())
        except (ModelLoadError, FileNotFoundError, ValueError, OSError) as e:
            self.load_error = str(e)
            log.error("local model not loaded: %s", e)
        server = without_credentials(self.settings.openai.resolved_base_url()) or OPENAI_HOST  # not on the page
        log.info("GPT side: %s", f"on ({self.gpt_label.detail}: {server})" if self._chat is not None
                 else f"off: {self.gpt_error}")

    @property
    def local_label(self) -> ModelLabel:
        return local_label(self.engine, self.is_demo)

    @property
    def can_run(self) -> bool:
        """At least one side can write a review (the page's Generate is enabled)."""
        return self.engine is not None or self._chat is not None

    @property
    def gpt_label(self) -> ModelLabel:
        oa = self.settings.openai
        return gpt_label(oa.reviewer_model, oa.resolved_base_url(), self._chat is not None)

    def models(self) -> dict[str, Any]:
        """Model ids for the downloads' provenance."""
        info = self.engine.info if self.engine else None
        oa = self.settings.openai
        return {"local": {"title": self.local_label.title, "base_model": _public(info.base_model) if info else None,
                          "adapter": _public(info.adapter) if info else None,
                          "detail": info.describe() if info else None, "demo": self.is_demo,
                          "schema_guide": self._guided()},
                "gpt": {"model": oa.reviewer_model, "base_url": without_credentials(oa.resolved_base_url()),
                        "available": self._chat is not None},
                "judge": {"model": oa.judge_model, "available": self._chat is not None}}

    def _guided(self) -> bool:
        """Schema-guided decoding is the in-process engine's option (EngineConfig.schema_guide)."""
        cfg = self.engine.config if self.engine else None
        return isinstance(cfg, EngineConfig) and cfg.schema_guide

    def banner(self) -> str:
        lines = []
        if self.is_demo and self.engine:
            lines.append("**Demo model.** No GPU here, so this runs the tiny demo-scale model bundled in `assets/` "
                         "(trained by `train/build_demo.py`). It reads the first "
                         f"{self.engine.config.max_prompt_tokens:,} prompt tokens of a paper (title, abstract, "
                         f"introduction; the 8B reads {RECIPE_MAX_PROMPT_TOKENS:,}) and shows the pipeline working, not review quality. "
                         + ("Its aspect headers are kept in the format's order by guided decoding; "
                            "every word under them is the model's. " if self._guided() else "")
                         + "Set `REVIEWGPT_BASE_MODEL` / `REVIEWGPT_ADAPTER` on a GPU machine for the real 8B reviewer.")
        if self.engine:
            # the base model without its adapter, and which decode step runs when an AOT package was asked for
            lines += [f"Note: {n}" for n in self.engine.info.notes if "BASE model" in n or n.startswith("Decoding:")]
        if self.load_error:
            lines.append(f"**Local model not loaded:** {self.load_error}")
        if self.gpt_error:
            lines.append(f"**{self.gpt_error}**")
        return "\n\n".join(lines)

    # ----------------------------------------------------------------- what the models read
    def remember(self, doc: Document) -> str:
        """A paper the API parsed and handed out (`/parse`'s "text" and "id"): a later call with exactly
        that text, or with the id, reads the Document with the page's section policy, not a plain cut of
        the text. Returns the id."""
        key = hashlib.sha256(doc.to_text().encode()).hexdigest()
        self._parsed[key] = doc
        while len(self._parsed) > PARSED_KEPT:
            self._parsed.pop(next(iter(self._parsed)))
        return PARSED_ID_PREFIX + key[:PARSED_ID_HEX]

    def paper_for(self, text: str) -> Document | str:
        """The Document `text` (or the id `text` names) was parsed from, if this service handed it out;
        else the text. An id this service no longer (or never) knew is an error, not a paper."""
        ref = text.strip()
        if ref.startswith(PARSED_ID_PREFIX) and len(ref) == len(PARSED_ID_PREFIX) + PARSED_ID_HEX:
            doc = next((d for k, d in self._parsed.items() if k.startswith(ref[len(PARSED_ID_PREFIX):])), None)
            if doc is None:
                raise UnknownPaperId(f"No parsed paper with the id {ref} here (the app keeps the last {PARSED_KEPT} "
                                     "parsed papers, and forgets them when it restarts): call parse again.")
            return doc
        return self._parsed.get(hashlib.sha256(text.encode()).hexdigest(), text)

    def prepare(self, paper: Document | str, schema: str, edited: bool = False) -> ModelInput:
        """The one ModelInput every model (local, GPT side, judge) reads for this paper and schema."""
        if self.engine is None:  # no tokenizer to count with: the whole text, said so in the summary
            return prepare(paper, schema, None, edited=edited)
        return self.engine.prepare(paper, schema, edited=edited)

    # ----------------------------------------------------------------- the three model calls
    def generation(self, suppression: float, temperature: float, seed: int | None = None) -> GenerationConfig:
        if not self.engine:
            raise ModelLoadError(self.load_error or "the local model is not loaded")
        return GenerationConfig(max_new_tokens=self.engine.config.max_new_tokens, suppression=suppression,
                                temperature=temperature, do_sample=temperature > 0, seed=seed)

    def stream_local(self, mi: ModelInput, gen: GenerationConfig,
                     stop: threading.Event | None = None) -> Iterator[str | MarkerReport]:
        """The local model's review: text pieces, then its MarkerReport when the engine records one."""
        if not self.engine or not self.engine_key:
            raise ModelLoadError(self.load_error or "the local model is not loaded")
        yield from gpu.stream_review(self.engine_key, mi, mi.schema, gen, stop)  # its counted ids, not re-encoded

    def stream_gpt(self, mi: ModelInput, temperature: float) -> Iterator[str]:
        """The GPT-4 side's review of the same ModelInput: text pieces."""
        if not self._chat:
            raise OpenAIConfigError(self.gpt_error or NO_KEY_MESSAGE)
        yield from GPTReviewer(self._chat, temperature=temperature).stream(mi.text, mi.schema)

    def judge(self, mi: ModelInput, review_a: str, review_b: str,
              human_reviews: list[str] | None = None) -> Verdict:
        if not self._chat:
            raise OpenAIConfigError(self.gpt_error or NO_KEY_MESSAGE)
        return PairwiseJudge(self._chat).compare(mi.schema, mi.text, review_a, review_b, human_reviews)

    # ----------------------------------------------------------------- a run of the page
    def new_run(self, mi: ModelInput, suppression: float, temperature: float, seed: int | None,
                paper_title: str, pdf_name: str | None, pdf_sha256: str | None,
                human: HumanReviews | None = None) -> Run:
        seed = seed if seed is not None and seed >= 0 else random.randrange(2**31)
        max_new = self.engine.config.max_new_tokens if self.engine else 0
        return Run(paper_title, pdf_name, pdf_sha256, mi,
                   RunSettings(mi.schema, suppression, temperature, seed, max_new),
                   Side(self.local_label), Side(self.gpt_label), human=human or HumanReviews())

    @property
    def busy(self) -> bool:
        """A run holds the GPU slot now (the page then tells a new run that it waits)."""
        return self._running > 0

    def execute(self, run: Run) -> Iterator[Run]:
        """Both reviews of run.model_input side by side, then the verdict (see run.drive)."""
        with self._running_lock:
            self._running += 1
        try:
            yield from self._execute(run)
        finally:
            with self._running_lock:
                self._running -= 1

    def _execute(self, run: Run) -> Iterator[Run]:
        s = run.settings
        unavailable: dict[str, str] = {}
        local = gpt = judge = None
        if self.engine:
            gen = self.generation(s.suppression, s.temperature, s.seed)
            local = lambda: self.stream_local(run.model_input, gen, run.stop)  # noqa: E731
        else:
            unavailable["local"] = self.load_error or "the local model is not loaded"
        if self._chat:
            gpt = lambda: self.stream_gpt(run.model_input, s.temperature)  # noqa: E731
            judge = lambda a, b: self.judge(run.model_input, a, b, run.human.texts or None)  # noqa: E731
        else:
            unavailable["gpt"] = unavailable["judge"] = self.gpt_error or NO_KEY_MESSAGE
        yield from drive(run, local, gpt, judge, unavailable)

    @property
    def version(self) -> str:
        return app_version()
