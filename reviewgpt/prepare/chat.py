"""Llama 3.1 chat formatting: one function family for training and inference.

system = the schema's prompt, user = the paper text, assistant = the review. The template is the
tokenizer's own (Llama 3.1's); the date string is fixed so that training and inference see the
same system header whatever day it is.
"""

from __future__ import annotations

from typing import Any

from reviewgpt.format.schema import ReviewSchema, get_schema

FIXED_DATE = "26 Jul 2024"  # Llama 3.1's own default; any fixed value works, it must not drift
ASSISTANT_HEADER = "<|start_header_id|>assistant<|end_header_id|>\n\n"
BOS = "<|begin_of_text|>"
EOT = "<|eot_id|>"
# Llama 3.1 Instruct stops on any of these (its generation_config lists all three).
END_TOKENS = ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>")


def build_messages(schema: ReviewSchema | str, paper_text: str, review_text: str | None = None) -> list[dict[str, str]]:
    schema = get_schema(schema)
    messages = [
        {"role": "system", "content": schema.system_prompt},
        {"role": "user", "content": paper_text},
    ]
    if review_text is not None:
        messages.append({"role": "assistant", "content": review_text})
    return messages


def _apply(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt, date_string=FIXED_DATE
    )


def render_prompt(tokenizer: Any, schema: ReviewSchema | str, paper_text: str) -> str:
    """The inference prompt text: system + user + exactly one assistant header."""
    text = _apply(tokenizer, build_messages(schema, paper_text), generation_prompt=True)
    while text.endswith(ASSISTANT_HEADER * 2):  # never two headers, whatever the template does
        text = text[: -len(ASSISTANT_HEADER)]
    if not text.endswith(ASSISTANT_HEADER):
        raise ValueError("the tokenizer's chat template is not Llama 3.1's: no assistant header at the end")
    return text


def render_example(tokenizer: Any, schema: ReviewSchema | str, paper_text: str, review_text: str) -> tuple[str, str]:
    """(prompt, completion) texts of one training example.

    The completion is the review followed by <|eot_id|>. Known trap: the Llama 3.1 template of
    July 2024 appended an assistant header even with add_generation_prompt=False; such a stray
    header after the final <|eot_id|> is cut here so the model never learns to emit one.
    """
    prompt = render_prompt(tokenizer, schema, paper_text)
    full = _apply(tokenizer, build_messages(schema, paper_text, review_text.strip()), generation_prompt=False)
    while full.endswith(ASSISTANT_HEADER):
        full = full[: -len(ASSISTANT_HEADER)]
    if not full.startswith(prompt) or not full.endswith(EOT):
        raise ValueError("chat template does not render the prompt as a prefix of the full conversation")
    return prompt, full[len(prompt):]


def encode_prompt(tokenizer: Any, schema: ReviewSchema | str, paper_text: str) -> list[int]:
    # The template already writes <|begin_of_text|>: adding special tokens would double the BOS.
    return tokenizer(render_prompt(tokenizer, schema, paper_text), add_special_tokens=False)["input_ids"]


def encode_example(tokenizer: Any, schema: ReviewSchema | str, paper_text: str, review_text: str) -> dict[str, list[int]]:
    """Token ids of prompt + completion and a completion mask (1 = trained on: review and end token).

    The prompt and completion are tokenised separately, exactly as at inference, where the model
    continues from the prompt's ids; the Llama 3 pre-tokeniser splits at the header's newlines so
    this equals tokenising the joined text.
    """
    prompt, completion = render_example(tokenizer, schema, paper_text, review_text)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    return {"input_ids": p_ids + c_ids, "completion_mask": [0] * len(p_ids) + [1] * len(c_ids)}


def end_token_ids(tokenizer: Any) -> list[int]:
    """Ids of every Llama 3.1 end token the tokenizer knows (generation stops on any)."""
    ids = []
    for tok in END_TOKENS:
        tid = tokenizer.convert_tokens_to_ids(tok)
        if tid is not None and tid != tokenizer.unk_token_id and tid not in ids:
            ids.append(tid)
    if not ids:
        raise ValueError("tokenizer knows none of the Llama 3.1 end tokens")
    return ids
