"""The systems under evaluation: what determines a system's review (its configuration, hashed into
every review's key) and the runner that writes reviews of prepared paper texts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from reviewgpt.compare.evaluation.config import EvalConfig, SystemSpec
from reviewgpt.compare.evaluation.fingerprint import fingerprint, model_identity, sha256_text
from reviewgpt.config import EngineConfig, GenerationConfig
from reviewgpt.reviewer import Reviewer


@lru_cache(maxsize=16)
def load_tokenizer(source: str) -> Any:
    """The tokenizer of a local folder or Hub id; ModelLoadError naming `source` when there is none
    (transformers would take a mistyped folder for a malformed Hub id and say only that)."""
    from pathlib import Path

    from transformers import AutoTokenizer

    from reviewgpt.config import looks_like_path
    from reviewgpt.errors import ModelLoadError

    if looks_like_path(source) and not Path(source).expanduser().is_dir():
        raise ModelLoadError(f"model folder not found: {source} (a system's engine.base_model / adapter, or "
                             "`tokenizer:`, must be an existing folder or a Hugging Face Hub id)")
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"could not load a tokenizer from {source}: {str(e).splitlines()[0]}") from e


@dataclass(frozen=True)
class SystemConfig:
    """One system for one schema, as it determines the review (not how fast it runs)."""

    name: str
    schema: str
    settings: dict[str, Any]  # the fields that change the review
    identity: dict[str, Any]  # what the model / adapter / tokenizer references point at
    prompt_sha256: str  # the prompt scaffolding (template, system prompt, format instructions)

    @property
    def key(self) -> str:
        return fingerprint({"settings": self.settings, "identity": self.identity, "prompt": self.prompt_sha256,
                            "schema": self.schema})

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "settings": self.settings, "identity": self.identity,
                "prompt_sha256": self.prompt_sha256}


def system_config(spec: SystemSpec, schema: str) -> SystemConfig:
    s = spec.for_schema(schema)
    gen = generation(s)
    if s.kind == "openai":
        from reviewgpt.remote.gpt_reviewer import reviewer_messages

        settings = {"kind": s.kind, "model": s.model, "temperature": gen.temperature}
        prompt = fingerprint(reviewer_messages(schema, "{paper}"))
        return SystemConfig(s.name, schema, settings, {"model": s.model}, prompt)
    from reviewgpt.prepare.chat import render_prompt

    tok_src = s.tokenizer_source()
    prompt = sha256_text(render_prompt(load_tokenizer(tok_src), schema, "{paper}"))
    settings = {"kind": s.kind, "suppression": gen.suppression, "temperature": gen.temperature,
                "top_p": gen.top_p, "max_new_tokens": gen.max_new_tokens, "seed": gen.seed}
    # Settings a system could not set before they nested (their old behaviour is what older reviews ran
    # with): recorded only when they differ from it, so those reviews keep their keys.
    if gen.temperature > 0 and not gen.do_sample:
        settings["do_sample"] = False  # greedy at a temperature
    if gen.repetition_penalty != 1.0:
        settings["repetition_penalty"] = gen.repetition_penalty
    if gen.ignore_eos:
        settings["ignore_eos"] = True
    adapter = s.engine.adapter
    identity = {"adapter": adapter, "adapter_id": model_identity(adapter),
                "tokenizer": tok_src, "tokenizer_id": model_identity(tok_src)}
    if s.kind == "local":
        e = s.engine
        settings["precision"] = e.precision
        if e.schema_guide:
            settings["schema_guide"] = True
        if merges_adapter(e):  # merged weights compute slightly different numbers than base + LoRA
            settings["merge_adapter"] = True
        identity.update(base_model=e.base_model, base_model_id=model_identity(e.base_model))
    else:  # served: the server's name for the model; where it runs (base_url) does not change the review
        from reviewgpt.remote.served_reviewer import SERVERS

        # vllm: keyed as before the presets (its requests only gained samplers' off values, vLLM's defaults);
        # the others by name, their requests differ from the old flags' (token ids; samplers, BOS as before).
        settings["server_adds_bos"] = SERVERS[s.server].prompt == "text-no-bos"
        if s.server != "vllm":
            settings["server"] = s.server
        identity.update(model=s.model)
    # Not recorded: how fast it runs (attention implementation, the decode path and its kernels).
    return SystemConfig(s.name, schema, settings, identity, prompt)


def review_key(system: SystemConfig, input_key: str) -> str:
    return fingerprint({"system": system.key, "input": input_key})


# ---------------------------------------------------------------------------------- runners


def generation(spec: SystemSpec) -> GenerationConfig:
    """What the reviewer is given: the system's `generation`, sampling only at a temperature above 0."""
    g = spec.generation
    return dataclasses.replace(g, do_sample=g.do_sample and g.temperature > 0)


def merges_adapter(engine: EngineConfig) -> bool:
    """Whether eval loads this system's adapter merged into the base weights: `merge_adapter`, an adapter,
    and a precision named as one that merges (bf16, fp32; NF4 never does). With "auto" the precision, so
    the merge, would depend on the machine (NF4 on a GPU with bitsandbytes), and a review's key may not:
    the adapter stays unmerged there, as eval ran it before merging was the default."""
    return bool(engine.adapter) and engine.merge_adapter and engine.precision in ("bf16", "fp32")


class LocalRunner:
    """Base + adapter in this process; the engine's batched generate()."""

    def __init__(self, spec: SystemSpec, cfg: EvalConfig) -> None:
        from reviewgpt.generate.engine import get_engine

        self.spec = spec
        self.batch_size = spec.batch_size
        engine = get_engine(dataclasses.replace(
            spec.engine, max_prompt_tokens=cfg.max_prompt_tokens, max_new_tokens=spec.generation.max_new_tokens,
            merge_adapter=merges_adapter(spec.engine), warmup=False))
        if engine.info.adapter_merged != merges_adapter(spec.engine):  # what the review's key says
            raise RuntimeError(f"system {spec.name}: adapter merged {engine.info.adapter_merged}, "
                               f"expected {merges_adapter(spec.engine)}")
        self.engine: Reviewer = engine

    def review(self, texts: list[str], schema: str) -> list[str]:
        return self.engine.generate_batch(texts, schema, generation(self.spec))


class ServedRunner:
    """The same model on an OpenAI-compatible server; batch_size requests in flight."""

    def __init__(self, spec: SystemSpec, cfg: EvalConfig) -> None:
        from reviewgpt.remote.served_reviewer import ServedConfig, ServedReviewer

        self.spec = spec
        self.batch_size = spec.batch_size
        self.reviewer: Reviewer = ServedReviewer(ServedConfig(
            base_url=spec.base_url, model=spec.model, tokenizer=spec.tokenizer, adapter=spec.engine.adapter,
            max_prompt_tokens=cfg.max_prompt_tokens, max_new_tokens=spec.generation.max_new_tokens,
            concurrency=spec.batch_size, server=spec.server, timeout_s=cfg.openai.timeout_s,
            max_retries=cfg.openai.max_retries), load_tokenizer(spec.tokenizer))

    def review(self, texts: list[str], schema: str) -> list[str]:
        return self.reviewer.generate_batch(texts, schema, generation(self.spec))


class OpenAIRunner:
    """Any chat model through the `openai` client (GPT-4 for the recipe); batch_size requests in flight."""

    def __init__(self, spec: SystemSpec, cfg: EvalConfig) -> None:
        from reviewgpt.remote.gpt_reviewer import GPTReviewer
        from reviewgpt.remote.openai_client import OpenAIChat

        self.batch_size = spec.batch_size
        self.reviewer = GPTReviewer(OpenAIChat(cfg.openai), model=spec.model, temperature=spec.generation.temperature)

    def review(self, texts: list[str], schema: str) -> list[str]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, min(self.batch_size, len(texts)))) as pool:
            return list(pool.map(lambda t: self.reviewer.review(t, schema), texts))


def make_runner(spec: SystemSpec, cfg: EvalConfig) -> Any:
    return {"local": LocalRunner, "served": ServedRunner, "openai": OpenAIRunner}[spec.kind](spec, cfg)
