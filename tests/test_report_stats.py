"""The report's length-adjusted win rate comes with a CI and a flag, and missing headers are not counted as empty."""

import numpy as np
import pytest

from reviewgpt.compare.evaluation.stats import UNSTABLE_CI_WIDTH, aspect_stats, matchup_stats
from reviewgpt.format.schema import EMPTY_MARKER, get_schema

CRITERIA = get_schema("4").criteria


def _rows(outcomes: list[str], len_a: list[int], len_b: list[int]):
    rows, lengths = [], {}
    for i, (w, a, b) in enumerate(zip(outcomes, len_a, len_b)):
        rows.append({"winner": w, "consistent": True, "review_a": f"a{i}", "review_b": f"b{i}"})
        lengths[f"a{i}"], lengths[f"b{i}"] = a, b
    return rows, lengths


def test_a_small_matchup_gets_a_wide_ci_and_is_flagged_unstable():
    """The issue's case: n = 10, 20% raw, near-equal mean lengths (299 vs 302 words): the adjusted
    rate moved a lot, and its bootstrap CI says it is not determined."""
    outcomes = ["A", "A", "B", "B", "B", "B", "B", "B", "B", "B"]
    len_a = [299, 310, 280, 305, 300, 290, 310, 300, 295, 301]
    len_b = [a + d for a, d in zip(len_a, [3, -5, 2, 1, 8, -2, 4, 1, 0, 3])]
    rows, lengths = _rows(outcomes, len_a, len_b)
    m = matchup_stats("m", rows, lengths, samples=500, seed=0)
    lo, hi = m.length_adjusted_ci
    assert m.win_rate == pytest.approx(0.2) and lo <= m.length_adjusted_win_rate <= hi
    assert hi - lo > UNSTABLE_CI_WIDTH and m.length_adjustment_unstable and not m.length_adjustment_extrapolated


def test_a_large_matchup_is_not_flagged():
    rng = np.random.default_rng(1)
    n = 400
    len_b = rng.normal(300, 40, n).round()
    len_a = len_b + rng.normal(0, 40, n).round()
    outcomes = list(rng.choice(["A", "B", "tie"], n, p=[0.6, 0.3, 0.1]))
    rows, lengths = _rows(outcomes, list(len_a), list(len_b))
    m = matchup_stats("m", rows, lengths, samples=300, seed=0)
    assert not m.length_adjustment_unstable and m.length_adjusted_ci[1] - m.length_adjusted_ci[0] < 0.15


def test_missing_headers_and_empty_aspects_are_counted_apart():
    full = "\n\n".join(f"## {c}\n1. **Point**: text." for c in CRITERIA)
    one_empty = full.replace(f"## {CRITERIA[1]}\n1. **Point**: text.", f"## {CRITERIA[1]}\n{EMPTY_MARKER}")
    one_missing = "\n\n".join(f"## {c}\n1. **Point**: text." for c in CRITERIA[:3])
    s = aspect_stats("x", "4", [full, one_empty, one_missing, one_missing], samples=200, seed=0)
    assert s.empty_rate == pytest.approx(1 / 16) and s.missing_rate == pytest.approx(2 / 16)
    assert s.empty_by_aspect[CRITERIA[1]] == 0.25 and s.missing_by_aspect[CRITERIA[3]] == 0.5
    assert s.empty_by_aspect[CRITERIA[3]] == 0.0  # a missing header is not an empty aspect
    assert s.empty_rate_ci[0] <= s.empty_rate <= s.empty_rate_ci[1]
