"""Fit a paper into the prompt's token budget and say what was cut.

Policy: the budget counts the whole prompt (system prompt, chat headers and paper) with the model's
own tokenizer. Title, abstract and introduction are taken first, then the other sections in
document order, appendices last. The first block that does not fit whole is cut at a token
boundary to fill the budget exactly; everything after it is dropped. The kept blocks are put back
in document order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reviewgpt.prepare.chat import encode_prompt
from reviewgpt.ingest.document import Document, is_appendix, is_introduction
from reviewgpt.format.schema import ReviewSchema

TRUNCATION_NOTE = " [...]"
_SEP = "\n\n"


@dataclass
class BudgetResult:
    text: str  # the paper text to put in the user turn
    prompt_tokens: int  # tokens of the whole prompt with this text
    budget: int
    paper_tokens_total: int  # tokens the whole paper would take
    paper_tokens_kept: int
    dropped_sections: list[str] = field(default_factory=list)
    truncated_section: str | None = None
    # The prompt's token ids as counted (the chat template around `text`), so that the model that
    # reads it need not encode it again; which tokenizer made them: `tokenizer_key`.
    prompt_ids: list[int] = field(default_factory=list, repr=False)
    tokenizer: str = ""

    @property
    def tokens_dropped(self) -> int:
        return self.paper_tokens_total - self.paper_tokens_kept

    @property
    def was_cut(self) -> bool:
        return bool(self.dropped_sections or self.truncated_section)

    def summary(self) -> str:
        head = f"{self.prompt_tokens:,} / {self.budget:,} prompt tokens"
        if not self.was_cut:
            return f"{head}; the whole paper fits."
        parts = [f"{head}; {self.tokens_dropped:,} paper tokens cut"]
        if self.truncated_section:
            parts.append(f"'{self.truncated_section}' shortened")
        if self.dropped_sections:
            parts.append("dropped: " + ", ".join(f"'{s}'" for s in self.dropped_sections))
        return "; ".join(parts) + "."


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def fit_to_budget(doc: Document | str, tokenizer: Any, schema: ReviewSchema | str,
                  max_prompt_tokens: int) -> BudgetResult:
    """Choose the paper text so that the full chat prompt has at most `max_prompt_tokens` tokens."""
    if isinstance(doc, str):
        blocks = [("(text)", doc)]
    else:
        blocks = doc.section_texts()
    overhead = len(encode_prompt(tokenizer, schema, ""))
    available = max_prompt_tokens - overhead
    if available <= 0:
        raise ValueError(f"max_prompt_tokens={max_prompt_tokens} leaves no room for the paper "
                         f"(the prompt scaffolding alone takes {overhead} tokens)")
    sizes = [_count(tokenizer, text) + _count(tokenizer, _SEP) for _, text in blocks]
    total = sum(sizes)

    def priority(i: int) -> tuple[int, int]:
        label = blocks[i][0]
        if label in ("Title", "Abstract") or is_introduction(label):
            return (0, i)
        if is_appendix(label):
            return (2, i)
        return (1, i)

    kept: dict[int, str] = {}
    used = 0
    truncated = None
    dropped: list[str] = []
    for i in sorted(range(len(blocks)), key=priority):
        label, text = blocks[i]
        if truncated is not None or used >= available:
            dropped.append(label)
            continue
        if used + sizes[i] <= available:
            kept[i] = text
            used += sizes[i]
            continue
        # Cut this block at a token boundary to fill the remaining budget.
        room = available - used - _count(tokenizer, TRUNCATION_NOTE + _SEP)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if room > 0:
            kept[i] = tokenizer.decode(ids[:room]) + TRUNCATION_NOTE
            used += _count(tokenizer, kept[i]) + _count(tokenizer, _SEP)
            truncated = label
        else:
            dropped.append(label)
            truncated = truncated or ""
    truncated = truncated or None
    text = _SEP.join(kept[i] for i in sorted(kept))
    prompt_ids = encode_prompt(tokenizer, schema, text)
    # Re-tokenising joined text can differ by a few tokens from the sum of the parts: trim to fit.
    while len(prompt_ids) > max_prompt_tokens:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        text = tokenizer.decode(ids[: len(ids) - (len(prompt_ids) - max_prompt_tokens) - 1])
        prompt_ids = encode_prompt(tokenizer, schema, text)
    return BudgetResult(text=text, prompt_tokens=len(prompt_ids), budget=max_prompt_tokens,
                        paper_tokens_total=total, paper_tokens_kept=min(used, total),
                        dropped_sections=dropped, truncated_section=truncated, prompt_ids=prompt_ids,
                        tokenizer=tokenizer_key(tokenizer))


def tokenizer_key(tokenizer: Any) -> str:
    """Which tokenizer made a set of ids: its name or folder, its vocabulary size and class."""
    return f"{getattr(tokenizer, 'name_or_path', '')}|{len(tokenizer)}|{type(tokenizer).__name__}"
