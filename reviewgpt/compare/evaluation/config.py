"""The evaluation config: which papers, which systems, which matchups (one YAML file).

Numbers the recipe fixes are not retyped here: the prompt budget, the review length and the
suppression strength default to `reviewgpt.config`'s RECIPE_* constants.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewgpt.config import (RECIPE_MAX_PROMPT_TOKENS, EngineConfig, GenerationConfig, OpenAIConfig, from_dict,
                              register)

KINDS = ("local", "served", "openai")

_ENGINE_KEYS = {f.name for f in dataclasses.fields(EngineConfig)}
_GENERATION_KEYS = {f.name for f in dataclasses.fields(GenerationConfig)}
# EngineConfig fields the eval sets for every local system, so a system may not: one prompt budget for
# every system and the judge (EvalConfig.max_prompt_tokens), the cache sized for generation.max_new_tokens.
_EVAL_SETS = {"max_prompt_tokens": "the eval's `max_prompt_tokens` (one input for every system and the judge)",
              "max_new_tokens": "`generation.max_new_tokens`"}


# Served systems' two raw flags, replaced by one preset that says which server it is.
_REPLACED = {"server_adds_bos": "`server:` (llama.cpp for the server that adds BOS itself)",
             "vllm_extras": "`server:` (vllm sends its extra fields; sglang and llama.cpp their own)"}


def _moved_to(key: str) -> str | None:
    """Where a flat key of the old SystemSpec (or any engine / generation field given flat) lives now."""
    if key in _GENERATION_KEYS:  # first: max_new_tokens is the generation's (the engine's follows it)
        return f"generation.{key}"
    if key in _ENGINE_KEYS:
        return f"engine.{key}"
    return None


def _check_keys(where: str, keys: Any, allowed: set[str]) -> None:
    replaced = {k: _REPLACED[k] for k in keys if k not in allowed and k in _REPLACED}
    if replaced:
        raise ValueError(f"{where}: " + ", ".join(f"`{k}` is replaced by {to}" for k, to in replaced.items())
                         + ": `server: vllm | sglang | llama.cpp` says which server it is, and each is sent the "
                         "BOS handling and sampler fields of its own dialect")
    moved = {k: _moved_to(k) for k in keys if k not in allowed and _moved_to(k)}
    if moved:
        raise ValueError(f"{where}: " + ", ".join(f"`{k}` is now `{to}`" for k, to in moved.items())
                         + " (a system nests the model's settings, EngineConfig, under `engine:` and the "
                         "sampling's, GenerationConfig, under `generation:`)")
    unknown = set(keys) - allowed
    if unknown:
        raise ValueError(f"{where} has unknown keys {sorted(unknown)}")


def _nested(cls: type, value: Any, where: str, defaults: dict[str, Any] | None = None) -> Any:
    """A nested config from YAML (a dict, over `defaults`) or as given (a dataclass)."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping of {cls.__name__} fields, got {value!r}")
    try:
        return from_dict(cls, {**(defaults or {}), **value})
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


@register
@dataclass
class SystemSpec:
    name: str
    # "local": base + adapter in this process (ReviewEngine); "served": the same model behind an
    # OpenAI-compatible server (vLLM, SGLang, llama.cpp; /v1/completions); "openai": any chat model
    kind: str = "local"
    # local: the model, as the app's EngineConfig (base_model, adapter, precision, merge_adapter, schema_guide,
    # the decode switches); the eval sets its max_prompt_tokens and max_new_tokens (generation's) and no
    # warm-up. served: only `adapter` is read, what the server loaded (recorded, not sent). openai: unused.
    engine: EngineConfig = field(default_factory=EngineConfig)
    # local / served: suppression, temperature, top_p, max_new_tokens, seed (repetition_penalty, ...); openai:
    # temperature. Eval's defaults differ from GenerationConfig's in two ways: seed 0 (a YAML `generation:`
    # starts from it; None is unseeded), and sampling only at temperature > 0 (0 is greedy).
    generation: GenerationConfig = field(default_factory=lambda: GenerationConfig(seed=0))
    batch_size: int = 8  # local: papers per generate() call; served/openai: requests in flight
    model: str | None = None  # openai: the model; served: the served name (vLLM --lora-modules NAME=...)
    base_url: str | None = None  # served (openai: the eval's `openai.base_url`)
    tokenizer: str | None = None  # served: the reviewer's tokenizer folder / Hub id (required)
    server: str = "vllm"  # served: vllm | sglang | llama.cpp (its dialect: BOS, extra fields, samplers)
    # Per-schema overrides, nested as above and merged into them, e.g. one adapter per format:
    # {"4": {"engine": {"adapter": ...}}, "7": {"engine": {"adapter": ...}, "generation": {"temperature": 0.3}}}
    per_schema: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SystemSpec":
        """A system from its YAML mapping; a key of the old flat layout says where it moved."""
        _check_keys(f"system {data.get('name', '?')}", data, {f.name for f in dataclasses.fields(cls)})
        return cls(**data)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"system {self.name}: unknown kind {self.kind!r} ({' | '.join(KINDS)})")
        if self.kind == "local" and not isinstance(self.engine, EngineConfig) and not (self.engine or {}).get("base_model"):
            raise ValueError(f"system {self.name}: kind local needs engine.base_model (a Hub id or a local folder)")
        self.engine = _nested(EngineConfig, self.engine, f"system {self.name}: engine")
        self.generation = _nested(GenerationConfig, self.generation, f"system {self.name}: generation", {"seed": 0})
        self.per_schema = {str(k): dict(v) for k, v in (self.per_schema or {}).items()}
        known = {f.name for f in dataclasses.fields(self)} - {"name", "kind", "per_schema"}
        for schema, over in self.per_schema.items():
            _check_keys(f"system {self.name}: per_schema[{schema}]", over, known)
            self.for_schema(schema)  # the merged system is checked like any other
        if self.kind == "local":
            for key, owner in _EVAL_SETS.items():
                if getattr(self.engine, key) != getattr(EngineConfig, key):
                    raise ValueError(f"system {self.name}: engine.{key} is set by the eval: use {owner}")
        if self.kind == "served":
            if not (self.base_url and self.model and self.tokenizer):
                raise ValueError(f"system {self.name}: kind served needs base_url, model and tokenizer "
                                 "(the reviewer's tokenizer: suppression ids and the prompt budget are computed "
                                 "with it)")
            from reviewgpt.remote.served_reviewer import check_server

            try:
                check_server(self.server)
            except ValueError as e:
                raise ValueError(f"system {self.name}: {e}") from None
            if dataclasses.replace(self.engine, adapter=None) != EngineConfig():
                raise ValueError(f"system {self.name}: kind served reads only engine.adapter (what the server "
                                 "loaded, for the record); the model's other settings are the server's")
        if self.kind == "openai":
            if not self.model:
                raise ValueError(f"system {self.name}: kind openai needs model")
            if self.engine != EngineConfig():
                raise ValueError(f"system {self.name}: kind openai has no engine settings")

    def for_schema(self, schema: str) -> "SystemSpec":
        """This system as it runs for one schema (per-schema overrides merged in, nested ones key by key)."""
        over = dict(self.per_schema.get(str(schema)) or {})
        where = f"system {self.name}: per_schema[{schema}]"
        engine = _nested(EngineConfig, over.pop("engine", {}), f"{where}: engine", dataclasses.asdict(self.engine))
        generation = _nested(GenerationConfig, over.pop("generation", {}), f"{where}: generation",
                             dataclasses.asdict(self.generation))
        return dataclasses.replace(self, per_schema={}, engine=engine, generation=generation, **over)

    def tokenizer_source(self) -> str | None:
        """Where this system's tokenizer lives: served: `tokenizer`; local: the adapter folder when
        it has one (train/ saves it there), else the base model (the engine's rule)."""
        if self.kind == "served":
            return self.tokenizer
        if self.kind == "local":
            if self.tokenizer:
                return self.tokenizer
            adapter = self.engine.adapter
            if adapter and (Path(adapter) / "tokenizer_config.json").exists():
                return adapter
            return self.engine.base_model
        return None


@register
@dataclass
class Matchup:
    a: str
    b: str
    schema: str = "7"

    @property
    def key(self) -> str:
        return f"{self.a} vs {self.b} ({self.schema}-aspect)"


@register
@dataclass
class EvalConfig:
    data: str = "outputs/data/test.jsonl"  # prepared examples (train/prepare_data.py): paper + human reviews
    out_dir: str = "outputs/eval"
    limit: int | None = None  # first N papers
    schemas: list[str] = field(default_factory=lambda: ["7", "4"])
    systems: list[SystemSpec] = field(default_factory=list)
    matchups: list[Matchup] = field(default_factory=list)
    # The one input every system and the judge read: prepare() with this tokenizer and budget.
    # tokenizer None: the first local/served system's tokenizer (none at all: the whole paper).
    tokenizer: str | None = None
    max_prompt_tokens: int = RECIPE_MAX_PROMPT_TOKENS
    judge_model: str = "gpt-4o"
    judge_concurrency: int = 8  # judge calls in flight at once (each paper's two orders run in turn)
    judge_max_attempts: int = 3
    bootstrap_samples: int = 2000
    seed: int = 0
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)

    def __post_init__(self) -> None:
        # YAML gives dicts for the lists of dataclasses
        self.systems = [s if isinstance(s, SystemSpec) else SystemSpec.from_dict(s) for s in self.systems]
        self.matchups = [m if isinstance(m, Matchup) else Matchup(**{**m, "schema": str(m.get("schema", "7"))})
                         for m in self.matchups]
        self.schemas = [str(s) for s in self.schemas]
        names = [s.name for s in self.systems]
        if len(set(names)) != len(names):
            raise ValueError(f"system names must be unique: {names}")
        for m in self.matchups:
            for side in (m.a, m.b):
                if side not in names:
                    raise ValueError(f"matchup {m.key} names unknown system {side!r}; systems: {names}")
        if self.judge_concurrency < 1:
            raise ValueError("judge_concurrency must be at least 1")

    def system(self, name: str) -> SystemSpec:
        return next(s for s in self.systems if s.name == name)

    def needed_schemas(self) -> list[str]:
        return sorted({m.schema for m in self.matchups} or set(self.schemas))

    def input_tokenizer(self) -> str | None:
        if self.tokenizer:
            return self.tokenizer
        for s in self.systems:
            src = s.tokenizer_source()
            if src:
                return src
        return None
