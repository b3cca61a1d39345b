"""The three stages. Each reads the previous stage's JSONL and appends to its own; rerunning (or
resuming after a kill) skips every record already written.

    reviews.jsonl    {"system", "schema", "id", "review", "seconds"}
    judgements.jsonl {"matchup", "a", "b", "schema", "id", "winner", "consistent", "rationale", ...}
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from reviewgpt.config import EngineConfig, GenerationConfig
from reviewgpt.training.data.papers import PaperRecord
from reviewgpt.training.data.prepare import read_examples
from reviewgpt.compare.evaluation.config import EvalConfig, SystemSpec
from reviewgpt.compare.evaluation.store import JsonlStore

log = logging.getLogger(__name__)


def papers(cfg: EvalConfig) -> list[dict[str, Any]]:
    """One record per paper (the prepared file has one line per paper and schema)."""
    seen: dict[str, dict[str, Any]] = {}
    for ex in read_examples(cfg.data):
        seen.setdefault(ex["id"], ex)
    rows = list(seen.values())
    return rows[: cfg.limit] if cfg.limit else rows


def paper_text(ex: dict[str, Any]) -> str:
    return PaperRecord.from_json({"id": ex["id"], **ex["paper"]}).document.to_text()


def review_store(cfg: EvalConfig) -> JsonlStore:
    return JsonlStore(Path(cfg.out_dir) / "reviews.jsonl", lambda r: (r["system"], r["schema"], r["id"]))


def judgement_store(cfg: EvalConfig) -> JsonlStore:
    return JsonlStore(Path(cfg.out_dir) / "judgements.jsonl", lambda r: (r["matchup"], r["id"]))


# ------------------------------------------------------------------------------------ generate


class _Local:
    def __init__(self, spec: SystemSpec) -> None:
        from reviewgpt.generate.engine import get_engine

        self.spec = spec
        self.engine = get_engine(EngineConfig(base_model=spec.base_model, adapter=spec.adapter,
                                              precision=spec.precision, max_prompt_tokens=spec.max_prompt_tokens,
                                              max_new_tokens=spec.max_new_tokens, warmup=False))
        self.batch_size = spec.batch_size

    def review(self, exs: list[dict[str, Any]], schema: str) -> list[str]:
        gen = GenerationConfig(max_new_tokens=self.spec.max_new_tokens, suppression=self.spec.suppression,
                               temperature=self.spec.temperature, do_sample=self.spec.temperature > 0,
                               seed=self.spec.seed)
        docs = [PaperRecord.from_json({"id": e["id"], **e["paper"]}).document for e in exs]
        texts = [self.engine.fit(d, schema).text for d in docs]  # the app's budget policy
        return self.engine.generate_batch(texts, schema, gen)


class _OpenAI:
    batch_size = 1

    def __init__(self, spec: SystemSpec, cfg: EvalConfig) -> None:
        from reviewgpt.generate.gpt_reviewer import GPTReviewer
        from reviewgpt.generate.openai_client import OpenAIChat

        self.reviewer = GPTReviewer(OpenAIChat(cfg.openai), model=spec.model, temperature=spec.temperature)

    def review(self, exs: list[dict[str, Any]], schema: str) -> list[str]:
        return [self.reviewer.review(paper_text(e), schema) for e in exs]


def make_system(spec: SystemSpec, cfg: EvalConfig) -> Any:
    if spec.kind == "local":
        return _Local(spec)
    if spec.kind == "openai":
        return _OpenAI(spec, cfg)
    raise ValueError(f"system {spec.name}: unknown kind {spec.kind!r} (local | openai)")


def generate(cfg: EvalConfig, systems: dict[str, Any] | None = None) -> JsonlStore:
    """Write every (system, schema, paper) review that is not written yet."""
    store = review_store(cfg)
    exs = papers(cfg)
    needed_schemas = {m.schema for m in cfg.matchups} or set(cfg.schemas)
    for spec in cfg.systems:
        for schema in sorted(needed_schemas):
            todo = [e for e in exs if (spec.name, schema, e["id"]) not in store]
            if not todo:
                continue
            system = (systems or {}).get(spec.name) or make_system(spec, cfg)
            step = max(1, getattr(system, "batch_size", 1))
            with tqdm(total=len(todo), desc=f"generate {spec.name} {schema}-aspect", unit="paper") as bar:
                for i in range(0, len(todo), step):
                    batch = todo[i:i + step]
                    t0 = time.perf_counter()
                    outs = system.review(batch, schema)
                    per = (time.perf_counter() - t0) / len(batch)
                    for e, review in zip(batch, outs):
                        store.add({"system": spec.name, "schema": schema, "id": e["id"], "review": review,
                                   "seconds": round(per, 3)})
                    bar.update(len(batch))
    return store


# --------------------------------------------------------------------------------------- judge


def judge(cfg: EvalConfig, judge_obj: Any = None) -> JsonlStore:
    """Judge every matchup on every paper both of whose reviews exist; both orders, reference-guided."""
    from reviewgpt.compare.judge import PairwiseJudge
    from reviewgpt.generate.openai_client import OpenAIChat

    reviews = review_store(cfg)
    store = judgement_store(cfg)
    exs = papers(cfg)
    judge_obj = judge_obj or PairwiseJudge(OpenAIChat(cfg.openai), model=cfg.judge_model)
    for m in cfg.matchups:
        todo = [e for e in exs if (m.key, e["id"]) not in store
                and (m.a, m.schema, e["id"]) in reviews and (m.b, m.schema, e["id"]) in reviews]
        for e in tqdm(todo, desc=f"judge {m.key}", unit="paper"):
            ra = reviews.get((m.a, m.schema, e["id"]))["review"]
            rb = reviews.get((m.b, m.schema, e["id"]))["review"]
            v = judge_obj.compare(m.schema, paper_text(e), ra, rb, human_reviews=e.get("human_reviews"))
            store.add({"matchup": m.key, "a": m.a, "b": m.b, "schema": m.schema, "id": e["id"],
                       "winner": v.winner, "consistent": v.consistent, "rationale": v.rationale,
                       "aspects": v.aspects, "first": v.first.winner, "second": v.second.winner})
    return store
