"""`python -m eval scorecard` on eval's stored-review format, with real human reviews of 16 held-out
ICLR 2017 papers (tests/fixtures/rating/iclr2017) standing in for systems: the first human review of
each paper is a system's seed 0, the second its seed 1; a third system pastes recipes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reviewgpt.compare.evaluation.store import JsonlStore
from reviewgpt.rating.artifact import default_model
from reviewgpt.rating.data import read_rated_reviews
from reviewgpt.rating.metrics import spearman
from reviewgpt.rating.scorecard import Humans, read_review_rows, runs, scorecard, to_json, to_markdown

ROOT = Path(__file__).resolve().parents[1]
HUMAN = ROOT / "tests" / "fixtures" / "rating" / "iclr2017"
RECIPE = json.loads((ROOT / "tests" / "fixtures" / "rating" / "not_reviews.jsonl").read_text().splitlines()[0])["text"]


def write_store(path: Path) -> list:
    """Rows as eval's generate stage writes them (reviewgpt.compare.evaluation.stages)."""
    reviews = read_rated_reviews(HUMAN)
    by: dict[str, list] = {}
    for r in reviews:
        by.setdefault(r.paper_id, []).append(r)
    store = JsonlStore(path, lambda r: r["key"])
    for pid, rs in by.items():
        for seed in (0, 1):
            store.add({"key": f"h-{pid}-{seed}", "system": "first-human", "schema": "7", "id": pid,
                       "review": rs[seed].text, "input_key": pid, "seconds": 0.0,
                       "system_config": {"key": "k", "settings": {"kind": "local", "temperature": 0.6, "seed": seed}}})
        store.add({"key": f"r-{pid}", "system": "recipes", "schema": "4", "id": pid, "review": RECIPE,
                   "system_config": {"key": "k2", "settings": {"kind": "openai", "temperature": 0.7}}})
    return reviews


def test_scorecard_figures_from_stored_reviews(tmp_path):
    path = tmp_path / "reviews.jsonl"
    reviews = write_store(path)
    with path.open("a") as f:
        f.write('{"cut by a kill mid-wri')  # the store skips such a line; so does the scorecard
    rows = read_review_rows(path)
    assert len(rows) == 16 * 3
    assert set(runs(rows)) == {"first-human (7-aspect)", "recipes (4-aspect)"}
    humans = Humans.from_reviews(reviews)
    card = scorecard(rows, humans, default_model(), fitted_on=set(), samples=200)
    assert card["papers"] == 16
    lines = {r["name"]: r for r in card["rows"]}
    sys_row = lines["first-human (7-aspect)"]
    assert sys_row["seeds"] == [0, 1] and set(sys_row["spread"]) == {"spearman", "auroc", "balanced_accuracy", "bias"}
    per_seed = sys_row["per_seed"]
    assert set(per_seed) == {"0", "1"}
    assert abs(sys_row["spread"]["bias"] - round(float(np.std([per_seed[k]["bias"] for k in "01"], ddof=1)), 4)) < 1e-9
    # The figure is the model's rating of the seed-0 reviews against the papers' human mean, recomputed here.
    firsts = {pid: next(r for r in reviews if r.paper_id == pid) for pid in humans.ratings}
    ids = sorted(firsts)
    rated = default_model().rate([firsts[p].text for p in ids])
    ok = [(p, r) for p, r in zip(ids, rated) if r.calibrated]
    expect = spearman(np.array([r.rating for _, r in ok]), np.array([humans.mean(p) for p, _ in ok]))
    assert abs(sys_row["figures"]["spearman"]["value"] - round(expect, 4)) < 1e-9
    # How far a paper's rating moves between the two "seeds" (its first and second human review).
    seconds = default_model().rate([[r for r in reviews if r.paper_id == p][1].text for p in ids])
    moved = [abs(a.rating - b.rating) / np.sqrt(2) for a, b in zip(rated, seconds) if a.calibrated and b.calibrated]
    assert abs(sys_row["figures"]["rating_sd_over_seeds"]["value"] - round(float(np.mean(moved)), 4)) < 1e-9
    lo, hi = sys_row["figures"]["auroc"]["ci"]
    assert lo <= sys_row["figures"]["auroc"]["value"] <= hi
    # Recipes are not rated at all: no line of numbers for them.
    assert lines["recipes (4-aspect)"]["papers"] == 0 and "fewer than 3" in lines["recipes (4-aspect)"]["note"]
    # Human baseline on the same papers: one human against the mean of the others.
    base = lines["human: own rating vs the others' mean"]
    assert base["papers"] == 16 and 0.3 < base["figures"]["auroc"]["value"] <= 1.0
    via_model = lines["human: review text through the rating model vs the others' mean"]
    assert via_model["papers"] >= 15  # papers the model never fitted on (fitted_on is empty here)
    md = to_markdown(card)
    assert "| first-human (7-aspect) | 16 |" in md and "0, 1" in md
    # A system run without a seed (an API model) is listed as seed None: its line says "-", not "None".
    unseeded = {**card, "rows": [{**sys_row, "seeds": [None]}]}
    line = next(x for x in to_markdown(unseeded).splitlines() if x.startswith("| first-human (7-aspect)"))
    assert "None" not in line and "| - |" in line


def test_eval_scorecard_cli(tmp_path):
    path = tmp_path / "reviews.jsonl"
    write_store(path)
    out = tmp_path / "card.json"
    p = subprocess.run([sys.executable, "-m", "eval", "scorecard", "--reviews", str(path), "--human", str(HUMAN),
                        "--samples", "100", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "Scorecard on 16 papers" in p.stdout and "human: own rating vs the others' mean" in p.stdout
    card = json.loads(out.read_text())
    # The bundled model's held-out papers are these: the text-through-model line is on all 16.
    assert [r for r in card["rows"] if r["name"].startswith("human: review text")][0]["papers"] == 16
    bad = subprocess.run([sys.executable, "-m", "eval", "scorecard", "--reviews", str(tmp_path / "none.jsonl"),
                          "--human", str(HUMAN)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "no stored reviews" in bad.stderr


def test_the_json_card_is_strict_json_with_undefined_figures_as_null():
    card = {"rows": [{"figures": {"auroc": {"value": float("nan"), "ci": (float("nan"), float("nan"))},
                                  "spearman": {"value": 0.5, "ci": (0.1, 0.8)}}}]}
    back = json.loads(to_json(card), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    figures = back["rows"][0]["figures"]
    assert figures["auroc"] == {"value": None, "ci": [None, None]}
    assert figures["spearman"] == {"value": 0.5, "ci": [0.1, 0.8]}
