"""The report's numbers: win/tie/loss with bootstrap CIs, order consistency, a length-adjusted win
rate, how much of each paper was cut, and per-aspect empty-item rates and item-count variance.
Plain numpy, no hidden state."""

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
    length_adjusted_win_rate: float  # logistic regression on tanh(length difference), at equal length
    mean_len_a: float
    mean_len_b: float
    # the length difference never changed sign: "equal length" lies outside the data and the
    # adjusted rate is an extrapolation (AlpacaEval warns on such extreme changes too)
    length_adjustment_extrapolated: bool = False
    length_adjusted_ci: tuple[float, float] = (float("nan"), float("nan"))  # bootstrap over papers, refitted
    # extrapolated, or its CI wider than UNSTABLE_CI_WIDTH: a number to read as "not determined"
    length_adjustment_unstable: bool = False


# A length-adjusted rate whose 95% CI spans more than this (30 points) does not say much: flagged.
UNSTABLE_CI_WIDTH = 0.3

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


def length_adjusted_win_rate(y: np.ndarray, len_a: np.ndarray, len_b: np.ndarray, iters: int = 50) -> float:
    """A's win rate at equal length: fit P(A wins) = sigmoid(b0 + b1 * tanh(d / std(d))), d = len_a -
    len_b in words, by (fractional: ties are 0.5) logistic regression, and report sigmoid(b0).

    This is only the length term of AlpacaEval 2's length-controlled win rate, not that metric.
    AlpacaEval's GLM (Dubois et al. 2024; alpaca_eval/metrics/glm_winrate.py) is
    logistic(theta_m - theta_b + phi_m,b * tanh(d / std(d)) + (psi_m - psi_b) * gamma_x), where
    gamma_x is a per-instruction difficulty estimated beforehand from every model on its leaderboard
    against the same baseline, the fit is L1-regularised with cross-validation and regularised
    towards "gamed" baselines (the baseline prompted to be verbose / concise), and the reported
    number is the mean over instructions of the prediction at d = 0. An eval of two or three
    systems has no leaderboard to estimate gamma_x from and no gamed baselines, so we fit the
    length term alone (with the difficulty term gone, the mean prediction at d = 0 is sigmoid(b0)).
    """
    if len(y) == 0:
        return float("nan")
    return float(_length_fits(y[None], (len_a - len_b)[None], iters)[0])


def _length_fits(y: np.ndarray, diff: np.ndarray, iters: int) -> np.ndarray:
    """`length_adjusted_win_rate` of each row of (samples, n) outcomes and length differences at once:
    Newton's method with a small ridge (for separable data), the 2 x 2 system solved in closed form."""
    scale = diff.std(axis=1, keepdims=True)
    t = np.tanh(diff / np.where(scale == 0, 1.0, scale))
    b0, b1 = np.zeros(len(y)), np.zeros(len(y))
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(b0[:, None] + b1[:, None] * t)))
        r, w = y - p, p * (1 - p)
        g0, g1 = r.sum(1) - 1e-3 * b0, (r * t).sum(1) - 1e-3 * b1
        h00, h01, h11 = w.sum(1) + 1e-3, (w * t).sum(1), (w * t * t).sum(1) + 1e-3
        det = h00 * h11 - h01 * h01
        b0, b1 = b0 + (h11 * g0 - h01 * g1) / det, b1 + (h00 * g1 - h01 * g0) / det
    return 1 / (1 + np.exp(-b0))


# Resamples x papers fitted in one array: about 100 MB of the fit's temporaries at most
BOOTSTRAP_CHUNK = 1_000_000


def length_adjusted_ci(y: np.ndarray, len_a: np.ndarray, len_b: np.ndarray, samples: int, seed: int,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap of `length_adjusted_win_rate`, resampling papers and refitting (all the
    resamples in one array: 2,000 of them one by one took 3 s a matchup)."""
    if len(y) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(y), size=(samples, len(y)))  # 48 MB at 3,000 papers, as before
    rows = max(1, BOOTSTRAP_CHUNK // len(y))
    chunks = np.split(i, range(rows, samples, rows))
    fits = np.concatenate([_length_fits(y[c], len_a[c] - len_b[c], iters=25) for c in chunks])
    lo, hi = np.quantile(fits, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))


def review_length(text: str) -> int:
    return len(text.split())


def matchup_stats(key: str, rows: list[dict], lengths: dict[str, int], samples: int, seed: int) -> MatchupStats:
    """`rows`: the matchup's judgements; `lengths`: words of each review by review key."""
    judged = [r for r in rows if outcome(r["winner"]) is not None]
    y = np.array([outcome(r["winner"]) for r in judged], dtype=float)
    la = np.array([lengths[r["review_a"]] for r in judged], dtype=float)
    lb = np.array([lengths[r["review_b"]] for r in judged], dtype=float)
    n = len(judged)
    extrapolated = bool(n) and (bool(np.all(la > lb)) or bool(np.all(la < lb)))
    lc_ci = length_adjusted_ci(y, la, lb, samples, seed)
    return MatchupStats(
        matchup=key, n=n,
        wins=int((y == 1).sum()), ties=int((y == 0.5).sum()), losses=int((y == 0).sum()),
        no_verdict=len(rows) - n,
        win_rate=float(y.mean()) if n else float("nan"),
        win_rate_ci=bootstrap_ci(y, samples, seed),
        wins_ci=bootstrap_ci((y == 1).astype(float), samples, seed),
        losses_ci=bootstrap_ci((y == 0).astype(float), samples, seed),
        order_consistency=float(np.mean([r["consistent"] for r in judged])) if n else float("nan"),
        length_adjusted_win_rate=length_adjusted_win_rate(y, la, lb),
        mean_len_a=float(la.mean()) if n else float("nan"), mean_len_b=float(lb.mean()) if n else float("nan"),
        length_adjustment_extrapolated=extrapolated, length_adjusted_ci=lc_ci,
        length_adjustment_unstable=extrapolated or not lc_ci[1] - lc_ci[0] <= UNSTABLE_CI_WIDTH)


@dataclass
class AspectStats:
    system: str
    schema: str
    reviews: int
    empty_rate: float  # share of all aspects (over all reviews) written as the empty marker only
    empty_by_aspect: dict[str, float]
    items_mean_by_aspect: dict[str, float]
    items_var_by_aspect: dict[str, float]  # population variance of the item count per aspect
    items_var_mean: float  # mean over aspects of that variance (the recipe: suppression lowers it)
    mean_words: float
    # an aspect whose header the review does not have is missing, not empty: counted apart
    missing_rate: float = 0.0
    missing_by_aspect: dict[str, float] | None = None
    empty_rate_ci: tuple[float, float] = (float("nan"), float("nan"))  # bootstrap over reviews
    missing_rate_ci: tuple[float, float] = (float("nan"), float("nan"))


def aspect_stats(system: str, schema: str, texts: list[str], samples: int = 2000, seed: int = 0) -> AspectStats:
    sch = get_schema(schema)
    reports = [parse(t, sch).report for t in texts]
    # per review and aspect: written as the marker only (header present), and header missing
    empty = np.array([[r.criteria[i].present and r.criteria[i].empty for i in range(len(sch.criteria))]
                      for r in reports], dtype=float).reshape(len(reports), len(sch.criteria))
    missing = np.array([[not r.criteria[i].present for i in range(len(sch.criteria))] for r in reports],
                       dtype=float).reshape(len(reports), len(sch.criteria))
    counts = {c: np.array([r.criteria[i].item_count for r in reports], dtype=float) for i, c in enumerate(sch.criteria)}
    var = {c: float(v.var()) for c, v in counts.items()}
    return AspectStats(system, schema, len(texts), float(empty.mean()) if len(texts) else float("nan"),
                       {c: float(empty[:, i].mean()) for i, c in enumerate(sch.criteria)},
                       {c: float(v.mean()) for c, v in counts.items()}, var, float(np.mean(list(var.values()))),
                       float(np.mean([review_length(t) for t in texts])),
                       missing_rate=float(missing.mean()) if len(texts) else float("nan"),
                       missing_by_aspect={c: float(missing[:, i].mean()) for i, c in enumerate(sch.criteria)},
                       empty_rate_ci=bootstrap_ci(empty.mean(axis=1), samples, seed),
                       missing_rate_ci=bootstrap_ci(missing.mean(axis=1), samples, seed))


@dataclass
class CutStats:
    """How much of the paper each side's review was written from (the input recorded in its row)."""
    matchup: str
    papers: int
    cut_a: float  # share of papers whose input was cut
    cut_b: float
    dropped_tokens_a: float  # mean paper tokens cut, over the papers that were cut
    dropped_tokens_b: float
    dropped_share_a: float  # mean share of the paper's tokens cut, over the papers that were cut
    dropped_share_b: float
    same_input: float  # share of papers where both reviews were written from the identical text


def _cut(inp: dict) -> tuple[bool, float, float]:
    total, kept = inp.get("paper_tokens_total"), inp.get("paper_tokens_kept")
    cut = bool(inp.get("dropped_sections") or inp.get("truncated_section"))
    if not cut or not total:
        return cut, 0.0, 0.0
    return cut, float(total - kept), (total - kept) / total


def cut_stats(key: str, pairs: list[tuple[dict, dict]]) -> CutStats:
    """`pairs`: (review row A, review row B) per paper."""
    def side(i: int) -> tuple[float, float, float]:
        c = [_cut(p[i]["input"]) for p in pairs]
        was = [x for x in c if x[0]]
        return (float(np.mean([x[0] for x in c])) if c else float("nan"),
                float(np.mean([x[1] for x in was])) if was else 0.0,
                float(np.mean([x[2] for x in was])) if was else 0.0)
    a, b = side(0), side(1)
    same = float(np.mean([p[0]["input"]["text_sha256"] == p[1]["input"]["text_sha256"] for p in pairs])) \
        if pairs else float("nan")
    return CutStats(key, len(pairs), a[0], b[0], a[1], b[1], a[2], b[2], same)
