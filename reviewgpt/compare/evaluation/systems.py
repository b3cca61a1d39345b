"""The systems under evaluation: what determines a system's review (its configuration, hashed into
every review's key) and the runner that writes reviews of prepared paper texts."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from reviewgpt.compare.evaluation.config import EvalConfig, SystemSpec
from reviewgpt.compare.evaluation.fingerprint import fingerprint, model_identity, sha256_text
from reviewgpt.config import EngineConfig, GenerationConfig


@lru_cache(maxsize=16)
def load_tokenizer(source: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source)


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
    if s.kind == "openai":
        from reviewgpt.remote.gpt_reviewer import reviewer_messages

        settings = {"kind": s.kind, "model": s.model, "temperature": s.temperature}
        prompt = fingerprint(reviewer_messages(schema, "{paper}"))
        return SystemConfig(s.name, schema, settings, {"model": s.model}, prompt)
    from reviewgpt.prepare.chat import render_prompt

    tok_src = s.tokenizer_source()
    prompt = sha256_text(render_prompt(load_tokenizer(tok_src), schema, "{paper}"))
    settings = {"kind": s.kind, "suppression": s.suppression, "temperature": s.temperature, "top_p": s.top_p,
                "max_new_tokens": s.max_new_tokens, "seed": s.seed}
    identity = {"adapter": s.adapter, "adapter_id": model_identity(s.adapter),
                "tokenizer": tok_src, "tokenizer_id": model_identity(tok_src)}
    if s.kind == "local":
        settings["precision"] = s.precision
        if s.schema_guide:  # recorded only when on, so reviews made before the option existed keep their keys
            settings["schema_guide"] = True
        identity.update(base_model=s.base_model, base_model_id=model_identity(s.base_model))
    else:  # served: the server's name for the model; where it runs (base_url) does not change the review
        settings["server_adds_bos"] = s.server_adds_bos
        identity.update(model=s.model)
    return SystemConfig(s.name, schema, settings, identity, prompt)


def review_key(system: SystemConfig, input_key: str) -> str:
    return fingerprint({"system": system.key, "input": input_key})


# ---------------------------------------------------------------------------------- runners


def generation(spec: SystemSpec) -> GenerationConfig:
    return GenerationConfig(max_new_tokens=spec.max_new_tokens, suppression=spec.suppression,
                            temperature=spec.temperature, top_p=spec.top_p, do_sample=spec.temperature > 0,
                            seed=spec.seed)


class LocalRunner:
    """Base + adapter in this process; the engine's batched generate()."""

    def __init__(self, spec: SystemSpec, cfg: EvalConfig) -> None:
        from reviewgpt.generate.engine import get_engine

        self.spec = spec
        self.batch_size = spec.batch_size
        self.engine = get_engine(EngineConfig(base_model=spec.base_model, adapter=spec.adapter,
                                              precision=spec.precision, max_prompt_tokens=cfg.max_prompt_tokens,
                                              max_new_tokens=spec.max_new_tokens, schema_guide=spec.schema_guide,
                                              warmup=False))

    def review(self, texts: list[str], schema: str) -> list[str]:
        return self.engine.generate_batch(texts, schema, generation(self.spec))


class ServedRunner:
    """The same model on an OpenAI-compatible server; batch_size requests in flight."""

    def __init__(self, spec: SystemSpec, cfg: EvalConfig) -> None:
        from reviewgpt.remote.served_reviewer import ServedConfig, ServedReviewer

        self.spec = spec
        self.batch_size = spec.batch_size
        self.reviewer = ServedReviewer(ServedConfig(
            base_url=spec.base_url, model=spec.model, tokenizer=spec.tokenizer, adapter=spec.adapter,
            max_prompt_tokens=cfg.max_prompt_tokens, max_new_tokens=spec.max_new_tokens,
            concurrency=spec.batch_size, server_adds_bos=spec.server_adds_bos, vllm_extras=spec.vllm_extras,
            timeout_s=cfg.openai.timeout_s, max_retries=cfg.openai.max_retries), load_tokenizer(spec.tokenizer))

    def review(self, texts: list[str], schema: str) -> list[str]:
        return self.reviewer.generate_batch(texts, schema, generation(self.spec))


class OpenAIRunner:
    """Any chat model through the `openai` client (GPT-4 for the recipe); batch_size requests in flight."""

    def __init__(self, spec: SystemSpec, cfg: EvalConfig) -> None:
        from reviewgpt.remote.gpt_reviewer import GPTReviewer
        from reviewgpt.remote.openai_client import OpenAIChat

        self.batch_size = spec.batch_size
        self.reviewer = GPTReviewer(OpenAIChat(cfg.openai), model=spec.model, temperature=spec.temperature)

    def review(self, texts: list[str], schema: str) -> list[str]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, min(self.batch_size, len(texts)))) as pool:
            return list(pool.map(lambda t: self.reviewer.review(t, schema), texts))


def make_runner(spec: SystemSpec, cfg: EvalConfig) -> Any:
    return {"local": LocalRunner, "served": ServedRunner, "openai": OpenAIRunner}[spec.kind](spec, cfg)
