"""Schema-guided decoding: the review's aspect headers are written once each, in the schema's order.

A small model (the bundled demo model) loses count of where it is in a 7-aspect review: it repeats
a header, skips one, or goes on after the last. The guide fixes the *structure* and leaves every
word under a header to the model:

- The review starts with the first header (`## <criterion>` and its newline, forced).
- At the start of a line, every token that would begin a markdown header ("#...") is folded into
  the first token of the *next expected* header: their probabilities are summed onto it (in logit
  space, with logsumexp) and they are masked. If that token is then sampled, the rest of the header
  and its newline are forced. So the model still decides *when* the next aspect starts; the guide
  decides *which* header it is.
- Before the last header, the end of the review is not allowed: at a line start its mass goes to the
  next header, mid-line to a newline. After the last header a new header start becomes the end.
- Empty aspects are untouched: the marker `<No related terms>` is written (or suppressed) by the model
  and the suppression processor exactly as without the guide, and the marker probe reads the same
  step (the one right after a header's newline).

The guide is stateful (it follows each row's text from the first call on), so it declares no bounded
look-back and runs on transformers' `generate()` (the CPU path). It is set per model in
`EngineConfig.schema_guide` (the demo model's engine.yaml turns it on); the recipe's 8B runs without.
A header can still be missing when `max_new_tokens` ends the review first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch
from transformers import LogitsProcessor

from reviewgpt.format.schema import ReviewSchema, get_schema


@lru_cache(maxsize=8)
def _token_texts(tokenizer: Any) -> tuple[str, ...]:
    return tuple(tokenizer.batch_decode([[i] for i in range(len(tokenizer))], clean_up_tokenization_spaces=False))


@lru_cache(maxsize=16)
def _guide_tables(tokenizer: Any, schema_name: str) -> dict[str, Any]:
    schema = get_schema(schema_name)
    texts = _token_texts(tokenizer)
    special = set(tokenizer.all_special_ids)
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    if len(newline) != 1:
        raise ValueError("schema guide: this tokenizer has no single newline token")
    headers = [tokenizer(f"## {c}", add_special_tokens=False)["input_ids"] for c in schema.criteria]
    return {
        "headers": headers,
        "newline": newline[0],
        "hash": [i for i, t in enumerate(texts) if i not in special and t.lstrip(" \t\r\n").startswith("#")],
        "ends_line": [t.endswith("\n") for t in texts],
        "empty": [i in special or t == "" for i, t in enumerate(texts)],
    }


@dataclass
class _Row:
    headers_started: int = 0  # headers begun so far (their tokens are forced once begun)
    queue: list[int] = field(default_factory=list)  # tokens still to force
    line_start: bool = True  # the response so far is empty or ends with a newline


class SchemaGuideProcessor(LogitsProcessor):
    """Keep a review's headers to the schema: each once, in order (see module docstring)."""

    lookback = None  # reads every token since the first call (stateful): generate() only

    def __init__(self, tokenizer: Any, schema: ReviewSchema | str, end_ids: list[int]) -> None:
        self.schema = get_schema(schema)
        self._t = _guide_tables(tokenizer, self.schema.name)
        self.end_ids = list(end_ids)
        self._rows: list[_Row] | None = None
        self._hash: torch.Tensor | None = None  # header-start token ids, on the scores' device
        self._ends: torch.Tensor | None = None

    def _observe(self, row: _Row, token: int) -> None:
        """Update a row's state with the token just written."""
        t = self._t
        if row.queue:
            row.queue.pop(0)  # the forced token (the only one allowed) was written
        elif row.line_start and row.headers_started < len(t["headers"]) and token == t["headers"][row.headers_started][0]:
            row.queue = t["headers"][row.headers_started][1:] + [t["newline"]]
            row.headers_started += 1
        if not t["empty"][token]:
            row.line_start = t["ends_line"][token]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        t = self._t
        n = len(t["headers"])
        if self._rows is None:  # the first step: every row starts its review with the first header
            self._rows = [_Row(headers_started=1, queue=t["headers"][0] + [t["newline"]]) for _ in range(scores.shape[0])]
            self._hash = torch.tensor(t["hash"], dtype=torch.long, device=scores.device)
            self._ends = torch.tensor(self.end_ids, dtype=torch.long, device=scores.device)
        else:
            for row, token in zip(self._rows, input_ids[:, -1].tolist()):
                self._observe(row, token)
        scores = scores.clone()
        for i, row in enumerate(self._rows):
            s = scores[i]
            if row.queue:  # the only finite score: certain whatever the warpers after this do
                s.fill_(-float("inf"))
                s[row.queue[0]] = 0.0
            elif row.headers_started < n:
                # No end yet; at a line start a header start becomes the expected header's first token.
                target = t["headers"][row.headers_started][0] if row.line_start else t["newline"]
                _fold(s, torch.cat([self._ends, self._hash]) if row.line_start else self._ends, target)
            elif row.line_start:
                _fold(s, self._hash, self.end_ids[0])  # all headers written: a new header means the end
        return scores


def _fold(s: torch.Tensor, sources: torch.Tensor, target: int) -> None:
    """Move the probability of `sources` onto `target` (in place, logit space), then mask the sources."""
    sources = sources[sources != target]
    s[target] = torch.logsumexp(torch.cat([s[target].reshape(1), s[sources]]), 0)
    s[sources] = -float("inf")
