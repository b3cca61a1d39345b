"""Build the demo-scale reviewer bundled in assets/demo-model (the app's model on a machine without a GPU).

    python -m train.build_demo                                     # = --config train/configs/demo.yaml
    python -m train.build_demo --num_train_epochs 2 --pretrain_steps 500    # any key of the four below
    python -m train.build_demo --measure_only true                 # re-measure the bundled model only

The same pipeline as the 8B recipe, scaled down: extractive targets from the ICLR 2017 papers
(reviewgpt.training.data.prepare) -> a Llama 3.1-style tokenizer built on that text -> a tiny Llama
pretrained as a plain LM (the stand-in for the base model) -> LoRA SFT with TRL through the recipe's own
code (reviewgpt.training.sft.train) -> sampled reviews of held-out papers at the app's default
temperature, suppression 0 and the recipe's, measured into metrics.json. It shows the pipeline and the
suppression slider working, not review quality. Runs on a GPU when there is one, else on the CPU.

Configuration: TRL's parser over (DemoArguments, ReviewDataArguments, SFTConfig, ModelConfig); the
builder itself sets the paths it owns (train/eval files, model_name_or_path = out_dir/base).
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

from reviewgpt.config import RECIPE_SUPPRESSION, GenerationConfig, bundled_engine_config
from reviewgpt.format.review_format import parse
from reviewgpt.format.schema import EMPTY_MARKER, get_schema
from reviewgpt.generate.engine import load_engine
from reviewgpt.testing.local_tokenizer import build_llama31_tokenizer
from reviewgpt.testing.tiny_model import build_tiny_llama
from reviewgpt.training.data.aggregate import ExtractiveAggregator
from reviewgpt.training.data.prepare import PrepareConfig, example_document, prepare, read_examples
from reviewgpt.training.sft import non_default_values, parse_args, train

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "iclr2017"
DEFAULT_CONFIG = "train/configs/demo.yaml"


@dataclass
class DemoArguments:
    """The demo build's own settings (the SFT stage takes SFTConfig / ModelConfig keys)."""

    source: str = field(default="../shared/data/iclr2017", metadata={
        "help": "ICLR layout folder or JSONL of papers with human reviews; tests/fixtures/iclr2017 when absent."})
    out_dir: str = field(default="assets/demo-model", metadata={"help": "Where base/, adapter/, engine.yaml go."})
    work_dir: str = field(default="outputs/demo", metadata={"help": "Prepared data and SFT checkpoints."})
    max_items: int = field(default=2, metadata={"help": "Extractive targets: items per aspect at most."})
    max_item_words: int = field(default=20, metadata={"help": "Extractive targets: longer sentences are skipped."})
    target_variants: int = field(default=1, metadata={
        "help": "Extractive targets per training paper and schema: the human reviews read in other orders "
                "give other sentences under each aspect, so SFT sees the review format more often without "
                "repeating one target (identical targets are kept once)."})
    schema_guide: bool = field(default=True, metadata={
        "help": "The app decodes the demo model with the schema guide (engine.yaml): each aspect header once, "
                "in order. The rates are measured with and without it."})
    vocab_size: int = 4096
    hidden: int = 256
    layers: int = 4
    heads: int = 8
    kv_heads: int = 2
    intermediate: int = 768
    pretrain_steps: int = field(default=2000, metadata={"help": "Plain-LM steps for the tiny base."})
    pretrain_seq: int = field(default=2688, metadata={
        "help": "Pretraining window: at least max_prompt_tokens + max_response_tokens, so the review's "
                "positions are ones the base has seen."})
    pretrain_batch: int = 16
    pretrain_lr: float = 2e-3
    save_dtype: str = field(default="bfloat16", metadata={"help": "dtype of the saved base weights (size in git)."})
    eval_papers: int = field(default=50, metadata={"help": "Held-out papers sampled per schema and suppression."})
    eval_batch: int = 50
    timing_reviews: int = field(default=3, metadata={"help": "Full reviews timed on the CPU with cpu_threads."})
    cpu_threads: int = 2
    reuse_base: bool = field(default=False, metadata={"help": "Keep out_dir/base and only redo the SFT."})
    measure_only: bool = field(default=False, metadata={"help": "Only re-measure the bundled model."})


def pretrain(model, tokenizer, texts: list[str], demo: DemoArguments, seed: int) -> list[float]:
    """A plain-LM run so the base knows the corpus's English before SFT, as a real base model does."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).train()
    eos = tokenizer.eos_token_id
    ids = [t for text in texts for t in tokenizer(text, add_special_tokens=False)["input_ids"] + [eos]]
    n = demo.pretrain_seq
    chunks = torch.tensor(ids[: len(ids) // n * n]).view(-1, n)
    opt = torch.optim.AdamW(model.parameters(), lr=demo.pretrain_lr, weight_decay=0.01, betas=(0.9, 0.95))
    warm = max(1, demo.pretrain_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / demo.pretrain_steps))))
    gen = torch.Generator().manual_seed(seed)
    losses = []
    bar = tqdm(range(demo.pretrain_steps), desc=f"pretrain tiny base ({device})")
    for _ in bar:
        batch = chunks[torch.randint(len(chunks), (demo.pretrain_batch,), generator=gen)].to(device)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.to("cpu").eval()
    return losses


def add_target_variants(train_file: Path, demo: DemoArguments, seed: int) -> Path:
    """train.jsonl plus, per paper and schema, up to `target_variants - 1` more extractive targets made
    from the same human reviews read in other orders. Written beside it; held-out splits are untouched."""
    if demo.target_variants <= 1:
        return train_file
    rows = read_examples(train_file)
    rng = random.Random(seed)
    aggs: dict[str, ExtractiveAggregator] = {}
    out = []
    for row in rows:
        agg = aggs.setdefault(row["schema"], ExtractiveAggregator(row["schema"], demo.max_items, demo.max_item_words))
        seen = {row["review"]}
        out.append(row)
        for _ in range(4 * demo.target_variants):  # a few tries: some orders give the same target
            if len(seen) >= demo.target_variants:
                break
            reviews = rng.sample(row["human_reviews"], len(row["human_reviews"]))
            text = agg.aggregate(row["id"], reviews).to_json()["text"]
            if text not in seen:
                seen.add(text)
                out.append({**row, "review": text})
    path = train_file.with_name(f"train_x{demo.target_variants}.jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in out))
    logging.warning("SFT targets: %d examples from %d (target_variants=%d)", len(out), len(rows), demo.target_variants)
    return path


def review_stats(reviews: list[str], schema: str) -> dict:
    """Over sampled reviews: every header written in order, aspects with items / the marker / missing."""
    crit = len(get_schema(schema).criteria)
    reports = [parse(r, schema).report for r in reviews]
    aspects = len(reports) * crit
    return {
        "reviews": len(reports),
        "all_headers_in_order": round(sum(not r.missing and r.in_order for r in reports) / len(reports), 4),
        "aspects_with_items": round(sum(c.item_count > 0 for r in reports for c in r.criteria) / aspects, 4),
        "marker_empty_rate": round(sum(len(r.empty) for r in reports) / aspects, 4),
        "missing_rate": round(sum(len(r.missing) for r in reports) / aspects, 4),
        "empty_or_missing_rate": round(sum(r.empty_rate for r in reports) / len(reports), 4),
        "markers_written": sum(r.count(EMPTY_MARKER) for r in reviews),
    }


def held_out_papers(data: dict[str, Path], n: int) -> list[dict]:
    rows = read_examples(data["test"]) + read_examples(data["val"])
    papers = list({r["id"]: r for r in rows}.values())
    if len(papers) < n:
        logging.warning("only %d held-out papers (asked for %d)", len(papers), n)
    return papers[:n]


def load_demo_engine(out: Path):
    """The model as the app loads it from engine.yaml (fp32 on the CPU)."""
    return load_engine(replace(bundled_engine_config(out), precision="fp32", fast_decoding=False, warmup=False))


def sample_rates(engine, papers: list[dict], demo: DemoArguments, seed: int) -> dict:
    """Sample reviews of held-out papers, both schemas, suppression 0 and the recipe's, at the app's default
    temperature, decoded as the app does (schema guide as in engine.yaml) and, if that uses the guide, also
    without it (the model alone). Same fp32 weights as the app; moved to the build's GPU, if any, for speed."""
    if torch.cuda.is_available():
        engine.model.to("cuda")
        engine.device = torch.device("cuda")
    temperature = GenerationConfig().temperature  # the app's default
    shipped = engine.config.schema_guide
    rates: dict = {"held_out_papers": len(papers), "temperature": temperature, "device": str(engine.device),
                   "schema_guide": shipped}
    prompt_tokens = []
    for schema in ("7", "4"):
        texts = []
        for p in papers:
            fitted = engine.prepare(example_document(p), schema)
            texts.append(fitted.text)
            prompt_tokens.append(fitted.budget.prompt_tokens)
        passes = [(shipped, "")]  # as the app runs it; then, if that is guided, the model alone
        if shipped:
            passes.append((False, ", model alone (no schema guide)"))
        for guided, suffix in passes:
            engine.config.schema_guide = guided
            for s in (0.0, RECIPE_SUPPRESSION):
                gen = GenerationConfig(max_new_tokens=engine.config.max_new_tokens, temperature=temperature,
                                       suppression=s, seed=seed)
                name = f"{schema}-aspect, s={s}{suffix}"
                reviews = []
                for i in tqdm(range(0, len(texts), demo.eval_batch), desc=f"sample {name}"):
                    reviews += engine.generate_batch(texts[i:i + demo.eval_batch], schema, gen)
                rates[name] = review_stats(reviews, schema)
    engine.config.schema_guide = shipped
    rates["prompt_tokens"] = {"min": min(prompt_tokens), "max": max(prompt_tokens),
                              "mean": round(sum(prompt_tokens) / len(prompt_tokens))}
    engine.model.to("cpu")
    engine.device = torch.device("cpu")
    return rates


def time_reviews(engine, papers: list[dict], demo: DemoArguments, seed: int) -> dict:
    """Wall time of full 7-aspect reviews (app default sampling) on `cpu_threads` CPU threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(demo.cpu_threads)
    rows = []
    try:
        for p in papers[: demo.timing_reviews]:
            text = engine.prepare(example_document(p), "7").text
            prompt = len(engine.prompt_ids(text, "7"))
            t0 = time.perf_counter()
            review = engine.generate(text, "7", GenerationConfig(max_new_tokens=engine.config.max_new_tokens, seed=seed))
            rows.append({"seconds": round(time.perf_counter() - t0, 2), "prompt_tokens": prompt,
                         "new_tokens": len(engine.tokenizer(review, add_special_tokens=False)["input_ids"]),
                         "all_headers": not parse(review, "7").report.missing})
    finally:
        torch.set_num_threads(threads)
    return {"threads": demo.cpu_threads, "cpu": platform.processor() or platform.machine(),
            "load_average": [round(x, 2) for x in os.getloadavg()],  # other work sharing the cores slows this
            "max_seconds": max(r["seconds"] for r in rows), "reviews": rows}


def measure(demo: DemoArguments, data: dict[str, Path], seed: int, metrics: dict) -> dict:
    engine = load_demo_engine(Path(demo.out_dir))
    papers = held_out_papers(data, max(demo.eval_papers, demo.timing_reviews))
    if demo.eval_papers:
        metrics["rates"] = sample_rates(engine, papers[: demo.eval_papers], demo, seed)
    if demo.timing_reviews:
        metrics["cpu_review_timing"] = time_reviews(engine, papers, demo, seed)
    return metrics


def write_engine_yaml(out: Path, data_args, demo: DemoArguments) -> None:
    """How the app loads the model (reviewgpt.config.bundled_engine_config reads it)."""
    spec = {"base_model": "base", "adapter": "adapter", "max_prompt_tokens": data_args.max_prompt_tokens,
            "max_new_tokens": data_args.max_response_tokens, "schema_guide": demo.schema_guide}
    (out / "engine.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def size_mb(out: Path) -> float:
    return round(sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20, 2)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--config" not in argv and not {"-h", "--help"} & set(argv):
        argv = ["--config", DEFAULT_CONFIG, *argv]
    if not torch.cuda.is_available() and "--use_cpu" not in argv:
        argv += ["--use_cpu", "true"] + ([] if "--bf16" in argv else ["--bf16", "false"])  # no GPU: the CPU, fp32
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    demo, data_args, training, model_args = parse_args(argv, extra=(DemoArguments,), prog="python -m train.build_demo")
    random.seed(training.seed)
    torch.manual_seed(training.seed)
    source = Path(demo.source) if Path(demo.source).exists() else FIXTURES
    work, out = Path(demo.work_dir), Path(demo.out_dir)
    data = prepare(PrepareConfig(source=str(source), out_dir=str(work / "data"), seed=training.seed,
                                 schemas=list(data_args.schemas), max_items=demo.max_items,
                                 max_item_words=demo.max_item_words))
    metrics_file = out / "metrics.json"
    if demo.measure_only:
        metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
        metrics = measure(demo, data, training.seed, metrics)  # eval_papers 0: timing only, rates kept
        metrics_file.write_text(json.dumps(metrics, indent=2))
        print(json.dumps({k: metrics.get(k) for k in ("rates", "cpu_review_timing")}, indent=2))
        return

    t_start = time.perf_counter()
    train_rows = read_examples(data["train"])
    build: dict = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}
    if not (demo.reuse_base and (out / "base" / "config.json").exists()):
        corpus = [example_document(r).to_text()
                  for r in {r["id"]: r for r in train_rows}.values()]
        corpus += [r["review"] for r in train_rows]
        tokenizer = build_llama31_tokenizer(corpus, vocab_size=demo.vocab_size)
        base = build_tiny_llama(tokenizer, seed=training.seed, hidden=demo.hidden, layers=demo.layers,
                                heads=demo.heads, kv_heads=demo.kv_heads, intermediate=demo.intermediate,
                                max_positions=data_args.max_prompt_tokens + data_args.max_response_tokens)
        t0 = time.perf_counter()
        losses = pretrain(base, tokenizer, corpus, demo, training.seed)
        build["pretrain"] = {"seconds": round(time.perf_counter() - t0, 1), "steps": demo.pretrain_steps,
                             "loss_first": round(losses[0], 3), "loss_last": round(sum(losses[-20:]) / len(losses[-20:]), 3),
                             "parameters": sum(p.numel() for p in base.parameters())}
        if (out / "base").exists():
            shutil.rmtree(out / "base")
        base.to(getattr(torch, demo.save_dtype)).save_pretrained(out / "base")
        tokenizer.save_pretrained(out / "base")

    # The SFT stage: the recipe's own code; the builder owns these paths.
    training.output_dir = str(work / "sft")  # the builder's, like the data paths: two builds never share one
    sft_dir = Path(training.output_dir)
    if sft_dir.exists():
        shutil.rmtree(sft_dir)  # a fresh build, never a resume of an older one
    sft_train = add_target_variants(data["train"], demo, training.seed)
    data_args.train_file, data_args.eval_file = str(sft_train), str(data["val"])
    model_args.model_name_or_path = str(out / "base")
    sft_config = non_default_values(data_args, training, model_args)
    t0 = time.perf_counter()
    final = train(data_args, training, model_args)
    state = json.loads((sorted(sft_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
                        / "trainer_state.json").read_text())
    train_losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    eval_losses = [h["eval_loss"] for h in state["log_history"] if "eval_loss" in h]
    build["sft"] = {"seconds": round(time.perf_counter() - t0, 1), "steps": state["global_step"],
                    "loss_first": train_losses[0] if train_losses else None,
                    "loss_last": train_losses[-1] if train_losses else None,
                    "eval_loss_last": eval_losses[-1] if eval_losses else None}
    adapter = out / "adapter"
    adapter.mkdir(parents=True, exist_ok=True)
    for f in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copyfile(final / f, adapter / f)
    write_engine_yaml(out, data_args, demo)
    build["total_seconds"] = round(time.perf_counter() - t_start, 1)
    metrics = {"source": str(source), "train_examples": len(train_rows), "sft_examples": len(read_examples(sft_train)), "size_mb": size_mb(out), "build": build,
               "config": {**asdict(demo), **sft_config}}
    metrics_file.write_text(json.dumps(metrics, indent=2))  # written before measuring: a build is never lost
    metrics = measure(demo, data, training.seed, metrics)
    metrics_file.write_text(json.dumps(metrics, indent=2))
    print(json.dumps({k: metrics.get(k) for k in ("size_mb", "build", "rates", "cpu_review_timing")}, indent=2))


if __name__ == "__main__":
    main()
