"""The GPT-4 side through the real `openai` client against a real local HTTP server."""

import logging

import pytest

from reviewgpt.config import OpenAIConfig
from reviewgpt.errors import OpenAIConfigError, OpenAIServiceError
from reviewgpt.compare.judge import NO_VERDICT, PairwiseJudge
from reviewgpt.format.review_format import parse
from reviewgpt.format.schema import FOUR_ASPECT
from reviewgpt.remote.gpt_reviewer import GPTReviewer
from reviewgpt.remote.openai_client import OpenAIChat

from .support.openai_server import API_KEY, Step

PAPER = "Title: A paper\n\nAbstract: We propose a method and evaluate it."
SHORT = "## Significance and novelty\n1. **Novel**: yes."
LONG = SHORT + "\n2. **Careful**: the experiments are thorough and well controlled."


def _chat(**kw) -> OpenAIChat:
    return OpenAIChat(OpenAIConfig(max_retries=kw.pop("max_retries", 2), **kw))


def test_missing_key_says_how_to_enable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(OpenAIConfigError, match="OPENAI_API_KEY"):
        OpenAIChat(OpenAIConfig())


def test_reviewer_streams_in_the_shared_format(openai_env):
    reviewer = GPTReviewer(_chat(), model="gpt-4-1106-preview")
    pieces = list(reviewer.stream(PAPER, "4"))
    assert len(pieces) > 3
    report = parse("".join(pieces), "4").report
    assert report.is_well_formed and all(c.item_count == 2 for c in report.criteria)
    body = openai_env.state.requests[-1]["body"]
    assert body["stream"] is True and body["model"] == "gpt-4-1106-preview"
    system = body["messages"][0]["content"]
    assert system.startswith(FOUR_ASPECT.system_prompt) and "<No related terms>" in system
    assert body["messages"][1]["content"] == PAPER


def test_judge_both_orders_agree(openai_env):
    v = PairwiseJudge(_chat()).compare("4", PAPER, LONG, SHORT, human_reviews=["Human says: novel."])
    assert v.winner == "A" and v.consistent
    assert v.first.winner == "A" and v.second.winner == "A"  # second order mapped back to the caller's labels
    assert set(v.aspects) == set(FOUR_ASPECT.criteria)
    reqs = openai_env.state.requests
    assert len(reqs) == 2 and all(r["body"]["temperature"] == 0 for r in reqs)
    users = [r["body"]["messages"][1]["content"] for r in reqs]
    assert "Human says: novel." in users[0] and f"[Review A]\n{LONG}\n\n[Review B]\n{SHORT}" in users[0]
    assert f"[Review A]\n{SHORT}\n\n[Review B]\n{LONG}" in users[1]  # swapped
    assert reqs[0]["body"]["response_format"]["type"] == "json_schema"


def test_position_bias_is_a_tie(openai_env):
    openai_env.state.judge_rule = "first"  # always prefers whatever is shown first
    v = PairwiseJudge(_chat()).compare("4", PAPER, LONG, SHORT)
    assert v.winner == "tie" and not v.consistent
    assert "disagree" in v.summary()


def test_real_tie(openai_env):
    openai_env.state.judge_rule = "tie"
    v = PairwiseJudge(_chat()).compare("4", PAPER, LONG, SHORT)
    assert v.winner == "tie" and v.consistent


def test_malformed_then_valid_is_retried(openai_env):
    openai_env.state.script.append(Step(content="Sure! Review A is better, I think."))
    v = PairwiseJudge(_chat()).compare("4", PAPER, LONG, SHORT)
    assert v.winner == "A" and v.first.attempts == 2 and len(openai_env.state.requests) == 3


def test_always_malformed_is_no_verdict_not_a_win(openai_env):
    for _ in range(3):
        openai_env.state.script.append(Step(content="{not json"))
    v = PairwiseJudge(_chat(), max_attempts=3).compare("4", PAPER, LONG, SHORT)
    assert v.winner == NO_VERDICT and "could not" in v.summary()


def test_429_then_success(openai_env):
    openai_env.state.script.extend([Step(status=429), Step(status=503)])
    text = _chat().complete([{"role": "user", "content": "hi"}], "gpt-4o")
    assert text and len(openai_env.state.requests) == 3


def test_rate_limit_and_quota_messages(openai_env):
    openai_env.state.script.extend([Step(status=429)] * 3)
    with pytest.raises(OpenAIServiceError, match="Rate limited"):
        _chat(max_retries=2).complete([{"role": "user", "content": "hi"}], "gpt-4o")
    openai_env.state.script.append(Step(status=429, error_code="insufficient_quota"))
    with pytest.raises(OpenAIServiceError, match="quota"):
        _chat(max_retries=0).complete([{"role": "user", "content": "hi"}], "gpt-4o")


def test_timeout(openai_env):
    openai_env.state.script.append(Step(delay_s=3.0))
    with pytest.raises(OpenAIServiceError, match="did not answer within"):
        _chat(timeout_s=0.5, max_retries=0).complete([{"role": "user", "content": "hi"}], "gpt-4o")


def test_bad_key_and_unknown_model_never_leak_the_key(openai_env, monkeypatch, caplog):
    bad = "sk-wrong-secret-987654"
    monkeypatch.setenv("OPENAI_API_KEY", bad)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(OpenAIServiceError) as e:
        _chat().complete([{"role": "user", "content": "hi"}], "gpt-4o")
    assert "401" in str(e.value) and "OPENAI_API_KEY" in str(e.value)
    assert bad not in str(e.value) and bad not in caplog.text
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    openai_env.state.script.append(Step(status=404))
    with pytest.raises(OpenAIServiceError, match="not found"):
        _chat().complete([{"role": "user", "content": "hi"}], "gpt-5-nonexistent")


def test_server_without_structured_output_falls_back(openai_env):
    openai_env.state.script.append(Step(status=400, content=None, match="response_format"))
    v = PairwiseJudge(_chat()).compare("4", PAPER, LONG, SHORT)
    assert v.winner == "A"


def test_a_tie_of_two_orders_names_each_review_as_the_caller_labels_it(openai_env):
    """The second order's judge saw B first and wrote its prose with A = the caller's B: the combined
    rationale puts its labels back, so naming the systems attributes each remark to the right review
    (issue #26: "Order 2 said GPT-4o: ... the demo model is more specific" named the wrong one)."""
    from reviewgpt.compare.judge import name_systems

    openai_env.state.judge_rule = "first"  # each order prefers the review shown first: a tie
    v = PairwiseJudge(_chat()).compare("4", PAPER, LONG, SHORT)
    assert v.winner == "tie" and v.first.winner == "A" and v.second.winner == "B"
    order2 = v.rationale.split("Order 2 said B: ")[1]
    # that judge wrote "A has {len(SHORT)} chars, B has {len(LONG)}": A was SHORT, the caller's B
    assert order2 == f"Rule first: B has {len(SHORT)} chars, A has {len(LONG)}."
    named = name_systems(order2, "Local", "GPT-4o")
    assert named == f"Rule first: GPT-4o has {len(SHORT)} chars, Local has {len(LONG)}."


def test_labels_are_renamed_in_the_judges_prose_and_articles_are_not():
    from reviewgpt.compare.judge import name_systems, swap_labels

    text = "Review A is more specific; A cites Table 3 while B lacks detail. A clear gain for review B. A process."
    assert swap_labels(text) == ("Review B is more specific; B cites Table 3 while A lacks detail. "
                                 "A clear gain for review A. A process.")
    assert name_systems(text, "L", "G") == ("L's review is more specific; L cites Table 3 while G lacks detail. "
                                            "A clear gain for G's review. A process.")
    # possessives are labels; an article before a noun ending in s is not
    assert swap_labels("B's review is more specific than A's.") == "A's review is more specific than B's."
    assert swap_labels("A series of ablations would help B. A focus on A's point.") == (
        "A series of ablations would help A. A focus on B's point.")
