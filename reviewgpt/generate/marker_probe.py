"""What the suppression slider does, per aspect: P(start the empty marker) before and after.

The suppression processor already computes, at every decoding step, the logits it penalises. A
`MarkerProbe` handed to it records, per step and batch row, the probability mass of the tokens
that start `<No related terms>` in the model's raw distribution (`p_before`) and after the
penalty (`p_after`), plus the token the step followed. No extra forward pass, no host sync while
decoding: the records stay on the device until `report()`.

`report()` then finds, for each aspect, the step right after that aspect's header line (the text
written so far ends with the header and a newline) and reads both numbers there. By the
processor's semantics p_after = (1 - s) p / (1 - s p); at s = 0 the two are equal.

Caveat, as in suppression.py: a bare "<" is not a marker start by itself (it also begins "<5%");
when a tokenizer writes the marker as "<" + "No ...", the penalty falls on the next token, and the
probability shown at the header is the mass of the tokens that start the marker unambiguously.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from reviewgpt.format.review_format import criterion_of_header, parse
from reviewgpt.format.schema import ReviewSchema, get_schema


@dataclass
class AspectMarker:
    criterion: str
    present: bool  # the model wrote this aspect's header
    p_before: float | None  # P(start the marker) right after the header, raw model; None if no header
    p_after: float | None  # the same after suppression (what the sampler drew from)
    empty: bool  # the aspect holds only the marker


@dataclass
class MarkerReport:
    strength: float
    aspects: list[AspectMarker] = field(default_factory=list)

    @property
    def empty_count(self) -> int:
        return sum(1 for a in self.aspects if a.present and a.empty)

    @property
    def missing_count(self) -> int:
        return sum(1 for a in self.aspects if not a.present)

    def to_dict(self) -> dict[str, Any]:
        return {"strength": self.strength, "empty_count": self.empty_count, "missing_count": self.missing_count,
                "aspects": [asdict(a) for a in self.aspects]}


def marker_mass(scores: torch.Tensor, start_ids: torch.Tensor) -> torch.Tensor:
    """Per row, the softmax probability mass of `start_ids` under `scores` (computed in float32)."""
    s = scores.float()
    return torch.exp(torch.logsumexp(s[:, start_ids], dim=-1) - torch.logsumexp(s, dim=-1))


class MarkerProbe:
    """Recorder filled by SequenceSuppressionProcessor; one per generation call."""

    def __init__(self) -> None:
        self._last: list[torch.Tensor] = []  # the token each step followed, (batch,)
        self._before: list[torch.Tensor] = []
        self._after: list[torch.Tensor] = []

    def record(self, last_token: torch.Tensor, p_before: torch.Tensor, p_after: torch.Tensor) -> None:
        self._last.append(last_token.detach())
        self._before.append(p_before.detach())
        self._after.append(p_after.detach())

    @property
    def steps(self) -> int:
        return len(self._last)

    def series(self, row: int = 0) -> tuple[list[int], list[float], list[float]]:
        """(generated tokens g_0..g_{n-2}, p_before per step, p_after per step) for one batch row.

        Step k's scores choose g_k and follow g_{k-1} (step 0 follows the prompt), so the tokens
        seen are all generated tokens but the last.
        """
        if not self._last:
            return [], [], []
        last = torch.stack(self._last)[:, row].tolist()
        before = torch.stack(self._before)[:, row].double().tolist()
        after = torch.stack(self._after)[:, row].double().tolist()
        return last[1:], before, after

    def report(self, tokenizer: Any, schema: ReviewSchema | str, strength: float, text: str | None = None,
               row: int = 0) -> MarkerReport:
        """Per aspect: P(empty) right after its header, before and after suppression; empty or not.

        `text` is the final review (its last token is not among the recorded steps); without it the
        recorded tokens are decoded.
        """
        schema = get_schema(schema)
        tokens, before, after = self.series(row)
        at: dict[int, int] = {}  # criterion index -> step right after its header line
        for k in range(len(before)):
            # Only where the text so far can end with a newline: decode the prefix then.
            if k == 0 or "\n" not in tokenizer.decode(tokens[k - 1:k], skip_special_tokens=True):
                continue
            prefix = tokenizer.decode(tokens[:k], skip_special_tokens=True)
            stripped = prefix.rstrip(" \t")
            if not stripped.endswith("\n"):
                continue
            line = stripped.rstrip("\n").rsplit("\n", 1)[-1]
            idx = criterion_of_header(line, schema)
            if idx is not None and idx not in at:
                at[idx] = k
        final = text if text is not None else tokenizer.decode(tokens, skip_special_tokens=True)
        parsed = parse(final, schema).report
        aspects = []
        for i, c in enumerate(parsed.criteria):
            k = at.get(i)
            aspects.append(AspectMarker(c.criterion, c.present, before[k] if k is not None else None,
                                        after[k] if k is not None else None, c.present and c.empty))
        return MarkerReport(strength, aspects)
