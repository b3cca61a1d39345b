"""The GPT-4 baseline reviewer: same schema prompt, same review format, same parser."""

from __future__ import annotations

from typing import Iterator

from reviewgpt.format.schema import EMPTY_MARKER, ReviewSchema, get_schema
from reviewgpt.prompts import load_prompt
from reviewgpt.remote.openai_client import OpenAIChat


# The recipe's criteria whose items are weaknesses or questions: each of them quotes the paper, so a
# reader can check it against the page (reviewgpt.grounding verifies the quote and finds its page).
_CRITICAL = ("rejection", "suggestion", "comments")


def quoted_criteria(schema: ReviewSchema | str) -> list[str]:
    """The schema's criteria whose items the GPT reviewer anchors with a verbatim quote."""
    return [c for c in get_schema(schema).criteria if any(k in c.lower() for k in _CRITICAL)]


def reviewer_messages(schema: ReviewSchema | str, paper_text: str) -> list[dict[str, str]]:
    """The schema's system prompt (as the fine-tuned model sees it) plus the format the parser reads.

    The fine-tuned model learned the format from its training targets; a general model needs it
    spelled out, or the two reviews would not be comparable. Its weaknesses and questions also
    carry one short verbatim quote each (within the recipe's aspects, no new section).
    """
    schema = get_schema(schema)
    fmt = load_prompt("reviewer_format").format(
        marker=EMPTY_MARKER, criteria="\n".join(f"## {c}" for c in schema.criteria),
        quoted=", ".join(f'"{c}"' for c in quoted_criteria(schema)))
    return [{"role": "system", "content": f"{schema.system_prompt}\n\n{fmt}"},
            {"role": "user", "content": paper_text}]


class GPTReviewer:
    def __init__(self, chat: OpenAIChat, model: str | None = None, temperature: float | None = None) -> None:
        self.chat = chat
        self.model = model or chat.config.reviewer_model
        self.temperature = chat.config.temperature if temperature is None else temperature

    def stream(self, paper_text: str, schema: ReviewSchema | str) -> Iterator[str]:
        yield from self.chat.stream(reviewer_messages(schema, paper_text), self.model, self.temperature)

    def review(self, paper_text: str, schema: ReviewSchema | str) -> str:
        return self.chat.complete(reviewer_messages(schema, paper_text), self.model, self.temperature)
