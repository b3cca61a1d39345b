"""P(empty marker) per aspect, before and after suppression, read from the logits the processor sees."""

import pytest
import torch

from reviewgpt.config import EngineConfig, GenerationConfig
from reviewgpt.format.review_format import criterion_of_header
from reviewgpt.format.schema import EMPTY_MARKER, get_schema
from reviewgpt.generate.engine import _FastDecoder, load_engine
from reviewgpt.generate.marker_probe import MarkerProbe
from reviewgpt.generate.suppression import marker_start_token_ids
from reviewgpt.prepare.chat import encode_prompt

from .conftest import MARKER_PAPER

CRITERIA = get_schema("4").criteria
PAPER = MARKER_PAPER  # the session's marker model learned to review this paper: marker after headers 1 and 3


@pytest.fixture(scope="module")
def engine(marker_model_dir):
    return load_engine(EngineConfig(base_model=str(marker_model_dir), local_files_only=True, max_prompt_tokens=1024,
                                    max_new_tokens=160))


def _gen(s: float) -> GenerationConfig:
    return GenerationConfig(max_new_tokens=160, do_sample=False, suppression=s)


def _direct(engine, generated: list[int], k: int) -> float:
    """P(marker start) at step k computed straight from the model's logits."""
    ids = torch.tensor([encode_prompt(engine.tokenizer, "4", PAPER) + generated[:k]])
    with torch.no_grad():
        logits = engine.model(input_ids=ids).logits[0, -1].float()
    return torch.softmax(logits, -1)[marker_start_token_ids(engine.tokenizer)].sum().item()


def test_probabilities_equal_the_models_logits_after_each_header(engine):
    probe = MarkerProbe()
    text = engine.generate(PAPER, "4", _gen(0.0), probe=probe)
    report = probe.report(engine.tokenizer, "4", 0.0, text=text)
    assert [a.criterion for a in report.aspects] == list(CRITERIA)
    assert all(a.present for a in report.aspects), text  # the trained model writes every header
    assert report.empty_count == 2 and [a.empty for a in report.aspects] == [True, False, True, False]
    generated = engine.tokenizer(text, add_special_tokens=False)["input_ids"]
    tokens, before, _ = probe.series()
    assert tokens == generated[: len(tokens)]
    for a in report.aspects:
        k = before.index(a.p_before)
        line = engine.tokenizer.decode(generated[:k]).rstrip("\n").rsplit("\n", 1)[-1]
        assert criterion_of_header(line, "4") == CRITERIA.index(a.criterion)  # the step right after the header
        assert a.p_before == pytest.approx(_direct(engine, generated, k), abs=1e-5)
        assert a.p_after == a.p_before  # s = 0: nothing changes
    # the model learned where the marker goes: high after headers 1 and 3, low after 2 and 4
    p = [a.p_before for a in report.aspects]
    assert min(p[0], p[2]) > 0.5 > max(p[1], p[3])


# Relative float32 error of a probability read as exp(logsumexp(marker) - logsumexp(all)): each
# logsumexp is off by ~ulp x its magnitude (logits of tens: ~2e-6); 4e-6 bounds both with room.
P_REL_ERR = 4e-6


def _formula(s: float, p: float) -> float:
    return (1 - s) * p / (1 - s * p)


def _formula_tolerance(s: float, p: float) -> float:
    """How far a measured p_after may sit from the formula at a measured p_before, both with relative
    error P_REL_ERR: f(p) x err + f'(p) x p x err. The slope f'(p) = (1 - s) / (1 - s p)^2 is ~20 at
    s = 0.95 and p near 1, where a fixed tolerance failed (0.992788 vs 0.992803 at p = 0.99964)."""
    slope = (1 - s) / (1 - s * p) ** 2 if s * p < 1 else 0.0
    return P_REL_ERR * (_formula(s, p) + slope * p)


@pytest.mark.parametrize("s", [0.5, 0.95, 1.0])
def test_after_follows_the_suppression_formula(engine, s):
    probe = MarkerProbe()
    text = engine.generate(PAPER, "4", _gen(s), probe=probe)
    report = probe.report(engine.tokenizer, "4", s, text=text)
    seen = [a for a in report.aspects if a.p_before is not None]
    assert seen
    for a in seen:
        assert a.p_after == pytest.approx(_formula(s, a.p_before), abs=_formula_tolerance(s, a.p_before))
    if s == 1.0:
        assert report.empty_count == 0 and EMPTY_MARKER not in text


def test_probe_reads_the_same_on_the_fast_decoder_loop(engine):
    """The static-cache loop (run eagerly on the CPU) records the same numbers as generate()."""
    gen = _gen(0.95)
    ref = MarkerProbe()
    engine.generate(PAPER, "4", gen, probe=ref)
    ids = encode_prompt(engine.tokenizer, "4", PAPER)
    fast = _FastDecoder(engine.model, max_cache_len=len(ids) + 170, tokenizer=engine.tokenizer, compile=False)
    probe = MarkerProbe()
    fast.generate(ids, gen, engine._processors(gen, probe), engine.end_ids)
    assert probe.series()[0] == ref.series()[0]
    assert probe.series()[1] == pytest.approx(ref.series()[1], abs=1e-5)


def test_streaming_with_a_probe_reports_like_generate(engine):
    probe = MarkerProbe()
    text = "".join(engine.stream(PAPER, "4", _gen(0.95), probe=probe))
    d = probe.report(engine.tokenizer, "4", 0.95, text=text).to_dict()
    assert d["strength"] == 0.95 and len(d["aspects"]) == 4
    assert {"criterion", "present", "p_before", "p_after", "empty"} <= set(d["aspects"][0])
