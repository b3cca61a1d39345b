"""The evaluation config: which papers, which systems, which matchups (one YAML file)."""

from __future__ import annotations

from dataclasses import dataclass, field

from reviewgpt.config import OpenAIConfig, register


@register
@dataclass
class SystemSpec:
    name: str
    kind: str = "local"  # "local" (base + adapter through the engine) | "openai" (any compatible model)
    base_model: str | None = None
    adapter: str | None = None
    precision: str = "auto"
    suppression: float = 0.0
    temperature: float = 0.6
    max_prompt_tokens: int = 11_138
    max_new_tokens: int = 1_200
    batch_size: int = 8
    model: str | None = None  # openai: the model name
    seed: int = 0


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
    judge_model: str = "gpt-4o"
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

    def system(self, name: str) -> SystemSpec:
        return next(s for s in self.systems if s.name == name)
