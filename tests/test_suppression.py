import math

import pytest
import torch

from reviewgpt.format.schema import EMPTY_MARKER
from reviewgpt.generate.suppression import SequenceSuppressionProcessor, marker_start_token_ids


@pytest.fixture(scope="module")
def prone(marker_model_dir):
    """The session's marker model (conftest.marker_model_dir): a tiny Llama trained to write the
    empty marker after every other aspect header of its one review."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(marker_model_dir, dtype=torch.float32).eval()


def _context(tokenizer):
    """The marker model's training sequence up to its second marker (the third aspect's): the prompt,
    a header answered with the marker, one with a point, then the header the marker follows."""
    from reviewgpt.prepare.chat import encode_example

    from .conftest import MARKER_PAPER, marker_review

    ids = encode_example(tokenizer, "4", MARKER_PAPER, marker_review("4"))["input_ids"]
    starts = [i for i, t in enumerate(ids) if t in set(marker_start_token_ids(tokenizer))]
    assert len(starts) == 2, starts  # aspects 0 and 2 of 4
    return torch.tensor([ids[:starts[1]]])


def test_start_ids_come_from_the_tokenizer(tokenizer):
    ids = marker_start_token_ids(tokenizer)
    assert ids
    for i in ids:
        s = tokenizer.decode([i]).lstrip()
        assert EMPTY_MARKER.startswith(s) or s.startswith(EMPTY_MARKER)
    # Every way the marker is tokenised after typical preceding text starts with a start token,
    # or with a bare "<" followed by a continuation token that the processor handles.
    for prefix in ("", " ", "\n", "\n\n", "## Header\n", "1. ", "- ", ": "):
        full = tokenizer(prefix + EMPTY_MARKER, add_special_tokens=False)["input_ids"]
        pre = tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else []
        first = full[len(pre)] if full[: len(pre)] == pre else None
        if first is None:  # prefix merged with the marker start: that merged token must be a start
            first = full[len(pre) - 1]
        assert first in ids or tokenizer.decode([first]).strip() == "<", (prefix, tokenizer.decode([first]))


@pytest.mark.parametrize("s", [0.25, 0.5, 0.9, 0.95])
def test_marker_start_probability_follows_the_formula(prone, tokenizer, s):
    ctx = _context(tokenizer)
    with torch.no_grad():
        logits = prone(ctx).logits[:, -1, :].double()  # p is near 1: float32 rounding would dominate
    ids = marker_start_token_ids(tokenizer)
    p = torch.softmax(logits, -1)[0, ids].sum().item()
    assert p > 0.3  # the model really prefers the marker here
    out = SequenceSuppressionProcessor(tokenizer, s)(ctx, logits)
    q = torch.softmax(out, -1)[0, ids].sum().item()
    assert q == pytest.approx((1 - s) * p / (1 - s * p), rel=1e-4, abs=1e-6)


def test_unrelated_tokens_keep_their_relative_probabilities(prone, tokenizer):
    ctx = _context(tokenizer)
    with torch.no_grad():
        logits = prone(ctx).logits[:, -1, :]
    ids = set(marker_start_token_ids(tokenizer))
    others = [i for i in range(logits.shape[-1]) if i not in ids][:500]
    before = torch.log_softmax(logits, -1)[0, others]
    after = torch.log_softmax(SequenceSuppressionProcessor(tokenizer, 0.95)(ctx, logits), -1)[0, others]
    diff = (after - before)
    assert torch.allclose(diff, diff[0].expand_as(diff), atol=1e-4)  # a constant shift = same ratios


def test_bare_lt_then_continuation_is_suppressed(tokenizer):
    proc = SequenceSuppressionProcessor(tokenizer, 0.5)
    sets = proc._sets
    if not sets["after_lt"] or not (sets["lt_bare"] or sets["lt_ws"]):
        pytest.skip("this tokenizer never splits the marker after a bare '<'")
    lt = (sets["lt_ws"] or sets["lt_bare"])[0]
    nl = tokenizer("\n", add_special_tokens=False)["input_ids"][-1]
    ctx = torch.tensor([[nl, lt]])
    logits = torch.zeros(1, len(tokenizer))
    out = proc(ctx, logits)
    assert out[0, sets["after_lt"][0]].item() == pytest.approx(math.log(0.5))
    # after an ordinary token, continuation tokens are untouched
    word = tokenizer("paper", add_special_tokens=False)["input_ids"][0]
    assert proc(torch.tensor([[nl, word]]), logits)[0, sets["after_lt"][0]].item() == 0.0


def test_strength_zero_installs_nothing_and_greedy_is_identical(prone, tokenizer):
    from reviewgpt.config import GenerationConfig
    from reviewgpt.generate.engine import build_logits_processors
    assert len(build_logits_processors(tokenizer, GenerationConfig(suppression=0.0))) == 0
    ctx = _context(tokenizer)
    plain = prone.generate(ctx, max_new_tokens=20, do_sample=False)
    with_proc = prone.generate(ctx, max_new_tokens=20, do_sample=False,
                               logits_processor=build_logits_processors(tokenizer, GenerationConfig(suppression=0.0)))
    assert torch.equal(plain, with_proc)
    assert EMPTY_MARKER in tokenizer.decode(plain[0, ctx.shape[1]:])  # the model does emit it greedily


def test_strength_one_never_emits_the_marker(prone, tokenizer):
    ctx = _context(tokenizer).repeat(16, 1)
    proc = SequenceSuppressionProcessor(tokenizer, 1.0)
    torch.manual_seed(0)
    base = prone.generate(ctx, max_new_tokens=24, do_sample=True, temperature=1.0, top_k=0)
    torch.manual_seed(0)
    out = prone.generate(ctx, max_new_tokens=24, do_sample=True, temperature=1.0, top_k=0,
                         logits_processor=[proc])
    base_texts = tokenizer.batch_decode(base[:, ctx.shape[1]:])
    texts = tokenizer.batch_decode(out[:, ctx.shape[1]:])
    assert sum(EMPTY_MARKER in t for t in base_texts) >= 8  # without it, most samples are empty items
    assert not any("<No" in t for t in texts)


def test_invalid_strength_rejected(tokenizer):
    with pytest.raises(ValueError):
        SequenceSuppressionProcessor(tokenizer, 1.5)
