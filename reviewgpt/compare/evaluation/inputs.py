"""The one input of every system and of the judge: `prepare()` of each paper for each schema, with
the eval's tokenizer and budget, kept in inputs.jsonl (the text and what was cut)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from reviewgpt.compare.evaluation.config import EvalConfig
from reviewgpt.compare.evaluation.fingerprint import fingerprint, model_identity
from reviewgpt.compare.evaluation.store import JsonlStore
from reviewgpt.prepare.model_input import prepare
from reviewgpt.training.data.prepare import example_document, read_examples


def papers(cfg: EvalConfig) -> list[dict[str, Any]]:
    """One record per paper (the prepared file has one line per paper and schema)."""
    seen: dict[str, dict[str, Any]] = {}
    for ex in read_examples(cfg.data):
        seen.setdefault(ex["id"], ex)
    rows = list(seen.values())
    return rows[: cfg.limit] if cfg.limit else rows


def input_store(cfg: EvalConfig) -> JsonlStore:
    return JsonlStore(Path(cfg.out_dir) / "inputs.jsonl", lambda r: r["key"])


def input_key(ex: dict[str, Any], schema: str, tokenizer_id: str | None, max_prompt_tokens: int) -> str:
    return fingerprint({"paper": ex["paper"], "schema": schema, "tokenizer": tokenizer_id,
                        "max_prompt_tokens": max_prompt_tokens})


def prepared_inputs(cfg: EvalConfig, exs: list[dict[str, Any]] | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """{(paper id, schema): input row}, computing (and storing) only the ones not stored yet."""
    from reviewgpt.compare.evaluation.systems import load_tokenizer

    exs = papers(cfg) if exs is None else exs
    source = cfg.input_tokenizer()
    tokenizer = load_tokenizer(source) if source else None
    tok_id = model_identity(source)
    store = input_store(cfg)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    todo = []
    for schema in cfg.needed_schemas():
        for ex in exs:
            key = input_key(ex, schema, tok_id, cfg.max_prompt_tokens)
            if key in store:
                out[(ex["id"], schema)] = store.get(key)
            else:
                todo.append((ex, schema, key))
    for ex, schema, key in tqdm(todo, desc="prepare inputs", unit="paper", disable=not todo):
        doc = example_document(ex)
        mi = prepare(doc, schema, tokenizer, cfg.max_prompt_tokens)
        row = {"key": key, "id": ex["id"], "schema": schema, "tokenizer": source, "text": mi.text,
               "input": mi.to_dict(), "summary": mi.summary()}
        store.add(row)
        out[(ex["id"], schema)] = row
    return out
