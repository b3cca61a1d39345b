"""Build the calibrated rating model (issue #24) into assets/rating-model/.

    python -m train.rating --data ../shared/data/iclr2017 [--out assets/rating-model]

Fits on the training split of the rated ICLR 2017 reviews (by paper; reviewgpt.rating.data owns the
split), measures on the held-out papers' reviews, which are never fitted on, and writes the model, its
metrics and the list of files it was fitted on. About a minute on 2 cores."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from reviewgpt.rating import metrics as M
from reviewgpt.rating.artifact import DEFAULT_DIR, save
from reviewgpt.rating.data import (SPLIT_SEED, TEST_FRAC, RatedReview, data_manifest, is_held_out,
                                   read_rated_reviews)
from reviewgpt.rating.gate import GateConfig, ReviewGate, paper_passages
from reviewgpt.rating.model import RatingModel, RatingModelConfig
from reviewgpt.training.data.papers import read_iclr2017

log = logging.getLogger(__name__)
NOT_REVIEWS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "rating" / "not_reviews.jsonl"


def baseline() -> Any:
    """The issue's reference learner: TF-IDF + ridge."""
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), Ridge(alpha=1.0))


def held_out_metrics(model: RatingModel, test: list[RatedReview]) -> dict[str, Any]:
    texts = [r.text for r in test]
    y = np.array([r.rating for r in test], float)
    acc = np.array([r.accepted for r in test], int)
    g = [r.paper_id for r in test]
    point = model.predict_point(texts)
    low, high = point + model.residual_low, point + model.residual_high
    p = model.platt.predict_proba(point[:, None])[:, 1]
    papers = sorted(set(g))
    paper_p = np.array([p[[i for i, x in enumerate(g) if x == q]].mean() for q in papers])
    paper_acc = np.array([acc[g.index(q)] for q in papers])
    return {
        "reviews": len(test), "papers": len(papers),
        "spearman": M.with_ci(M.spearman, g, point, y),
        "mae": round(float(np.mean(np.abs(np.clip(point, 1, 10) - y))), 3),
        "interval_coverage": M.with_ci(M.coverage, g, y, low, high),
        "interval_mean_width": round(float(np.mean(high - low)), 3),
        "auroc_p_accept_single_review": M.with_ci(M.auroc, g, acc, p),
        "balanced_accuracy_single_review": M.with_ci(M.balanced_accuracy, g, acc, p),
        "brier": round(M.brier(acc, p), 4), "ece": round(M.expected_calibration_error(acc, p), 4),
        "auroc_p_accept_paper_mean": round(M.auroc(paper_acc, paper_p), 4),
        "human_rating_auroc_single_review": round(M.auroc(acc, y), 4),
    }


def gate_metrics(gate: ReviewGate, test: list[RatedReview], test_passages: list[str]) -> dict[str, Any]:
    others = [json.loads(line) for line in NOT_REVIEWS.read_text().splitlines() if line.strip()]
    return {
        "held_out_reviews_accepted": round(float(np.mean([c.ok for c in gate.check([r.text for r in test])])), 4),
        "held_out_paper_passages_rejected": round(float(np.mean([not c.ok for c in gate.check(test_passages)])), 4),
        "paper_passages": len(test_passages),
        "not_reviews_rejected": round(float(np.mean([not c.ok for c in gate.check([o["text"] for o in others])])), 4),
        "not_reviews": len(others), "min_vocab_share": round(gate.min_vocab_share, 4),
    }


def build(data: str | Path, out: str | Path, config: RatingModelConfig | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    reviews = read_rated_reviews(data)
    train = [r for r in reviews if r.split == "train"]
    test = [r for r in reviews if r.split == "test"]
    texts, y = [r.text for r in train], np.array([r.rating for r in train], float)
    groups = [r.paper_id for r in train]
    model = RatingModel(config or RatingModelConfig()).fit(texts, y, np.array([r.accepted for r in train]), groups)

    # The learner was picked by grouped CV on the training split; the figures say by how much.
    base_oof = cross_val_predict(baseline(), texts, y, cv=GroupKFold(model.config.folds), groups=groups)
    selection = {name: round(M.spearman(p, y), 4) for name, p in
                 (("tfidf12_ridge", base_oof), ("tfidf13_ridge", model.oof["text"]), ("stack", model.oof["stack"]))}
    model.oof = None

    papers = {p.id: p for p in read_iclr2017(data)}
    def passages(split_name: str) -> list[str]:
        return [s for pid, p in papers.items() if is_held_out(pid) == (split_name == "test")
                for s in paper_passages([x.text for x in p.document.sections], GateConfig().passage_words)]
    model.gate = ReviewGate().fit(texts, passages("train"), groups)

    base_test = baseline().fit(texts, y).predict([r.text for r in test])
    yt = np.array([r.rating for r in test], float)
    metrics = {
        "label": "rating on ICLR's 1-10 scale, 80% conformal interval, P(accept) by Platt scaling",
        "split": {"by": "paper", "seed": SPLIT_SEED, "test_frac": TEST_FRAC,
                  "train_reviews": len(train), "train_papers": len(set(groups))},
        "config": vars(model.config),
        "cv_spearman_train": selection,
        "held_out": held_out_metrics(model, test),
        "held_out_baseline_tfidf12_ridge": {
            "spearman": M.with_ci(M.spearman, [r.paper_id for r in test], base_test, yt),
            "auroc_rating_as_score": round(M.auroc(np.array([r.accepted for r in test]), base_test), 4)},
        "gate": gate_metrics(model.gate, test, passages("test")),
        "targets": {"spearman": 0.70, "interval_coverage": [0.78, 0.82], "auroc_p_accept_single_review": 0.80},
        "build_seconds": round(time.perf_counter() - t0, 1),
    }
    save(model, out, metrics, {"train": data_manifest(data, train), "held_out": data_manifest(data, test)})
    return metrics


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/iclr2017",
                    help="the ICLR 2017 layout (paper/, review/, content/)")
    ap.add_argument("--out", default=str(DEFAULT_DIR))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    m = build(args.data, args.out)
    shown = ("cv_spearman_train", "held_out", "held_out_baseline_tfidf12_ridge", "gate")
    print(json.dumps({k: m[k] for k in shown}, indent=1))
    print(f"model -> {args.out}")


if __name__ == "__main__":
    main()
