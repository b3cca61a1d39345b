"""What the page shows for the slider: P(empty) per aspect before -> after suppression, checked
against the tiny marker model's own logits at the step right after each header."""

import pytest
import torch

from app import render
from app.service import ReviewService
from app.settings import AppSettings
from reviewgpt.format.review_format import criterion_of_header, parse
from reviewgpt.generate.suppression import marker_start_token_ids
from reviewgpt.prepare.chat import encode_prompt

from .conftest import MARKER_PAPER


@pytest.fixture(scope="module")
def service(marker_model_dir):
    s = ReviewService(AppSettings(base_model=str(marker_model_dir), demo=False, max_new_tokens=120))
    s.load()
    assert s.engine is not None, s.load_error
    return s


def _direct(service, mi, generated: list[int], k: int) -> float:
    """P(start the marker) at generation step k, straight from the model's logits."""
    ids = torch.tensor([encode_prompt(service.engine.tokenizer, mi.schema, mi.text) + generated[:k]])
    with torch.no_grad():
        logits = service.engine.model(input_ids=ids).logits[0, -1].float()
    return torch.softmax(logits, -1)[marker_start_token_ids(service.engine.tokenizer)].sum().item()


def _after_header_steps(tokenizer, generated: list[int], schema: str) -> dict[int, int]:
    steps: dict[int, int] = {}
    for k in range(1, len(generated)):
        prefix = tokenizer.decode(generated[:k]).rstrip(" \t")
        if prefix.endswith("\n"):
            idx = criterion_of_header(prefix.rstrip("\n").rsplit("\n", 1)[-1], schema)
            if idx is not None and idx not in steps:
                steps[idx] = k
    return steps


@pytest.mark.parametrize("s", [0.0, 0.95])
def test_shown_probabilities_are_the_models_own(service, s):
    mi = service.prepare(MARKER_PAPER, "4")
    run = service.new_run(mi, s, 0.0, 0, "T", None, None)
    last = list(service.execute(run))[-1]
    markers, text = last.local.markers, last.local.text
    assert markers is not None and markers.strength == s
    tok = service.engine.tokenizer
    generated = tok(text, add_special_tokens=False)["input_ids"]
    steps = _after_header_steps(tok, generated, "4")
    present = [a for a in markers.aspects if a.present]
    assert len(present) >= 2, text  # precondition: the model wrote headers
    shown = render.stats(parse(text, "4").report, markers)
    for a in present:
        k = steps[[m.criterion for m in markers.aspects].index(a.criterion)]
        p = _direct(service, mi, generated, k)
        assert a.p_before == pytest.approx(p, abs=1e-5)
        # the formula, on the probe's own p (near p = 1 it amplifies float32 rounding of p ~17x)
        assert a.p_after == pytest.approx(a.p_before if s == 0 else (1 - s) * a.p_before / (1 - s * a.p_before),
                                          rel=1e-4)
        expected_after = p if s == 0 else (1 - s) * p / (1 - s * p)
        assert f"{p:.2f} → {expected_after:.2f}" in shown  # what the page shows for this aspect
    if s == 0:
        assert all(a.p_before == a.p_after for a in present)
    assert f"**{markers.empty_count} of 4 aspects empty**" in shown
