"""Measure suppression as a server applies it (static `logit_bias` on the marker-start tokens) against
the in-process processor, on the bundled demo model.

    python -m eval.measure_logit_bias --data outputs/measure/data/test.jsonl outputs/measure/data/val.jsonl

Two measurements:
1. Sampling (as the app samples: temperature 0.6, top-p 0.9): reviews of the held-out papers under
   no suppression, the processor and the static bias at s = 0.95 and s = 1; markers written, how
   many of them began with a bare "<" token, and the parser's empty / missing rates.
2. Exact: on the reviews written without suppression, at every position the probability that the
   marker is started there (directly by a start token, or by a bare "<" followed by its
   continuation into the marker), under each variant, from the model's raw (T = 1) distributions.
   The ratio to the unsuppressed probability is the suppression each variant actually achieves.

The static bias and the processor are the project's own (`logit_bias_processor(suppression_logit_bias)`
adds exactly what a server adds; `SequenceSuppressionProcessor` is what ReviewEngine runs).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

from reviewgpt.format.review_format import parse
from reviewgpt.format.schema import EMPTY_MARKER
from reviewgpt.generate.suppression import SequenceSuppressionProcessor, _marker_token_sets
from reviewgpt.prepare.chat import encode_prompt, end_token_ids
from reviewgpt.prepare.model_input import prepare
from reviewgpt.remote.served_reviewer import logit_bias_processor, suppression_logit_bias
from reviewgpt.training.data.prepare import example_document, read_examples

ROOT = Path(__file__).resolve().parents[1]


def load_demo(device: str):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    demo = ROOT / "assets" / "demo-model"
    spec = yaml.safe_load((demo / "engine.yaml").read_text())
    tok = AutoTokenizer.from_pretrained(demo / spec["base_model"])
    model = AutoModelForCausalLM.from_pretrained(demo / spec["base_model"], dtype=torch.float32)
    model = PeftModel.from_pretrained(model, demo / spec["adapter"]).merge_and_unload().to(device).eval()
    return model, tok, spec


def variants(tok, s: float) -> dict:
    return {f"processor {s}": SequenceSuppressionProcessor(tok, s),
            f"logit_bias {s}": logit_bias_processor(suppression_logit_bias(tok, s))}


def sample(model, tok, prompts, procs, max_new: int, seed: int, batch: int, device: str):
    """Left-padded batched sampling; returns the generated id lists."""
    pad = tok.pad_token_id if tok.pad_token_id is not None else end_token_ids(tok)[0]
    outs = []
    torch.manual_seed(seed)
    for i in range(0, len(prompts), batch):
        group = prompts[i:i + batch]
        width = max(len(p) for p in group)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in group], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in group], device=device)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new, do_sample=True,
                                 temperature=0.6, top_p=0.9, top_k=None, pad_token_id=pad,
                                 eos_token_id=end_token_ids(tok), logits_processor=procs)
        for row in out[:, width:].tolist():
            end = next((k for k, t in enumerate(row) if t in end_token_ids(tok) or t == pad), len(row))
            outs.append(row[:end])
    return outs


def marker_starts(tok, ids: list[int]) -> list[str]:
    """For each marker written: the text of the token where it began."""
    texts = [tok.decode([t]) for t in ids]
    full, offsets, pos = "", [], 0
    for t in texts:
        offsets.append(pos)
        pos += len(t)
        full += t
    found, start = [], 0
    while (k := full.find(EMPTY_MARKER, start)) >= 0:
        j = max(i for i, o in enumerate(offsets) if o <= k)
        found.append(texts[j])
        start = k + 1
    return found


def sampling_table(model, tok, prompts, schemas, args) -> dict:
    settings = {"none (s = 0)": []}
    for s in (0.95, 1.0):
        settings.update({k: [v] for k, v in variants(tok, s).items()})
    table, samples0 = {}, None
    for name, procs in settings.items():
        t0 = time.perf_counter()
        outs = sample(model, tok, prompts, procs, args.max_new_tokens, args.seed, args.batch, args.device)
        reviews = [tok.decode(o, skip_special_tokens=True) for o in outs]
        reports = [parse(r, sch).report for r, sch in zip(reviews, schemas)]
        aspects = sum(len(r.criteria) for r in reports)
        starts = [s for o in outs for s in marker_starts(tok, o)]
        table[name] = {
            "reviews": len(reviews), "aspects": aspects, "markers_written": len(starts),
            "markers_begun_with_bare_lt": sum(s.strip() == "<" for s in starts),
            "marker_empty_rate": round(sum(len(r.empty) for r in reports) / aspects, 4),
            "missing_rate": round(sum(len(r.missing) for r in reports) / aspects, 4),
            "empty_or_missing_rate": round(sum(r.empty_rate for r in reports) / len(reports), 4),
            "seconds": round(time.perf_counter() - t0, 1)}
        print(name, table[name], flush=True)
        if samples0 is None:
            samples0 = outs
    return table, samples0


@torch.inference_mode()
def exact_table(model, tok, prompts, samples0, args) -> dict:
    """Marker-start probability per position under each variant (raw T = 1 distributions)."""
    sets = _marker_token_sets(tok, EMPTY_MARKER)
    start = torch.tensor(sets["start"], device=args.device)
    after_lt = torch.tensor(sets["after_lt"], device=args.device)
    lts = sets["lt_bare"] + sets["lt_ws"]
    ws_end = set(sets["ws_end"])
    names = ["none"] + [f"{kind} {s}" for s in (0.95, 1.0) for kind in ("processor", "logit_bias")]
    procs = {"none": None}
    for s in (0.95, 1.0):
        procs.update(variants(tok, s))
    total = {n: 0.0 for n in names}
    via_lt = {n: 0.0 for n in names}
    positions = 0
    for prompt, gen in tqdm(list(zip(prompts, samples0))[: args.exact_reviews], desc="exact probabilities"):
        seq = prompt + gen
        ids = torch.tensor([seq], device=args.device)
        logits = model(input_ids=ids).logits[0].float()  # logits[t] predicts token t+1
        n0 = len(prompt)
        for t in range(n0 - 1, len(seq) - 1):  # predicting generated token t+1
            ctx = ids[:, : t + 1]
            row = logits[t][None]
            prev_ws = seq[t] in ws_end
            # step 2 distributions after each "<" that counts as a marker start here
            cont_rows = {}
            for lt in lts:
                if lt in sets["lt_bare"] and not prev_ws:
                    continue
                cont_rows[lt] = None
            if cont_rows:
                ext = torch.cat([ids[:, : t + 1].repeat(len(cont_rows), 1),
                                 torch.tensor(list(cont_rows), device=args.device)[:, None]], dim=1)
                l2 = model(input_ids=ext).logits[:, -1].float()
                for k, lt in enumerate(cont_rows):
                    cont_rows[lt] = (ext[k:k + 1], l2[k:k + 1])
            for n in names:
                p = procs[n]
                q1 = torch.softmax(p(ctx, row.clone()) if p else row, dim=-1)[0]
                direct = float(q1[start].sum())
                path = 0.0
                for lt, (ext_ids, l2) in cont_rows.items():
                    q2 = torch.softmax(p(ext_ids, l2.clone()) if p else l2, dim=-1)[0]
                    path += float(q1[lt]) * float(q2[after_lt].sum())
                total[n] += direct + path
                via_lt[n] += path
            positions += 1
    base = total["none"]
    return {"positions": positions, "reviews": min(args.exact_reviews, len(samples0)),
            "marker_start_probability_sum": {n: total[n] for n in names},
            "via_bare_lt_sum": {n: via_lt[n] for n in names},
            "achieved_suppression": {n: (1 - total[n] / base) if base else float("nan") for n in names}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", required=True, help="prepared JSONL files (held-out papers)")
    p.add_argument("--samples-per-example", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the demo's engine.yaml")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--exact-reviews", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default="outputs/measure/logit_bias.json")
    args = p.parse_args(argv)
    model, tok, spec = load_demo(args.device)
    args.max_new_tokens = args.max_new_tokens or spec["max_new_tokens"]
    exs = [e for f in args.data for e in read_examples(f)]
    prompts, schemas = [], []
    for e in exs:
        doc = example_document(e)
        text = prepare(doc, e["schema"], tok, spec["max_prompt_tokens"]).text
        prompts += [encode_prompt(tok, e["schema"], text)] * args.samples_per_example
        schemas += [e["schema"]] * args.samples_per_example
    sampled, samples0 = sampling_table(model, tok, prompts, schemas, args)
    exact = exact_table(model, tok, prompts, samples0, args)
    result = {"examples": len(exs), "samples_per_example": args.samples_per_example,
              "max_new_tokens": args.max_new_tokens, "device": args.device,
              "marker_start_tokens": len(_marker_token_sets(tok, EMPTY_MARKER)["start"]),
              "sampling": sampled, "exact": exact}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(exact, indent=2))


if __name__ == "__main__":
    main()
