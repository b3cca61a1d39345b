"""Decode benchmark of the configurations the product ships, through the engine's public API.

    python -m benchmarks.bench_decode --out benchmarks/results/decode_h200.jsonl [--ablate] [--check]

Llama-3.1-8B shape with random weights and a random recipe-shaped LoRA adapter (random_llama8b.py),
loaded by the product's own `load_engine`; 11,137-token prompts (the recipe's budget), 1,000 new
tokens (ignore_eos), T 0.6, top-p 0.9, suppression 0.95; batch 1 through `stream` (the app), batch
8 through `generate_batch` (eval). One row per configuration: prefill s (a one-token generation),
decode tok/s ((N - 1) x batch tokens over the time beyond that), peak GiB, which step ran, and the
bandwidth limit: the bytes a step must read (every weight once, the K/V cache at the mean position)
over the device-to-device copy bandwidth measured here. `--ablate` reruns the shipped compiled
configurations with kernel choices off (EngineConfig fields: `--ablate few_row_kernels,split_kv_attention@8`
turns both off at batch 8); `--check` runs check_decode.check on each configuration's engine;
`--profile 65` lists the largest kernels of a decode step (a 65-token generation's kernel time less a
one-token generation's).
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from dataclasses import replace
from typing import Any

import torch

from reviewgpt.config import RECIPE_MAX_PROMPT_TOKENS, RECIPE_MAX_RESPONSE_TOKENS, EngineConfig, GenerationConfig
from reviewgpt.generate.decode_linears import route_decode_linears, unroute
from reviewgpt.generate.engine import ReviewEngine, load_engine

from .random_llama8b import build, build_adapter, corpus_texts

NEW_TOKENS = 1_000
# (configuration, where it ships, EngineConfig changes, batch)
CONFIGS: list[tuple[str, str, dict[str, Any], int]] = [
    ("NF4 + LoRA", "app on a GPU without ~20 GiB free (precision auto), or nf4", dict(precision="nf4"), 1),
    ("NF4 + LoRA", "eval, precision nf4", dict(precision="nf4"), 8),
    ("bf16 + LoRA merged", "app on a GPU (precision auto / bf16)", dict(precision="bf16"), 1),
    ("bf16 + LoRA merged", "eval on a GPU (recipe.yaml)", dict(precision="bf16"), 8),
    ("bf16 + LoRA merged, eager generate()", "ZeroGPU", dict(precision="bf16", fast_decoding=False), 1),
    ("bf16 + LoRA merged, generate(static)", "decoder: generate-static", dict(precision="bf16", decoder="generate-static"), 1),
    ("bf16 + LoRA unmerged", "merge_adapter: false", dict(precision="bf16", merge_adapter=False), 1),
    ("bf16 + LoRA unmerged", "merge_adapter: false", dict(precision="bf16", merge_adapter=False), 8),
]
KNOBS = ("split_kv_attention", "few_row_kernels")  # EngineConfig fields


def copy_bandwidth() -> float:
    """Bytes/s of a 4 GiB device-to-device copy (read + write), median of 10."""
    a = torch.empty(1 << 31, dtype=torch.bfloat16, device="cuda").normal_()
    b = torch.empty_like(a)
    times = []
    for _ in range(12):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        b.copy_(a)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return 2 * a.numel() * a.element_size() / sorted(times[2:])[len(times[2:]) // 2]


def step_bytes(engine: ReviewEngine, batch: int, position: int) -> int:
    """Bytes one decode step reads at least: every parameter and buffer once (NF4's packed codes and
    scales as stored), the K/V of `position` slots per row."""
    model = engine.model
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return weights + 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * 2 * position * batch


def which_step(engine: ReviewEngine, batch: int) -> str:
    if engine._fast is not None and engine._fast.aot and batch == 1:
        return engine._fast.step_forward or "ahead-of-time step"
    if not engine.info.fast_decoding:
        return "generate(), eager"
    if engine.config.decoder == "generate-static":
        return "generate(), static cache, compiled"
    dec = engine._fast if batch == 1 else engine._batch_decoder(batch)
    return f"compiled step: {dec.step_forward}"


def timed(engine: ReviewEngine, texts: list[str], n: int) -> float:
    gen = GenerationConfig(max_new_tokens=n, ignore_eos=True, seed=0)
    sync = torch.cuda.synchronize if engine.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    if len(texts) == 1:
        for _ in engine.stream(texts[0], "7", gen):
            pass
    else:
        engine.generate_batch(texts, "7", gen)
    sync()
    return time.perf_counter() - t0


def measure(engine: ReviewEngine, texts: list[str], new_tokens: int, bandwidth: float) -> dict[str, Any]:
    batch = len(texts)
    timed(engine, texts, 4)  # compiles this batch size's step
    torch.cuda.reset_peak_memory_stats()
    prefill = timed(engine, texts, 1)
    total = timed(engine, texts, new_tokens)
    prompt = len(engine.prompt_ids(texts[0], "7"))
    limit = batch * bandwidth / step_bytes(engine, batch, prompt + new_tokens // 2)
    return {"prefill_s": round(prefill, 3), "decode_tok_s": round((new_tokens - 1) * batch / (total - prefill), 1),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "step": which_step(engine, batch),
            "limit_tok_s": round(limit, 1), "prompt_tokens": prompt}


def kernel_profile(engine: ReviewEngine, texts: list[str], tokens: int, top: int = 12) -> list[dict[str, Any]]:
    """The GPU kernels of one decode step: CUDA time per kernel name of a `tokens`-token generation
    minus that of a one-token generation (the prefill), over tokens - 1 steps; the `top` largest."""
    def kernel_us(n: int) -> dict[str, float]:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            timed(engine, texts, n)
        return {e.key: e.device_time_total for e in prof.key_averages()}

    one, many = kernel_us(1), kernel_us(tokens)
    per_step = {k: (v - one.get(k, 0.0)) / (tokens - 1) for k, v in many.items()}
    total = sum(v for v in per_step.values() if v > 0)
    ranked = sorted(per_step.items(), key=lambda kv: -kv[1])[:top]
    return [{"kernel": k[:100], "us_per_step": round(v, 1), "share": round(v / total, 3)} for k, v in ranked]


def variant(engine: ReviewEngine, off: list[str]) -> ReviewEngine:
    """The same loaded model with these kernel choices off (a new engine: its decoders compile anew)."""
    from reviewgpt.generate import attention

    assert set(off) <= set(KNOBS), off
    if "few_row_kernels" in off:
        unroute(engine.model)
    if "split_kv_attention" in off:
        engine.model.set_attn_implementation(attention.NAME_SDPA)
    return ReviewEngine(engine.model, engine.tokenizer, engine.info, replace(engine.config, **dict.fromkeys(off, False)))


def restore(engine: ReviewEngine, off: list[str]) -> None:
    if "few_row_kernels" in off:
        route_decode_linears(engine.model, engine.config.one_row_kernel_layers)
    if "split_kv_attention" in off:
        engine.model.set_attn_implementation(engine.info.attn_implementation)  # what load_engine chose


def run(configs: list, out: str | None, ablate: list[str] = (), check_steps: int = 0, time_it: bool = True,
        new_tokens: int = NEW_TOKENS, checkpoint: str = "/tmp/llama8b-random", profile_tokens: int = 0
        ) -> list[dict[str, Any]]:
    from benchmarks.check_decode import check

    base = build(checkpoint)
    adapter = build_adapter(base, f"{checkpoint}-lora")
    papers = corpus_texts(8)  # each cut to the recipe's budget by the engine's tokenizer, below
    bandwidth = copy_bandwidth()
    print(f"{torch.cuda.get_device_name()}: copy bandwidth {bandwidth / 1e12:.2f} TB/s", flush=True)
    rows: list[dict[str, Any]] = []
    loaded: tuple[tuple, ReviewEngine] | None = None
    for name, ships, changes, batch in configs:
        cfg = EngineConfig(base_model=str(base), adapter=str(adapter), local_files_only=True,
                           max_prompt_tokens=RECIPE_MAX_PROMPT_TOKENS, max_new_tokens=RECIPE_MAX_RESPONSE_TOKENS + 50,
                           **changes)
        key = tuple(sorted(changes.items()))
        if loaded is None or loaded[0] != key:
            loaded = engine = eng = None  # the last model's weights, caches and graphs go before the next loads
            variants = []
            gc.collect()
            torch.cuda.empty_cache()
            t0 = time.perf_counter()
            try:
                loaded = (key, load_engine(cfg))
            except Exception as e:  # a configuration that cannot load is a row that says so
                rows.append({"config": name, "ships": ships, "batch": batch, "error": f"{type(e).__name__}: {e}"})
                print(json.dumps(rows[-1]), flush=True)
                continue
            print(f"loaded {name} in {time.perf_counter() - t0:.0f} s (warm-up included)", flush=True)
        engine = loaded[1]
        texts = [engine.prepare(t, "7").text for t in papers]
        variants: list[tuple[list[str], ReviewEngine | None]] = [([], engine)]
        if engine.info.fast_decoding and engine.config.decoder == "engine":
            variants += [(spec.split("@")[0].split(","), None) for spec in ablate if spec.endswith(f"@{batch}")]
        for off, eng in variants:
            eng = eng or variant(engine, off)
            texts_b = [texts[0]] if batch == 1 else texts[:batch]
            row = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "config": name, "ships": ships,
                   "precision": engine.info.precision, "batch": batch, "off": ",".join(off) or None,
                   "new_tokens": new_tokens, "copy_tb_s": round(bandwidth / 1e12, 3)}
            if time_it:
                try:
                    row.update(measure(eng, texts_b, new_tokens, bandwidth))
                except Exception as e:  # a configuration that fails is a row that says so, not the end of the run
                    row["error"] = f"{type(e).__name__}: {e}"
            if profile_tokens and not off:
                row["profile"] = kernel_profile(eng, texts_b, profile_tokens)
                for k in row["profile"]:
                    print(f"  {k['us_per_step']:9.1f} us {k['share']:6.1%}  {k['kernel']}", flush=True)
            if check_steps and not off:
                prompts = [eng.prompt_ids(t, "7") for t in texts_b]
                row["check"] = check(eng, prompts, steps=check_steps)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if out:
                with open(out, "a") as f:
                    f.write(json.dumps(row) + "\n")
            if off:
                restore(engine, off)
    print_table(rows)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print("\n| configuration | ships in | batch | off | prefill s | decode tok/s | limit tok/s | peak GiB | step | check |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r.get("check")
        check = f"{'ok' if c['ok'] else 'FAIL'} (agree {c['agree']}, max gap {c['max_gap_sd']} sd)" if c else ""
        print(f"| {r['config']} | {r['ships']} | {r['batch']} | {r.get('off') or ''} | {r.get('prefill_s', '')} | "
              f"{r.get('decode_tok_s', '')} | {r.get('limit_tok_s', '')} | {r.get('peak_gib', '')} | "
              f"{r.get('step', r.get('error', ''))} | {check} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="append one JSON row per configuration here")
    p.add_argument("--only", nargs="*", type=int, help="indices into CONFIGS (default: all)")
    p.add_argument("--ablate", nargs="*", default=[], metavar="KNOBS@BATCH",
                   help="rerun the compiled configurations of that batch with these EngineConfig knobs off")
    p.add_argument("--check", type=int, default=0, metavar="STEPS", help="also run check_decode for STEPS tokens")
    p.add_argument("--new-tokens", type=int, default=NEW_TOKENS)
    p.add_argument("--profile", type=int, default=0, metavar="TOKENS",
                   help="also profile the kernels of a TOKENS-token generation (per decode step, prefill taken out)")
    args = p.parse_args()
    configs = [CONFIGS[i] for i in args.only] if args.only else CONFIGS
    run(configs, args.out, ablate=args.ablate, check_steps=args.check, new_tokens=args.new_tokens,
        profile_tokens=args.profile)


if __name__ == "__main__":
    main()
