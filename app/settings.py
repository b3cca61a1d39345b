"""Which model the app runs and how it reaches the GPT-4 side: environment variables and CLI flags.

    REVIEWGPT_BASE_MODEL   base model (Hub id or folder); setting it means "run this model"
    REVIEWGPT_ADAPTER      LoRA adapter (Hub id or peft folder) for the base model
    REVIEWGPT_PRECISION    auto | nf4 | bf16 | fp32
    REVIEWGPT_MAX_NEW_TOKENS  cap on the review length in tokens (default: the recipe's 1,150 + margin)
    REVIEWGPT_DEMO         1: always the bundled demo model; 0: never (a failed 8B load is reported)
    REVIEWGPT_GPT_MODEL    the GPT-4 reviewer model (default gpt-4o; the recipe's: gpt-4-1106-preview)
    REVIEWGPT_JUDGE_MODEL  the judge model (default gpt-4o)
    OPENAI_API_KEY, OPENAI_BASE_URL, HF_TOKEN   as usual
    SPACES_ZERO_GPU        set by Hugging Face on ZeroGPU hardware: no torch.compile at run time; the decode
                           step compiled ahead of time (REVIEWGPT_AOT) where one matches, else eager decoding
    REVIEWGPT_AOT          folder or hf://owner/repo[@rev] of ahead-of-time compiled decode steps
                           (`python -m app.build_aot`); default on ZeroGPU: the Space's `aot/` folder

The fine-tuned model on an OpenAI-compatible inference server instead of in this process:
    REVIEWGPT_LOCAL_BASE_URL   e.g. http://127.0.0.1:8000/v1 (vLLM, SGLang, llama.cpp); setting it means "served"
    REVIEWGPT_LOCAL_MODEL      the served name (vLLM: the NAME of --lora-modules NAME=adapter)
    REVIEWGPT_LOCAL_TOKENIZER  the reviewer's tokenizer (folder or Hub id); default: REVIEWGPT_ADAPTER's
                               folder when it holds one, else REVIEWGPT_BASE_MODEL, else the 8B's
    REVIEWGPT_LOCAL_API_KEY    if the server wants one (vLLM --api-key)
    REVIEWGPT_LOCAL_SERVER     which server it is: vllm (default) | sglang | llama.cpp; each is sent the
                               prompt, BOS and sampler fields in its own dialect
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from reviewgpt.config import DEFAULT_BASE_MODEL, EngineConfig, OpenAIConfig, bundled_engine_config
from reviewgpt.remote.served_reviewer import ServedConfig, check_server

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / "assets" / "demo-model"
EXAMPLES_DIR = ROOT / "assets" / "examples"
AOT_DIR = ROOT / "aot"  # the Space's own ahead-of-time compiled decode steps (app/build_aot.py writes here)


def on_zero_gpu() -> bool:
    """Hugging Face sets SPACES_ZERO_GPU on ZeroGPU hardware (a GPU lent per decorated call)."""
    return bool(_env_flag("SPACES_ZERO_GPU"))


def _env_flag(name: str) -> bool | None:
    v = os.environ.get(name)
    return None if v is None or v == "" else v.lower() in ("1", "true", "yes", "on")


@dataclass
class AppSettings:
    base_model: str | None = None
    adapter: str | None = None
    precision: str = "auto"
    max_new_tokens: int | None = None
    demo: bool | None = None  # None: demo model only when there is no CUDA GPU and no base_model is set
    demo_dir: str = str(DEMO_DIR)
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    host: str | None = None
    port: int = 7860
    local_base_url: str | None = None  # set: the local reviewer runs on this OpenAI-compatible server
    local_model: str | None = None
    local_tokenizer: str | None = None
    local_server: str = "vllm"  # the server's dialect: vllm | sglang | llama.cpp
    aot_package: str | None = None  # ahead-of-time compiled decode steps; None: AOT_DIR on ZeroGPU

    @classmethod
    def from_env(cls) -> "AppSettings":
        if os.environ.get("REVIEWGPT_LOCAL_SERVER_ADDS_BOS"):
            raise ValueError("REVIEWGPT_LOCAL_SERVER_ADDS_BOS is replaced by REVIEWGPT_LOCAL_SERVER (vllm | sglang | "
                             "llama.cpp): unset it, and set REVIEWGPT_LOCAL_SERVER=llama.cpp for llama.cpp's server "
                             "(the one that adds BOS itself); vllm is the default")
        server = os.environ.get("REVIEWGPT_LOCAL_SERVER") or "vllm"
        try:
            check_server(server)
        except ValueError as e:
            raise ValueError(f"REVIEWGPT_LOCAL_SERVER: {e}") from None
        oa = OpenAIConfig()
        oa.reviewer_model = os.environ.get("REVIEWGPT_GPT_MODEL") or oa.reviewer_model
        oa.judge_model = os.environ.get("REVIEWGPT_JUDGE_MODEL") or oa.judge_model
        return cls(base_model=os.environ.get("REVIEWGPT_BASE_MODEL") or None,
                   adapter=os.environ.get("REVIEWGPT_ADAPTER") or None,
                   precision=os.environ.get("REVIEWGPT_PRECISION") or "auto",
                   max_new_tokens=int(os.environ["REVIEWGPT_MAX_NEW_TOKENS"]) if os.environ.get("REVIEWGPT_MAX_NEW_TOKENS") else None,
                   demo=_env_flag("REVIEWGPT_DEMO"), openai=oa,
                   local_base_url=os.environ.get("REVIEWGPT_LOCAL_BASE_URL") or None,
                   local_model=os.environ.get("REVIEWGPT_LOCAL_MODEL") or None,
                   local_tokenizer=os.environ.get("REVIEWGPT_LOCAL_TOKENIZER") or None,
                   local_server=server, aot_package=os.environ.get("REVIEWGPT_AOT") or None)

    def local_backend(self) -> str:
        """Which local reviewer to build: "served" (ServedReviewer, from served_config()) or
        "engine" (ReviewEngine in this process, from engine_config())."""
        return "served" if self.local_base_url else "engine"

    def served_config(self) -> ServedConfig:
        """The served reviewer's settings; a clear message when the server's model name is missing."""
        if not self.local_base_url:
            raise ValueError("REVIEWGPT_LOCAL_BASE_URL is not set: the local reviewer runs in this process")
        if not self.local_model:
            raise ValueError(f"REVIEWGPT_LOCAL_BASE_URL is set ({self.local_base_url}) but REVIEWGPT_LOCAL_MODEL is "
                             "not: set it to the served model's name (vLLM: the NAME in --lora-modules NAME=adapter)")
        tokenizer = self.local_tokenizer
        if not tokenizer and self.adapter and (Path(self.adapter) / "tokenizer_config.json").exists():
            tokenizer = self.adapter
        cfg = ServedConfig(base_url=self.local_base_url, model=self.local_model,
                           tokenizer=tokenizer or self.base_model or DEFAULT_BASE_MODEL, adapter=self.adapter,
                           server=self.local_server)
        if self.max_new_tokens:
            cfg.max_new_tokens = self.max_new_tokens
        return cfg

    def use_demo(self) -> bool:
        if self.demo is not None:
            return self.demo
        return self.base_model is None and self.local_base_url is None and not torch.cuda.is_available()

    def engine_config(self) -> EngineConfig:
        """The 8B (or whatever base_model names) with its adapter, or the bundled demo model."""
        if self.use_demo():
            cfg = bundled_engine_config(self.demo_dir)
        else:
            cfg = EngineConfig(base_model=self.base_model or DEFAULT_BASE_MODEL, adapter=self.adapter,
                               precision=self.precision)
        if self.max_new_tokens:
            cfg.max_new_tokens = self.max_new_tokens
        if on_zero_gpu():
            # ZeroGPU runs each call in a short-lived GPU process: compiling there on the fly does not
            # work, so the step compiled ahead of time runs (or eager decoding, when none matches).
            # Dedicated GPUs keep the compiled CUDA-graph decode step.
            cfg.fast_decoding = False
            cfg.aot_package = self.aot_package or (str(AOT_DIR) if AOT_DIR.is_dir() else None)
        elif self.aot_package:
            cfg.fast_decoding, cfg.aot_package = False, self.aot_package
        return cfg
