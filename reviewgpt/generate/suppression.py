"""Sequence suppression of the empty-item marker `<No related terms>` (the recipe's slider).

Semantics, exactly. Strength s in [0, 1]. At every decoding position the processor finds the
tokens that would *start* the marker there and multiplies their total probability by (1 - s);
softmax renormalises the rest, so a start token of probability p_t ends at
(1 - s) p_t / (1 - s P) and any other token at p_t / (1 - s P), with P the summed start mass.
This is done in logit space by adding log(1 - s) to the start tokens (-inf at s = 1), which keeps
the ratios among unrelated tokens unchanged. s = 0 installs no processor at all.

"Starting the marker" is detected on text, not on a hard-coded id list, so it holds for any
tokenizer and for every way the marker can be split after the text before it:
- A token starts the marker when its text, with leading whitespace removed, is a prefix of the
  marker at least 2 characters long ("<N", "<No", " <No", "\n<No related", ...), or contains the
  whole marker after whitespace. Two characters, because a bare "<" also begins "<5%" or "<br>".
- A bare "<" (at a word boundary) is therefore not penalised; the *next* token is, when it
  continues "<" into the marker ("No", "No related", ...). Either way each marker occurrence
  gets the factor once, at the token where the text first becomes an unambiguous marker start.
The id sets are computed once per tokenizer from its vocabulary.

Look-back: the processor reads the last two tokens of `input_ids` (`lookback = 2`), so a decoder
may hand it a window of that many. Given a `MarkerProbe` it also records, per step, the marker-start
probability before and after the penalty (marker_probe.py); with a probe it is installed even at
s = 0, where it changes nothing and only records.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch
from transformers import LogitsProcessor

from reviewgpt.format.schema import EMPTY_MARKER
from reviewgpt.generate.marker_probe import MarkerProbe, marker_mass

_MIN_START = 2  # characters of the marker a token must reach to count as starting it


@lru_cache(maxsize=8)
def _marker_token_sets(tokenizer: Any, marker: str) -> dict[str, list[int]]:
    vocab_size = len(tokenizer)
    texts = tokenizer.batch_decode([[i] for i in range(vocab_size)], clean_up_tokenization_spaces=False)
    special = set(tokenizer.all_special_ids)
    start, lt_bare, lt_ws, after_lt, ws_end = [], [], [], [], []
    for i, t in enumerate(texts):
        if i in special or not t:
            continue
        s = t.lstrip()
        if s and (len(s) >= _MIN_START and marker.startswith(s) or s.startswith(marker)):
            start.append(i)
        if s == "<":
            (lt_ws if s != t else lt_bare).append(i)
        cont = "<" + t
        if not t[:1].isspace() and len(cont) >= _MIN_START and (marker.startswith(cont) or cont.startswith(marker)):
            after_lt.append(i)
        if t[-1:].isspace():
            ws_end.append(i)
    return {"start": start, "lt_bare": lt_bare, "lt_ws": lt_ws, "after_lt": after_lt, "ws_end": ws_end}


def marker_start_token_ids(tokenizer: Any, marker: str = EMPTY_MARKER) -> list[int]:
    """Ids of tokens that start the marker by themselves (see module docstring)."""
    return list(_marker_token_sets(tokenizer, marker)["start"])


def suppression_penalty(strength: float) -> float:
    """What suppression strength s adds to a marker-start logit: log(1 - s) (-inf at s = 1), so that
    P(marker) p becomes (1 - s) p / (1 - s p)."""
    return -math.inf if strength >= 1.0 else math.log1p(-strength)


class SequenceSuppressionProcessor(LogitsProcessor):
    """Multiply the probability of starting `marker` by (1 - strength) at every position."""

    lookback = 2  # trailing tokens of input_ids read by __call__ (the last one and the one before)

    def __init__(self, tokenizer: Any, strength: float, marker: str = EMPTY_MARKER,
                 device: torch.device | str | None = None, probe: MarkerProbe | None = None) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"suppression strength must be in [0, 1], got {strength}")
        sets = _marker_token_sets(tokenizer, marker)
        if not sets["start"] and not sets["after_lt"]:
            raise ValueError(f"no token of this tokenizer can start {marker!r}")
        self.strength = strength
        self.penalty = suppression_penalty(strength)
        self.vocab_size = len(tokenizer)
        self._device = device
        self._sets = sets
        self._tensors: dict[str, torch.Tensor] | None = None
        self.probe = probe

    def _on(self, device: torch.device) -> dict[str, torch.Tensor]:
        if self._tensors is None or self._tensors["start"].device != device:
            t = {k: torch.tensor(v, dtype=torch.long, device=device) for k, v in self._sets.items() if k != "ws_end"}
            ws = torch.zeros(self.vocab_size, dtype=torch.bool, device=device)
            ws[torch.tensor(self._sets["ws_end"], dtype=torch.long, device=device)] = True
            t["ws_end"] = ws
            self._tensors = t
        return self._tensors

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        t = self._on(scores.device)
        raw = scores
        if self.strength > 0:
            scores = self._penalise(input_ids, scores, t)
        if self.probe is not None:
            self.probe.record(input_ids[:, -1], marker_mass(raw, t["start"]), marker_mass(scores, t["start"]))
        return scores

    def _penalise(self, input_ids: torch.LongTensor, scores: torch.FloatTensor,
                  t: dict[str, torch.Tensor]) -> torch.FloatTensor:
        scores = scores.clone()
        scores[:, t["start"]] += self.penalty
        if t["after_lt"].numel() and input_ids.shape[1] >= 1:
            last = input_ids[:, -1]
            prev = input_ids[:, -2] if input_ids.shape[1] >= 2 else last
            ws_prev = t["ws_end"][prev.clamp(max=self.vocab_size - 1)]
            after_boundary_lt = torch.isin(last, t["lt_ws"]) | (torch.isin(last, t["lt_bare"]) & ws_prev)
            penalty = torch.where(after_boundary_lt, self.penalty, 0.0).to(scores.dtype)
            scores[:, t["after_lt"]] += penalty[:, None]
        return scores
