"""The paper's human reviews, given by the user for the judge (issue #26): pasted text, or a file:
an OpenReview forum export (the JSON of the forum's notes, API v1 or v2), the recipe's review files
(`{"reviews": [{"review": ...}]}`), or plain text. The judge's prompt takes them as its ground truth
(reviewgpt.compare.judge.judge_messages); the downloads record that they were given, how many and
their hash, and the JSON carries them."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEPARATOR = re.compile(r"^\s*(?:-{3,}|={3,})\s*$", re.M)  # a line of --- (or ===) between pasted reviews
# note content that is the submission's, not a review's (OpenReview puts both in one forum)
NOT_REVIEW_FIELDS = {"pdf", "authors", "authorids", "abstract", "keywords", "venue", "venueid", "_bibtex",
                     "paperhash", "code", "supplementary_material", "TL;DR", "tldr"}
MIN_WORDS = 20  # shorter notes (a "thanks", an acknowledgement) are not reviews


class HumanReviewsError(ValueError):
    """A file that holds no readable review; the message is for the user."""


@dataclass
class HumanReviews:
    texts: list[str] = field(default_factory=list)
    source: str = ""  # "pasted", or the file's name

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.texts, ensure_ascii=False).encode()).hexdigest() if self.texts else ""

    def record(self) -> dict[str, Any]:
        """What every download's header says about them (the texts themselves are in the JSON)."""
        return {"given": bool(self.texts), "count": len(self.texts), "source": self.source or None,
                "sha256": self.sha256 or None}


def split_pasted(text: str) -> list[str]:
    """Reviews pasted into one box, separated by a line of --- (one review when there is none)."""
    return [t.strip() for t in SEPARATOR.split(text or "") if t.strip()]


def _value(v: Any) -> str:
    """A note field as text: OpenReview v2 wraps each value as {"value": ...}."""
    if isinstance(v, dict):
        v = v.get("value", "")
    if isinstance(v, list):
        v = ", ".join(str(x) for x in v)
    return str(v).strip() if v is not None else ""


def _is_review(note: dict) -> bool:
    invitations = note.get("invitations") or [note.get("invitation") or ""]
    if any(re.search(r"Official_Review|/Review$|Meta_Review", str(i)) for i in invitations):
        return True
    content = note.get("content") or {}
    return not any(k in content for k in ("abstract", "pdf")) and any(k in content for k in ("review", "rating"))


def _note_text(note: dict) -> str:
    """A review note's fields in their order, e.g. 'Summary: ...\\n\\nWeaknesses: ...' (v2), or its review (v1)."""
    content = note.get("content") or note
    parts = []
    for key, v in content.items():
        text = _value(v)
        if not text or key in NOT_REVIEW_FIELDS:
            continue
        parts.append(text if key == "review" else f"{key.replace('_', ' ').capitalize()}: {text}")
    return "\n\n".join(parts)


def from_json(data: Any) -> list[str]:
    """The reviews in an OpenReview forum export or a recipe review file."""
    if isinstance(data, dict) and isinstance(data.get("reviews"), list):  # the recipe's review files
        return [str(r.get("review", "")).strip() for r in data["reviews"] if str(r.get("review", "")).strip()]
    notes = data.get("notes") if isinstance(data, dict) else data
    if not isinstance(notes, list):
        return []
    out = []
    for note in notes:
        if isinstance(note, dict) and _is_review(note):
            text = _note_text(note)
            if len(text.split()) >= MIN_WORDS:
                out.append(text)
    return out


def read(pasted: str | None, file: str | None) -> HumanReviews:
    """The reviews the user gave: the file's when a file is given, else the pasted ones."""
    if file:
        raw = Path(file).read_text(encoding="utf-8", errors="replace")
        name = Path(file).name
        try:
            texts = from_json(json.loads(raw))
        except json.JSONDecodeError:
            if name.lower().endswith(".json"):
                raise HumanReviewsError(f"{name} is not valid JSON: export the forum's notes from OpenReview, "
                                        "or paste the reviews as text.") from None
            texts = split_pasted(raw)
        if not texts:
            raise HumanReviewsError(f"No reviews found in {name}: expected an OpenReview forum export (its notes, "
                                    "with the official reviews) or reviews as text separated by lines of ---.")
        return HumanReviews(texts, name)
    texts = split_pasted(pasted or "")
    return HumanReviews(texts, "pasted" if texts else "")


def describe(h: HumanReviews) -> str:
    """One line for the page and the verdict file."""
    if not h.texts:
        return "No human reviews were given: the judge compares the two reviews against the paper itself."
    n = len(h.texts)
    where = "pasted" if h.source == "pasted" else f"from {h.source}"
    return (f"The judge compares against {n} human review{'s' if n != 1 else ''} ({where}; "
            f"sha256 {h.sha256[:12]}...).")
