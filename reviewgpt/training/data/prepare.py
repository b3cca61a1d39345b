"""Data prep: papers + human reviews -> one aggregated 4/7-aspect target review per paper (JSONL).

Each output line is a training/eval example::

    {"id", "split", "schema": "7-aspect", "paper": {title, abstract, sections}, "human_reviews": [...],
     "decision", "review": "<rendered target>", "aggregator": "extractive" | "llm:<model>"}

The paper is kept structured so that training fits it to the prompt budget with the same code as
the app (reviewgpt.prepare.budget) once the model's tokenizer is known. Output is written atomically per
split; the LLM aggregator caches per paper, so an interrupted run resumes without asking again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from reviewgpt.config import OpenAIConfig
from reviewgpt.training.data.aggregate import ExtractiveAggregator, LLMAggregator, estimate_cost
from reviewgpt.ingest.document import Document
from reviewgpt.rating.data import parse_rating
from reviewgpt.rating.own import rating_line
from reviewgpt.training.data.papers import PaperRecord, read_papers, split

log = logging.getLogger(__name__)


@dataclass
class PrepareConfig:
    source: str = "../shared/data/iclr2017"  # ICLR layout folder or generic JSONL
    out_dir: str = "outputs/data"
    schemas: list[str] = field(default_factory=lambda: ["7", "4"])
    aggregator: str = "extractive"  # "extractive" | "llm"
    max_items: int = 4  # extractive: items per aspect at most
    max_item_words: int = 70  # extractive: longer review sentences are not used
    llm_model: str = "gpt-4o"
    cache_dir: str = "outputs/data/llm_cache"
    seed: int = 0
    val_frac: float = 0.05
    test_frac: float = 0.1
    limit: int | None = None  # first N papers only (smoke runs)
    usd_per_1m_input: float = 2.5  # for the cost estimate printed before a paid run
    usd_per_1m_output: float = 10.0
    # Issue #24: end each target with the human mean rating and the decision ("Overall rating: 6.3 / 10
    # (decision: Accept)", reviewgpt.rating.own), so the model learns to state one. Off: the recipe's targets.
    rating_target: bool = False
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)


def example_record(paper: PaperRecord, split_name: str, schema: str, review_text: str,
                   aggregator: str) -> dict[str, Any]:
    d = paper.to_json()
    return {"id": paper.id, "split": split_name, "schema": schema,
            "paper": {k: d[k] for k in ("title", "abstract", "sections")},
            "human_reviews": paper.reviews, "decision": paper.decision,
            "review": review_text, "aggregator": aggregator}


def _aggregator(cfg: PrepareConfig, schema: str) -> Any:
    if cfg.aggregator == "extractive":
        return ExtractiveAggregator(schema, cfg.max_items, cfg.max_item_words)
    if cfg.aggregator == "llm":
        from reviewgpt.remote.openai_client import OpenAIChat
        return LLMAggregator(schema, OpenAIChat(cfg.openai), cfg.llm_model, cfg.cache_dir)
    raise ValueError(f"unknown aggregator {cfg.aggregator!r}: use 'extractive' or 'llm'")


def prepare(cfg: PrepareConfig) -> dict[str, Path]:
    """Write {out_dir}/{split}.jsonl for train/val/test; returns the paths."""
    papers = read_papers(cfg.source)
    if cfg.limit:
        papers = papers[: cfg.limit]
    if not papers:
        raise ValueError(f"no papers found in {cfg.source}")
    aggs = {s: _aggregator(cfg, s) for s in cfg.schemas}
    if cfg.aggregator == "llm":
        # The estimate covers only what will be asked: a resumed run's cached targets cost nothing.
        asked = [(p, a) for p in papers for a in aggs.values() if not a.is_cached(p.id)]
        tokens, usd = estimate_cost(["\n".join(p.reviews) for p, _ in asked],
                                    cfg.usd_per_1m_input, cfg.usd_per_1m_output)
        cached = len(papers) * len(aggs) - len(asked)
        log.warning("LLM aggregation of %d papers x %d schemas: %d targets already in %s (not asked again), "
                    "%d to ask for: ~%s input tokens, ~$%.2f at most",
                    len(papers), len(cfg.schemas), cached, cfg.cache_dir, len(asked), f"{tokens:,}", usd)
    parts = split(papers, cfg.seed, cfg.val_frac, cfg.test_frac)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split_name, items in parts.items():
        path = out / f"{split_name}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        with tmp.open("w") as f:
            for paper in tqdm(items, desc=f"aggregate {split_name}", unit="paper"):
                for schema, agg in aggs.items():
                    if isinstance(agg, LLMAggregator):
                        result = agg.aggregate(paper.id, paper.reviews, paper.document.title)
                    else:
                        result = agg.aggregate(paper.id, paper.reviews)
                    text = result.to_json()["text"]
                    if cfg.rating_target:
                        text = with_rating(text, paper)
                    f.write(json.dumps(example_record(paper, split_name, schema, text, result.aggregator)) + "\n")
        tmp.replace(path)
        paths[split_name] = path
        log.info("%s: %d papers -> %s", split_name, len(items), path)
    return paths


def with_rating(target: str, paper: PaperRecord) -> str:
    """The target with the human mean rating and the decision as its last line (unchanged when the
    paper has no readable rating)."""
    ratings = [r for r in (parse_rating(x) for x in paper.ratings) if r is not None]
    if not ratings:
        return target
    return target.rstrip() + "\n\n" + rating_line(sum(ratings) / len(ratings), paper.decision) + "\n"


def read_examples(path: str | Path) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def example_document(ex: dict[str, Any]) -> Document:
    """The paper of a prepared example (one line of train/val/test.jsonl) as a Document."""
    return PaperRecord.from_json({"id": ex["id"], **ex["paper"]}).document
