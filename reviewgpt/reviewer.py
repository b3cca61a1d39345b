"""`Reviewer`: what the app and eval call on the local (fine-tuned) reviewer, whichever runs it.

Two implementations: `reviewgpt.generate.engine.ReviewEngine` (the model in this process) and
`reviewgpt.remote.served_reviewer.ServedReviewer` (the same model behind an OpenAI-compatible
server). This module only states the surface: it imports neither of them, nor torch, so that
both sides and their callers depend on it and not on each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Protocol, runtime_checkable

if TYPE_CHECKING:
    import threading

    from reviewgpt.config import GenerationConfig
    from reviewgpt.format.schema import ReviewSchema
    from reviewgpt.generate.marker_probe import MarkerProbe
    from reviewgpt.ingest.document import Document
    from reviewgpt.prepare.model_input import ModelInput


@runtime_checkable
class ReviewerInfo(Protocol):
    """What a reviewer says about itself (ReviewEngine's LoadInfo, ServedInfo): the app's labels."""

    @property
    def base_model(self) -> str: ...

    @property
    def adapter(self) -> str | None: ...

    @property
    def notes(self) -> list[str]: ...

    def describe(self) -> str: ...


@runtime_checkable
class ReviewerLimits(Protocol):
    """The part of a reviewer's configuration its callers read (EngineConfig, ServedConfig)."""

    @property
    def max_prompt_tokens(self) -> int: ...

    @property
    def max_new_tokens(self) -> int: ...


@runtime_checkable
class Reviewer(Protocol):
    """The local reviewer: a paper's prompt in, review text out.

    `paper` is the ModelInput `prepare()` made (or its text); it must fit `config.max_prompt_tokens`.
    """

    @property
    def info(self) -> ReviewerInfo: ...

    @property
    def config(self) -> ReviewerLimits: ...

    @property
    def tokenizer(self) -> Any: ...  # the reviewer's own (transformers) tokenizer: budget and suppression ids

    @property
    def records_markers(self) -> bool:
        """Whether `stream` also takes `probe=MarkerProbe()` and fills it with P(empty marker) at every
        step (see MarkerRecordingReviewer): the in-process engine does; a server gives no per-step
        probabilities, so the served reviewer cannot."""
        ...

    def prepare(self, paper: Document | str, schema: ReviewSchema | str, edited: bool = False) -> ModelInput:
        """The paper as this reviewer reads it: `prepare()` with its tokenizer and prompt budget."""
        ...

    def stream(self, paper: str | ModelInput, schema: ReviewSchema | str, gen: GenerationConfig | None = None, /, *,
               stop: threading.Event | None = None) -> Iterator[str]:
        """The review as it is written, in pieces; `stop` set ends it early. `paper`: the text the model
        reads, or the ModelInput `prepare` made of it (its counted prompt ids are reused where they fit)."""
        ...

    def generate(self, paper: str | ModelInput, schema: ReviewSchema | str, gen: GenerationConfig | None = None, /
                 ) -> str:
        ...

    def generate_batch(self, paper_texts: list[str] | list[ModelInput], schema: ReviewSchema | str,
                       gen: GenerationConfig | None = None, /) -> list[str]:
        """One review per text, in input order (eval's throughput path)."""
        ...


class MarkerRecordingReviewer(Reviewer, Protocol):
    """A Reviewer whose `records_markers` is True: `stream` fills a MarkerProbe as it decodes."""

    def stream(self, paper: str | ModelInput, schema: ReviewSchema | str, gen: GenerationConfig | None = None, /, *,
               stop: threading.Event | None = None, probe: MarkerProbe | None = None) -> Iterator[str]: ...


__all__ = ["Reviewer", "ReviewerInfo", "ReviewerLimits", "MarkerRecordingReviewer"]
