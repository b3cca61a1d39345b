"""The figures a rating is judged by (Spearman, AUROC, balanced accuracy, interval coverage,
calibration error), each with a bootstrap CI that resamples papers, not reviews: reviews of one paper
are not independent. scipy and scikit-learn compute the statistics."""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import balanced_accuracy_score, brier_score_loss, roc_auc_score


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """NaN (not a number, not a warning) when either side is constant: a bootstrap of few papers draws
    such samples often, and scipy would warn for each."""
    if len(np.unique(a)) < 2 or len(np.unique(b)) < 2:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores)) if len(set(np.asarray(labels).tolist())) == 2 else float("nan")


def balanced_accuracy(labels: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    """NaN when the labels hold one class (as auroc): the mean recall over classes needs both."""
    labels = np.asarray(labels, dtype=bool)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(balanced_accuracy_score(labels, np.asarray(p) >= threshold))


def coverage(y: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    return float(np.mean((np.asarray(low) <= y) & (y <= np.asarray(high))))


def expected_calibration_error(labels: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean P| over equal-width bins, weighted by bin size."""
    labels, p = np.asarray(labels, dtype=float), np.asarray(p, dtype=float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum(abs(labels[idx == b].mean() - p[idx == b].mean()) * (idx == b).mean()
                     for b in range(bins) if (idx == b).any()))


def brier(labels: np.ndarray, p: np.ndarray) -> float:
    return float(brier_score_loss(np.asarray(labels, dtype=int), p))


def paper_bootstrap(stat: Callable[..., float], groups: list[str] | np.ndarray, *arrays: np.ndarray,
                    samples: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of stat(*arrays) over resamples of whole papers (groups) with replacement."""
    groups = np.asarray(groups)
    arrays = tuple(np.asarray(a) for a in arrays)
    papers = np.unique(groups)
    rows = {g: np.flatnonzero(groups == g) for g in papers}
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        take = np.concatenate([rows[g] for g in rng.choice(papers, len(papers), replace=True)])
        v = stat(*(a[take] for a in arrays))
        if np.isfinite(v):
            values.append(v)
    if not values:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (round(float(lo), 4), round(float(hi), 4))


def with_ci(stat: Callable[..., float], groups: list[str] | np.ndarray, *arrays: np.ndarray,
            samples: int = 1000, seed: int = 0) -> dict[str, float | tuple[float, float]]:
    """{"value", "ci"}: the statistic and its paper-bootstrap 95% CI."""
    return {"value": round(stat(*arrays), 4), "ci": paper_bootstrap(stat, groups, *arrays, samples=samples, seed=seed)}
