"""The report's numbers: win/tie/loss with bootstrap CIs, order consistency, length-controlled win
rate, and per-aspect empty-item rates and item-count variance. Plain numpy, no hidden state."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reviewgpt.compare.judge import NO_VERDICT
from reviewgpt.format.review_format import parse
from reviewgpt.format.schema import get_schema


@dataclass
class MatchupStats:
    matchup: str
    n: int  # papers with a verdict
    wins: int  # a wins
    ties: int
    losses: int  # b wins
    no_verdict: int
    win_rate: float  # (wins + ties / 2) / n: the share of the comparison A takes
    win_rate_ci: tuple[float, float]
    wins_ci: tuple[float, float]  # share of outright wins
    losses_ci: tuple[float, float]
    order_consistency: float  # share of papers whose two orders agreed (ties included)
    lc_win_rate: float  # length-controlled (regression on the length difference)
    mean_len_a: float
    mean_len_b: float


def outcome(winner: str) -> float | None:
    """A's score: 1 win, 0.5 tie, 0 loss; None for no verdict (excluded, never a win)."""
    return {"A": 1.0, "tie": 0.5, "B": 0.0}.get(winner) if winner != NO_VERDICT else None


def bootstrap_ci(values: np.ndarray, samples: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap of the mean, resampling papers."""
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(samples, len(values)))
    means = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))


def length_controlled_win_rate(y: np.ndarray, len_a: np.ndarray, len_b: np.ndarray, iters: int = 50) -> float:
    """As length-controlled AlpacaEval: fit P(A wins) = sigmoid(b0 + b1 * tanh(diff / std(diff))) by
    (fractional) logistic regression, then report sigmoid(b0), the win rate at equal length."""
    if len(y) == 0:
        return float("nan")
    diff = len_a - len_b
    scale = diff.std() or 1.0
    X = np.stack([np.ones_like(diff, dtype=float), np.tanh(diff / scale)], axis=1)
    beta = np.zeros(2)
    for _ in range(iters):  # Newton's method with a small ridge for separable data
        p = 1 / (1 + np.exp(-X @ beta))
        grad = X.T @ (y - p) - 1e-3 * beta
        hess = (X * (p * (1 - p))[:, None]).T @ X + 1e-3 * np.eye(2)
        beta += np.linalg.solve(hess, grad)
    return float(1 / (1 + np.exp(-beta[0])))


def review_length(text: str) -> int:
    return len(text.split())


def matchup_stats(key: str, rows: list[dict], lengths: dict[tuple[str, str, str], int], samples: int,
                  seed: int) -> MatchupStats:
    judged = [r for r in rows if outcome(r["winner"]) is not None]
    y = np.array([outcome(r["winner"]) for r in judged], dtype=float)
    la = np.array([lengths[(r["a"], r["schema"], r["id"])] for r in judged], dtype=float)
    lb = np.array([lengths[(r["b"], r["schema"], r["id"])] for r in judged], dtype=float)
    n = len(judged)
    return MatchupStats(
        matchup=key, n=n,
        wins=int((y == 1).sum()), ties=int((y == 0.5).sum()), losses=int((y == 0).sum()),
        no_verdict=len(rows) - n,
        win_rate=float(y.mean()) if n else float("nan"),
        win_rate_ci=bootstrap_ci(y, samples, seed),
        wins_ci=bootstrap_ci((y == 1).astype(float), samples, seed),
        losses_ci=bootstrap_ci((y == 0).astype(float), samples, seed),
        order_consistency=float(np.mean([r["consistent"] for r in judged])) if n else float("nan"),
        lc_win_rate=length_controlled_win_rate(y, la, lb),
        mean_len_a=float(la.mean()) if n else float("nan"), mean_len_b=float(lb.mean()) if n else float("nan"))


@dataclass
class AspectStats:
    system: str
    schema: str
    reviews: int
    empty_rate: float  # share of all aspects (over all reviews) that are empty or missing
    empty_by_aspect: dict[str, float]
    items_mean_by_aspect: dict[str, float]
    items_var_by_aspect: dict[str, float]  # population variance of the item count per aspect
    items_var_mean: float  # mean over aspects of that variance (the recipe: suppression lowers it)
    mean_words: float


def aspect_stats(system: str, schema: str, texts: list[str]) -> AspectStats:
    sch = get_schema(schema)
    reports = [parse(t, sch).report for t in texts]
    empty = {c: float(np.mean([not r.criteria[i].present or r.criteria[i].empty for r in reports]))
             for i, c in enumerate(sch.criteria)}
    counts = {c: np.array([r.criteria[i].item_count for r in reports], dtype=float) for i, c in enumerate(sch.criteria)}
    var = {c: float(v.var()) for c, v in counts.items()}
    return AspectStats(system, schema, len(texts), float(np.mean(list(empty.values()))), empty,
                       {c: float(v.mean()) for c, v in counts.items()}, var, float(np.mean(list(var.values()))),
                       float(np.mean([review_length(t) for t in texts])))
