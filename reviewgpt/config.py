"""Configuration dataclasses shared by app/ and eval/ (loadable from YAML), and the recipe's numbers.

Training (train/) is configured by TRL's own TrlParser instead: see reviewgpt.training.sft.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from reviewgpt.errors import ConfigError

# The recipe's numbers, named once.
RECIPE_MAX_PROMPT_TOKENS = 11_138
RECIPE_MAX_RESPONSE_TOKENS = 1_150
RECIPE_SUPPRESSION = 0.95
DEFAULT_BASE_MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def looks_like_path(source: str) -> bool:
    """Whether a model source names a local folder rather than a Hub id ("owner/name"): it starts with
    ".", "/" or "~", or has more than one "/". What an error about it should call it."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1


@dataclass
class IngestConfig:
    max_bytes: int = 50 * 1024 * 1024
    max_pages: int = 100
    keep_references: bool = False
    drop_hidden_text: bool = True  # exclude text a human cannot see from the model input
    report_hidden_text: bool = True  # run the guard (rendering) even when hidden text is kept
    guard_dpi: int = 96  # render resolution of the guard: 6 pt text is 8 px high, legible
    min_visible_change: int = 64  # 0-255: a pixel changed this much by a span's text is seen
    min_visible_font_pt: float = 2.5  # smaller text cannot be read, whatever it renders like (2.0-2.1 pt injections seen)
    min_chars_per_page: int = 40  # fewer on a page that is mostly an image -> scanned, OCR it
    ocr_language: str = "eng"  # Tesseract language(s), e.g. "eng+chi_sim"
    ocr_dpi: int = 300
    ocr_tessdata: str | None = None  # Tesseract's tessdata folder; None: found by PyMuPDF


@dataclass
class EngineConfig:
    base_model: str = DEFAULT_BASE_MODEL
    adapter: str | None = None  # peft folder or Hub id; None -> base model, said visibly
    precision: str = "auto"  # "auto" | "nf4" | "bf16" | "fp32"; auto: engine.auto_precision (GPU: bf16 where it fits, else nf4; CPU: fp32)
    # Merge the LoRA adapter into the base weights where the precision allows (bf16, fp32): the decode
    # step then runs the plain model (no LoRA matrices to read or launch). NF4 keeps it unmerged: merging
    # into 4-bit weights would re-quantize them and lose most of the adapter's small change.
    merge_adapter: bool = True
    attn_implementation: str = "auto"  # "auto" -> flash_attention_2 when importable on GPU, else sdpa
    # Decoding on a GPU (README, "which path runs where"). fast_decoding=False is the off switch
    # (ZeroGPU): eager generate(), no torch.compile. Otherwise `decoder` picks the compiled path:
    # "engine" = this project's static-cache loop (batch 1 and batched), "generate-static" =
    # transformers' generate() with a StaticCache, which compiles its own decode step.
    fast_decoding: bool = True
    decoder: str = "engine"
    # With fast_decoding off: a folder (or hf://owner/repo[@rev]) of decode steps compiled ahead of time
    # (`python -m app.build_aot`, generate/aot_step.py); the one built for this model, GPU and torch
    # decodes batch 1 at compiled speed with no compilation at run time. None, or no match: eager generate().
    aot_package: str | None = None
    # With fast decoding, the decode step's kernel choices (measured on the shipped configurations by
    # benchmarks/bench_decode.py, benchmarks/results/README.md).
    fuse_projections: bool = True  # one product for q|k|v and one for gate|up a layer (generate/fused.py)
    split_kv_attention: bool = True  # decode attention in the split-KV Triton kernel (decode_attention.py)
    few_row_kernels: bool = True  # 1-16-row linears on the few-row Triton kernel (decode_linears.py)
    # ...and which layers take it at one row too (the others: inductor's reductions fused with their RMSNorm)
    one_row_kernel_layers: tuple[str, ...] = ("o_proj", "down_proj")
    max_prompt_tokens: int = RECIPE_MAX_PROMPT_TOKENS
    max_new_tokens: int = RECIPE_MAX_RESPONSE_TOKENS + 50
    # Schema-guided decoding (reviewgpt/generate/schema_guide.py): each aspect header once, in order.
    # For small models that lose count (the demo model); the recipe's 8B runs without it.
    schema_guide: bool = False
    warmup: bool = True
    hf_token: str | None = None
    local_files_only: bool = False


def bundled_engine_config(folder: str | Path) -> EngineConfig:
    """The EngineConfig of a model folder with an `engine.yaml` (the bundled demo model): its keys are
    EngineConfig fields, `base_model` / `adapter` relative to the folder; files are local only."""
    folder = Path(folder)
    spec = yaml.safe_load((folder / "engine.yaml").read_text()) or {}
    for key in ("base_model", "adapter"):
        if spec.get(key):
            spec[key] = str(folder / spec[key])
    return from_dict(EngineConfig, {**spec, "local_files_only": True})


@dataclass
class GenerationConfig:
    max_new_tokens: int = RECIPE_MAX_RESPONSE_TOKENS + 50
    temperature: float = 0.6
    top_p: float = 0.9
    do_sample: bool = True
    suppression: float = RECIPE_SUPPRESSION
    seed: int | None = None
    repetition_penalty: float = 1.0
    ignore_eos: bool = False  # benchmarks only: always write max_new_tokens


@dataclass
class OpenAIConfig:
    reviewer_model: str = "gpt-4o"
    judge_model: str = "gpt-4o"
    temperature: float = 0.7
    timeout_s: float = 120.0
    max_retries: int = 4
    api_key: str | None = None  # default: OPENAI_API_KEY
    base_url: str | None = None  # default: OPENAI_BASE_URL, else the official API

    def resolved_key(self) -> str | None:
        return self.api_key or os.environ.get("OPENAI_API_KEY") or None

    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or None


T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any] | None) -> T:
    """Build a (possibly nested) config dataclass from a dict, rejecting unknown keys."""
    data = dict(data or {})
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}{_did_you_mean(unknown, known)}")
    kwargs = {}
    for name, value in data.items():
        ftype = known[name].type
        sub = _dataclass_type(ftype)
        kwargs[name] = from_dict(sub, value) if sub and isinstance(value, dict) else _coerce(ftype, value)
    return cls(**kwargs)


def _did_you_mean(unknown: set[str], known: Any) -> str:
    """" (did you mean 'x'?)" for the misspelt keys that are close to a known one."""
    import difflib

    close = [m[0] for k in sorted(unknown) if (m := difflib.get_close_matches(k, list(known), n=1))]
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _coerce(ftype: Any, value: Any) -> Any:
    """YAML 1.1 reads `2e-4` as a string: turn numeric strings into the field's number type."""
    kind = (ftype if isinstance(ftype, str) else getattr(ftype, "__name__", "")).split("|")[0].strip()
    if isinstance(value, list) and kind.startswith("tuple"):  # YAML lists; configs are hashed (get_engine)
        return tuple(value)
    if isinstance(value, str) and kind in ("float", "int"):
        try:
            return float(value) if kind == "float" else int(value)
        except ValueError:
            raise ValueError(f"expected a {kind}, got {value!r}") from None
    return value


def _dataclass_type(ftype: Any) -> type | None:
    if isinstance(ftype, str):
        ftype = globals().get(ftype) or _REGISTRY.get(ftype)
    return ftype if dataclasses.is_dataclass(ftype) else None


_REGISTRY: dict[str, type] = {}


def register(cls: type[T]) -> type[T]:
    """Make a dataclass defined elsewhere resolvable when nested (string annotations)."""
    _REGISTRY[cls.__name__] = cls
    return cls


for _c in (IngestConfig, EngineConfig, GenerationConfig, OpenAIConfig):
    register(_c)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["lora.r=8", "schemas=[4]"]` -> nested dict; values are read as YAML (numbers, lists, null)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"override {pair!r} is not key=value")
        key, raw = pair.split("=", 1)
        node = out
        *parents, leaf = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(raw)
    return out


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in extra.items():
        merged[k] = _merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def load_config(cls: type[T], path: str | Path | None, overrides: list[str] | None = None) -> T:
    """A config dataclass from an optional YAML file plus `key=value` overrides (the CLIs' one way in)."""
    data: dict[str, Any] = {}
    where = f"{path}{' + ' if overrides else ''}{' '.join(overrides or [])}" if path else " ".join(overrides or [])
    try:
        if path:
            with open(path) as f:
                data = yaml.safe_load(f) or {}
        return from_dict(cls, _merge(data, parse_overrides(overrides or [])))
    except OSError as e:
        raise ConfigError(f"cannot read the config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"the config {path} is not valid YAML: {e}") from None
    except (ValueError, TypeError) as e:  # unknown key, wrong type, a check in a config's __post_init__
        raise ConfigError(f"config {where or '(defaults)'}: {e}") from None


def cli_args(description: str, default_config: str | None = None):
    """The argument parser every script shares: --config FILE and key=value overrides."""
    import argparse

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", default=default_config, help="YAML config file (default: %(default)s)")
    p.add_argument("overrides", nargs="*", help="config overrides as key=value (nested: lora.r=8)")
    return p
