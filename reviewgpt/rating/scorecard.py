"""The scorecard (issue #24): how each system's reviews rate against the human reviewers of the
same papers, through the calibrated rating model, with a human baseline.

Per system (and schema): Spearman of its rating with the papers' human mean rating, AUROC and
balanced accuracy of its P(accept) for the decision, mean bias (its rating minus the human mean),
each with a 95% bootstrap CI over papers; the spread of each figure over reruns with other seeds.
Human baseline, on the same papers: each human's own rating against the mean of the others' (its
AUROC and balanced accuracy use the rating itself, accept at >= HUMAN_ACCEPT_AT); and, on papers the
rating model never saw, human review text through the rating model (the systems' instrument)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from reviewgpt.rating import metrics as M
from reviewgpt.rating.data import RatedReview
from reviewgpt.rating.model import RatingModel

HUMAN_ACCEPT_AT = 6  # ICLR 2017: 6 = "Marginally above acceptance threshold"
FIGURES = ("spearman", "auroc", "balanced_accuracy", "bias")


@dataclass
class Row:
    """One line of the scorecard."""
    name: str
    papers: int
    not_calibrated: int = 0
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"value", "ci"}
    seeds: list[Any] = field(default_factory=list)
    spread: dict[str, float] = field(default_factory=dict)  # figure -> std over seeds
    per_seed: dict[str, dict[str, float]] = field(default_factory=dict)  # seed -> figure -> value
    note: str = ""


@dataclass
class Humans:
    """Per paper: the human ratings and the decision."""
    ratings: dict[str, list[int]]
    accepted: dict[str, bool]
    texts: dict[str, list[str]]

    @classmethod
    def from_reviews(cls, reviews: Iterable[RatedReview]) -> "Humans":
        h = cls(defaultdict(list), {}, defaultdict(list))
        for r in reviews:
            h.ratings[r.paper_id].append(r.rating)
            h.texts[r.paper_id].append(r.text)
            h.accepted[r.paper_id] = r.accepted
        return h

    def mean(self, pid: str) -> float:
        return float(np.mean(self.ratings[pid]))


def read_review_rows(path: str | Path) -> list[dict[str, Any]]:
    """eval's reviews.jsonl (reviewgpt.compare.evaluation.stages): rows with system, schema, id,
    review and system_config; unreadable lines are skipped, as the store skips them."""
    rows = []
    with open(path) as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and {"system", "id", "review"} <= set(row):
                rows.append(row)
    return rows


def runs(rows: list[dict[str, Any]]) -> dict[str, dict[Any, dict[str, str]]]:
    """{"system (N-aspect)": {seed: {paper id: review}}}: reruns that differ only in the seed are one
    system's seeds; any other setting that differs makes another line."""
    out: dict[str, dict[Any, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    variants: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in rows:
        settings = dict((r.get("system_config") or {}).get("settings") or {})
        seed = settings.pop("seed", None)
        variant = json.dumps(settings, sort_keys=True)
        base = (r["system"], str(r.get("schema", "")))
        if variant not in variants[base]:
            variants[base].append(variant)
        n = variants[base].index(variant)
        name = f"{r['system']} ({r.get('schema', '?')}-aspect)" + (f" #{n + 1}" if n else "")
        out[name][seed][str(r["id"])] = r["review"]
    return out


def _figures(groups: list[str], rating: np.ndarray, human_mean: np.ndarray, accepted: np.ndarray,
             p_accept: np.ndarray, samples: int, seed: int) -> dict[str, dict[str, Any]]:
    def bias(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(a - b))
    return {"spearman": M.with_ci(M.spearman, groups, rating, human_mean, samples=samples, seed=seed),
            "auroc": M.with_ci(M.auroc, groups, accepted, p_accept, samples=samples, seed=seed),
            "balanced_accuracy": M.with_ci(M.balanced_accuracy, groups, accepted, p_accept, samples=samples, seed=seed),
            "bias": M.with_ci(bias, groups, rating, human_mean, samples=samples, seed=seed)}


def system_row(name: str, by_seed: dict[Any, dict[str, str]], papers: list[str], humans: Humans,
               model: RatingModel, samples: int, seed: int) -> Row:
    """Figures of the first seed's reviews with CIs; the spread of each figure over all seeds."""
    per_seed: dict[Any, dict[str, dict[str, Any]]] = {}
    ratings: dict[str, list[float]] = defaultdict(list)  # paper -> its rating under each seed
    first: Row | None = None
    for s in sorted(by_seed, key=lambda x: (x is None, str(x))):
        reviews = by_seed[s]
        ids = [p for p in papers if p in reviews]
        rated = model.rate_reviews([reviews[p] for p in ids])  # the review, not its stated number
        ok = [(p, r) for p, r in zip(ids, rated) if r.calibrated]
        for p, r in ok:
            ratings[p].append(r.rating)
        if len(ok) < 3:
            continue
        g = [p for p, _ in ok]
        figs = _figures(g, np.array([r.rating for _, r in ok]), np.array([humans.mean(p) for p in g]),
                        np.array([humans.accepted[p] for p in g]), np.array([r.p_accept for _, r in ok]),
                        samples if first is None else 0, seed)
        per_seed[s] = figs
        if first is None:
            first = Row(name, len(ok), len(ids) - len(ok), figs)
    if first is None:
        return Row(name, 0, note="fewer than 3 reviews the rating model could rate")
    first.seeds = list(per_seed)
    first.per_seed = {str(s): {f: v[f]["value"] for f in FIGURES} for s, v in per_seed.items()}
    if len(per_seed) > 1:
        first.spread = {f: round(float(np.std([v[f]["value"] for v in per_seed.values()], ddof=1)), 4)
                        for f in FIGURES}
        # A paper's rating moves this much from seed to seed (sd over seeds, mean over papers), with its CI.
        again = sorted(p for p, v in ratings.items() if len(v) > 1)
        if again:
            sd = np.array([np.std(ratings[p], ddof=1) for p in again])
            first.figures["rating_sd_over_seeds"] = M.with_ci(lambda x: float(np.mean(x)), again, sd,
                                                              samples=samples, seed=seed)
    return first


def human_rows(papers: list[str], humans: Humans, model: RatingModel, fitted_on: set[str], samples: int,
               seed: int) -> list[Row]:
    """One human against the others: every (paper, reviewer) of papers with 2+ human reviews."""
    g, own, others, acc = [], [], [], []
    for p in papers:
        rs = humans.ratings[p]
        for i, r in enumerate(rs):
            if len(rs) >= 2:
                g.append(p)
                own.append(r)
                others.append(np.mean(rs[:i] + rs[i + 1:]))
                acc.append(humans.accepted[p])
    rows = []
    if len(g) >= 3:
        own_a = np.array(own, float)
        figs = _figures(g, own_a, np.array(others), np.array(acc), (own_a >= HUMAN_ACCEPT_AT).astype(float),
                        samples, seed)
        figs["auroc"] = M.with_ci(M.auroc, g, np.array(acc), own_a, samples=samples, seed=seed)
        rows.append(Row("human: own rating vs the others' mean", len(set(g)), figures=figs,
                        note=f"P(accept) is the rating itself (accept at >= {HUMAN_ACCEPT_AT})"))
    unseen = [p for p in papers if p not in fitted_on and len(humans.ratings[p]) >= 2]
    pairs = [(p, i) for p in unseen for i in range(len(humans.ratings[p]))]
    if len(pairs) >= 3:
        rated = model.rate([humans.texts[p][i] for p, i in pairs])
        ok = [(p, i, r) for (p, i), r in zip(pairs, rated) if r.calibrated]
        hg = [p for p, _, _ in ok]
        oth = np.array([np.mean(humans.ratings[p][:i] + humans.ratings[p][i + 1:]) for p, i, _ in ok])
        figs = _figures(hg, np.array([r.rating for _, _, r in ok]), oth, np.array([humans.accepted[p] for p in hg]),
                        np.array([r.p_accept for _, _, r in ok]), samples, seed)
        rows.append(Row("human: review text through the rating model vs the others' mean", len(set(hg)),
                        len(pairs) - len(ok), figs, note=f"papers the rating model never saw ({len(unseen)})"))
    return rows


def scorecard(rows: list[dict[str, Any]], humans: Humans, model: RatingModel, fitted_on: set[str],
              samples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """All lines, on the papers every system reviewed that have human ratings."""
    by_run = runs(rows)
    sets = [set().union(*[set(r) for r in seeds.values()]) for seeds in by_run.values()]
    common = set.intersection(*sets) if sets else set()
    papers = sorted(p for p in common if p in humans.ratings)
    lines = [system_row(n, seeds, papers, humans, model, samples, seed) for n, seeds in by_run.items()]
    lines += human_rows(papers, humans, model, fitted_on, samples, seed)
    return {"papers": len(papers), "papers_without_human_ratings": len(common) - len(papers),
            "bootstrap_samples": samples, "rows": [vars(r) for r in lines]}


def _fmt(f: dict[str, Any] | None) -> str:
    if not f or f["value"] is None or not np.isfinite(f["value"]):
        return "n/a"
    lo, hi = f["ci"]
    return f"{f['value']:+.2f} [{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else f"{f['value']:+.2f}"


def to_json(card: dict[str, Any]) -> str:
    """The card as strict JSON: an undefined figure (NaN: one class, a constant side) is null, which
    every JSON reader takes; json.dumps would write NaN, which strict readers reject."""
    def finite(x: Any) -> Any:
        if isinstance(x, float):
            return x if np.isfinite(x) else None
        if isinstance(x, dict):
            return {k: finite(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [finite(v) for v in x]
        return x
    return json.dumps(finite(card), indent=1, allow_nan=False) + "\n"


def to_markdown(card: dict[str, Any]) -> str:
    head = ("| line | papers | not calibrated | Spearman vs human mean | AUROC decision | balanced acc. | "
            "bias vs humans | seeds | rating sd over seeds | spread (sd over seeds: rho / AUROC / bal. acc. / bias) |")
    out = [f"Scorecard on {card['papers']} papers (95% bootstrap CIs over papers, {card['bootstrap_samples']} "
           "resamples)", "", head, "|" + "---|" * 10]
    for r in card["rows"]:
        f = r["figures"]
        spread = " / ".join(f"{r['spread'][k]:.3f}" for k in FIGURES) if r["spread"] else "n/a"
        seeds = ", ".join(str(s) for s in r["seeds"] if s is not None) or "-"  # no seed set (an API model): "-"
        out.append(f"| {r['name']} | {r['papers']} | {r['not_calibrated']} | {_fmt(f.get('spearman'))} | "
                   f"{_fmt(f.get('auroc'))} | {_fmt(f.get('balanced_accuracy'))} | {_fmt(f.get('bias'))} | "
                   f"{seeds} | {_fmt(f.get('rating_sd_over_seeds'))} | {spread} |")
    notes = [f"- {r['name']}: {r['note']}" for r in card["rows"] if r["note"]]
    return "\n".join(out + ([""] + notes if notes else []))
