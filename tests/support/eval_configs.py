"""The eval configuration the eval tests share: two local systems (suppression 0 and 0.95) of the
tiny test model and a GPT side on the local OpenAI-compatible stub, in three 4-aspect matchups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reviewgpt.compare.evaluation.config import EvalConfig, Matchup, SystemSpec
from reviewgpt.config import OpenAIConfig

from .openai_server import API_KEY


def local_vs_gpt(tmp_path: Path, data_file: Path, model_dirs: Path, server: Any, limit: int, max_prompt_tokens: int,
                 max_new_tokens: int, bootstrap_samples: int) -> EvalConfig:
    def local(name: str, suppression: float) -> SystemSpec:
        return SystemSpec(name, kind="local", batch_size=2,
                          engine={"base_model": str(model_dirs / "base"), "adapter": str(model_dirs / "adapter")},
                          generation={"suppression": suppression, "max_new_tokens": max_new_tokens, "temperature": 0.0})

    return EvalConfig(
        data=str(data_file), out_dir=str(tmp_path / "eval"), limit=limit, schemas=["4"],
        bootstrap_samples=bootstrap_samples, max_prompt_tokens=max_prompt_tokens,
        systems=[local("ft", 0.0), local("ft+supp", 0.95),
                 SystemSpec("gpt4", kind="openai", model="gpt-4-1106-preview")],
        matchups=[Matchup("ft+supp", "gpt4", "4"), Matchup("ft", "gpt4", "4"), Matchup("ft+supp", "ft", "4")],
        openai=OpenAIConfig(api_key=API_KEY, base_url=server.base_url, max_retries=1))
