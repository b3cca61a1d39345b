"""The calibrated rating of a review, for the page, the downloads and the API (issue #24): one place
that loads the bundled model and words its result."""

from __future__ import annotations

import logging
from typing import Any

from reviewgpt.rating.artifact import ArtifactError, default_model, read_metrics
from reviewgpt.rating.model import LABEL

log = logging.getLogger(__name__)


def rate(review: str) -> dict[str, Any]:
    """{rating, low, high, p_accept, calibrated, reason, label, model}; never raises for a missing
    or unloadable model: it says so in `reason` and the review stands without a rating."""
    try:
        r = default_model().rate([review])[0].to_dict()
        return {**r, "label": LABEL, "model": read_metrics().get("version", "")}
    except ArtifactError as e:
        log.warning("no calibrated rating: %s", e)
        return {"rating": None, "low": None, "high": None, "p_accept": None, "calibrated": False,
                "reason": f"rating model unavailable: {e}", "label": LABEL, "model": ""}


def rating_text(r: dict[str, Any] | None) -> str:
    """One line: '6.4 (80% interval 4.7-8.1) · P(accept) 0.41', or why there is none."""
    if not r:
        return ""
    if not r.get("calibrated"):
        return f"not calibrated: {r.get('reason') or 'no rating'}"
    return f"{r['rating']:.1f} (80% interval {r['low']:.1f}-{r['high']:.1f}) · P(accept) {r['p_accept']:.2f}"
