"""The calibrated rating of a review, for the page, the downloads and the API (issue #24): one place
that loads the bundled model and words its result."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from reviewgpt.rating.artifact import ArtifactError, default_model, read_metrics
from reviewgpt.rating.model import LABEL
from reviewgpt.rating.own import own_rating

from .render import escape

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _model_version() -> str:
    """The bundled model's version, read once per process as the model is."""
    return read_metrics().get("version", "")


def load() -> str:
    """Load the model (and the sentiment lexicon its features read) now, at start-up, so the first
    review's rating does not wait for it; '' when it loaded, else why not (the app starts anyway and
    each rating says why it is missing)."""
    try:
        default_model().predict_point(["The paper is clearly written."])
        _model_version()
        return ""
    except (ArtifactError, ImportError) as e:
        log.warning("no calibrated rating: %s", e)
        return str(e)


def rate(review: str) -> dict[str, Any]:
    """{rating, low, high, p_accept, calibrated, reason, label, model}; never raises for a missing
    or unloadable model: it says so in `reason` and the review stands without a rating."""
    try:
        r = default_model().rate_reviews([review])[0].to_dict()
        return {**r, "label": LABEL, "model": _model_version()}
    except (ArtifactError, ImportError) as e:  # no model, another scikit-learn, vaderSentiment missing
        log.warning("no calibrated rating: %s", e)
        return {"rating": None, "low": None, "high": None, "p_accept": None, "calibrated": False,
                "reason": f"rating model unavailable: {e}", "label": LABEL, "model": ""}


# the page's words (the downloads and the API keep their field names: p_accept, calibrated, reason)
ACCEPT = "chance of acceptance"
NONE = "no calibrated rating"


def chance(p: float) -> str:
    """A probability as the page says it: '41%'."""
    return f"{p:.0%}"


def rating_text(r: dict[str, Any] | None) -> str:
    """One line: 'calibrated rating (ICLR 1-10): 6.4 (80% interval 4.7-8.1) · chance of acceptance 41%',
    or 'no calibrated rating: ' and why not."""
    if not r:
        return ""
    if not r.get("calibrated"):
        return f"{NONE}: {r.get('reason') or 'no rating'}"
    return (f"calibrated rating (ICLR 1-10): {r['rating']:.1f} (80% interval {r['low']:.1f}-{r['high']:.1f}) · "
            f"{ACCEPT} {chance(r['p_accept'])}")


def rate_run(run: Any) -> None:
    """Each side's review (a run's Side with text) gets its calibrated rating and the rating the
    model wrote itself, if it wrote one; set when the run ends, before the downloads are written."""
    for side in (run.local, run.gpt):
        if side.text.strip():
            side.rating = {**rate(side.text), "own_rating": own_rating(side.text)}


def ratings_markdown(run: Any) -> str:
    """The verdict area's side-by-side ratings; '' when neither side has a review."""
    sides = [s for s in (run.local, run.gpt) if getattr(s, "rating", None)]
    if not sides:
        return ""
    head = "| | " + " | ".join(escape(s.label.title) for s in sides) + " |"
    rows = [head, "|---|" + "---|" * len(sides)]

    def cell(s: Any, key: str) -> str:
        r = s.rating
        if not r["calibrated"]:
            return "none (see below)" if key == "rating" else "-"
        if key == "rating":
            return f"{r['rating']:.1f} (80% interval {r['low']:.1f}-{r['high']:.1f})"
        return chance(r["p_accept"])

    rows.append("| calibrated rating, ICLR 1-10 | " + " | ".join(cell(s, "rating") for s in sides) + " |")
    rows.append(f"| {ACCEPT} | " + " | ".join(cell(s, "p_accept") for s in sides) + " |")
    if any(s.rating.get("own_rating") is not None for s in sides):
        rows.append("| rating the model wrote itself | " + " | ".join(
            "-" if s.rating.get("own_rating") is None else f"{s.rating['own_rating']:.1f}" for s in sides) + " |")
    notes = [f"{escape(s.label.title)}: {NONE}: {escape(s.rating['reason'])}" for s in sides
             if not s.rating["calibrated"]]
    cut = [escape(s.label.title) for s in sides if run.cut_short(s)]
    partial = f" Of a partial review, the run was stopped before its end: {', '.join(cut)}." if cut else ""
    return "\n".join(["#### Calibrated rating", "", f"*{LABEL[0].upper() + LABEL[1:]}.{partial}*", "", *rows]
                     + (["", *[f"- {n}" for n in notes]] if notes else []))
