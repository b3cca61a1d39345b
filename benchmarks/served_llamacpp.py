"""The demo model's GGUF on a real llama.cpp server against the in-process engine: empty-aspect rates.

    python -m train.prepare_data out_dir=outputs/measure/data               # the demo's split (held out: test, val)
    python -m train.export_gguf --bundled assets/demo-model --outtype f32 --out outputs/gguf
    python -m llama_cpp.server --model outputs/gguf/demo-model-f32.gguf --n_ctx 2688 --port 8089 &  # llama-cpp-python
    python -m benchmarks.served_llamacpp --base-url http://127.0.0.1:8089/v1 \\
        --data outputs/measure/data/test.jsonl outputs/measure/data/val.jsonl --papers 60 --samples 3

Both sides review the same held-out papers (7-aspect schema) from the same prepared text (`prepare()`
with the demo's tokenizer and 2,048-token budget), at the same settings: temperature 0.6, top-p 0.9,
640 new tokens, suppression s = 0 and s = 0.95, `--samples` seeds per paper. The in-process side is the
engine as eval loads the demo (fp32, adapter merged) without the schema guide, because a server has
none: both are the model alone. The served side is `ServedReviewer` with `server: llama.cpp`, exactly
what eval and the app send. Before sampling, every prompt as sent is tokenized by the server
(/extras/tokenize, llama-cpp-python's) and compared with the engine's ids: the GGUF's tokenizer and the
server's BOS must give the same tokens, or the comparison means nothing.

Writes `<out>.md` (the table, with paper-bootstrap 95% CIs of the llama.cpp - in-process difference) and
`<out>.jsonl` (one row per review: side, s, paper, seed, aspects, marker-empty, missing, words).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import platform
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx

from reviewgpt.config import GenerationConfig, bundled_engine_config
from reviewgpt.format.review_format import parse
from reviewgpt.format.schema import get_schema
from reviewgpt.generate.engine import load_engine
from reviewgpt.prepare.chat import encode_prompt
from reviewgpt.remote.served_reviewer import ServedConfig, ServedReviewer
from reviewgpt.training.data.prepare import example_document, read_examples
from train.gguf_converter import LLAMA_CPP_PYTHON

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo-model"
SCHEMA = "7"
STRENGTHS = (0.0, 0.95)
SIDES = ("in-process", "llama.cpp")
RATES = ("marker_empty", "missing", "empty_or_missing")


def held_out(files: list[str], n: int) -> list[dict]:
    rows = [r for f in files for r in read_examples(f) if r["schema"] == SCHEMA]
    papers = list({r["id"]: r for r in rows}.values())
    if len(papers) < n:
        raise SystemExit(f"{len(papers)} held-out papers in {files}, asked for {n}")
    return papers[:n]


def counts(review: str) -> dict:
    report = parse(review, SCHEMA).report
    return {"aspects": len(report.criteria), "marker_empty": len(report.empty), "missing": len(report.missing),
            "empty_or_missing": sum(1 for c in report.criteria if c.empty or not c.present),
            "words": len(review.split())}


def rate(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / sum(r["aspects"] for r in rows)


def bootstrap_diff(rows: list[dict], s: float, key: str, samples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile CI of rate(llama.cpp) - rate(in-process), resampling papers (both sides together)."""
    by = {side: {} for side in SIDES}
    for r in rows:
        if r["s"] == s:
            by[r["side"]].setdefault(r["paper"], []).append(r)
    papers = sorted(by[SIDES[0]])
    rng = random.Random(seed)
    diffs = []
    for _ in range(samples):
        pick = [rng.choice(papers) for _ in papers]
        a, b = ([x for p in pick for x in by[side][p]] for side in SIDES)
        diffs.append(rate(b, key) - rate(a, key))
    diffs.sort()
    return diffs[int(0.025 * samples)], diffs[int(0.975 * samples) - 1]


def check_tokens(served: ServedReviewer, texts: list[str]) -> int:
    """How many prompts the server tokenizes to exactly the engine's ids (its BOS included)."""
    root = served.config.base_url.rstrip("/").removesuffix("/v1")
    same = 0
    for text in texts:
        sent = served.prompt(text, SCHEMA)
        ids = httpx.post(f"{root}/extras/tokenize", json={"input": sent}, timeout=60).json()["tokens"]
        same += ids == encode_prompt(served.tokenizer, SCHEMA, text)
    return same


def table(rows: list[dict], meta: dict) -> str:
    lines = [f"# The demo model on llama.cpp vs in-process: empty-aspect rates ({meta['date']})", "",
             f"{meta['papers']} held-out papers, {SCHEMA}-aspect schema (aspects at each s: "
             f"{meta['aspects_per_cell']}); temperature {meta['temperature']}, top-p {meta['top_p']}, "
             f"{meta['max_new_tokens']} new tokens; no schema guide on either side. Server: {meta['server']}; "
             f"GGUF {meta['gguf']}. Prompts the server tokenized to the engine's ids: {meta['tokens_equal']}.", ""]
    for side in SIDES:
        lines.append(f"- {side}: `{meta[side + '_command']}` ({meta[side + '_seconds']} s on "
                     f"{meta[side + '_machine']}{', ' + meta['in_process_device'] if side == SIDES[0] else ''})")
    lines += [f"- table: `{meta['command']}`", "",
             "| s | side | reviews | marker-empty | missing | empty or missing | mean words |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for s in STRENGTHS:
        for side in SIDES:
            cell = [r for r in rows if r["s"] == s and r["side"] == side]
            words = sum(r["words"] for r in cell) / len(cell)
            lines.append(f"| {s} | {side} | {len(cell)} | " + " | ".join(f"{100 * rate(cell, k):.1f}%" for k in RATES)
                         + f" | {words:.0f} |")
    lines += ["", "llama.cpp - in-process, points (95% CI, papers resampled):", "",
              "| s | marker-empty | missing | empty or missing |", "| --- | --- | --- | --- |"]
    for s in STRENGTHS:
        cells = []
        for k in RATES:
            a = rate([r for r in rows if r["s"] == s and r["side"] == SIDES[0]], k)
            b = rate([r for r in rows if r["s"] == s and r["side"] == SIDES[1]], k)
            lo, hi = bootstrap_diff(rows, s, k)
            cells.append(f"{100 * (b - a):+.1f} ({100 * lo:+.1f} to {100 * hi:+.1f})")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def in_process_rows(papers: list[dict], args: argparse.Namespace) -> tuple[list[dict], dict]:
    """The engine as eval loads the demo (fp32, adapter merged), without the schema guide."""
    spec = bundled_engine_config(DEMO)
    engine = load_engine(replace(spec, precision="fp32", schema_guide=False, fast_decoding=False, warmup=False))
    texts = [engine.prepare(example_document(p), SCHEMA).text for p in papers]
    rows = []
    for s in STRENGTHS:
        for k in range(args.samples):
            gen = GenerationConfig(max_new_tokens=spec.max_new_tokens, suppression=s, seed=k)
            reviews = []
            for i in range(0, len(texts), args.batch):
                reviews += engine.generate_batch(texts[i:i + args.batch], SCHEMA, gen)
            rows += [{"side": SIDES[0], "s": s, "paper": p["id"], "seed": k, "input": text_sha(t), **counts(r)}
                     for p, t, r in zip(papers, texts, reviews)]
            print(f"in-process s={s} seed {k}", flush=True)
    return rows, {"in_process_device": str(engine.device)}


def served_rows(papers: list[dict], args: argparse.Namespace) -> tuple[list[dict], dict]:
    """ServedReviewer with the `server: llama.cpp` preset: what eval and the app send."""
    spec = bundled_engine_config(DEMO)
    served = ServedReviewer(ServedConfig(base_url=args.base_url, model=args.model, tokenizer=spec.base_model,
                                         server="llama.cpp", max_prompt_tokens=spec.max_prompt_tokens,
                                         max_new_tokens=spec.max_new_tokens, concurrency=1))
    texts = [served.prepare(example_document(p), SCHEMA).text for p in papers]
    tokens_equal = check_tokens(served, texts)
    print(f"prompts tokenized alike by the server: {tokens_equal}/{len(texts)}", flush=True)
    rows = []
    for s in STRENGTHS:
        for k in range(args.samples):
            gen = GenerationConfig(max_new_tokens=spec.max_new_tokens, suppression=s)
            for i, (p, t) in enumerate(zip(papers, texts)):
                r = served.generate(t, SCHEMA, replace(gen, seed=1000 * k + i))
                rows.append({"side": SIDES[1], "s": s, "paper": p["id"], "seed": 1000 * k + i, "input": text_sha(t),
                             **counts(r)})
            print(f"llama.cpp s={s} seed {k}", flush=True)
    return rows, {"tokens_equal": f"{tokens_equal}/{len(texts)}"}


def report(out: Path, command: str) -> str:
    """The table from both sides' rows (<out>.<side>.jsonl), which must have read the same inputs."""
    rows, meta = [], {}
    for side in SIDES:
        part = [json.loads(x) for x in out.with_suffix(f".{side}.jsonl").open()]
        meta.update(part[0]["meta"])
        rows += part[1:]
    inputs = {side: {(r["paper"], r["input"]) for r in rows if r["side"] == side} for side in SIDES}
    assert inputs[SIDES[0]] == inputs[SIDES[1]], "the two sides read different papers or texts"
    papers = {r["paper"] for r in rows}
    per_cell = {side: sum(r["aspects"] for r in rows if r["side"] == side and r["s"] == 0.0) for side in SIDES}
    gen = GenerationConfig()
    meta.update(date=datetime.date.today().isoformat(), papers=len(papers), temperature=gen.temperature,
                top_p=gen.top_p, max_new_tokens=bundled_engine_config(DEMO).max_new_tokens, command=command,
                aspects_per_cell=", ".join(f"{side} {n}" for side, n in per_cell.items()))
    out.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out.with_suffix(".md").write_text(table(rows, meta))
    return out.with_suffix(".md").read_text()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", choices=[*SIDES, "report"], required=True)
    p.add_argument("--base-url", help="llama.cpp: the server's OpenAI base URL (…/v1)")
    p.add_argument("--model", default="demo", help="the served model's name (llama-cpp-python serves any)")
    p.add_argument("--data", nargs="+", help="prepared JSONL of held-out papers")
    p.add_argument("--papers", type=int, default=40)
    p.add_argument("--samples", type=int, default=1, help="seeds per paper and setting")
    p.add_argument("--batch", type=int, default=16, help="in-process batch")
    p.add_argument("--gguf", default="outputs/gguf/demo-model-f32.gguf", help="for the record")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/llamacpp_served"))
    args = p.parse_args(argv)
    command = "python -m benchmarks.served_llamacpp " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.side == "report":
        print(report(args.out, command))
        return
    papers = held_out(args.data, args.papers)
    t0 = time.perf_counter()
    rows, meta = (in_process_rows if args.side == SIDES[0] else served_rows)(papers, args)
    meta.update({f"{args.side}_command": command, f"{args.side}_seconds": round(time.perf_counter() - t0),
                 f"{args.side}_machine": f"{platform.machine()} {platform.node()}"})
    if args.side == SIDES[1]:
        meta.update(server=f"llama-cpp-python {LLAMA_CPP_PYTHON} built from source (python -m llama_cpp.server), "
                           "the `server: llama.cpp` preset", gguf=args.gguf)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(f".{args.side}.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in [{"meta": meta}, *rows]))


if __name__ == "__main__":
    main()
