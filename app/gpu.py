"""The local model's GPU work, as Hugging Face ZeroGPU expects it: one module-level function.

On ZeroGPU (`SPACES_ZERO_GPU` set) `spaces.GPU` lends a GPU only while a decorated call runs, in a
worker process forked from the app: the function must live at module level and take and yield
picklable values. So it is given the engine's key in `_ENGINES` (filled at start-up, when the model
was already placed on CUDA), never the engine itself, and yields the text pieces and then the
marker report (plain dataclasses). A threading.Event cannot cross into that process, so on ZeroGPU
Stop ends the stream on the app's side. Elsewhere `spaces.GPU` is not applied and this is a plain
generator running in the app's process.
"""

from __future__ import annotations

import threading
from typing import Iterator, cast

from reviewgpt.config import GenerationConfig
from reviewgpt.prepare.model_input import ModelInput
from reviewgpt.generate.marker_probe import MarkerProbe, MarkerReport
from reviewgpt.reviewer import MarkerRecordingReviewer, Reviewer

from .settings import on_zero_gpu

GPU_SECONDS = 180  # the longest review on an H200 slice takes well under this

_ENGINES: dict[str, Reviewer] = {}


def register(engine: Reviewer) -> str:
    """Make an engine reachable from the GPU function; returns its key."""
    key = f"engine-{id(engine)}"
    _ENGINES[key] = engine
    return key


def _write_review(engine_key: str, paper: str | ModelInput, schema: str, gen: GenerationConfig,
                  stop: threading.Event | None = None) -> Iterator[str | MarkerReport]:
    engine = _ENGINES[engine_key]
    probe: MarkerProbe | None = None
    if engine.records_markers:  # the in-process engine: P(empty marker) at every step
        probe = MarkerProbe()
        pieces = cast(MarkerRecordingReviewer, engine).stream(paper, schema, gen, stop=stop, probe=probe)
    else:  # e.g. a server: text only
        pieces = engine.stream(paper, schema, gen, stop=stop)
    written = ""
    for piece in pieces:
        written += piece
        yield piece
    if probe is not None:
        yield probe.report(engine.tokenizer, schema, gen.suppression, text=written)


if on_zero_gpu():
    import spaces

    write_review = spaces.GPU(duration=GPU_SECONDS)(_write_review)
else:
    write_review = _write_review


def stream_review(engine_key: str, paper: str | ModelInput, schema: str, gen: GenerationConfig,
                  stop: threading.Event | None = None) -> Iterator[str | MarkerReport]:
    """Text pieces, then (when the engine records them) the MarkerReport."""
    if on_zero_gpu():
        for item in write_review(engine_key, paper, schema, gen):
            if stop is not None and stop.is_set():
                return
            yield item
    else:
        yield from write_review(engine_key, paper, schema, gen, stop)
