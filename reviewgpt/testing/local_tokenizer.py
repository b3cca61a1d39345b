"""Build a small Llama-3.1-style tokenizer locally (no download).

Byte-level BPE with Llama 3's pre-tokeniser regex, the 256 Llama 3.1 special tokens with their
real names and order, and the real Llama 3.1 chat template. Used by the tests and by the bundled
demo-scale model; the 8B model uses its own tokenizer from the Hub.
"""

from __future__ import annotations

from importlib import resources
from typing import Iterable

LLAMA3_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def llama31_special_tokens() -> list[str]:
    """The 256 special tokens of Llama 3.1, in id order (128000..128255 in the real vocabulary)."""
    named = [
        "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
        "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
    ]
    return named + [f"<|reserved_special_token_{i}|>" for i in range(3, 248)]


def llama31_chat_template() -> str:
    return resources.files("reviewgpt").joinpath("templates/llama31_chat_template.jinja").read_text()


def format_corpus(repeats: int = 64) -> list[str]:
    """The review format's fixed strings (system prompts, headers, the empty marker).

    A reviewer model writes these in every answer, so a tokenizer built for it should know them as
    merges; without this a small corpus leaves `<No related terms>` split into single letters.
    """
    from reviewgpt.format.schema import EMPTY_MARKER, SCHEMAS

    texts = []
    for schema in SCHEMAS.values():
        texts.append(schema.system_prompt)
        texts += [f"## {c}\n{EMPTY_MARKER}\n\n## {c}\n1. **Point**: text.\n" for c in schema.criteria]
    return texts * repeats


def build_llama31_tokenizer(corpus: Iterable[str], vocab_size: int = 4096):
    """Train a byte-level BPE on `corpus` (plus the review format's strings) and wrap it as a Llama
    3.1-like fast tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([*corpus, *format_corpus()], trainer=trainer)
    tok.add_special_tokens(llama31_special_tokens())
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|finetune_right_pad_id|>",
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )
    fast.chat_template = llama31_chat_template()
    return fast
