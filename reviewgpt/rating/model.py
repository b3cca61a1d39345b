"""Review text -> rating on the ICLR 1-10 scale with an 80% interval, and P(accept).

Stacked scikit-learn learners, chosen by grouped cross-validation on the training split
(train/rating.py, numbers in assets/rating-model/metrics.json):
- text: TF-IDF word 1-3-grams -> ridge regression;
- stack: the text model's out-of-fold prediction + ReviewSignals (sentence sentiment, verdict
  lexicon, a stated score) -> standardised ridge;
- interval: split-conformal, from the stack's out-of-fold residuals (their 10% and 90% quantiles with
  the finite-sample correction), so about 80% of new human reviews' ratings fall inside;
- P(accept): Platt scaling (logistic regression) of the out-of-fold rating on the paper's decision.
Every out-of-fold prediction is grouped by paper, as held-out reviews are."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from reviewgpt.rating.features import ReviewSignals
from reviewgpt.rating.gate import GateResult, ReviewGate
from reviewgpt.rating.own import without_own_rating

SCALE = (1, 10)  # ICLR's rating scale
LABEL = "the rating a reviewer who wrote this review would give (calibrated on ICLR 2017 reviews)"


@dataclass
class RatingModelConfig:
    ngram_max: int = 3
    min_df: int = 2
    max_features: int = 60000
    text_alpha: float = 1.0
    stack_alpha: float = 10.0
    folds: int = 5
    coverage: float = 0.8  # of the interval


@dataclass
class Rating:
    """One review's calibrated rating; rating/low/high/p_accept are None when not calibrated."""
    rating: float | None
    low: float | None
    high: float | None
    p_accept: float | None
    calibrated: bool
    reason: str = ""  # why not calibrated

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _conformal_quantile(residuals: np.ndarray, q: float) -> float:
    """The split-conformal quantile: level ceil((n+1)q)/n of the residuals (one side)."""
    n = len(residuals)
    level = min(1.0, max(0.0, math.ceil((n + 1) * q) / n)) if q > 0.5 else max(0.0, math.floor((n + 1) * q) / n)
    return float(np.quantile(residuals, level, method="higher" if q > 0.5 else "lower"))


@dataclass
class RatingModel:
    config: RatingModelConfig = field(default_factory=RatingModelConfig)
    text_model: Pipeline | None = None
    stacker: Pipeline | None = None
    platt: LogisticRegression | None = None
    residual_low: float = 0.0
    residual_high: float = 0.0
    gate: ReviewGate | None = None
    oof: dict[str, np.ndarray] | None = None

    def _text_pipeline(self) -> Pipeline:
        c = self.config
        return make_pipeline(TfidfVectorizer(ngram_range=(1, c.ngram_max), min_df=c.min_df, sublinear_tf=True,
                                             max_features=c.max_features), Ridge(alpha=c.text_alpha))

    def _stack_features(self, text_pred: np.ndarray, texts: list[str]) -> np.ndarray:
        return np.column_stack([text_pred, ReviewSignals().transform(texts)])

    def fit(self, texts: list[str], ratings: np.ndarray, accepted: np.ndarray, groups: list[str]) -> "RatingModel":
        """Fit on the training split; returns self. Out-of-fold predictions are grouped by paper."""
        y = np.asarray(ratings, dtype=float)
        cv = GroupKFold(self.config.folds)
        text_oof = cross_val_predict(self._text_pipeline(), texts, y, cv=cv, groups=groups)
        z = self._stack_features(text_oof, texts)
        self.stacker = make_pipeline(StandardScaler(), Ridge(alpha=self.config.stack_alpha))
        stack_oof = cross_val_predict(self.stacker, z, y, cv=cv, groups=groups)
        residuals = y - stack_oof
        tail = (1 - self.config.coverage) / 2
        self.residual_low = _conformal_quantile(residuals, tail)
        self.residual_high = _conformal_quantile(residuals, 1 - tail)
        self.platt = LogisticRegression().fit(stack_oof[:, None], np.asarray(accepted, dtype=int))
        self.oof = {"text": text_oof, "stack": stack_oof}  # for the train command's report; not saved
        self.stacker.fit(z, y)
        self.text_model = self._text_pipeline().fit(texts, y)
        self.text_model[0].stop_words_ = None  # the pruned terms: not needed to predict, large to store
        return self

    def predict_point(self, texts: list[str]) -> np.ndarray:
        """The stacked rating before clipping to the scale (no gate): for measurement."""
        assert self.text_model is not None and self.stacker is not None, "fit or load the model first"
        return self.stacker.predict(self._stack_features(self.text_model.predict(texts), texts))

    def rate_reviews(self, reviews: list[str]) -> list[Rating]:
        """A Rating per review as written (the app, `eval rate`, the scorecard): a rating line the model
        wrote itself ('Overall rating: 6.3 / 10') is taken out first, so the number it states is not read."""
        return self.rate([without_own_rating(r) for r in reviews])

    def rate(self, texts: list[str]) -> list[Rating]:
        """A Rating per text; texts the gate turns down get no number, only the reason."""
        texts = [str(t or "") for t in texts]
        if not texts:  # scikit-learn refuses an empty batch
            return []
        checks = self.gate.check(texts) if self.gate is not None else [GateResult(True, "", 1.0, 1.0)] * len(texts)
        out: list[Rating | None] = [None] * len(texts)
        ok = [i for i, c in enumerate(checks) if c.ok]
        if ok:
            point = self.predict_point([texts[i] for i in ok])
            p_acc = self.platt.predict_proba(point[:, None])[:, 1]
            lo_s, hi_s = SCALE
            for i, r, p in zip(ok, point, p_acc):
                out[i] = Rating(round(float(np.clip(r, lo_s, hi_s)), 2),
                                round(float(np.clip(r + self.residual_low, lo_s, hi_s)), 2),
                                round(float(np.clip(r + self.residual_high, lo_s, hi_s)), 2),
                                round(float(p), 3), True)
        for i, c in enumerate(checks):
            if out[i] is None:
                out[i] = Rating(None, None, None, None, False, c.reason)
        return [r for r in out if r is not None]
