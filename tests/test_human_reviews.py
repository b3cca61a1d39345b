"""The paper's human reviews for the judge (issue #26 item 4): read from pasted text, the recipe's
review files (a real ICLR 2017 one), OpenReview forum exports (API v1 and v2 note shapes); given to
the judge as its prompt intends (the real openai client against the local server); recorded in the
downloads."""

import json
from pathlib import Path

import pytest
import yaml

from app.export import export_run
from app.run import RunPhase, finish
from app.human_reviews import HumanReviews, HumanReviewsError, describe, read, split_pasted
from app.service import ReviewService
from app.settings import AppSettings
from reviewgpt.config import OpenAIConfig
from reviewgpt.prepare.model_input import prepare

from .conftest import marker_review
from .support.openai_server import API_KEY

FIXTURE = Path(__file__).parent / "fixtures" / "human_reviews" / "ICLR_2017_100_review.json"
ICLR = [r["review"].strip() for r in json.loads(FIXTURE.read_text())["reviews"]]


def test_pasted_reviews_are_split_on_a_line_of_dashes():
    assert split_pasted(f"{ICLR[0]}\n---\n{ICLR[1]}\n\n-----\n\n{ICLR[2]}\n") == ICLR
    assert split_pasted(ICLR[0]) == [ICLR[0]] and split_pasted("  \n---\n ") == []
    h = read(f"{ICLR[0]}\n---\n{ICLR[1]}", None)
    assert h.texts == ICLR[:2] and h.source == "pasted" and len(h.sha256) == 64
    assert "2 human reviews (pasted" in describe(h) and "against the paper itself" in describe(HumanReviews())


def test_the_recipes_review_file_is_read(tmp_path):
    h = read("ignored when a file is given", str(FIXTURE))
    assert h.texts == ICLR and h.source == FIXTURE.name


def _v2_export(tmp_path) -> Path:
    """A forum in OpenReview API v2's note shape: the submission, two official reviews (fields wrapped as
    {"value": ...}), an author's comment and a meta-review."""
    inv = "ICLR.cc/2024/Conference/Submission42/-/"
    notes = [
        {"id": "s", "invitations": ["ICLR.cc/2024/Conference/-/Submission"],
         "content": {"title": {"value": "A paper"}, "abstract": {"value": "We study things. " * 20},
                     "pdf": {"value": "/pdf/x.pdf"}}},
        {"id": "r1", "invitations": [inv + "Official_Review"],
         "content": {"summary": {"value": ICLR[1][:400]}, "weaknesses": {"value": ICLR[1][400:]},
                     "rating": {"value": 6}, "confidence": {"value": 4}}},
        {"id": "c1", "invitations": [inv + "Official_Comment"],
         "content": {"comment": {"value": "We thank the reviewer and have added the requested experiments. " * 3}}},
        {"id": "r2", "invitations": [inv + "Official_Review"], "content": {"summary": {"value": ICLR[2]}}},
        {"id": "m", "invitations": [inv + "Meta_Review"], "content": {"metareview": {"value": ICLR[0]}}},
    ]
    p = tmp_path / "forum.json"
    p.write_text(json.dumps({"notes": notes}))
    return p


def test_an_openreview_v2_forum_export_gives_its_reviews_not_the_paper_or_comments(tmp_path):
    h = read("", str(_v2_export(tmp_path)))
    assert len(h.texts) == 3 and h.source == "forum.json"
    first = h.texts[0]
    assert first.startswith("Summary: " + ICLR[1][:40]) and "Weaknesses: " in first and "Rating: 6" in first
    assert all("We study things" not in t and "We thank the reviewer" not in t for t in h.texts)


def test_an_openreview_v1_forum_export(tmp_path):
    notes = [{"invitation": "ICLR.cc/2018/Conference/-/Paper7/Official_Review",
              "content": {"title": "Review", "review": ICLR[2], "rating": "7: Good paper, accept"}},
             {"invitation": "ICLR.cc/2018/Conference/-/Blind_Submission",
              "content": {"title": "Paper", "abstract": "We study things. " * 20, "pdf": "/pdf/y.pdf"}}]
    p = tmp_path / "v1.json"
    p.write_text(json.dumps(notes))
    (text,) = read("", str(p)).texts
    assert ICLR[2] in text and "Rating: 7: Good paper" in text


def test_a_file_without_reviews_says_so(tmp_path):
    bad = tmp_path / "forum.json"
    bad.write_text("{not json")
    with pytest.raises(HumanReviewsError, match="not valid JSON"):
        read("", str(bad))
    bad.write_text(json.dumps({"notes": []}))
    with pytest.raises(HumanReviewsError, match="No reviews found"):
        read("", str(bad))


def test_the_judge_reads_them_and_the_downloads_record_them(openai_env, tmp_path):
    service = ReviewService(AppSettings(demo=False, openai=OpenAIConfig(
        api_key=API_KEY, base_url=openai_env.base_url, max_retries=0)))
    mi = prepare("Title: A paper\n\nAbstract: We study adapters.", "4", None)
    human = read("", str(FIXTURE))
    run = service.new_run(mi, 0.95, 0.7, 1, "A paper", None, None, human)
    run.local.text, run.gpt.text = marker_review("4"), marker_review("4").replace("Point", "Item")
    run.verdict = service.judge(mi, run.local.text, run.gpt.text, run.human.texts)
    finish(run, RunPhase.DONE)
    prompts = [r["body"]["messages"][1]["content"] for r in openai_env.state.requests]
    assert len(prompts) == 2  # both orders, each with the human reviews as ground truth
    for p in prompts:
        assert "[Human reviews: ground truth]" in p and all(t in p for t in ICLR)
    files = {Path(f).name: Path(f).read_text() for f in export_run(run, service.models(), "test", tmp_path)}
    verdict = next(v for k, v in files.items() if k.endswith("verdict.md"))
    head = yaml.safe_load(verdict.split("\n---\n")[0].removeprefix("---\n"))
    assert head["human_reviews"] == {"given": True, "count": 3, "source": FIXTURE.name, "sha256": human.sha256}
    assert "compares against 3 human reviews" in verdict
    data = json.loads(next(v for k, v in files.items() if k.endswith("results.json")))
    assert data["human_reviews"]["texts"] == ICLR
    # without them: said so, and the prompt says the judge has none
    openai_env.state.requests.clear()
    run2 = service.new_run(mi, 0.95, 0.7, 1, "A paper", None, None)
    run2.local.text, run2.gpt.text = run.local.text, run.gpt.text
    run2.verdict = service.judge(mi, run2.local.text, run2.gpt.text, run2.human.texts or None)
    finish(run2, RunPhase.DONE)
    assert all("Human reviews: none available" in r["body"]["messages"][1]["content"]
               for r in openai_env.state.requests)
    (tmp_path / "2").mkdir()
    files = [Path(f).read_text() for f in export_run(run2, service.models(), "test", tmp_path / "2")]
    assert any("No human reviews were given" in f for f in files)
    assert all("given: false" in f for f in files if f.startswith("---"))
