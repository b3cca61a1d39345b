"""Stage 3: numbers, bar charts (matplotlib PNG) and a Markdown report that embeds them."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from reviewgpt.compare.evaluation.config import EvalConfig
from reviewgpt.compare.evaluation.stages import judgement_store, review_store
from reviewgpt.compare.evaluation.stats import AspectStats, MatchupStats, aspect_stats, matchup_stats, review_length


def compute(cfg: EvalConfig) -> tuple[list[MatchupStats], list[AspectStats]]:
    reviews = list(review_store(cfg))
    lengths = {(r["system"], r["schema"], r["id"]): review_length(r["review"]) for r in reviews}
    judgements = list(judgement_store(cfg))
    matchups = [matchup_stats(m.key, [j for j in judgements if j["matchup"] == m.key], lengths,
                              cfg.bootstrap_samples, cfg.seed) for m in cfg.matchups]
    aspects = []
    for spec in cfg.systems:
        for schema in sorted({r["schema"] for r in reviews if r["system"] == spec.name}):
            texts = [r["review"] for r in reviews if r["system"] == spec.name and r["schema"] == schema]
            aspects.append(aspect_stats(spec.name, schema, texts))
    return matchups, aspects


def _plots(out: Path, matchups: list[MatchupStats], aspects: list[AspectStats]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    if matchups:
        fig, ax = plt.subplots(figsize=(9, 0.6 * len(matchups) + 1.5))
        labels = [m.matchup for m in matchups]
        tot = [max(m.n, 1) for m in matchups]
        w = [m.wins / t for m, t in zip(matchups, tot)]
        t_ = [m.ties / t for m, t in zip(matchups, tot)]
        l_ = [m.losses / t for m, t in zip(matchups, tot)]
        ax.barh(labels, w, color="#2a9d8f", label="A wins")
        ax.barh(labels, t_, left=w, color="#bbbbbb", label="tie")
        ax.barh(labels, l_, left=[a + b for a, b in zip(w, t_)], color="#e76f51", label="B wins")
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of papers (both judge orders; disagreement = tie)")
        ax.legend(loc="lower right", fontsize=8)
        ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(out / "win_tie_loss.png", dpi=120)
        plt.close(fig)
        names.append("win_tie_loss.png")
    if aspects:
        fig, ax = plt.subplots(figsize=(9, 0.5 * len(aspects) + 1.5))
        labels = [f"{a.system} ({a.schema}-aspect)" for a in aspects]
        ax.barh(labels, [a.empty_rate for a in aspects], color="#264653")
        ax.set_xlabel("empty-item rate (aspects written as <No related terms> or missing)")
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(out / "empty_rate.png", dpi=120)
        plt.close(fig)
        names.append("empty_rate.png")
    return names


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}%"


def markdown(matchups: list[MatchupStats], aspects: list[AspectStats], plots: list[str], cfg: EvalConfig) -> str:
    lines = ["# Evaluation report", "",
             f"Papers: `{cfg.data}`; judge: `{cfg.judge_model}` (reference-guided, both orders; a win counts only "
             f"when both orders agree). 95% CIs: percentile bootstrap over papers, {cfg.bootstrap_samples} samples, "
             f"seed {cfg.seed}.", "", "## Pairwise results (A vs B)", "",
             "| matchup | n | A wins | ties | B wins | no verdict | A win rate (ties = 1/2) [95% CI] | "
             "length-controlled | order consistency | mean words A / B |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for m in matchups:
        lines.append(f"| {m.matchup} | {m.n} | {m.wins} | {m.ties} | {m.losses} | {m.no_verdict} | "
                     f"{_pct(m.win_rate)} [{_pct(m.win_rate_ci[0])}, {_pct(m.win_rate_ci[1])}] | "
                     f"{_pct(m.lc_win_rate)} | {_pct(m.order_consistency)} | {m.mean_len_a:.0f} / {m.mean_len_b:.0f} |")
    lines += ["", "## Empty items and items per aspect", "",
              "| system | schema | reviews | empty-item rate | mean variance of items per aspect | mean words |",
              "|---|---|---|---|---|---|"]
    for a in aspects:
        lines.append(f"| {a.system} | {a.schema}-aspect | {a.reviews} | {_pct(a.empty_rate)} | "
                     f"{a.items_var_mean:.3f} | {a.mean_words:.0f} |")
    for a in aspects:
        lines += ["", f"### {a.system}, {a.schema}-aspect", "", "| aspect | empty | mean items | variance |",
                  "|---|---|---|---|"]
        lines += [f"| {c} | {_pct(a.empty_by_aspect[c])} | {a.items_mean_by_aspect[c]:.2f} | "
                  f"{a.items_var_by_aspect[c]:.3f} |" for c in a.empty_by_aspect]
    lines += [""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def report(cfg: EvalConfig) -> Path:
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    matchups, aspects = compute(cfg)
    plots = _plots(out, matchups, aspects)
    (out / "results.json").write_text(json.dumps({"matchups": [asdict(m) for m in matchups],
                                                  "aspects": [asdict(a) for a in aspects]}, indent=2))
    path = out / "report.md"
    path.write_text(markdown(matchups, aspects, plots, cfg))
    return path
