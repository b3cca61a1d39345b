"""Stage 3: numbers, bar charts (matplotlib PNG) and a Markdown report that embeds them.

Only results of the current configuration count: the report recomputes every review and judgement
fingerprint from the config and uses exactly the rows with those keys (older rows in the files, from
other settings, are counted and left out), and lists the configuration each number comes from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reviewgpt.compare.evaluation.config import EvalConfig
from reviewgpt.compare.evaluation.fingerprint import short
from reviewgpt.compare.evaluation.grounding import GroundingStats, grounding_stats
from reviewgpt.compare.evaluation.inputs import papers, prepared_inputs
from reviewgpt.compare.evaluation.stages import (current_pairs, judge_config, judgement_store, review_key,
                                                 review_store, system_configs)
from reviewgpt.compare.evaluation.stats import (UNSTABLE_CI_WIDTH, AspectStats, CutStats, MatchupStats, aspect_stats,
                                                cut_stats, matchup_stats, review_length)
from reviewgpt.training.data.prepare import example_document


@dataclass
class Results:
    matchups: list[MatchupStats]
    aspects: list[AspectStats]
    cuts: list[CutStats]
    configs: list[dict[str, Any]]  # one per (system, schema): name, schema, key, settings, identity
    judges: dict[str, dict[str, Any]]  # schema -> judge model and prompt hash
    matchup_configs: dict[str, dict[str, str]]  # matchup -> config keys of A, B and the judge
    missing: dict[str, int] = field(default_factory=dict)  # matchup -> papers without a current verdict
    stale_reviews: int = 0  # rows of other configurations, not used
    stale_judgements: int = 0
    grounding: list[GroundingStats] = field(default_factory=list)  # per system: items verified / related / not found


def compute(cfg: EvalConfig) -> Results:
    reviews, judgements = review_store(cfg), judgement_store(cfg)
    exs = papers(cfg)
    inputs = prepared_inputs(cfg, exs)
    configs = system_configs(cfg)
    lengths = {r["key"]: review_length(r["review"]) for r in reviews}
    used_reviews: set[str] = set()
    used_judgements: set[str] = set()
    matchups, cuts, missing, mcfg, judges = [], [], {}, {}, {}
    for m in cfg.matchups:
        jc = judge_config(cfg, m.schema)
        judges[m.schema] = jc
        pairs = current_pairs(cfg, m, exs, inputs, configs, jc)
        rows = [judgements.get(p["key"]) for p in pairs if p["key"] in judgements]
        used_judgements |= {r["key"] for r in rows}
        matchups.append(matchup_stats(m.key, rows, lengths, cfg.bootstrap_samples, cfg.seed))
        missing[m.key] = len(pairs) - len(rows)
        both = [(reviews.get(p["review_a"]), reviews.get(p["review_b"])) for p in pairs
                if p["review_a"] in reviews and p["review_b"] in reviews]
        cuts.append(cut_stats(m.key, both))
        mcfg[m.key] = {"a": configs[(m.a, m.schema)].key, "b": configs[(m.b, m.schema)].key,
                       "judge": json.dumps(jc, sort_keys=True)}
    aspects, grounding, indexes = [], [], {}
    for (name, schema), sc in configs.items():
        found = [(e, reviews.get(review_key(sc, inputs[(e["id"], schema)]["key"]))) for e in exs]
        found = [(e, r) for e, r in found if r is not None]
        rows = [r for _, r in found]
        used_reviews |= {r["key"] for r in rows}
        if rows:
            aspects.append(aspect_stats(name, schema, [r["review"] for r in rows], cfg.bootstrap_samples, cfg.seed))
            grounding.append(grounding_stats(name, schema, [(e["id"], example_document(e), r["review"])
                                                            for e, r in found], indexes))
    return Results(matchups, aspects, cuts,
                   [{"system": n, "schema": sch, **sc.to_dict()} for (n, sch), sc in configs.items()],
                   judges, mcfg, missing, len(reviews) - len(used_reviews),
                   len(judgements) - len(used_judgements), grounding)


def _plots(out: Path, matchups: list[MatchupStats], aspects: list[AspectStats]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    if matchups:
        fig, ax = plt.subplots(figsize=(9, 0.6 * len(matchups) + 1.5))
        labels = [f"{m.matchup} (n = {m.n})" for m in matchups]
        tot = [max(m.n, 1) for m in matchups]
        w = [m.wins / t for m, t in zip(matchups, tot)]
        t_ = [m.ties / t for m, t in zip(matchups, tot)]
        l_ = [m.losses / t for m, t in zip(matchups, tot)]
        ax.barh(labels, w, color="#2a9d8f", label="A wins")
        ax.barh(labels, t_, left=w, color="#bbbbbb", label="tie")
        ax.barh(labels, l_, left=[a + b for a, b in zip(w, t_)], color="#e76f51", label="B wins")
        rate = [m.win_rate for m in matchups]
        err = [[r - m.win_rate_ci[0] for r, m in zip(rate, matchups)], [m.win_rate_ci[1] - r for r, m in zip(rate, matchups)]]
        ax.errorbar(rate, labels, xerr=err, fmt="o", color="black", capsize=4, label="A win rate (ties = 1/2), 95% CI")
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of papers (both judge orders; disagreement = tie)")
        ax.legend(loc="lower right", fontsize=8)
        ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(out / "win_tie_loss.png", dpi=120)
        plt.close(fig)
        names.append("win_tie_loss.png")
    if aspects:
        import numpy as np

        fig, ax = plt.subplots(figsize=(9, 0.7 * len(aspects) + 1.5))
        y = np.arange(len(aspects))
        for off, attr, color, label in ((-0.18, "empty", "#264653", "written as <No related terms>"),
                                        (0.18, "missing", "#e9c46a", "header missing")):
            rates = [getattr(a, f"{attr}_rate") for a in aspects]
            cis = [getattr(a, f"{attr}_rate_ci") for a in aspects]
            err = [[max(r - c[0], 0) for r, c in zip(rates, cis)], [max(c[1] - r, 0) for r, c in zip(rates, cis)]]
            ax.barh(y + off, rates, height=0.36, color=color, label=label, xerr=err, capsize=3)
        ax.set_yticks(y, [f"{a.system} ({a.schema}-aspect, n = {a.reviews} reviews)" for a in aspects])
        ax.set_xlabel("share of aspects, 95% CI (bootstrap over reviews)")
        ax.set_xlim(0, 1)
        ax.legend(loc="lower right", fontsize=8)
        ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(out / "empty_rate.png", dpi=120)
        plt.close(fig)
        names.append("empty_rate.png")
    return names


def _flag(m: Any) -> str:
    if m.length_adjustment_extrapolated:
        return " (extrapolated)"
    return " (unstable)" if m.length_adjustment_unstable else ""


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}%"


def _settings(c: dict[str, Any]) -> str:
    st = dict(c["settings"])
    ident = c["identity"]
    kind = st.pop("kind")
    st.pop("model", None)  # shown as `what`
    what = (ident.get("model") if kind == "openai" else
            f"{ident.get('base_model') or ident.get('model')} + {ident.get('adapter') or 'no adapter'}")
    return f"{kind}: {what}; " + ", ".join(f"{k}={v}" for k, v in st.items())


def markdown(res: Results, plots: list[str], cfg: EvalConfig) -> str:
    judge_ids = {s: short(j["prompt_sha256"]) for s, j in res.judges.items()}
    lines = ["# Evaluation report", "",
             f"Papers: `{cfg.data}`" + (f" (first {cfg.limit})" if cfg.limit else "") +
             f"; judge: `{cfg.judge_model}` (reference-guided, both orders; a win counts only "
             f"when both orders agree). 95% CIs: percentile bootstrap over papers, {cfg.bootstrap_samples} samples, "
             f"seed {cfg.seed}. Every system and the judge read the same prepared text per paper: "
             f"`prepare()` with tokenizer `{cfg.input_tokenizer()}`, budget {cfg.max_prompt_tokens:,} prompt tokens.",
             "", "## Configurations", "",
             "Each number below comes from the rows whose fingerprint equals the current configuration's "
             "(system settings, model/adapter/tokenizer file hashes, prompt hash, input text).", "",
             "| system | schema | config | settings |", "|---|---|---|---|"]
    for c in res.configs:
        lines.append(f"| {c['system']} | {c['schema']}-aspect | `{short(c['key'])}` | {_settings(c)} |")
    lines += ["", "Judge: " + "; ".join(f"{s}-aspect: `{j['model']}`, prompt `{judge_ids[s]}`"
                                         for s, j in sorted(res.judges.items()))]
    if res.stale_reviews or res.stale_judgements:
        lines += ["", f"Not used (rows of other configurations in the same files): {res.stale_reviews} reviews, "
                      f"{res.stale_judgements} judgements."]
    lines += ["", "## Pairwise results (A vs B)", "",
              "| matchup | configs A / B | n | A wins | ties | B wins | no verdict | not judged | "
              "A win rate (ties = 1/2) [95% CI] | length-adjusted [95% CI] | order consistency | mean words A / B |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in res.matchups:
        c = res.matchup_configs[m.matchup]
        lines.append(f"| {m.matchup} | `{short(c['a'])}` / `{short(c['b'])}` | {m.n} | {m.wins} | {m.ties} | "
                     f"{m.losses} | {m.no_verdict} | {res.missing[m.matchup]} | "
                     f"{_pct(m.win_rate)} [{_pct(m.win_rate_ci[0])}, {_pct(m.win_rate_ci[1])}] | "
                     f"{_pct(m.length_adjusted_win_rate)} [{_pct(m.length_adjusted_ci[0])}, "
                     f"{_pct(m.length_adjusted_ci[1])}]{_flag(m)} | "
                     f"{_pct(m.order_consistency)} | "
                     f"{m.mean_len_a:.0f} / {m.mean_len_b:.0f} |")
    lines += ["", "*Length-adjusted*: A's win rate at equal review length from a logistic regression of the "
                  "outcome on tanh(word-count difference / its std); this is AlpacaEval 2's length term only, "
                  "without its per-instruction difficulty term (which needs a leaderboard of models judged "
                  "against one baseline), so it is not AlpacaEval's LC win rate. Its CI: the fit redone on each "
                  "bootstrap sample of papers. *(extrapolated)*: one side was longer in every pair, so equal "
                  "length lies outside the data. *(unstable)*: its CI spans more than "
                  f"{100 * UNSTABLE_CI_WIDTH:.0f} points. Read a flagged number as not determined.",
              "", "## How much of each paper the reviews were written from", "",
              "| matchup | papers | A: cut | A: tokens cut (mean, when cut) | B: cut | B: tokens cut (mean, when cut) "
              "| same input text for A and B |", "|---|---|---|---|---|---|---|"]
    for c in res.cuts:
        lines.append(f"| {c.matchup} | {c.papers} | {_pct(c.cut_a)} | {c.dropped_tokens_a:,.0f} "
                     f"({_pct(c.dropped_share_a)} of the paper) | {_pct(c.cut_b)} | {c.dropped_tokens_b:,.0f} "
                     f"({_pct(c.dropped_share_b)} of the paper) | {_pct(c.same_input)} |")
    lines += ["", "## Empty items and items per aspect", "",
              "*Empty*: the aspect's header is there and its only item is `<No related terms>`. *Missing*: the "
              "review has no header for the aspect (counted apart: a missing header is a format failure, not "
              "the model's empty marker). 95% CIs: bootstrap over reviews.", "",
              "| system | schema | reviews | empty [95% CI] | missing [95% CI] | mean variance of items per aspect "
              "| mean words |", "|---|---|---|---|---|---|---|"]
    for a in res.aspects:
        lines.append(f"| {a.system} | {a.schema}-aspect | {a.reviews} | {_pct(a.empty_rate)} "
                     f"[{_pct(a.empty_rate_ci[0])}, {_pct(a.empty_rate_ci[1])}] | {_pct(a.missing_rate)} "
                     f"[{_pct(a.missing_rate_ci[0])}, {_pct(a.missing_rate_ci[1])}] | "
                     f"{a.items_var_mean:.3f} | {a.mean_words:.0f} |")
    lines += ["", "## Review items traced to the paper", "",
              "Each item of each review, checked against the paper's text (`reviewgpt.grounding`): *verified*, "
              "it quotes the paper verbatim (up to spacing, hyphenation, ligatures, citations); *related*, it "
              "quotes nothing and BM25 finds a passage about it; *not found*, its quote is not in the paper, or "
              "nothing relevant is retrieved.", "",
              "| system | schema | reviews | items | items with a quote | verified | related | not found |",
              "|---|---|---|---|---|---|---|---|"]
    for g in res.grounding:
        lines.append(f"| {g.system} | {g.schema}-aspect | {g.reviews} | {g.items} | {g.quoted} | {_pct(g.verified)} | "
                     f"{_pct(g.related)} | {_pct(g.not_found)} |")
    for a in res.aspects:
        lines += ["", f"### {a.system}, {a.schema}-aspect", "", "| aspect | empty | missing | mean items | variance |",
                  "|---|---|---|---|---|"]
        lines += [f"| {c} | {_pct(a.empty_by_aspect[c])} | {_pct((a.missing_by_aspect or {}).get(c, 0.0))} | "
                  f"{a.items_mean_by_aspect[c]:.2f} | {a.items_var_by_aspect[c]:.3f} |" for c in a.empty_by_aspect]
    lines += [""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def report(cfg: EvalConfig) -> Path:
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = compute(cfg)
    plots = _plots(out, res.matchups, res.aspects)
    (out / "results.json").write_text(json.dumps(asdict(res), indent=2))
    path = out / "report.md"
    path.write_text(markdown(res, plots, cfg))
    return path
