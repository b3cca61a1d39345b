from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from reviewgpt.training.data.aggregate import ExtractiveAggregator
from reviewgpt.training.data.papers import read_iclr2017
from reviewgpt.testing.local_tokenizer import build_llama31_tokenizer
from reviewgpt.format.review_format import render
from reviewgpt.testing.tiny_model import build_tiny_llama

from .support.openai_server import API_KEY, OpenAIStubServer

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PDFS = sorted((ROOT / "assets" / "examples").glob("*.pdf"))

# tests/kernels run Triton's kernels in its interpreter, in a pytest process of their own started with
# TRITON_INTERPRET=1 (.ci/run; triton reads it when a kernel is decorated, hardware.py when imported),
# or compiled on a CUDA GPU. Without either (this session on a CPU) they are not collected; with the
# interpreter on, nothing else is (the engine's CPU tests would run through interpreted kernels).
if os.environ.get("TRITON_INTERPRET") == "1":
    collect_ignore = [p.name for p in Path(__file__).parent.glob("test_*.py")]
elif not torch.cuda.is_available():
    collect_ignore = ["kernels"]


# The longest files first (seconds each in a junit report of `pytest -n 2` on two cores before the cuts of
# 2026-12-05: browser 143, walk 132, AOT 120 (since cut to about 50), README commands 90, page26 79, train 62,
# training benchmark 62, evidence 50, ...). .ci/run's two xdist workers take whole files in this order
# (--no-loadscope-reorder), so the long ones start first and the short ones fill the end; xdist's own order,
# by test count, sent the one-test training and README files last, alone on one core for two minutes.
LONGEST_FIRST = ["test_browser.py", "test_browser_walk.py", "test_readme_commands.py", "test_browser_page26.py",
                 "test_aot_step.py", "test_train.py", "test_browser_evidence.py", "test_bench_train.py",
                 "test_decode_graph.py", "test_app.py", "test_spaces.py", "test_pdf.py", "test_scorecard.py",
                 "test_schema_guide.py", "test_pdf_scan.py", "test_export_gguf.py", "test_rating.py"]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests stay together, in order


@pytest.fixture(scope="session")
def iclr_papers():
    return list(read_iclr2017(FIXTURES / "iclr2017"))


@pytest.fixture(scope="session")
def tokenizer(iclr_papers):
    corpus = [p.document.to_text() for p in iclr_papers]
    for schema in ("4", "7"):
        agg = ExtractiveAggregator(schema)
        corpus += [render(agg.aggregate(p.id, p.reviews).review) for p in iclr_papers]
    return build_llama31_tokenizer(corpus, vocab_size=2048)


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    return build_tiny_llama(tokenizer)


@pytest.fixture(scope="session")
def openai_server():
    server = OpenAIStubServer().start()
    yield server
    server.stop()


@pytest.fixture
def openai_env(openai_server, monkeypatch):
    """Point the real openai client at the local stub (keys and URL as a user would set them)."""
    openai_server.reset()
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    return openai_server


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory, tokenizer):
    """A tiny Llama 3.1-shaped model + tokenizer saved like a Hub checkpoint."""
    path = tmp_path_factory.mktemp("tiny-base")
    build_tiny_llama(tokenizer, seed=3).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory, tokenizer):
    """A tiny base model and a real peft LoRA adapter for it, saved like Hub checkpoints."""
    import torch
    from peft import LoraConfig, get_peft_model

    root = tmp_path_factory.mktemp("models")
    base = build_tiny_llama(tokenizer, seed=3)
    base.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    peft_model = get_peft_model(build_tiny_llama(tokenizer, seed=3),
                                LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    with torch.no_grad():  # a freshly initialised LoRA is a no-op (B = 0): give it an effect
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    peft_model.save_pretrained(root / "adapter")
    return root


MARKER_PAPER = ("Title: Sparse adapters for long documents\n\nAbstract: We study how small adapters read long "
                "papers and evaluate them on three benchmarks.")


def marker_review(schema: str) -> str:
    """A review with the marker on every other aspect (the pattern the marker model learns)."""
    from reviewgpt.format.schema import EMPTY_MARKER, get_schema

    return "\n\n".join(f"## {c}\n" + (EMPTY_MARKER if i % 2 == 0 else f"1. **Point {i}**: the method is clear.")
                       for i, c in enumerate(get_schema(schema).criteria))


@pytest.fixture(scope="session")
def marker_model_dir(tmp_path_factory, tokenizer):
    """A tiny Llama trained (about half a minute on the CPU) to write the 4-aspect review with the empty
    marker after every other header: the app's marker badge and P(empty) display need a model that
    writes the marker."""
    import torch

    from reviewgpt.prepare.chat import encode_example

    model = build_tiny_llama(tokenizer, seed=5)
    ex = encode_example(tokenizer, "4", MARKER_PAPER, marker_review("4"))
    ids = torch.tensor([ex["input_ids"]])
    labels = torch.where(torch.tensor([ex["completion_mask"]]) == 1, ids, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    torch.manual_seed(0)
    for _ in range(100):
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path_factory.mktemp("marker-model")
    model.eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def data_file(tmp_path_factory):
    """The fixture papers prepared as eval's test split (4-aspect targets, every paper held out)."""
    from reviewgpt.training.data.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("evaldata")
    prepare(PrepareConfig(source=str(FIXTURES / "iclr2017"), out_dir=str(out), schemas=["4"], test_frac=1.0,
                          val_frac=0.0))
    return out / "test.jsonl"
