"""A rating a model wrote itself at the end of its review (trained with data prep's opt-in
`rating_target`, reviewgpt.training.data.prepare): written and read here, one owner of the format."""

from __future__ import annotations

import re

# "Overall rating: 6.3 / 10 (decision: Accept)": the last line of a review trained with the rating target.
_OWN = re.compile(r"^[ \t*#]*overall rating\**[ \t]*:[ \t]*\**[ \t]*(\d+(?:\.\d+)?)[ \t]*(?:/[ \t]*10)?",
                  re.I | re.M)
_OWN_LINE = re.compile(_OWN.pattern + r".*$\n?", re.I | re.M)


def rating_line(mean_rating: float, decision: str) -> str:
    """The line data prep appends to a training target: the human mean rating and the decision."""
    return f"Overall rating: {mean_rating:.1f} / 10 (decision: {decision or 'unknown'})"


def without_own_rating(review: str) -> str:
    """The review with its 'Overall rating' lines taken out: the calibrated rating reads the review
    alone, not the number the model wrote (which would otherwise be read as a stated score)."""
    return _OWN_LINE.sub("", review or "").rstrip()


def own_rating(review: str) -> float | None:
    """The last 'Overall rating: X / 10' a review states, if any (on the 1-10 scale)."""
    found = [float(m.group(1)) for m in _OWN.finditer(review or "")]
    found = [x for x in found if 1 <= x <= 10]
    return found[-1] if found else None
