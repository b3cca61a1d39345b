"""Build the demo-scale reviewer bundled in assets/demo-model (CPU, a few minutes).

    python -m train.build_demo --config train/configs/demo.yaml

The same pipeline as the 8B recipe, scaled down: extractive targets from the ICLR 2017 papers
(reviewgpt.training.data.prepare) -> a Llama 3.1-style tokenizer built on that text -> a tiny Llama briefly
pretrained as a plain LM (the stand-in for the base model) -> LoRA SFT with TRL (reviewgpt.training.sft)
-> the empty-item rate of sampled reviews at suppression 0 and 0.95 (reviewgpt.generate.engine), written to
metrics.json. It shows the pipeline working, not review quality.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

from reviewgpt.config import EngineConfig, GenerationConfig, cli_args, from_dict, load_config
from reviewgpt.training.data.papers import PaperRecord
from reviewgpt.training.data.prepare import PrepareConfig, prepare, read_examples
from reviewgpt.generate.engine import load_engine
from reviewgpt.testing.local_tokenizer import build_llama31_tokenizer
from reviewgpt.format.review_format import parse
from reviewgpt.testing.tiny_model import build_tiny_llama
from reviewgpt.training.sft import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "iclr2017"


@dataclass
class DemoConfig:
    source: str = "../shared/data/iclr2017"
    out_dir: str = "assets/demo-model"
    work_dir: str = "outputs/demo"
    vocab_size: int = 4096
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 384
    pretrain_steps: int = 300
    pretrain_seq: int = 512
    pretrain_lr: float = 3e-3
    max_prompt_tokens: int = 384
    max_response_tokens: int = 512
    # TrainConfig keys for the SFT stage (validated by from_dict: unknown keys are refused)
    sft: dict = field(default_factory=lambda: {
        "num_train_epochs": 3, "learning_rate": 2e-3, "per_device_batch_size": 8, "gradient_accumulation_steps": 1,
        "gradient_checkpointing": False,  # a tiny model needs no memory saving; it only costs time
        "lora": {"r": 64, "alpha": 128, "dropout": 0.0, "target_modules": "all-linear"}})
    eval_reviews: int = 50
    max_items: int = 2  # short extractive targets: a tiny model learns the layout, not long content
    max_item_words: int = 30
    reuse_base: bool = False  # keep out_dir/base (tokenizer + pretrained tiny base) and only redo SFT
    measure_only: bool = False  # only re-measure the bundled model's empty-item rates
    seed: int = 0


def pretrain(model, tokenizer, texts: list[str], cfg: DemoConfig) -> None:
    """A short plain-LM run so the base knows some English before SFT, as a real base model does."""
    ids = [t for text in texts for t in tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]]
    n = cfg.pretrain_seq
    chunks = torch.tensor(ids[: len(ids) // n * n]).view(-1, n)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.pretrain_lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * s / cfg.pretrain_steps)))
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    bar = tqdm(range(cfg.pretrain_steps), desc="pretrain tiny base")
    for _ in bar:
        batch = chunks[torch.randint(len(chunks), (8,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()


def empty_rates(engine, examples: list[dict], n: int, seed: int) -> dict:
    """Over n sampled reviews: the share of aspects written as the empty marker, the share missing
    altogether, their sum (the parser's empty_rate), and the number of markers written."""
    out = {}
    picked = (examples * (n // max(len(examples), 1) + 1))[:n]
    for s in (0.0, 0.95):
        rates, markers, marker_aspects, missing, aspects = [], 0, 0, 0, 0
        gen = GenerationConfig(max_new_tokens=engine.config.max_new_tokens, suppression=s, seed=seed)
        for i in tqdm(range(0, n, 10), desc=f"sample reviews, suppression {s}"):
            batch = picked[i:i + 10]
            for schema in {e["schema"] for e in batch}:
                group = [e for e in batch if e["schema"] == schema]
                texts = [engine.fit(PaperRecord.from_json({"id": e["id"], **e["paper"]}).document, schema).text
                         for e in group]
                for review in engine.generate_batch(texts, schema, gen):
                    report = parse(review, schema).report
                    rates.append(report.empty_rate)
                    markers += review.count("<No related terms>")
                    marker_aspects += len(report.empty)
                    missing += len(report.missing)
                    aspects += len(report.criteria)
        out[str(s)] = {"reviews": len(rates), "aspects": aspects,
                       "marker_empty_rate": round(marker_aspects / aspects, 4),
                       "missing_rate": round(missing / aspects, 4),
                       "empty_or_missing_rate": round(sum(rates) / len(rates), 4), "markers_written": markers}
    return out


def main(argv: list[str] | None = None) -> None:
    args = cli_args(__doc__, "train/configs/demo.yaml").parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    cfg = load_config(DemoConfig, args.config, args.overrides)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    source = Path(cfg.source) if Path(cfg.source).exists() else FIXTURES
    work, out = Path(cfg.work_dir), Path(cfg.out_dir)
    data = prepare(PrepareConfig(source=str(source), out_dir=str(work / "data"), seed=cfg.seed,
                                 max_items=cfg.max_items, max_item_words=cfg.max_item_words))
    train_rows = read_examples(data["train"])
    if cfg.measure_only:
        return measure(cfg, data, out, len(train_rows), source)
    if not (cfg.reuse_base and (out / "base" / "config.json").exists()):
        corpus = [PaperRecord.from_json({"id": r["id"], **r["paper"]}).document.to_text() for r in train_rows[::2]]
        corpus += [r["review"] for r in train_rows]
        tokenizer = build_llama31_tokenizer(corpus, vocab_size=cfg.vocab_size)
        base = build_tiny_llama(tokenizer, seed=cfg.seed, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads,
                                kv_heads=cfg.kv_heads, intermediate=cfg.intermediate, max_positions=2048)
        pretrain(base, tokenizer, corpus, cfg)
        base.save_pretrained(out / "base")
        tokenizer.save_pretrained(out / "base")

    tc = from_dict(TrainConfig, {
        "base_model": str(out / "base"), "train_file": str(data["train"]), "eval_file": str(data["val"]),
        "output_dir": str(work / "sft"), "quantization": "none", "report_to": [], "seed": cfg.seed,
        "max_prompt_tokens": cfg.max_prompt_tokens, "max_response_tokens": cfg.max_response_tokens,
        "save_steps": 100, "eval_steps": 100, "warmup_steps": 0.05, "resume": False, **cfg.sft})
    final = train(tc)
    adapter = out / "adapter"
    adapter.mkdir(parents=True, exist_ok=True)
    for f in ("adapter_config.json", "adapter_model.safetensors"):
        (adapter / f).write_bytes((final / f).read_bytes())

    engine_yaml = {"base_model": "base", "adapter": "adapter", "max_prompt_tokens": cfg.max_prompt_tokens,
                   "max_new_tokens": cfg.max_response_tokens, "local_files_only": True}
    (out / "engine.yaml").write_text(yaml.safe_dump(engine_yaml, sort_keys=False))
    measure(cfg, data, out, len(train_rows), source)


def measure(cfg: DemoConfig, data: dict, out: Path, n_train: int, source: Path) -> None:
    adapter = out / "adapter"
    engine = load_engine(EngineConfig(base_model=str(out / "base"), adapter=str(adapter),
                                      max_prompt_tokens=cfg.max_prompt_tokens, max_new_tokens=cfg.max_response_tokens,
                                      local_files_only=True))
    held_out = read_examples(data["test"]) + read_examples(data["val"])
    metrics = {"source": str(source), "train_examples": n_train, "config": asdict(cfg),
               "empty_item_rate": empty_rates(engine, held_out, cfg.eval_reviews, cfg.seed)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics["empty_item_rate"], indent=2))


if __name__ == "__main__":
    main()
