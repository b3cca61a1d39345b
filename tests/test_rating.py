"""The calibrated rating (issue #24): the bundled model loads from the repository alone, rates real
held-out human reviews sensibly, turns down text that is not an ML review, and `eval rate` prints
one line per input. The fixture tests/fixtures/rating/iclr2017 holds 16 papers of the held-out split
(8 accepted, 8 not), never fitted on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reviewgpt.rating import metrics as M
from reviewgpt.rating.artifact import DEFAULT_DIR, ArtifactError, default_model, load, read_metrics
from reviewgpt.rating.data import read_rated_reviews
from reviewgpt.rating.model import RatingModel, RatingModelConfig
from reviewgpt.training.data.papers import read_iclr2017

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "rating"


@pytest.fixture(scope="module")
def held_out():
    return read_rated_reviews(FIX / "iclr2017")


@pytest.fixture(scope="module")
def model():
    return default_model()


def test_artifact_is_versioned_small_and_names_disjoint_data():
    m = read_metrics()
    assert m["version"] and m["scikit_learn"]
    assert {"spearman", "interval_coverage", "auroc_p_accept_single_review"} <= set(m["held_out"])
    assert (DEFAULT_DIR / "model.joblib").stat().st_size < 5 * 2**20
    data = json.loads((DEFAULT_DIR / "data.json").read_text())
    train, test = set(data["train"]["paper_ids"]), set(data["held_out"]["paper_ids"])
    assert train and test and not train & test  # no paper on both sides
    assert data["train"]["reviews"] == m["split"]["train_reviews"]


def test_fixture_papers_are_held_out(held_out):
    data = json.loads((DEFAULT_DIR / "data.json").read_text())
    ids = {r.paper_id for r in held_out}
    assert len(ids) == 16 and ids <= set(data["held_out"]["paper_ids"])
    assert all(r.split == "test" for r in held_out)


def test_rates_held_out_human_reviews(model, held_out):
    out = model.rate([r.text for r in held_out])
    ok = [(r, o) for r, o in zip(held_out, out) if o.calibrated]
    assert len(ok) >= 0.9 * len(held_out)
    p = model.platt.predict_proba(np.array([[3.0], [5.0], [8.0]]))[:, 1]
    assert p[0] < p[1] < p[2]  # P(accept) rises with the rating
    for _, o in ok:
        assert 1 <= o.low <= o.rating <= o.high <= 10 and 0 < o.p_accept < 1
    y = np.array([r.rating for r, _ in ok])
    pred = np.array([o.rating for _, o in ok])
    assert M.spearman(pred, y) > 0.3  # 0.48 on these 47 reviews; a broken model is near 0
    acc = np.array([r.accepted for r, _ in ok])
    assert M.auroc(acc, np.array([o.p_accept for _, o in ok])) > 0.55  # 0.59 here (0.74 on all 259 held-out reviews)


def test_gate_turns_down_text_that_is_not_an_ml_review(model):
    others = [json.loads(line) for line in (FIX / "not_reviews.jsonl").read_text().splitlines() if line.strip()]
    paper = next(iter(read_iclr2017(ROOT / "tests" / "fixtures" / "iclr2017")))
    own_text = " ".join(paper.document.sections[1].text.split()[:250])
    out = model.rate([o["text"] for o in others] + [own_text, "Good paper, accept."])
    assert all(not o.calibrated and o.rating is None and o.p_accept is None and o.reason for o in out)
    assert "not about machine learning" in out[0].reason  # the recipe
    assert "too short" in out[-1].reason
    assert out[-2].reason.startswith("this text does not read like a peer review") and "P(" not in out[-2].reason


def test_gate_reason_shows_a_number_under_the_threshold_it_failed():
    """P(review) 0.496 is under 0.5 and turned down: the reason must not say "50% ... a review is 50%"."""
    from reviewgpt.rating.gate import ReviewGate, percent_below

    class Classifier:  # the review-vs-paper classifier's answer, fixed at just under the threshold
        def __init__(self, p):
            self.p = p

        def predict_proba(self, texts):
            return np.array([[1 - self.p, self.p]] * len(texts))

    gate = ReviewGate()
    gate.vocabulary = frozenset(["model", "results", "experiments", "method", "paper"])
    text = " ".join(["the model results experiments method paper"] * 10)  # long enough, all ML words
    for p, shown in ((0.496, "49%"), (0.0049, "under 1%"), (0.01, "1%"), (0.29, "29%")):
        gate.classifier = Classifier(p)
        [out] = gate.check([text])
        assert not out.ok and f"({shown} review-like, a review is 50% or more)" in out.reason, out.reason
    assert percent_below(0.499999) == "49%" and percent_below(0.5) == "50%"
    gate.min_vocab_share = 0.354  # the ML-words test, its share just under its threshold
    gate.vocab_share = lambda t: 0.352
    [out] = gate.check([text])
    assert "(35% of its words are ML-review words; reviews have 36% or more)" in out.reason, out.reason


def test_fit_on_a_few_reviews_gives_a_conformal_interval():
    rs = read_rated_reviews(FIX / "iclr2017")
    m = RatingModel(RatingModelConfig(folds=4, min_df=1)).fit(
        [r.text for r in rs], np.array([r.rating for r in rs]), np.array([r.accepted for r in rs]),
        [r.paper_id for r in rs])
    assert m.residual_low < 0 < m.residual_high
    oof = m.oof["stack"]
    y = np.array([r.rating for r in rs])
    cover = M.coverage(y, oof + m.residual_low, oof + m.residual_high)
    assert 0.75 <= cover <= 0.95  # the conformal quantiles of these very residuals


def test_load_refuses_a_folder_without_a_model(tmp_path):
    with pytest.raises(ArtifactError, match="python -m train.rating"):
        load(tmp_path)


def test_load_names_a_model_file_it_cannot_read(tmp_path):
    """A file cut short or a Git LFS pointer in place of the model: an ArtifactError that says what to
    do (the app then shows the review without a rating), not a bare KeyError from unpickling."""
    (tmp_path / "metrics.json").write_bytes((DEFAULT_DIR / "metrics.json").read_bytes())
    for body in (b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1554618\n",
                 (DEFAULT_DIR / "model.joblib").read_bytes()[:100_000]):
        (tmp_path / "model.joblib").write_bytes(body)
        with pytest.raises(ArtifactError, match="cannot load .*model.joblib.*python -m train.rating"):
            load(tmp_path)


def test_paper_bootstrap_ci_brackets_the_value(held_out):
    g = [r.paper_id for r in held_out]
    y = np.array([r.rating for r in held_out], float)
    noisy = y + np.random.default_rng(0).normal(0, 1, len(y))
    r = M.with_ci(M.spearman, g, noisy, y, samples=200)
    assert r["ci"][0] <= r["value"] <= r["ci"][1] and r["ci"][1] - r["ci"][0] > 0.05


def test_eval_rate_prints_one_line_per_input(tmp_path, held_out):
    f = tmp_path / "reviews.jsonl"
    f.write_text(json.dumps({"review": held_out[0].text}) + "\n\nnot json\n"
                 + json.dumps({"text": "wrong key"}) + "\n"
                 + json.dumps({"review": "Bake the cake for an hour."}) + "\n")
    p = subprocess.run([sys.executable, "-m", "eval", "rate", "--reviews", str(f)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert p.returncode == 1 and len(rows) == 4
    assert rows[0]["calibrated"] and set(rows[0]) >= {"rating", "low", "high", "p_accept"}
    assert rows[0]["rating"] == default_model().rate([held_out[0].text])[0].rating
    assert rows[1] == {"line": 3, "error": "not JSON (Expecting value)"}
    assert "review" in rows[2]["error"]
    assert rows[3]["calibrated"] is False and rows[3]["rating"] is None


def test_data_prep_rating_target_is_opt_in_and_read_back(tmp_path):
    """Data prep's rating_target ends each target with the human mean rating and the decision; off by
    default (the recipe's targets unchanged); own_rating reads it back and the calibrated rating
    does not read it (without_own_rating)."""
    from reviewgpt.format.review_format import parse
    from reviewgpt.rating.own import own_rating, without_own_rating
    from reviewgpt.training.data.prepare import PrepareConfig, prepare, read_examples

    src = str(ROOT / "tests" / "fixtures" / "iclr2017")  # papers with their text (content/)
    plain = read_examples(prepare(PrepareConfig(source=src, out_dir=str(tmp_path / "a"), schemas=["4"],
                                                val_frac=0.0, test_frac=0.0))["train"])
    rated = read_examples(prepare(PrepareConfig(source=src, out_dir=str(tmp_path / "b"), schemas=["4"],
                                                val_frac=0.0, test_frac=0.0, rating_target=True))["train"])
    assert len(plain) == len(rated) == 12
    assert all("Overall rating" not in ex["review"] and own_rating(ex["review"]) is None for ex in plain)
    humans = {}
    for r in read_rated_reviews(src):
        humans.setdefault(r.paper_id, []).append(r.rating)
    for a, b in zip(plain, rated):
        assert b["review"].startswith(a["review"].rstrip())
        assert own_rating(b["review"]) == round(float(np.mean(humans[b["id"]])), 1)
        assert f"(decision: {b['decision']})" in b["review"].splitlines()[-1]
        assert parse(b["review"], "4").report.is_well_formed  # the line is trailing text, not a section
        assert without_own_rating(b["review"]) == a["review"].rstrip()


def test_a_review_without_text_takes_its_rating_with_it(tmp_path):
    """read_iclr2017 drops a review that has no text: its rating goes too, so a record's reviews and
    ratings stay parallel and the rating target's mean is over the reviews kept (as read_rated_reviews)."""
    from reviewgpt.training.data.prepare import with_rating

    for sub in ("paper", "content", "review"):
        (tmp_path / sub).mkdir()
    (tmp_path / "paper" / "P1_paper.json").write_text(json.dumps({"title": "T", "decision": "Reject"}))
    (tmp_path / "content" / "P1_content.json").write_text(json.dumps(
        {"metadata": {"title": "T", "sections": [{"heading": "1 Intro", "text": "Some text."}]}}))
    (tmp_path / "review" / "P1_review.json").write_text(json.dumps({"reviews": [
        {"review": "First review.", "rating": "8: Top 50% of accepted papers, clear accept"},
        {"review": "  ", "rating": "1: Trivial or wrong"},
        {"review": "Third review.", "rating": "4: Ok but not good enough - rejection"}]}))
    (paper,) = read_iclr2017(tmp_path)
    assert paper.reviews == ["First review.", "Third review."]
    assert [int(r.split(":")[0]) for r in paper.ratings] == [8, 4]
    assert with_rating("target", paper).endswith("Overall rating: 6.0 / 10 (decision: Reject)\n")
    assert [(r.text, r.rating) for r in read_rated_reviews(tmp_path)] == [("First review.", 8), ("Third review.", 4)]


def test_verdict_area_names_the_calibrated_and_the_models_own_rating(held_out):
    """A review that states its own rating ('Overall rating: ...', as data prep's rating_target
    teaches): the verdict area shows both, each named; the calibrated one reads the review without it."""
    from types import SimpleNamespace

    from app.labels import ModelLabel
    from app.rating import rate, rate_run, ratings_markdown
    from app.run import Side
    from reviewgpt.rating.own import rating_line

    text = held_out[0].text
    local = Side(ModelLabel("Fine-tuned Llama", "d", "the fine-tuned model"),
                 text=text + "\n\n" + rating_line(3.0, "Reject"))
    gpt = Side(ModelLabel("GPT-4o baseline", "d", "GPT-4o"), text="Bake the cake for an hour at 180 degrees.")
    run = SimpleNamespace(local=local, gpt=gpt, partial=False, cut_short=lambda side: False)
    rate_run(run)
    assert local.rating["own_rating"] == 3.0 and local.rating["rating"] == rate(text)["rating"]
    assert local.rating["model"] == read_metrics()["version"]  # the bundled model's, named with its rating
    assert gpt.rating["calibrated"] is False and gpt.rating["own_rating"] is None
    md = ratings_markdown(run)
    c = local.rating
    shown = f"{c['rating']:.1f} (80% interval {c['low']:.1f}-{c['high']:.1f})"
    assert f"| calibrated rating, ICLR 1-10 | {shown} | none (see below) |" in md
    assert f"| chance of acceptance | {c['p_accept']:.0%} | - |" in md
    assert "| rating the model wrote itself | 3.0 | - |" in md
    assert "GPT-4o baseline: no calibrated rating: too short to rate" in md
    assert "P(accept)" not in md and "not calibrated" not in md


def test_app_start_loads_the_rating_model_before_serving(monkeypatch):
    """`python -m app` loads the rating model at start-up, not on the first review's rating."""
    import app.service
    import app.ui
    from app.main import main

    class Service:
        def __init__(self, settings):
            pass

        def load(self):
            pass

    seen = []
    monkeypatch.setattr(app.service, "ReviewService", Service)
    monkeypatch.setattr(app.ui, "build", lambda service: "blocks")
    monkeypatch.setattr(app.ui, "launch", lambda blocks, **kw: seen.append(default_model.cache_info().currsize))
    default_model.cache_clear()
    main([])
    assert seen == [1]  # the model was in memory when the server started


def test_eval_rate_and_the_rate_endpoint_give_one_number_for_a_review_that_states_its_rating(held_out):
    """A review ending with the model's own 'Overall rating: 9.5 / 10' line: `eval rate` read that line
    as a stated score (7.48 on a real ICLR review where /rate gave 6.97); both now read the review without it."""
    from app.rating import rate
    from eval.rate import rate_lines

    review = held_out[0].text
    stated = review + "\n\nOverall rating: 9.5 / 10 (decision: Accept)"
    [cli, cli_plain] = rate_lines([json.dumps({"review": stated}), json.dumps({"review": review})])
    api = rate(stated)
    assert cli["calibrated"] and api["calibrated"]
    assert (cli["rating"], cli["low"], cli["high"], cli["p_accept"]) == (
        api["rating"], api["low"], api["high"], api["p_accept"]) == (
        cli_plain["rating"], cli_plain["low"], cli_plain["high"], cli_plain["p_accept"])


def test_gate_says_a_review_not_in_english_or_too_long_is_so(model, held_out):
    """A French review was 'not about machine learning', a Chinese one 'too short to rate (1 words)', and
    3,000 copies of a review (18 MB) were rated 8.2 after 17 s: each reason now names what is wrong."""
    french = ("Cet article propose une nouvelle méthode d'apprentissage par renforcement pour les réseaux de "
              "neurones profonds. Les expériences sont convaincantes mais la comparaison avec l'état de l'art est "
              "insuffisante. Les auteurs devraient ajouter des ablations et clarifier la notation de la section 3. "
              "Je recommande une acceptation faible car l'idée est originale mais l'évaluation reste limitée.")
    chinese = "本文提出了一种新的深度神经网络训练方法。实验结果令人信服，但与现有方法的比较不够充分。" * 3
    review = held_out[0].text
    many = "\n".join([review] * (5001 // len(review.split()) + 1))
    out = model.rate([french, chinese, many, review, "Accept."])
    assert [o.calibrated for o in out] == [False, False, False, True, False]
    assert out[0].reason.startswith("not in English") and out[1].reason.startswith("not in English")
    assert out[2].reason.startswith(f"too long to be one review ({len(many.split()):,} words;")
    assert out[4].reason == "too short to rate (1 word; at least 30)"
