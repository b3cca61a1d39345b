"""What each system is called on screen: words a user knows first, the technical line second."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from reviewgpt.config import DEFAULT_BASE_MODEL
from reviewgpt.reviewer import Reviewer


@dataclass(frozen=True)
class ModelLabel:
    title: str  # "Fine-tuned Llama 3.1 8B (LoRA)"
    detail: str  # "meta-llama/Llama-3.1-8B-Instruct + LoRA my-adapter · nf4 · cuda · sdpa"
    short: str  # in sentences: "the fine-tuned Llama"


# Llama 3.1 8B's architecture as its config.json states it (3.0 8B: 8,192 positions, no llama3 rope scaling)
LLAMA31_8B_CONFIG = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 14336,
                     "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
                     "max_position_embeddings": 131072}
BY_NAME = "size read from the model's name: its config is not visible here"


def _is_llama31_8b(name: str) -> bool:
    return bool(re.search(r"llama-?3\.1-?8b", name.lower()))


def is_llama31_8b(engine: Reviewer) -> tuple[bool, bool]:
    """(is it Llama 3.1 8B, was that read from the model's name). The loaded model's config decides; a
    model on an inference server has none here, so its name is the last resort (and the label says so)."""
    cfg = getattr(getattr(engine, "model", None), "config", None)
    if cfg is not None:
        return all(getattr(cfg, k, None) == v for k, v in LLAMA31_8B_CONFIG.items()), False
    base = engine.info.base_model or ""
    return _is_llama31_8b(base) or base == DEFAULT_BASE_MODEL, True


def local_label(engine: Reviewer | None, is_demo: bool) -> ModelLabel:
    if engine is None:
        return ModelLabel("Local model (not loaded)", "see the message above", "the local model")
    info = engine.info
    detail = info.describe()
    if is_demo:
        return ModelLabel("Demo-scale model (pipeline only)", detail, "the demo model")
    base = info.base_model or ""
    adapter = info.adapter
    is_8b, by_name = is_llama31_8b(engine)
    if is_8b:
        detail = f"{detail} · {BY_NAME}" if by_name else detail
        if adapter:
            return ModelLabel("Fine-tuned Llama 3.1 8B (LoRA)", detail, "the fine-tuned Llama")
        return ModelLabel("Llama 3.1 8B Instruct (base model, not fine-tuned)", detail, "the base Llama")
    name = Path(base).name if base and os.path.isdir(base) else (base.split("/")[-1] or "local model")
    if adapter:
        return ModelLabel(f"Fine-tuned {name} (LoRA)", detail, f"the fine-tuned {name}")
    return ModelLabel(name, detail, name)


OPENAI_HOST = "api.openai.com"


def without_credentials(url: str | None) -> str | None:
    """A server address as the log and the downloads may show it: a user:password@ part replaced by ***@
    (an OPENAI_BASE_URL may carry a proxy's credentials)."""
    if not url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def gpt_label(model: str, base_url: str | None, available: bool) -> ModelLabel:
    pretty = re.sub(r"^gpt", "GPT", model) if model.lower().startswith("gpt") else model
    # the server's address is for the operator (log, the downloads' models.gpt.base_url), not the page
    openai = not base_url or urlsplit(base_url).hostname == OPENAI_HOST  # OPENAI_BASE_URL set to OpenAI's own
    where = "via the OpenAI API" if openai else "via an OpenAI-compatible server"
    detail = f"{model} {where}" if available else f"{model} (not configured)"
    return ModelLabel(f"{pretty} baseline", detail, pretty)
