"""What a review says about its rating besides its words: sentence sentiment (VADER, a kept lexicon),
a small lexicon of verdict phrases, and a score the reviewer states ("I raise my score to 7")."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
_STATED_SCORE = re.compile(r"(?:score|rating|rate|rated)\D{0,25}?\b(10|[1-9])\b(?!\s*%)|\b(10|[1-9])\s*/\s*10\b", re.I)
# Verdict phrases reviewers use, counted per sentence (lower-case substrings).
_POSITIVE = ("accept", "recommend", "novel", "interesting", "well written", "well-written", "clearly written",
             "convincing", "strong", "solid", "impressive", "significant", "nice", "i like", "good paper")
_NEGATIVE = ("reject", "not convincing", "unconvincing", "incremental", "unclear", "lack", "weak", "limited",
             "not ready", "below the", "marginal", "not clear", "not novel", "unfortunately", "missing", "not ")

# Sentences that say the verdict ("I recommend...", "Overall, ..."): their sentiment counts on its own.
_VERDICT = re.compile(r"recommend|accept|reject|score|rating|overall|in summary|to summarize|in conclusion|verdict",
                      re.I)
_CONTRAST = (" however", " but ", " although", " unfortunately")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s", re.M)
_SENTIMENT_BINS = [-1.01, -0.5, -0.05, 0.05, 0.5, 1.01]

NAMES: tuple[str, ...] = ("sent_last3", "sent_mean", "sent_min", "sent_max", "frac_positive", "frac_negative",
                          "stated_score", "has_stated_score", "log_words", "lex_positive", "lex_negative",
                          "frac_very_negative", "frac_negative_bin", "frac_neutral", "frac_positive_bin",
                          "frac_very_positive", "sent_verdict", "has_verdict", "sent_first3", "pos_mean", "neg_mean",
                          "questions", "contrast", "log_sentences", "bullets")


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCES.split(text) if s.strip()]


def signals(text: str) -> list[float]:
    """One row of NAMES for one review."""
    sia = _vader()
    sents = sentences(text) or [text]
    scores = [sia.polarity_scores(s) for s in sents]
    comp = np.array([s["compound"] for s in scores])
    verdict = [c for s, c in zip(sents, comp) if _VERDICT.search(s)]
    stated = [int(a or b) for a, b in _STATED_SCORE.findall(text)]
    low = text.lower()
    n = len(sents)
    return [sia.polarity_scores(" ".join(sents[-3:]))["compound"], float(comp.mean()), float(comp.min()),
            float(comp.max()), float((comp > 0.3).mean()), float((comp < -0.1).mean()),
            float(stated[-1]) if stated else 0.0, float(bool(stated)), float(np.log1p(len(text.split()))),
            sum(low.count(w) for w in _POSITIVE) / n, sum(low.count(w) for w in _NEGATIVE) / n,
            *(np.histogram(comp, bins=_SENTIMENT_BINS)[0] / n).tolist(),
            float(np.mean(verdict)) if verdict else 0.0, float(bool(verdict)), float(comp[:3].mean()),
            float(np.mean([s["pos"] for s in scores])), float(np.mean([s["neg"] for s in scores])),
            text.count("?") / n, sum(low.count(w) for w in _CONTRAST) / n, float(np.log1p(n)),
            len(_BULLET.findall(text)) / n]


class ReviewSignals(BaseEstimator, TransformerMixin):
    """scikit-learn transformer: texts -> the NAMES columns (stateless)."""

    def fit(self, X: Any, y: Any = None) -> "ReviewSignals":
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.array([signals(str(t)) for t in X], dtype=float).reshape(-1, len(NAMES))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(NAMES, dtype=object)
