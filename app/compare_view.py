"""The two reviews aligned by aspect (issue #26): one row per aspect, the local model's items beside
GPT's; on a narrow screen each row stacks (aspect 1: local then GPT, aspect 2: ...).

Built from the run's sides exactly as the downloads are (side.text parsed with the run's schema,
side.markers, side.evidence, side.rating): the page shows what the files say. Every model-written
string is escaped; the empty marker is the page's badge.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from reviewgpt.format.review_format import parse
from reviewgpt.format.schema import get_schema

from .rating import rating_text
from .render import BADGE

EVIDENCE_TAGS = {"verified": ("✓ verified quote", "ev-verified"), "related": ("≈ related passage", "ev-related"),
                 "not_found": ("✗ quote not found", "ev-not_found")}
NARROW_PX = 700  # below this width the rows stack: one column, local then GPT under each aspect

CSS = f"""
.cmp-view .cmp {{ display: grid; grid-template-columns: 1fr 1fr; column-gap: 16px; row-gap: 4px; }}
.cmp-view .cmp-aspect {{ grid-column: 1 / -1; margin: 14px 0 2px; padding-top: 6px; font-size: 1.05em;
  border-top: 1px solid var(--border-color-primary, #d1d5db); }}
.cmp-view .cmp-head {{ font-weight: 700; font-size: 1.1em; }}
.cmp-view .cmp-cell {{ min-width: 0; overflow-wrap: anywhere; }}
.cmp-view .cmp-cell ol {{ margin: 0.2em 0 0.4em; padding-left: 1.4em; }}
.cmp-view .cmp-who {{ display: none; font-size: 0.8em; font-weight: 600;
  color: var(--body-text-color-subdued, #6b7280); }}
.cmp-view .cmp-meta {{ display: block; font-size: 0.8em; color: var(--body-text-color-subdued, #6b7280); }}
.cmp-view .cmp-ev {{ font-size: 0.8em; white-space: nowrap; }}
.cmp-view .ev-verified {{ color: #15803d; }} .cmp-view .ev-related {{ color: #a16207; }}
.cmp-view .ev-not_found {{ color: #b91c1c; }}
.cmp-view .cmp-missing {{ font-style: italic; color: #b91c1c; }}
.cmp-view .cmp-foot {{ margin-top: 14px; padding-top: 6px; border-top: 2px solid var(--border-color-primary, #d1d5db); }}
@media (max-width: {NARROW_PX}px) {{
  .cmp-view .cmp {{ grid-template-columns: 1fr; }}
  .cmp-view .cmp-head {{ display: none; }}
  .cmp-view .cmp-who {{ display: block; }}
  .cmp-view .cmp-cell + .cmp-cell {{ margin-top: 6px; }}
}}
"""


def _e(text: str) -> str:
    return html.escape(text or "", quote=False)


@dataclass
class Column:
    """One column of the grid: a review (a run's Side) under a heading, read with its own schema."""
    key: str  # CSS class suffix: local, gpt, a, b
    heading: str
    side: Any
    schema: str

    def parsed(self) -> dict[str, tuple[bool, list]] | None:
        """criterion -> (present, items); None when this side wrote nothing."""
        if not self.side.text:
            return None
        p = parse(self.side.text, self.schema)
        present = {c.criterion: c.present for c in p.report.criteria}
        return {c: (present[c], p.review.sections.get(c, [])) for c in present}


def _evidence_tag(ev: Any | None) -> str:
    if ev is None:
        return ""
    words, cls = EVIDENCE_TAGS.get(ev.status, (ev.status, ""))
    page = f", p. {ev.page}" if ev.page else ""
    return f" <span class='cmp-ev {cls}'>{_e(words)}{page}</span>"


def chance_line(side: Any, criterion: str) -> str:
    """The local model's chance of writing the empty marker under this aspect, without -> with the slider."""
    m = next((a for a in side.markers.aspects if a.criterion == criterion), None) if side.markers is not None else None
    if m is None or m.p_before is None:
        return ""
    return f"chance of an empty aspect: {m.p_before:.2f} without → {m.p_after:.2f} with the slider"


def _cell(col: Column, criterion: str, parsed: dict | None, active: bool) -> str:
    side = col.side
    who = f"<span class='cmp-who'>{_e(col.heading)}</span>"
    chance = chance_line(side, criterion)
    meta = f"<span class='cmp-meta'>{_e(chance)}</span>" if chance else ""
    if parsed is None:  # no review from this side
        why = f"{side.error_verb}: {side.error}" if side.error else ("writing..." if active else "no review")
        return f"<div class='cmp-cell cmp-{col.key}'>{who}<i>{_e(why)}</i></div>"
    if criterion not in parsed:  # a 4-aspect run beside a 7-aspect one
        return f"<div class='cmp-cell cmp-{col.key}'>{who}<i>not in this run's aspects</i></div>"
    present, items = parsed[criterion]
    if not present:
        body = "<span class='cmp-missing'>" + ("not written yet" if active else "not written (aspect missing)") + "</span>"
    elif not items:
        body = BADGE
    else:
        evidence = {(e.aspect, e.item): e for e in (side.evidence or [])}
        lis = []
        for n, it in enumerate(items, 1):
            title = f"<b>{_e(it.title)}</b>: " if it.title else ""
            lis.append(f"<li>{title}{_e(it.explanation)}{_evidence_tag(evidence.get((criterion, n)))}</li>")
        body = "<ol>" + "".join(lis) + "</ol>"
    return f"<div class='cmp-cell cmp-{col.key}'>{who}{body}{meta}</div>"


def grid(columns: list[Column], active: bool = False, note: str = "") -> str:
    """One row per aspect (the columns' schemas in order, without repeats), a cell per column, then a
    footer row with each column's whole-review numbers."""
    parsed = [c.parsed() for c in columns]
    criteria: list[str] = []
    for c in columns:
        criteria += [x for x in get_schema(c.schema).criteria if x not in criteria]
    out = ["<div class='cmp'>"]
    out += [f"<div class='cmp-head cmp-{c.key}'>{_e(c.heading)}</div>" for c in columns]
    for criterion in criteria:
        out.append(f"<h3 class='cmp-aspect'>{_e(criterion)}</h3>")
        out += [_cell(c, criterion, p, active) for c, p in zip(columns, parsed)]
    out.append("</div>")
    rows = [f"<li><b>{_e(c.heading)}</b>: {_e('; '.join(summary(c.side, p)))}</li>"
            for c, p in zip(columns, parsed) if p is not None]
    return "\n".join(out) + f"<div class='cmp-foot'><b>Whole review</b>{note}<ul>" + "".join(rows) + "</ul></div>"


def summary(side: Any, parsed: dict | None) -> list[str]:
    """A review's numbers in words: empty aspects, evidence counts, calibrated rating."""
    if parsed is None:
        return ["no review"]
    empty = [c for c, (present, items) in parsed.items() if present and not items]
    missing = sum(1 for present, _ in parsed.values() if not present)
    bits = [f"{len(empty)} of {len(parsed)} aspects empty" + (f", {missing} missing" if missing else "")]
    if side.evidence is not None:
        n = {k: sum(1 for e in side.evidence if e.status == k) for k in EVIDENCE_TAGS}
        bits.append(f"{n['verified']} verified quotes, {n['related']} related passages, {n['not_found']} quotes not found")
    if side.rating:
        bits.append(rating_text(side.rating))
    return bits


def aligned(run: Any) -> str:
    """The run's two reviews aligned by aspect; '' before either has written anything."""
    if not (run.local.text or run.gpt.text):
        return ""
    schema = run.settings.schema
    # Stop cuts only the reviews still being written: name those, not the whole run.
    cut = [side.label.title for side in (run.local, run.gpt) if side.text and run.cut_short(side)]
    note = (f" <i>(partial: the run was stopped before the end of {' and '.join(map(_e, cut))})</i>"
            if run.phase.value == "stopped" and cut else "")
    return grid([Column("local", run.local.label.title, run.local, schema),
                 Column("gpt", run.gpt.label.title, run.gpt, schema)], run.phase.active, note)
