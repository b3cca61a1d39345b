"""What each system is called on screen: words a user knows first, the technical line second."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from reviewgpt.config import DEFAULT_BASE_MODEL
from reviewgpt.reviewer import Reviewer


@dataclass(frozen=True)
class ModelLabel:
    title: str  # "Fine-tuned Llama 3.1 8B (LoRA)"
    detail: str  # "meta-llama/Llama-3.1-8B-Instruct + LoRA my-adapter · nf4 · cuda · sdpa"
    short: str  # in sentences: "the fine-tuned Llama"


def _is_llama31_8b(name: str) -> bool:
    return bool(re.search(r"llama-?3\.1-?8b", name.lower()))


def local_label(engine: Reviewer | None, is_demo: bool) -> ModelLabel:
    if engine is None:
        return ModelLabel("Local model (not loaded)", "see the message above", "the local model")
    info = engine.info
    detail = info.describe()
    if is_demo:
        return ModelLabel("Demo-scale model (pipeline only)", detail, "the demo model")
    base = info.base_model or ""
    adapter = info.adapter
    if _is_llama31_8b(base) or base == DEFAULT_BASE_MODEL:
        if adapter:
            return ModelLabel("Fine-tuned Llama 3.1 8B (LoRA)", detail, "the fine-tuned Llama")
        return ModelLabel("Llama 3.1 8B Instruct (base model, not fine-tuned)", detail, "the base Llama")
    name = Path(base).name if base and os.path.isdir(base) else (base.split("/")[-1] or "local model")
    if adapter:
        return ModelLabel(f"Fine-tuned {name} (LoRA)", detail, f"the fine-tuned {name}")
    return ModelLabel(name, detail, name)


def gpt_label(model: str, base_url: str | None, available: bool) -> ModelLabel:
    pretty = re.sub(r"^gpt", "GPT", model) if model.lower().startswith("gpt") else model
    where = f"via {base_url}" if base_url else "via the OpenAI API"
    detail = f"{model} {where}" if available else f"{model} (not configured)"
    return ModelLabel(f"{pretty} baseline", detail, pretty)
