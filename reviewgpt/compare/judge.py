"""Pairwise, reference-guided judge (shared by the app and eval/).

The judge sees the paper exactly as both reviewers read it (the caller passes `ModelInput.text` of
the same `prepare()` result; the judge adds no cut of its own), the human reviews when available
(the ground truth), and two reviews. It is asked twice, with A and B swapped; a side wins only when both
orders agree, otherwise the pair is a tie. Output is JSON (json_schema response_format where the
server supports it); malformed output is asked again, then reported as "no verdict", never guessed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from reviewgpt.errors import OpenAIServiceError
from reviewgpt.format.schema import ReviewSchema, get_schema
from reviewgpt.prompts import load_prompt
from reviewgpt.remote.openai_client import OpenAIChat

NO_VERDICT = "no verdict"


def judge_response_format(schema: ReviewSchema) -> dict[str, Any]:
    side = {"type": "string", "enum": ["A", "B", "tie"]}
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "pairwise_verdict",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "winner": side,
                    "rationale": {"type": "string"},
                    "aspects": {"type": "object", "properties": {c: side for c in schema.criteria},
                                "required": list(schema.criteria), "additionalProperties": False},
                },
                "required": ["winner", "rationale", "aspects"],
                "additionalProperties": False,
            },
        },
    }


@dataclass
class Judgement:
    """One call: the winner as the judge saw the labels (A = the review shown first)."""
    winner: str  # "A" | "B" | "tie" | NO_VERDICT
    rationale: str = ""
    aspects: dict[str, str] = field(default_factory=dict)
    raw: str = ""
    attempts: int = 1


@dataclass
class Verdict:
    """Both orders combined, in terms of the caller's A and B."""
    winner: str  # "A" | "B" | "tie" | NO_VERDICT
    consistent: bool  # both orders named the same winner (or the same tie)
    rationale: str
    first: Judgement  # A shown first
    second: Judgement  # B shown first, labels mapped back to the caller's A/B
    aspects: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self, name_a: str = "A", name_b: str = "B") -> str:
        names = {"A": name_a, "B": name_b}
        if self.winner == NO_VERDICT:
            return "No verdict: the judge's answers could not be read."
        head = "Tie" if self.winner == "tie" else f"Winner: {names[self.winner]}"
        order = "both orders agree" if self.consistent else "the two orders disagree, so it counts as a tie"
        return f"{head} ({order})."


def parse_judgement(text: str, criteria: tuple[str, ...]) -> Judgement | None:
    """Read the judge's JSON (tolerating code fences and text around it); None if unreadable."""
    m = re.search(r"\{.*\}", text or "", re.S)
    if not m:
        return None
    try:
        data = json.loads(m.group(0))
    except json.JSONDecodeError:
        return None
    winner = str(data.get("winner", "")).strip()
    winner = {"a": "A", "b": "B", "tie": "tie", "review a": "A", "review b": "B"}.get(winner.lower(), "")
    if not winner:
        return None
    aspects = {}
    for k, v in (data.get("aspects") or {}).items():
        v = {"a": "A", "b": "B", "tie": "tie"}.get(str(v).strip().lower())
        if v and k in criteria:
            aspects[k] = v
    return Judgement(winner, str(data.get("rationale", "")).strip(), aspects, raw=text)


def judge_messages(schema: ReviewSchema | str, paper_text: str, human_reviews: list[str] | None,
                   first: str, second: str) -> list[dict[str, str]]:
    schema = get_schema(schema)
    system = load_prompt("judge").format(criteria="\n".join(f"- {c}" for c in schema.criteria))
    parts = [f"[Paper]\n{paper_text}"]
    if human_reviews:
        parts.append("[Human reviews: ground truth]\n" + "\n\n".join(
            f"--- Human review {i} ---\n{r.strip()}" for i, r in enumerate(human_reviews, 1)))
    else:
        parts.append("[Human reviews: none available; judge against the paper itself]")
    parts.append(f"[Review A]\n{first.strip()}")
    parts.append(f"[Review B]\n{second.strip()}")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def judge_prompt_sha256(schema: ReviewSchema | str, max_attempts: int = 3) -> str:
    """Hash of the judge's prompt scaffolding and answer format (placeholders for the texts)."""
    schema = get_schema(schema)
    scaffold = {"messages": judge_messages(schema, "{paper}", ["{human}"], "{a}", "{b}"),
                "no_human": judge_messages(schema, "{paper}", None, "{a}", "{b}"),
                "response_format": judge_response_format(schema), "max_attempts": max_attempts}
    return hashlib.sha256(json.dumps(scaffold, sort_keys=True).encode()).hexdigest()


def _swap(label: str) -> str:
    return {"A": "B", "B": "A"}.get(label, label)


# A label in the judge's prose: "A", "B", "Review A", "review B's" (the "'s" stays after it). A bare
# capital A is also the article ("A clear gain", "A series of ablations"): it is a label only before
# punctuation, "'s", or a word judges put after a label ("A is more specific", "A cites Table 3",
# "A and B both", "than A.").
_LABEL = re.compile(r"(?<![\w'-])(?:(Review|review|Reviews|reviews) )?([AB])(?![\w-])(?!'(?!s\b))")
_AFTER_LABEL = re.compile(
    r"^(?:\s*(?:[.,;:!?)\]]|$)|'s\b|\s+(?:is|was|are|has|had|does|did|and|or|vs\.?|over|than|both|also|better|worse|"
    r"won|wins|said|says|gave|gives|give|made|makes|missed|misses|cites|lacks|notes|offers|provides|lists|covers|"
    r"names|raises|contains|includes|mentions|focuses|identifies|captures|addresses|agrees|matches|repeats|"
    r"leaves|uses|points|seems|appears|suggests|highlights|discusses|explains|asks|argues|would|should|could|can|"
    r"correctly|clearly|only)\b)")


def relabel(text: str, name: Any) -> str:
    """`text` with each label replaced: `name(label, word)` gets "A" or "B" and the word before it
    ("Review", or "" for a bare label) and returns the replacement."""
    def sub(m: re.Match) -> str:
        word, label = m.group(1) or "", m.group(2)
        if not word and label == "A" and not _AFTER_LABEL.match(m.string[m.end():]):
            return m.group(0)
        return name(label, word)

    return _LABEL.sub(sub, text or "")


def name_systems(text: str, name_a: str, name_b: str) -> str:
    """The judge's prose with "A"/"B" (and "Review A") replaced by the systems' names."""
    names = {"A": name_a, "B": name_b}
    return relabel(text, lambda label, word: f"{names[label]}'s review" if word else names[label])


def swap_labels(text: str) -> str:
    """Prose written with A and B swapped (the second order), in the caller's labels."""
    return relabel(text, lambda label, word: f"{word} {_swap(label)}" if word else _swap(label))


class PairwiseJudge:
    def __init__(self, chat: OpenAIChat, model: str | None = None, max_attempts: int = 3) -> None:
        self.chat = chat
        self.model = model or chat.config.judge_model
        self.max_attempts = max_attempts

    def judge_once(self, schema: ReviewSchema, paper_text: str, human_reviews: list[str] | None,
                   first: str, second: str) -> Judgement:
        msgs = judge_messages(schema, paper_text, human_reviews, first, second)
        raw = ""
        for attempt in range(1, self.max_attempts + 1):
            raw = self.chat.complete(msgs, self.model, temperature=0.0,
                                     response_format=judge_response_format(schema))
            j = parse_judgement(raw, schema.criteria)
            if j is not None:
                j.attempts = attempt
                return j
        return Judgement(NO_VERDICT, "The judge's output could not be parsed.", raw=raw, attempts=self.max_attempts)

    def compare(self, schema: ReviewSchema | str, paper_text: str, review_a: str, review_b: str,
                human_reviews: list[str] | None = None) -> Verdict:
        schema = get_schema(schema)
        first = self.judge_once(schema, paper_text, human_reviews, review_a, review_b)
        raw_second = self.judge_once(schema, paper_text, human_reviews, review_b, review_a)
        # the second order saw B first: its winner, aspects and prose are put back in the caller's labels
        second = Judgement(_swap(raw_second.winner), swap_labels(raw_second.rationale),
                           {k: _swap(v) for k, v in raw_second.aspects.items()}, raw_second.raw, raw_second.attempts)
        if NO_VERDICT in (first.winner, second.winner):
            return Verdict(NO_VERDICT, False, "The judge's output could not be parsed.", first, second)
        consistent = first.winner == second.winner
        winner = first.winner if consistent else "tie"
        aspects = {c: (first.aspects[c] if first.aspects.get(c) == second.aspects.get(c) else "tie")
                   for c in schema.criteria if c in first.aspects and c in second.aspects}
        rationale = first.rationale if consistent else (
            f"Order 1 said {first.winner}: {first.rationale} Order 2 said {second.winner}: {second.rationale}")
        return Verdict(winner, consistent, rationale, first, second, aspects)


__all__ = ["PairwiseJudge", "Verdict", "Judgement", "NO_VERDICT", "parse_judgement", "judge_messages",
           "judge_prompt_sha256", "name_systems", "swap_labels", "OpenAIServiceError"]
