"""The one owner of what a model reads: `prepare(paper, schema, tokenizer) -> ModelInput`.

The app (UI and API), the GPT side, eval and the judge all take the paper text from one
`ModelInput`, so both reviewers and the judge read the same text, cut by the same budget policy
(`budget.fit_to_budget`: whole chat prompt counted with the local model's tokenizer, title /
abstract / introduction first). What was cut is recorded with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from reviewgpt.config import RECIPE_MAX_PROMPT_TOKENS
from reviewgpt.format.schema import ReviewSchema, get_schema
from reviewgpt.ingest.document import Document
from reviewgpt.prepare.budget import BudgetResult, fit_to_budget, tokenizer_key


@dataclass(frozen=True)
class ModelInput:
    """The paper as every model reads it for one schema."""

    schema: str  # "4" | "7"
    text: str  # the user turn: the paper after the budget
    source: str  # "parsed" (a Document, section policy) | "edited" (user-edited text, plain cut) | "text"
    budget: BudgetResult | None  # None: no tokenizer was available, the whole text is used

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def prompt_ids_for(self, tokenizer: Any) -> list[int] | None:
        """The prompt's token ids as the budget counted them, if `tokenizer` made them (else None)."""
        b = self.budget
        return list(b.prompt_ids) if b and b.prompt_ids and b.tokenizer == tokenizer_key(tokenizer) else None

    @property
    def was_cut(self) -> bool:
        return bool(self.budget and self.budget.was_cut)

    def summary(self) -> str:
        if self.budget is None:
            return "Whole paper (no tokenizer loaded to count the prompt budget)."
        edited = " Text edited by the user." if self.source == "edited" else ""
        return self.budget.summary() + edited

    def to_dict(self) -> dict[str, Any]:
        """What a result row records about the input (not the text itself)."""
        b = self.budget
        return {
            "schema": self.schema, "source": self.source, "text_sha256": self.sha256, "chars": len(self.text),
            "prompt_tokens": b.prompt_tokens if b else None, "budget": b.budget if b else None,
            "paper_tokens_total": b.paper_tokens_total if b else None,
            "paper_tokens_kept": b.paper_tokens_kept if b else None,
            "dropped_sections": list(b.dropped_sections) if b else [],
            "truncated_section": b.truncated_section if b else None,
        }


def prepare(paper: Document | str, schema: ReviewSchema | str, tokenizer: Any | None,
            max_prompt_tokens: int = RECIPE_MAX_PROMPT_TOKENS, edited: bool = False) -> ModelInput:
    """The paper text within the prompt budget.

    A Document goes through the section policy; a plain string (a user's edit, or a text-only API
    call) is cut at the end. Without a tokenizer nothing can be counted and the whole text is kept.
    """
    key = get_schema(schema).key
    source = "edited" if edited else ("parsed" if isinstance(paper, Document) else "text")
    if tokenizer is None:
        text = paper.to_text() if isinstance(paper, Document) else paper
        return ModelInput(key, text, source, None)
    budget = fit_to_budget(paper, tokenizer, key, max_prompt_tokens)
    return ModelInput(key, budget.text, source, budget)
