"""Stages 1 and 2: generate reviews, judge them pairwise. Each writes one JSONL row per result,
keyed by a fingerprint of everything that determines it; a rerun skips exactly the rows whose
fingerprint matches and so redoes what a changed setting affects, and nothing else.

    inputs.jsonl     {"key", "id", "schema", "text", "input": ModelInput.to_dict(), ...}
    reviews.jsonl    {"key", "system", "schema", "id", "review", "system_config", "input_key",
                      "input": what was cut, "seconds", "timestamp"}
    judgements.jsonl {"key", "matchup", "a", "b", "schema", "id", "review_a", "review_b", "judge": {...},
                      "winner", "consistent", "rationale", "aspects", "first", "second" (raw outputs), "timestamp"}
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from reviewgpt.compare.evaluation.config import EvalConfig, Matchup
from reviewgpt.compare.evaluation.fingerprint import fingerprint
from reviewgpt.compare.evaluation.inputs import papers, prepared_inputs
from reviewgpt.compare.evaluation.store import JsonlStore
from reviewgpt.compare.evaluation.systems import SystemConfig, make_runner, review_key, system_config

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def review_store(cfg: EvalConfig) -> JsonlStore:
    return JsonlStore(Path(cfg.out_dir) / "reviews.jsonl", lambda r: r["key"])


def judgement_store(cfg: EvalConfig) -> JsonlStore:
    return JsonlStore(Path(cfg.out_dir) / "judgements.jsonl", lambda r: r["key"])


def system_configs(cfg: EvalConfig) -> dict[tuple[str, str], SystemConfig]:
    """{(system name, schema): its configuration} for every schema the matchups need."""
    return {(s.name, schema): system_config(s, schema) for s in cfg.systems for schema in cfg.needed_schemas()}


# ------------------------------------------------------------------------------------ generate


def _warn_skipped(store: JsonlStore, what: str) -> None:
    if store.skipped:
        log.warning("%s: %d unreadable lines (cut by a kill mid-write?) skipped; their %s are redone",
                    store.path, store.skipped, what)


def generate(cfg: EvalConfig, systems: dict[str, Any] | None = None) -> JsonlStore:
    """Write every (system configuration, input) review that is not written yet.

    `systems` maps a system name to a runner to use instead of building one (tests)."""
    store = review_store(cfg)
    exs = papers(cfg)
    inputs = prepared_inputs(cfg, exs)
    configs = system_configs(cfg)
    _warn_skipped(store, "reviews")
    for spec in cfg.systems:
        for schema in cfg.needed_schemas():
            sc = configs[(spec.name, schema)]
            todo = [(e, inputs[(e["id"], schema)]) for e in exs
                    if review_key(sc, inputs[(e["id"], schema)]["key"]) not in store]
            if len(todo) < len(exs):
                log.info("generate %s %s-aspect: %d of %d papers already in %s (kept), %d to write", spec.name,
                         schema, len(exs) - len(todo), len(exs), store.path, len(todo))
            if not todo:
                continue
            runner = (systems or {}).get(spec.name) or make_runner(spec.for_schema(schema), cfg)
            step = max(1, getattr(runner, "batch_size", 1))
            with tqdm(total=len(todo), desc=f"generate {spec.name} {schema}-aspect", unit="paper") as bar:
                for i in range(0, len(todo), step):
                    batch = todo[i:i + step]
                    t0 = time.perf_counter()
                    outs = runner.review([inp["text"] for _, inp in batch], schema)
                    per = (time.perf_counter() - t0) / len(batch)
                    for (e, inp), review in zip(batch, outs):
                        store.add({"key": review_key(sc, inp["key"]), "system": spec.name, "schema": schema,
                                   "id": e["id"], "review": review, "system_config": sc.to_dict(),
                                   "input_key": inp["key"], "input": inp["input"], "seconds": round(per, 3),
                                   "timestamp": _now()})
                    bar.update(len(batch))
    return store


# --------------------------------------------------------------------------------------- judge


def judge_config(cfg: EvalConfig, schema: str) -> dict[str, Any]:
    """What determines a verdict besides the two reviews (the judge `make_judge` builds from cfg)."""
    from reviewgpt.compare.judge import judge_prompt_sha256

    return {"model": cfg.judge_model, "prompt_sha256": judge_prompt_sha256(schema, cfg.judge_max_attempts)}


def judgement_key(review_a: str, review_b: str, judge: dict[str, Any], human_reviews: list[str] | None) -> str:
    return fingerprint({"a": review_a, "b": review_b, "judge": judge, "human_reviews": human_reviews or []})


def current_pairs(cfg: EvalConfig, m: Matchup, exs: list[dict[str, Any]], inputs: dict, configs: dict,
                  judge_cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """For each paper: the keys of the two reviews the current config asks for and of their judgement."""
    out = []
    for e in exs:
        inp = inputs[(e["id"], m.schema)]
        ka = review_key(configs[(m.a, m.schema)], inp["key"])
        kb = review_key(configs[(m.b, m.schema)], inp["key"])
        out.append({"ex": e, "input": inp, "review_a": ka, "review_b": kb,
                    "key": judgement_key(ka, kb, judge_cfg, e.get("human_reviews"))})
    return out


def make_judge(cfg: EvalConfig) -> Any:
    from reviewgpt.compare.judge import PairwiseJudge
    from reviewgpt.remote.openai_client import OpenAIChat

    return PairwiseJudge(OpenAIChat(cfg.openai), model=cfg.judge_model, max_attempts=cfg.judge_max_attempts)


def judge(cfg: EvalConfig, judge_obj: Any = None) -> JsonlStore:
    """Judge every matchup on every paper whose two current reviews exist: both orders, reference-
    guided, `judge_concurrency` papers at once. Each verdict is written as it arrives, so a killed
    run loses only the calls in flight."""
    reviews = review_store(cfg)
    store = judgement_store(cfg)
    exs = papers(cfg)
    inputs = prepared_inputs(cfg, exs)
    configs = system_configs(cfg)
    judge_obj = judge_obj or make_judge(cfg)
    tasks, judged, unreviewed = [], 0, 0
    for m in cfg.matchups:
        jc = judge_config(cfg, m.schema)
        for p in current_pairs(cfg, m, exs, inputs, configs, jc):
            if p["key"] in store:
                judged += 1
            elif p["review_a"] in reviews and p["review_b"] in reviews:
                tasks.append((m, p, jc))
            else:
                unreviewed += 1
    _warn_skipped(store, "verdicts")
    if judged or unreviewed:
        log.info("judge: %d pairs already judged in %s (kept), %d without both reviews yet (run generate), "
                 "%d to judge", judged, store.path, unreviewed, len(tasks))
    if not tasks:
        return store

    def run(task: tuple) -> dict[str, Any]:
        m, p, jc = task
        e = p["ex"]
        v = judge_obj.compare(m.schema, p["input"]["text"], reviews.get(p["review_a"])["review"],
                              reviews.get(p["review_b"])["review"], human_reviews=e.get("human_reviews"))
        return {"key": p["key"], "matchup": m.key, "a": m.a, "b": m.b, "schema": m.schema, "id": e["id"],
                "review_a": p["review_a"], "review_b": p["review_b"], "input_key": p["input"]["key"], "judge": jc,
                "winner": v.winner, "consistent": v.consistent, "rationale": v.rationale, "aspects": v.aspects,
                "first": asdict(v.first), "second": asdict(v.second), "timestamp": _now()}

    # A bounded window of submitted tasks: at most `judge_concurrency` in flight, results written by
    # this thread as they finish (every finished one before an error is raised); after an error
    # nothing new is started.
    def drain(done: set) -> None:
        errors = [f.exception() for f in done if f.exception() is not None]
        for f in done:
            if f.exception() is None:
                store.add(f.result())
                bar.update()
        if errors:
            raise errors[0]

    pending: set = set()
    with ThreadPoolExecutor(max_workers=cfg.judge_concurrency) as pool, \
            tqdm(total=len(tasks), desc="judge", unit="pair") as bar:
        try:
            for task in tasks:
                pending.add(pool.submit(run, task))
                if len(pending) >= cfg.judge_concurrency:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    drain(done)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                drain(done)
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    return store
