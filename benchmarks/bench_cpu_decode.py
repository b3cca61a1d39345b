"""CPU decoding as the app runs it without a GPU: the bundled demo model, through `ReviewEngine.stream`.

    python -m benchmarks.bench_cpu_decode [--papers 3] [--threads N]

The demo model (assets/demo-model: a tiny Llama + LoRA, fp32, its engine.yaml: 2,048-token prompt
budget, 640 new tokens, schema guide on) writes a 7-aspect review of real PDFs read by the app's
parser (tests/fixtures/pdfs), timed as bench_decode times the GPU (the recipe's sampling: suppression
0.95, T 0.6, top-p 0.9): per paper, prefill s (a one-token generation) and decode tok/s over the rest
(ignore_eos, so every run writes the same number of tokens).
With the schema guide (a processor without a declared look-back) the engine decodes with eager
generate(), the CPU path of the README's "which path runs where" table. Prints one JSON row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

import torch

from reviewgpt.config import bundled_engine_config
from reviewgpt.generate.engine import load_engine

from .bench_decode import timed

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--papers", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from reviewgpt.ingest import extract

    engine = load_engine(bundled_engine_config(str(ROOT / "assets" / "demo-model")))
    pdfs = sorted((ROOT / "tests/fixtures/pdfs").glob("*.pdf"))[: args.papers]
    rows = []
    for pdf in pdfs:
        text = engine.prepare(extract(pdf), "7").text
        new = engine.config.max_new_tokens
        prefill, total = timed(engine, [text], 1), timed(engine, [text], new)  # as bench_decode times the GPU
        rows.append({"prompt_tokens": len(engine.prompt_ids(text, "7")), "prefill_s": prefill,
                     "decode_tok_s": (new - 1) / (total - prefill)})
    print(json.dumps({
        "config": f"demo model ({engine.info.precision}, LoRA {'merged' if engine.info.adapter_merged else 'unmerged'})", "batch": 1,
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "papers": [p.name for p in pdfs], "new_tokens": engine.config.max_new_tokens,
        "prompt_tokens": [r["prompt_tokens"] for r in rows],
        "prefill_s": round(statistics.median(r["prefill_s"] for r in rows), 3),
        "decode_tok_s": round(statistics.median(r["decode_tok_s"] for r in rows), 1),
        "step": "generate(), eager" if engine._fast is None else "engine loop", "notes": engine.info.notes}))


if __name__ == "__main__":
    main()
