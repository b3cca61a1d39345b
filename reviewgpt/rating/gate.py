"""Is this text an ML paper review, the kind of text the rating model was calibrated on?

Two checks, both fitted on the training split only:
- review vs paper: a TF-IDF logistic regression of human reviews against passages of the reviewed
  papers' own text (the likeliest wrong paste);
- ML reviewing vocabulary: the share of a text's content words that the training reviews use
  (recipes, news, other fields and gibberish fall far below any review's share).
Text that fails either, or is too short to judge, is "not calibrated": no number is given."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline

_WORD = re.compile(r"[a-z][a-z\-]{2,}")
LONGEST_REVIEW_WORDS = 1323  # the longest of the 1,334 rated ICLR 2017 reviews


@dataclass
class GateConfig:
    min_words: int = 30  # shorter texts do not say enough to be rated
    min_review_prob: float = 0.5  # P(review | text) from the review-vs-paper classifier
    vocab_quantile: float = 0.01  # threshold: this quantile of training reviews' vocabulary share
    passage_words: int = 250  # paper passages cut to about a review's length
    # English: a review's letters are Latin (all 1,330 ICLR 2017 reviews: 99.7% or more) and common English
    # words (scikit-learn's stop words) are 24% or more of its words; French reads about 5%, Chinese 0%
    min_latin_share: float = 0.5
    min_english_share: float = 0.15
    max_words: int = 5000  # longer is not one review (about 4x LONGEST_REVIEW_WORDS): several, or a paper


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS]


_LETTERS = re.compile(r"[^\W\d_]+")


def latin_share(text: str) -> float:
    """The share of a text's letters that are Latin (1.0 for a text without letters)."""
    letters = [c for c in text if c.isalpha()]
    return sum(c.isascii() for c in letters) / len(letters) if letters else 1.0


def english_share(text: str) -> float:
    """The share of a text's words that are common English words."""
    words = [w.lower() for w in _LETTERS.findall(text)]
    return sum(w in ENGLISH_STOP_WORDS for w in words) / len(words) if words else 0.0


def paper_passages(sections: list[str], words: int) -> list[str]:
    """A paper's sections cut into passages of about `words` words (negatives for the classifier)."""
    out = []
    for s in sections:
        w = s.split()
        out += [" ".join(w[i:i + words]) for i in range(0, len(w), words) if len(w[i:i + words]) >= 40]
    return out


def percent_below(p: float) -> str:
    """A probability as a whole percentage rounded down ("49%" for 0.496, "under 1%" below 0.01): said
    beside a threshold it was found under, the shown number is under the threshold too."""
    return f"{math.floor(p * 100 + 1e-9)}%" if p >= 0.01 else "under 1%"  # 0.29 * 100 is 28.999...


def percent_at_least(p: float) -> str:
    """A threshold as a whole percentage rounded up: with `percent_below` for the value under it, the two
    shown numbers never meet."""
    return f"{math.ceil(p * 100 - 1e-9)}%"


def _vocabulary(reviews: list[str]) -> frozenset[str]:
    """Content words used by at least two reviews."""
    counts: dict[str, int] = {}
    for r in reviews:
        for w in set(content_words(r)):
            counts[w] = counts.get(w, 0) + 1
    return frozenset(w for w, c in counts.items() if c >= 2)


@dataclass
class GateResult:
    ok: bool
    reason: str  # why not calibrated ("" when ok)
    review_prob: float
    vocab_share: float


class ReviewGate:
    def __init__(self, config: GateConfig | None = None) -> None:
        self.config = config or GateConfig()
        self.classifier: Pipeline | None = None
        self.vocabulary: frozenset[str] = frozenset()
        self.min_vocab_share = 0.0

    def vocab_share(self, text: str) -> float:
        words = content_words(text)
        return sum(w in self.vocabulary for w in words) / len(words) if words else 0.0

    def fit(self, reviews: list[str], passages: list[str], groups: list[str]) -> "ReviewGate":
        """Reviews (positives, `groups` their paper ids) and paper passages (negatives), balanced by
        class weight. The vocabulary threshold is read off held-out folds by paper: a review's share
        counted against a vocabulary built from other papers' reviews, as a new review's would be."""
        self.classifier = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=3, sublinear_tf=True,
                                                        max_features=20000),
                                        LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000))
        self.classifier.fit(reviews + passages, [1] * len(reviews) + [0] * len(passages))
        self.classifier[0].stop_words_ = None  # the pruned terms: not needed to predict, large to store
        shares = []
        for fit_idx, held_idx in GroupKFold(5).split(reviews, groups=groups):
            self.vocabulary = _vocabulary([reviews[i] for i in fit_idx])
            shares += [self.vocab_share(reviews[i]) for i in held_idx
                       if len(reviews[i].split()) >= self.config.min_words]
        self.min_vocab_share = float(np.quantile(shares, self.config.vocab_quantile))
        self.vocabulary = _vocabulary(reviews)
        return self

    def _form_reason(self, text: str) -> str:
        """Why the text's form rules it out before its words are weighed ("" when it does not)."""
        c = self.config
        english = "not in English: the rating model was fitted on English reviews (ICLR 2017); a translation can be rated"
        if latin_share(text) < c.min_latin_share:  # before the word count: Chinese has no spaces to count
            return english
        n = len(text.split())
        if n < c.min_words:
            return f"too short to rate ({n} word{'s' if n != 1 else ''}; at least {c.min_words})"
        if n > c.max_words:
            return (f"too long to be one review ({n:,} words; the longest ICLR 2017 review has {LONGEST_REVIEW_WORDS:,}, "
                    f"at most {c.max_words:,} are rated): rate each review apart")
        if english_share(text) < c.min_english_share:
            return english
        return ""

    def check(self, texts: list[str]) -> list[GateResult]:
        assert self.classifier is not None, "fit or load the gate first"
        forms = [self._form_reason(t) for t in texts]
        weigh = [i for i, f in enumerate(forms) if not f]  # the classifier reads only these (not 18 MB of text)
        probs = dict(zip(weigh, self.classifier.predict_proba([texts[i] for i in weigh])[:, 1])) if weigh else {}
        out = []
        for i, (text, form) in enumerate(zip(texts, forms)):
            if form:
                out.append(GateResult(False, form, float("nan"), float("nan")))
                continue
            p, share = probs[i], self.vocab_share(text)
            if share < self.min_vocab_share:
                reason = (f"not about machine learning ({percent_below(share)} of its words are ML-review words; "
                          f"reviews have {percent_at_least(self.min_vocab_share)} or more)")
            elif p < self.config.min_review_prob:
                # p: the reviews-versus-papers classifier's probability that the text is a review
                reason = (f"this text does not read like a peer review; it reads more like a paper's own text "
                          f"({percent_below(p)} review-like, a review is {percent_at_least(self.config.min_review_prob)} or more)")
            else:
                reason = ""
            out.append(GateResult(not reason, reason, float(p), float(share)))
        return out
