"""Aggregate a paper's several human reviews into ONE review in our 4/7-aspect format.

Two aggregators, same output (a `Review` plus which aggregator made it):
- `ExtractiveAggregator`: offline and deterministic. Splits the reviews into sentences and gives
  each to the aspect whose cue phrases it matches best; an aspect nobody wrote about is empty
  (the `<No related terms>` marker).
- `LLMAggregator`: the recipe's way, through the `openai` client (any OpenAI-compatible server),
  with the prompt in `reviewgpt/prompts/aggregate.md`, and a per-paper cache so an interrupted run
  resumes without asking again.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reviewgpt.prompts import load_prompt
from reviewgpt.format.review_format import Review, ReviewItem, parse, render
from reviewgpt.format.schema import EMPTY_MARKER, FOUR_ASPECT, SEVEN_ASPECT, ReviewSchema, get_schema

# Cue phrases per 7-aspect criterion (lower-case substrings); the 4-aspect schema maps onto these.
_CUES_7: tuple[tuple[str, ...], ...] = (
    ("this paper proposes", "the paper proposes", "the authors propose", "proposes a", "propose a", "the idea",
     "this paper presents", "the paper presents", "introduces", "the approach", "the main idea", "the paper studies",
     "this work", "the method"),
    ("previous work", "prior work", "related work", "existing", "compared to", "novelty", "novel", "incremental",
     "state of the art", "state-of-the-art", "differs from", "extension of", "similar to", "original"),
    ("experiment", "empirical", "results", "dataset", "evaluation", "benchmark", "baseline", "accuracy",
     "performance", "table", "ablation"),
    ("strength", "pros", "well written", "well-written", "clearly written", "interesting", "convincing",
     "valuable", "impressive", "solid", "nice", "good paper", "i like", "significant contribution", "accept"),
    ("weakness", "cons", "lack", "limited", "unclear", "not convincing", "concern", "missing", "unfortunately",
     "not clear", "reject", "insufficient", "weak", "problem"),
    ("should", "suggest", "it would be", "would be good", "could", "recommend", "consider", "would help",
     "would strengthen", "future work"),
    ("typo", "minor", "figure", "notation", "question", "clarify", "fig.", "eq.", "section", "page"),
)
# 4-aspect criterion -> the 7-aspect cue groups it takes.
_MAP_4 = ((0, 1), (3,), (4,), (5, 6))

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])|\n{2,}|\n(?=\s*(?:[-*•]|\d+[.)])\s)")


def split_sentences(text: str) -> list[str]:
    parts = [re.sub(r"\s+", " ", p).strip(" -*•\t") for p in _SENT.split(text)]
    return [p for p in parts if 6 <= len(p.split()) <= 70]


def _short_title(sentence: str, n_words: int = 6) -> str:
    words = re.sub(r"^\d+[.)]\s*", "", sentence).split()
    title = " ".join(words[:n_words]).rstrip(",;:.")
    return title[:1].upper() + title[1:]


@dataclass
class AggregatedReview:
    paper_id: str
    review: Review
    aggregator: str  # "extractive" or "llm:<model>"

    def to_json(self) -> dict:
        return {"id": self.paper_id, "aggregator": self.aggregator, "review": self.review.to_dict(),
                "text": render(self.review)}


class ExtractiveAggregator:
    name = "extractive"

    def __init__(self, schema: ReviewSchema | str, max_items: int = 4, max_words: int = 70) -> None:
        self.schema = get_schema(schema)
        self.max_items = max_items
        self.max_words = max_words  # longer sentences are skipped (a short demo model needs short targets)

    def _cues(self) -> list[tuple[str, ...]]:
        if self.schema is SEVEN_ASPECT:
            return list(_CUES_7)
        if self.schema is FOUR_ASPECT:
            return [tuple(c for g in groups for c in _CUES_7[g]) for groups in _MAP_4]
        raise ValueError(f"no cue phrases for schema {self.schema.name}")

    def aggregate(self, paper_id: str, reviews: list[str]) -> AggregatedReview:
        cues = self._cues()
        buckets: list[list[ReviewItem]] = [[] for _ in cues]
        seen: set[str] = set()
        for review in reviews:
            for sent in split_sentences(review):
                if len(sent.split()) > self.max_words:
                    continue
                low = sent.lower()
                scores = [sum(low.count(c) for c in group) for group in cues]
                best = max(range(len(cues)), key=lambda i: (scores[i], -i))
                key = re.sub(r"\W+", " ", low)[:80]
                if scores[best] == 0 or key in seen or len(buckets[best]) >= self.max_items:
                    continue
                seen.add(key)
                buckets[best].append(ReviewItem(_short_title(sent), sent))
        sections = {c: items for c, items in zip(self.schema.criteria, buckets)}
        return AggregatedReview(paper_id, Review(self.schema.name, sections), self.name)


class LLMAggregator:
    """Summarise human reviews into one review with an LLM; cached per paper on disk."""

    def __init__(self, schema: ReviewSchema | str, client: Any, model: str, cache_dir: str | Path,
                 temperature: float = 0.0, max_attempts: int = 2) -> None:
        self.schema = get_schema(schema)
        self.client = client  # reviewgpt.remote.openai_client.OpenAIChat
        self.model = model
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.temperature = temperature
        self.max_attempts = max_attempts
        self.name = f"llm:{model}"
        # A cached target is reused only by the same model, prompt and temperature: change any and
        # the papers are aggregated again instead of silently serving the old model's reviews.
        self._key = hashlib.sha256(json.dumps([model, load_prompt("aggregate"), temperature]).encode()).hexdigest()[:12]

    def _cache_file(self, paper_id: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", paper_id)
        return self.cache_dir / f"{safe}.{self.schema.n_aspects}.{self._key}.json"

    def is_cached(self, paper_id: str) -> bool:
        """Whether this paper's target is on disk already (a resumed run does not ask for it again)."""
        return self._cache_file(paper_id).exists()

    def messages(self, title: str, reviews: list[str]) -> list[dict[str, str]]:
        system = load_prompt("aggregate").format(
            n=self.schema.n_aspects, criteria="\n".join(f"## {c}" for c in self.schema.criteria),
            marker=EMPTY_MARKER)
        user = f"Paper title: {title}\n\n" + "\n\n".join(
            f"--- Review {i} ---\n{r.strip()}" for i, r in enumerate(reviews, 1))
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def aggregate(self, paper_id: str, reviews: list[str], title: str = "") -> AggregatedReview:
        cached = self._cache_file(paper_id)
        if cached.exists():
            d = json.loads(cached.read_text())
            return AggregatedReview(d["id"], Review.from_dict(d["review"]), d["aggregator"])
        last_problem = ""
        for _ in range(self.max_attempts):
            text = self.client.complete(self.messages(title, reviews), model=self.model,
                                        temperature=self.temperature)
            parsed = parse(text, self.schema)
            if not parsed.report.missing:
                result = AggregatedReview(paper_id, parsed.review, self.name)
                tmp = cached.with_suffix(".tmp")
                tmp.write_text(json.dumps(result.to_json()))
                tmp.replace(cached)  # atomic: an interrupted run never leaves half a file
                return result
            last_problem = f"missing aspects {parsed.report.missing}"
        raise ValueError(f"{paper_id}: the LLM's aggregated review was malformed ({last_problem})")


def estimate_cost(texts: list[str], usd_per_1m_input: float, usd_per_1m_output: float,
                  output_tokens_per_call: int = 900) -> tuple[int, float]:
    """(approx. input tokens, USD) for aggregating these inputs; 4 characters ~ 1 token."""
    tokens = sum(len(t) for t in texts) // 4
    usd = tokens / 1e6 * usd_per_1m_input + len(texts) * output_tokens_per_call / 1e6 * usd_per_1m_output
    return tokens, usd
