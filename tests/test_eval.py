import json

import numpy as np
import pytest

from reviewgpt.compare.evaluation.config import Matchup, SystemSpec
from reviewgpt.compare.evaluation.report import report
from reviewgpt.compare.evaluation.stages import generate, judge, judgement_store, review_store
from reviewgpt.compare.evaluation.stats import (aspect_stats, length_adjusted_ci, length_adjusted_win_rate,
                                                matchup_stats)
from reviewgpt.compare.evaluation.systems import make_runner
from reviewgpt.format.review_format import Review, ReviewItem, render
from reviewgpt.format.schema import FOUR_ASPECT

from .support.eval_configs import local_vs_gpt
from .support.openai_server import Step


def _cfg(tmp_path, data_file, model_dirs, server, limit=3, max_prompt_tokens=2048):
    return local_vs_gpt(tmp_path, data_file, model_dirs, server, limit=limit, max_prompt_tokens=max_prompt_tokens,
                        max_new_tokens=40, bootstrap_samples=200)


def test_whole_pipeline_on_a_tiny_model_and_the_local_server(tmp_path, data_file, model_dirs, openai_env):
    cfg = _cfg(tmp_path, data_file, model_dirs, openai_env)
    generate(cfg)
    assert len(review_store(cfg)) == 9  # 3 systems x 3 papers
    judge(cfg)
    rows = list(judgement_store(cfg))
    assert len(rows) == 9 and len(openai_env.state.requests) == 3 + 9 * 2  # 3 GPT-4 reviews, 2 orders each
    judge_bodies = [r["body"] for r in openai_env.state.requests if "meta-reviewer" in r["body"]["messages"][0]["content"]]
    assert all("[Human reviews: ground truth]" in b["messages"][1]["content"] for b in judge_bodies)
    # rows explain themselves: settings, prompt hashes, input record, both raw judge outputs, time
    rev = next(r for r in review_store(cfg) if r["system"] == "ft+supp")
    assert rev["system_config"]["settings"]["suppression"] == 0.95 and len(rev["system_config"]["prompt_sha256"]) == 64
    assert rev["system_config"]["identity"]["adapter_id"].startswith("dir:") and rev["input"]["text_sha256"]
    assert rev["timestamp"] and rev["input"]["budget"] == 2048
    assert all(r["first"]["raw"] and r["second"]["raw"] and r["judge"]["model"] == cfg.judge_model
               and len(r["judge"]["prompt_sha256"]) == 64 and r["timestamp"] for r in rows)
    path = report(cfg)
    text = path.read_text()
    res = json.loads((path.parent / "results.json").read_text())
    for m in res["matchups"]:
        mine = [r for r in rows if r["matchup"] == m["matchup"]]
        assert m["wins"] == sum(r["winner"] == "A" for r in mine) and m["n"] == 3
        assert m["matchup"] in text
    assert (path.parent / "win_tie_loss.png").stat().st_size > 5000 and "![win_tie_loss.png]" in text
    assert {(a["system"], a["schema"]) for a in res["aspects"]} == {("ft", "4"), ("ft+supp", "4"), ("gpt4", "4")}
    # issue #23: each system's items traced to the paper, shares summing to 1
    grounding = {(g["system"], g["schema"]): g for g in res["grounding"]}
    assert set(grounding) == {("ft", "4"), ("ft+supp", "4"), ("gpt4", "4")} and "Review items traced to the paper" in text
    assert grounding[("gpt4", "4")]["items"] == 3 * 8  # the stub's reviews: 2 items per aspect
    assert all(abs(g["verified"] + g["related"] + g["not_found"] - 1) < 1e-9 for g in grounding.values() if g["items"])


def test_report_numbers_equal_hand_computed_ones():
    rows = [{"matchup": "m", "review_a": f"x{i}", "review_b": f"y{i}", "schema": "4", "id": str(i), "winner": w,
             "consistent": c}
            for i, (w, c) in enumerate([("A", True), ("A", True), ("tie", False), ("B", True), ("no verdict", False)])]
    lengths = {f"{s}{i}": n for i in range(5) for s, n in (("x", 100 + i), ("y", 100))}
    m = matchup_stats("m", rows, lengths, samples=1000, seed=0)
    assert (m.n, m.wins, m.ties, m.losses, m.no_verdict) == (4, 2, 1, 1, 1)  # no verdict is not a win
    assert m.win_rate == pytest.approx((2 + 0.5) / 4)
    assert m.order_consistency == pytest.approx(3 / 4)
    # the percentile bootstrap by hand: resample the 4 outcomes 1000 times with seed 0
    y = np.array([1, 1, 0.5, 0])
    means = y[np.random.default_rng(0).integers(0, 4, size=(1000, 4))].mean(axis=1)
    assert m.win_rate_ci == pytest.approx((np.quantile(means, 0.025), np.quantile(means, 0.975)))
    assert m.win_rate_ci[0] <= m.win_rate <= m.win_rate_ci[1]
    assert (m.mean_len_a, m.mean_len_b) == (pytest.approx(101.5), 100)
    assert not m.length_adjustment_extrapolated  # paper 0: equal lengths, so d = 0 is inside the data
    longer = {k: v + 1 for k, v in lengths.items() if k.startswith("x")}
    assert matchup_stats("m", rows, {**lengths, **longer}, samples=10, seed=0).length_adjustment_extrapolated


def test_items_per_aspect_variance_and_empty_rate_by_hand():
    def review(counts):
        return render(Review(FOUR_ASPECT.name, {c: [ReviewItem(f"t{k}", "e") for k in range(n)]
                                                for c, n in zip(FOUR_ASPECT.criteria, counts)}))
    s = aspect_stats("x", "4", [review([2, 0, 1, 3]), review([4, 2, 1, 1])])
    c = FOUR_ASPECT.criteria
    assert s.items_var_by_aspect == {c[0]: 1.0, c[1]: 1.0, c[2]: 0.0, c[3]: 1.0}
    assert s.items_var_mean == pytest.approx(0.75)
    assert s.empty_by_aspect[c[1]] == 0.5 and s.empty_rate == pytest.approx(0.125)


def test_length_adjustment_discounts_wins_explained_by_length():
    rng = np.random.default_rng(1)
    diff = rng.normal(40, 50, 400)  # A is usually longer...
    y = (diff + rng.normal(0, 20, 400) > 0).astype(float)  # ...and wins exactly by being longer
    raw = y.mean()
    lc = length_adjusted_win_rate(y, 200 + diff, np.full(400, 200.0))
    assert raw > 0.7 and abs(lc - 0.5) < 0.15


def _one_fit(y, len_a, len_b, iters=25):
    """The length-adjusted fit of one sample, written out: Newton's method with numpy's solver."""
    diff = len_a - len_b
    t = np.tanh(diff / (diff.std() or 1.0))
    X = np.stack([np.ones_like(t), t], axis=1)
    beta = np.zeros(2)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-X @ beta))
        hess = (X * (p * (1 - p))[:, None]).T @ X + 1e-3 * np.eye(2)
        beta += np.linalg.solve(hess, X.T @ (y - p) - 1e-3 * beta)
    return 1 / (1 + np.exp(-beta[0]))


def test_length_adjusted_interval_is_the_percentiles_of_each_resamples_own_fit(monkeypatch):
    """The bootstrap fits its resamples in arrays of several (here 7 at a time, the last 6): each must
    get the fit of that resample alone, as numpy's solver gives it."""
    from reviewgpt.compare.evaluation import stats

    rng = np.random.default_rng(3)
    y = rng.choice([0.0, 0.5, 1.0], 30)  # ties count half
    la, lb = rng.integers(100, 900, 30).astype(float), rng.integers(100, 900, 30).astype(float)
    lb[:2] = la[:2]  # a resample of these two alone has no length difference to fit
    monkeypatch.setattr(stats, "BOOTSTRAP_CHUNK", 7 * 30)
    lo, hi = length_adjusted_ci(y, la, lb, samples=300, seed=7)
    drawn = np.random.default_rng(7).integers(0, 30, size=(300, 30))  # the resamples it drew
    fits = [_one_fit(y[r], la[r], lb[r]) for r in drawn]
    assert (lo, hi) == pytest.approx(tuple(np.quantile(fits, [0.025, 0.975])), abs=1e-12) and lo < hi
    assert length_adjusted_win_rate(y[:2], la[:2], lb[:2]) == pytest.approx(_one_fit(y[:2], la[:2], lb[:2], 50))


def test_kill_midway_and_resume_loses_nothing_and_asks_nothing_twice(tmp_path, data_file, model_dirs, openai_env):
    cfg = _cfg(tmp_path, data_file, model_dirs, openai_env, limit=4)

    class Killed(Exception):
        pass

    real = make_runner(cfg.system("gpt4"), cfg)
    calls = {"n": 0}

    class Flaky:
        batch_size = 1

        def review(self, texts, schema):
            calls["n"] += 1
            if calls["n"] == 3:
                raise Killed()  # the process dies while writing the third GPT-4 review
            return real.review(texts, schema)

    with pytest.raises(Killed):
        generate(cfg, systems={"gpt4": Flaky()})
    assert len(openai_env.state.requests) == 2
    generate(cfg)  # resume
    reviews = [json.loads(x) for x in (tmp_path / "eval" / "reviews.jsonl").open()]
    keys = [(r["system"], r["schema"], r["id"]) for r in reviews]
    assert len(keys) == len(set(keys)) == 12
    assert len(openai_env.state.requests) == 4  # the two written reviews were not asked again

    from reviewgpt.compare.judge import PairwiseJudge
    from reviewgpt.remote.openai_client import OpenAIChat

    real_judge = PairwiseJudge(OpenAIChat(cfg.openai))
    seen = {"n": 0}

    class FlakyJudge:
        def compare(self, *a, **kw):
            seen["n"] += 1
            if seen["n"] == 5:
                raise Killed()
            return real_judge.compare(*a, **kw)

    cfg.judge_concurrency = 1  # serial here, so the count of calls is exact (the parallel case is below)
    with pytest.raises(Killed):
        judge(cfg, FlakyJudge())
    judge(cfg)
    rows = [json.loads(x) for x in (tmp_path / "eval" / "judgements.jsonl").open()]
    assert len(rows) == len({(r["matchup"], r["id"]) for r in rows}) == 12
    assert len(openai_env.state.requests) == 4 + 12 * 2  # each pair judged once, in both orders


def test_malformed_judge_output_is_no_verdict_in_the_report(tmp_path, data_file, model_dirs, openai_env):
    cfg = _cfg(tmp_path, data_file, model_dirs, openai_env, limit=2)
    cfg.systems = [cfg.system("gpt4"), SystemSpec("gpt4b", kind="openai", model="other")]
    cfg.matchups = [Matchup("gpt4", "gpt4b", "4")]
    cfg.judge_concurrency = 1  # the scripted answers go to the first paper's first order, in turn
    generate(cfg)
    openai_env.state.script.extend([Step(content="I cannot decide.")] * 3)
    judge(cfg)
    m = json.loads((report(cfg).parent / "results.json").read_text())["matchups"][0]
    assert m["no_verdict"] == 1 and m["n"] == 1 and m["wins"] + m["ties"] + m["losses"] == 1
