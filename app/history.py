"""The runs of one browser session, kept with their settings, and any two of them side by side
(issue #26): e.g. the slider at 0 and at 0.95 on the same paper, with what changed (the settings,
which aspects were empty in each, the chance of an empty aspect per aspect)."""

from __future__ import annotations

import html
from typing import Any

from reviewgpt.format.review_format import parse
from reviewgpt.format.schema import get_schema

from .compare_view import NARROW_PX, Column, grid
from .run import Run

# On a phone the run table's 10 columns do not fit: each run becomes a card of "setting: value" pairs, all
# on screen (each cell carries its column's name, shown only there), instead of a table cut at the 5th.
CSS = f"""
#history-table .hist-key {{ display: none; }}
@media (max-width: {NARROW_PX}px) {{
  #history-table thead {{ display: none; }}
  #history-table table, #history-table tbody, #history-table tr {{ display: block; width: auto !important; }}
  #history-table table {{ border: none !important; }}
  #history-table tr {{ border: 1px solid var(--border-color-primary, #d1d5db); border-radius: 6px; padding: 6px 8px;
    margin-bottom: 8px; }}
  #history-table td, #history-table td:not(:first-child) {{ display: inline; border: none !important;
    padding: 0 !important; width: auto !important; white-space: normal !important; font-size: 0.9em; }}
  #history-table td + td::before {{ content: " · "; color: var(--body-text-color-subdued, #6b7280); }}
  #history-table td:first-child {{ font-weight: 700; }}
  #history-table .hist-key {{ display: inline; color: var(--body-text-color-subdued, #6b7280); }}
  #history-table td:first-child .hist-key {{ color: inherit; }}
}}
"""
MAX_RUNS = 20  # runs kept per session (the oldest is forgotten first); each holds its reviews and paper input


def settings_of(run: Run) -> dict[str, str]:
    """A run's settings in the words the page uses (also its label and the downloads' names)."""
    s = run.settings
    return {"paper": run.paper_title or "(pasted text)", "aspects": s.schema,
            "fewer empty aspects (slider)": f"{s.suppression:g}", "seed": str(s.seed),
            "temperature": f"{s.temperature:g}", "length (tokens)": str(s.max_new_tokens),
            "local model": "off" if run.local.off else "on", "GPT side": "off" if run.gpt.off else "on",
            "human reviews for the judge": str(len(run.human.texts)),
            "status": run.phase.value}


def label(number: int, run: Run) -> str:
    s = run.settings
    return f"Run {number}: {s.schema} aspects, slider {s.suppression:g}, seed {s.seed}, temperature {s.temperature:g}"


def keep(history: list[Run], run: Run) -> None:
    """Add a finished run (once)."""
    if run not in history:
        history.append(run)
    del history[:-MAX_RUNS]


def choices(history: list[Run]) -> list[tuple[str, int]]:
    """Dropdown choices: (label, the run's number)."""
    return [(label(r.number, r), r.number) for r in history]


def _e(t: str) -> str:
    return html.escape(t or "", quote=False)


def _aspects(run: Run) -> int:
    return len(get_schema(run.settings.schema).criteria)


def _empty(run: Run) -> list[str]:
    if not run.local.text:
        return []
    return parse(run.local.text, run.settings.schema).report.empty


def compare(history: list[Run], a: int | None, b: int | None) -> str:
    """Two kept runs side by side: the settings that changed, the empty aspects of each, and the two
    fine-tuned model's reviews aligned by aspect with each aspect's chance of being empty."""
    if len(history) < 2:
        return "<p><i>Generate twice (e.g. the slider at 0, then at 0.95) to compare two runs here.</i></p>"
    by_number = {r.number: r for r in history}
    if a not in by_number or b not in by_number:
        return "<p><i>Pick two runs.</i></p>"
    ra, rb = by_number[a], by_number[b]
    na, nb = a, b
    sa, sb = settings_of(ra), settings_of(rb)
    changed = [k for k in sa if sa[k] != sb[k]]
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(sa[k])}</td><td>{_e(sb[k])}</td></tr>" for k in changed)
    head = f"<tr><th>setting</th><th>Run {na}</th><th>Run {nb}</th></tr>"
    same = ", ".join(f"{k} {sa[k]}" for k in sa if k not in changed and k != "paper")
    parts = [f"<h3>What changed: Run {na} → Run {nb}</h3>",
             f"<table class='hist-changed'>{head}{rows}</table>" if changed else "<p>No setting changed.</p>",
             f"<p class='hist-same'>The same in both: {_e(same)}.</p>"]
    ea, eb = _empty(ra), _empty(rb)
    n_a, n_b = _aspects(ra), _aspects(rb)
    parts.append("<p class='hist-empty'>" + "<br>".join(
        f"<b>Run {n}</b>: {len(e)} of {k} aspects empty" + (f" ({_e(', '.join(e))})" if e else "")
        for n, e, k in ((na, ea, n_a), (nb, eb, n_b))) + "</p>")
    title = ra.local.label.title
    parts.append(f"<p><b>{_e(title)}</b>, by aspect:</p>")
    parts.append(grid([Column("a", f"Run {na} (slider {ra.settings.suppression:g})", ra.local, ra.settings.schema),
                       Column("b", f"Run {nb} (slider {rb.settings.suppression:g})", rb.local, rb.settings.schema)]))
    return "\n".join(parts)


def table(history: list[Run]) -> str:
    """Markdown: one line per kept run with its settings and empty-aspect count."""
    if not history:
        return "*No runs yet in this session.*"
    keys = ["aspects", "fewer empty aspects (slider)", "seed", "temperature", "local model", "GPT side", "status"]
    lines = ["| run | paper | " + " | ".join(keys) + " | empty aspects |", "|---" * (len(keys) + 3) + "|"]

    def cell(key: str, value: str) -> str:  # the column's name goes with the value: a phone shows it (CSS)
        return f"<span class='hist-key'>{_e(key)}: </span>{_e(value)}"

    for r in history:
        s = settings_of(r)
        empty = f"{len(_empty(r))} of {_aspects(r)}" if r.local.text else "–"
        paper = s["paper"][:40].replace("|", "\\|")
        cells = [f"<span class='hist-key'>Run </span>{r.number}", _e(paper), *(cell(k, s[k]) for k in keys),
                 cell("empty aspects", empty)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
