"""The evaluation config: which papers, which systems, which matchups (one YAML file).

Numbers the recipe fixes are not retyped here: the prompt budget, the review length and the
suppression strength default to `reviewgpt.config`'s RECIPE_* constants.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewgpt.config import (RECIPE_MAX_PROMPT_TOKENS, RECIPE_SUPPRESSION, GenerationConfig, OpenAIConfig,
                              register)

KINDS = ("local", "served", "openai")


@register
@dataclass
class SystemSpec:
    name: str
    # "local": base + adapter in this process (ReviewEngine); "served": the same model behind an
    # OpenAI-compatible server (vLLM, SGLang, llama.cpp; /v1/completions); "openai": any chat model
    kind: str = "local"
    base_model: str | None = None  # local
    adapter: str | None = None  # local: peft folder; served: what the server loaded (recorded, not sent)
    precision: str = "auto"  # local
    schema_guide: bool = False  # local: each aspect header once, in order (EngineConfig.schema_guide)
    suppression: float = RECIPE_SUPPRESSION  # local / served
    temperature: float = 0.6
    top_p: float = 0.9  # local / served
    max_new_tokens: int = GenerationConfig.max_new_tokens  # local / served
    seed: int = 0  # local / served
    batch_size: int = 8  # local: papers per generate() call; served/openai: requests in flight
    model: str | None = None  # openai: the model; served: the served name (vLLM --lora-modules NAME=...)
    base_url: str | None = None  # served (openai: the eval's `openai.base_url`)
    tokenizer: str | None = None  # served: the reviewer's tokenizer folder / Hub id (required)
    server_adds_bos: bool = False  # served: llama.cpp adds BOS itself
    vllm_extras: bool = True  # served: add_special_tokens=false, stop_token_ids
    # Per-schema overrides, e.g. one adapter per format: {"4": {"adapter": ...}, "7": {"adapter": ...}}
    per_schema: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"system {self.name}: unknown kind {self.kind!r} ({' | '.join(KINDS)})")
        self.per_schema = {str(k): dict(v) for k, v in (self.per_schema or {}).items()}
        known = {f.name for f in dataclasses.fields(self)} - {"name", "kind", "per_schema"}
        for schema, over in self.per_schema.items():
            bad = set(over) - known
            if bad:
                raise ValueError(f"system {self.name}: per_schema[{schema}] has unknown keys {sorted(bad)}")
        if self.kind == "local" and not self.base_model:
            raise ValueError(f"system {self.name}: kind local needs base_model")
        if self.kind == "served" and not (self.base_url and self.model and self.tokenizer):
            raise ValueError(f"system {self.name}: kind served needs base_url, model and tokenizer "
                             "(the reviewer's tokenizer: suppression ids and the prompt budget are computed with it)")
        if self.kind == "openai" and not self.model:
            raise ValueError(f"system {self.name}: kind openai needs model")

    def for_schema(self, schema: str) -> "SystemSpec":
        """This system as it runs for one schema (per-schema overrides applied)."""
        over = self.per_schema.get(str(schema))
        return dataclasses.replace(self, per_schema={}, **over) if over else dataclasses.replace(self, per_schema={})

    def tokenizer_source(self) -> str | None:
        """Where this system's tokenizer lives: served: `tokenizer`; local: the adapter folder when
        it has one (train/ saves it there), else the base model (the engine's rule)."""
        if self.kind == "served":
            return self.tokenizer
        if self.kind == "local":
            if self.tokenizer:
                return self.tokenizer
            if self.adapter and (Path(self.adapter) / "tokenizer_config.json").exists():
                return self.adapter
            return self.base_model
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
        self.systems = [s if isinstance(s, SystemSpec) else SystemSpec(**s) for s in self.systems]
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
