"""Candidate rating learners compared by nested grouped CV on the training split only (issue #24).

    python -m benchmarks.rating_candidates --data ../shared/data/iclr2017

The held-out papers (reviewgpt.rating.data owns the split) are not read, so a choice made here cannot
fit the figures in assets/rating-model/metrics.json. Outer GroupKFold(5) by paper over the training
reviews; inside each outer fold every text learner's out-of-fold prediction comes from an inner
GroupKFold(5), as train.rating stacks them, and the outer fold's reviews are predicted by learners
that never saw their papers. Printed per candidate: Spearman of the rating with the review's rating
and AUROC of P(accept) against the paper's decision, with 95% paper-bootstrap CIs over the training
papers. 10-14 minutes on 2 shared cores (the character n-grams are most of it)."""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline, make_union
from sklearn.preprocessing import FunctionTransformer, StandardScaler

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


def _predict(name: str, texts: np.ndarray, y: np.ndarray, acc: np.ndarray, groups: np.ndarray,
             tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inner out-of-fold prediction on tr, prediction on te) of one text learner fitted on tr."""
    make, target = TEXT_LEARNERS[name]
    label = y if target == "rating" else acc
    method = "predict" if target == "rating" else "decision_function"
    oof = cross_val_predict(make(), texts[tr], label[tr], cv=GroupKFold(FOLDS), groups=groups[tr], method=method)
    return oof, getattr(make().fit(texts[tr], label[tr]), method)(texts[te])


def _stacker(name: str) -> Any:
    if "gradient-boosted" in name:
        return HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, max_depth=3, random_state=0)
    return make_pipeline(StandardScaler(), Ridge(alpha=RatingModel().config.stack_alpha))


def run(data: str) -> None:
    t0 = time.perf_counter()
    train = [r for r in read_rated_reviews(data) if r.split == "train"]  # the held-out part is not read
    texts = np.array([r.text for r in train], dtype=object)
    y = np.array([r.rating for r in train], float)
    acc = np.array([r.accepted for r in train], int)
    groups = np.array([r.paper_id for r in train])
    signals = ReviewSignals().transform(texts)
    outer = list(GroupKFold(FOLDS).split(texts, y, groups))
    base = {n: [_predict(n, texts, y, acc, groups, tr, te) for tr, te in outer] for n in TEXT_LEARNERS}
    print(f"{len(train)} training reviews of {len(set(groups))} papers; outer and inner GroupKFold({FOLDS}) by paper")
    print("\n| text learner alone | Spearman (rating) | AUROC (decision) |\n|---|---|---|")
    for n in TEXT_LEARNERS:
        pred = np.empty(len(y))
        for (_, te), (_, p) in zip(outer, base[n]):
            pred[te] = p
        print(f"| {n} | {M.spearman(pred, y):.4f} | {M.auroc(acc, pred):.4f} |")
    print("\n| stacked with ReviewSignals | Spearman [95% CI] | AUROC of P(accept) [95% CI] |\n|---|---|---|")
    for name, learners, p_by in CANDIDATES:
        rating, p_acc = np.empty(len(y)), np.empty(len(y))
        for k, (tr, te) in enumerate(outer):
            z_tr = np.column_stack([base[n][k][0] for n in learners] + [signals[tr]])
            z_te = np.column_stack([base[n][k][1] for n in learners] + [signals[te]])
            rating[te] = _stacker(name).fit(z_tr, y[tr]).predict(z_te)
            if p_by == "platt":  # as RatingModel: Platt on the stack's out-of-fold rating
                oof = cross_val_predict(_stacker(name), z_tr, y[tr], cv=GroupKFold(FOLDS), groups=groups[tr])
                p_acc[te] = LogisticRegression().fit(oof[:, None], acc[tr]).predict_proba(rating[te][:, None])[:, 1]
            else:  # the decision learned directly from the same inputs
                clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(z_tr, acc[tr])
                p_acc[te] = clf.predict_proba(z_te)[:, 1]
        rho, auc = M.with_ci(M.spearman, groups, rating, y), M.with_ci(M.auroc, groups, acc, p_acc)
        print(f"| {name} | {rho['value']:.4f} [{rho['ci'][0]:.3f}, {rho['ci'][1]:.3f}] | "
              f"{auc['value']:.4f} [{auc['ci'][0]:.3f}, {auc['ci'][1]:.3f}] |")
    print(f"\nthe reviews' own ratings as the score: AUROC {M.auroc(acc, y):.4f} (what a perfect rating from one review would give)")
    print(f"({time.perf_counter() - t0:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/iclr2017", help="the ICLR 2017 layout")
    run(ap.parse_args(argv).data)


if __name__ == "__main__":
    main()
