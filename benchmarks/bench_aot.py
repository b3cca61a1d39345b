"""ZeroGPU's decode path: the step compiled ahead of time, measured in a fresh process that only loads it.

    python -m benchmarks.bench_aot --out benchmarks/results/decode_h200.jsonl

1. `build` (its own process, as `python -m app.build_aot` would): the Llama-3.1-8B shape with random
   weights and the random recipe-shaped LoRA (random_llama8b.py), bf16 with the adapter merged, loaded
   as on ZeroGPU (fast_decoding off); its decode step exported and compiled into a package.
2. `measure` (a fresh process, as a ZeroGPU worker): load the model and the package (no compilation),
   stream one review: cold start = process start to the first streamed token; then bench_decode's
   measurement (11,137-token prompt, 1,000 new tokens, T 0.6, top-p 0.9, s 0.95), check_decode's
   comparison with the model's own forward, and eager generate() (ZeroGPU without a package) on the
   same loaded model for comparison (fewer tokens: it is slow).
3. `measure --cold-only` with REVIEWGPT_AOT_LOADER_TEST=always: the same worker start when the package is
   test-loaded in a child process at bind (a package the build did not test on this platform).
Each cold-start row breaks the package's load down (child_*: the test process; aoti_load, bind, graph).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace

T_START = time.time()  # before the heavy imports: the cold start counts them
ENV_AT_START = dict(os.environ)

import torch  # noqa: E402

from reviewgpt.config import RECIPE_MAX_PROMPT_TOKENS, RECIPE_MAX_RESPONSE_TOKENS, EngineConfig, GenerationConfig  # noqa: E402
from reviewgpt.generate.engine import ReviewEngine, load_engine  # noqa: E402

CHECKPOINT, AOT = "/tmp/llama8b-random", "/tmp/aot-packages"


def config() -> EngineConfig:
    return EngineConfig(base_model=CHECKPOINT, adapter=f"{CHECKPOINT}-lora", local_files_only=True, precision="bf16",
                        fast_decoding=False, aot_package=AOT, warmup=False, max_prompt_tokens=RECIPE_MAX_PROMPT_TOKENS,
                        max_new_tokens=RECIPE_MAX_RESPONSE_TOKENS + 50)


def build_step() -> dict:
    from benchmarks.random_llama8b import build, build_adapter
    from reviewgpt.generate import aot_step

    build_adapter(build(CHECKPOINT), f"{CHECKPOINT}-lora")
    engine = load_engine(config())
    out = aot_step.build(engine, AOT)
    changed = {k: v for k, v in os.environ.items() if ENV_AT_START.get(k) != v}
    print("environment set during the build:", changed, file=sys.stderr, flush=True)
    return json.loads((out / aot_step.KEY_FILE).read_text())


def measure_step(spawned_at: float, eager_tokens: int, cold_only: bool = False) -> list[dict]:
    from benchmarks.bench_decode import NEW_TOKENS, copy_bandwidth, measure
    from benchmarks.check_decode import check
    from benchmarks.random_llama8b import corpus_texts

    engine = load_engine(config())
    engine._fast.bind()  # what the first generation does, here in the main thread
    loaded = time.time()
    print("notes:", engine.info.notes, "| launch:", engine._fast.launch, flush=True)
    text = engine.prepare(corpus_texts(1)[0], "7").text
    first = None
    for _ in engine.stream(text, "7", GenerationConfig(max_new_tokens=2, ignore_eos=True)):
        first = first or time.time()
    if cold_only:  # the same worker start with the loader tested in a child process first
        return [{"config": "bf16 + LoRA merged, AOT step, package test-loaded at bind", "gpu": torch.cuda.get_device_name(),
                 "torch": torch.__version__, "cold_start_s": round(first - spawned_at, 1),
                 "load_s": round(loaded - spawned_at, 1), "package_load_s": round(engine._fast.load_s, 2),
                 **engine._fast.load_parts}]
    bandwidth = copy_bandwidth()
    base = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "precision": "bf16", "batch": 1,
            "new_tokens": NEW_TOKENS, "copy_tb_s": round(bandwidth / 1e12, 3)}
    aot = {**base, "config": "bf16 + LoRA merged, AOT step", "ships": "ZeroGPU (app, a package built ahead)",
           "off": None, "cold_start_s": round(first - spawned_at, 1), "load_s": round(loaded - spawned_at, 1),
           "package_load_s": round(engine._fast.load_s, 2), "launch": engine._fast.launch, **engine._fast.load_parts, **measure(engine, [text], NEW_TOKENS, bandwidth)}
    aot["check"] = check(engine, [engine.prompt_ids(text, "7")], steps=32)
    print(json.dumps(aot), flush=True)  # now: the eager row below is slow
    eager_engine = ReviewEngine(engine.model, engine.tokenizer, engine.info, replace(engine.config, aot_package=None))
    eager = {**base, "config": "bf16 + LoRA merged, eager generate()", "ships": "ZeroGPU without a package",
             "off": None, **measure(eager_engine, [text], eager_tokens, bandwidth), "new_tokens": eager_tokens}
    return [eager]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stage", nargs="?", choices=["build", "measure"], help="one stage in this process (internal)")
    p.add_argument("--spawned-at", type=float, default=0.0)
    p.add_argument("--eager-tokens", type=int, default=200)
    p.add_argument("--cold-only", action="store_true", help="measure stage: only the cold start (internal)")
    p.add_argument("--out", default=None, help="append the rows here")
    args = p.parse_args()
    if args.stage == "build":
        print(json.dumps(build_step()), flush=True)
        return
    if args.stage == "measure":
        for row in measure_step(args.spawned_at, args.eager_tokens, args.cold_only):
            print(json.dumps(row), flush=True)
        return
    built = subprocess.run([sys.executable, "-m", "benchmarks.bench_aot", "build"], check=True, stdout=subprocess.PIPE,
                           text=True)
    key = json.loads(built.stdout.strip().splitlines()[-1])
    print(f"package built: export {key['export_s']} s, compile {key['compile_s']} s, {key['device_name']}", flush=True)
    spawned = time.time()
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_aot", "measure", "--spawned-at", str(spawned),
                           "--eager-tokens", str(args.eager_tokens)], stdout=subprocess.PIPE, text=True)
    print(*[line for line in done.stdout.splitlines() if not line.startswith("{")], sep="\n", flush=True)
    done.check_returncode()
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    rows[0].update(export_s=key["export_s"], compile_s=key["compile_s"], tested_at_build=bool(key["loads_on"]))
    # the worker start as before the build recorded its loader test: a child process loads the package first
    spawned = time.time()
    tested = subprocess.run([sys.executable, "-m", "benchmarks.bench_aot", "measure", "--cold-only", "--spawned-at",
                             str(spawned)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "REVIEWGPT_AOT_LOADER_TEST": "always"})
    rows += [json.loads(line) for line in tested.stdout.splitlines() if line.startswith("{")]
    for row in rows:
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
    if tested.returncode:  # after the rows above are kept
        sys.exit(f"the worker start with the child test failed (exit {tested.returncode}): its row is missing")


if __name__ == "__main__":
    main()
