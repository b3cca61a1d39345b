from reviewgpt.prepare.chat import (ASSISTANT_HEADER, BOS, EOT, FIXED_DATE, encode_example, encode_prompt, end_token_ids,
                            render_example, render_prompt)
from reviewgpt.testing.local_tokenizer import llama31_chat_template
from reviewgpt.format.schema import SEVEN_ASPECT


def test_tokenizer_carries_llama31_special_tokens_and_template(tokenizer):
    for tok in ("<|begin_of_text|>", "<|eot_id|>", "<|eom_id|>", "<|start_header_id|>", "<|end_header_id|>",
                "<|finetune_right_pad_id|>", "<|python_tag|>", "<|reserved_special_token_247|>"):
        assert tokenizer.convert_tokens_to_ids(tok) != tokenizer.unk_token_id
        assert len(tokenizer(tok, add_special_tokens=False)["input_ids"]) == 1
    assert "Cutting Knowledge Date" in tokenizer.chat_template
    assert len(end_token_ids(tokenizer)) == 3


def test_inference_prompt_has_one_assistant_header_and_one_bos(tokenizer):
    text = render_prompt(tokenizer, "7", "Paper text here.")
    assert text.startswith(BOS + "<|start_header_id|>system<|end_header_id|>\n\n")
    assert f"Today Date: {FIXED_DATE}" in text
    assert SEVEN_ASPECT.system_prompt in text and "Paper text here." in text
    assert text.endswith(ASSISTANT_HEADER) and text.count(ASSISTANT_HEADER) == 1
    ids = encode_prompt(tokenizer, "7", "Paper text here.")
    bos = tokenizer.convert_tokens_to_ids(BOS)
    assert ids[0] == bos and ids.count(bos) == 1


def test_training_example_ends_with_review_and_eot(tokenizer):
    prompt, completion = render_example(tokenizer, "4", "Paper.", "## Review\n1. **A**: b.\n")
    assert completion == "## Review\n1. **A**: b." + EOT
    ex = encode_example(tokenizer, "4", "Paper.", "## Review\n1. **A**: b.\n")
    ids, mask = ex["input_ids"], ex["completion_mask"]
    assert ids[-1] == tokenizer.convert_tokens_to_ids(EOT)
    assert tokenizer.decode([i for i, m in zip(ids, mask) if m]) == completion
    assert tokenizer.decode([i for i, m in zip(ids, mask) if not m]) == prompt
    assert ids.count(tokenizer.convert_tokens_to_ids(BOS)) == 1
    # prompt part of training == inference prompt, token for token
    assert [i for i, m in zip(ids, mask) if not m] == encode_prompt(tokenizer, "4", "Paper.")


def test_stray_assistant_header_from_july_2024_template_is_removed(tokenizer):
    # The July 2024 template bug: a generation header even with add_generation_prompt=False.
    buggy = llama31_chat_template().replace(
        "{%- if add_generation_prompt %}\n    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}",
        "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}")
    assert buggy != llama31_chat_template()
    original = tokenizer.chat_template
    tokenizer.chat_template = buggy
    try:
        raw = tokenizer.apply_chat_template([{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
                                            tokenize=False, add_generation_prompt=False)
        assert raw.endswith(ASSISTANT_HEADER)  # the bug is really there
        prompt, completion = render_example(tokenizer, "4", "Paper.", "Review.")
        assert completion == "Review." + EOT
        assert prompt.count(ASSISTANT_HEADER) == 1
    finally:
        tokenizer.chat_template = original
