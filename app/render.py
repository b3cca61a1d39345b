"""Everything the page shows as Markdown, made safe: model and judge text is escaped, so nothing a
model writes can be taken for HTML (the marker `<No related terms>` looks like a tag and used to
swallow the rest of the review), and the marker is shown as a visible "empty aspect" badge."""

from __future__ import annotations

import html
from typing import Any

from reviewgpt.compare.judge import NO_VERDICT, Verdict, name_systems
from reviewgpt.format.review_format import ParseReport
from reviewgpt.format.schema import EMPTY_MARKER
from reviewgpt.ingest.document import Document
from reviewgpt.prepare.model_input import ModelInput

from . import paper_check
from .labels import ModelLabel

_ESCAPED_MARKER = html.escape(EMPTY_MARKER)
BADGE = (f'<span class="empty-badge" title="The model wrote the empty-item marker: it found nothing to say '
         f'on this aspect">{_ESCAPED_MARKER}</span> <span class="empty-note">empty aspect</span>')


def escape(text: str) -> str:
    """Text that Markdown shows as written: HTML escaped, Markdown kept (headers, lists, bold)."""
    return html.escape(text or "", quote=False)


def review(text: str) -> str:
    """A review for the page: escaped, the marker as a badge."""
    return escape(text).replace(_ESCAPED_MARKER, BADGE)


def cell(text: str) -> str:
    """A table cell: escaped, pipes and line breaks kept out of the table syntax."""
    return escape(text).replace("|", "\\|").replace("\n", " ")


def _p(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def stats(report: ParseReport, markers: Any | None = None) -> str:
    """Per aspect: items, empty / missing, and (local model) the chance of an empty aspect without -> with
    the slider (the marker report's P(empty) before -> after suppression)."""
    by_name = {m.criterion: m for m in markers.aspects} if markers is not None else {}
    head = ["| aspect | items | state |", "|---|---|---|"]
    if markers is not None:
        head = ["| aspect | items | state | chance of an empty aspect: without → with the slider |", "|---|---|---|---|"]
    rows = []
    for c in report.criteria:
        state = "missing" if not c.present else ("empty" if c.empty else "")
        row = f"| {cell(c.criterion)} | {c.item_count} | {state} |"
        if markers is not None:
            m = by_name.get(c.criterion)
            row += f" {_p(m.p_before)} → {_p(m.p_after)} |" if m is not None and m.p_before is not None else " – |"
        rows.append(row)
    empty = sum(1 for c in report.criteria if c.present and c.empty)
    missing = sum(1 for c in report.criteria if not c.present)
    n = len(report.criteria)
    summary = f"**{empty} of {n} aspects empty** (marker), {missing} missing."
    if markers is not None:
        summary += (f" Slider at {markers.strength:g}: the chance that the model starts {escape(EMPTY_MARKER)} "
                    "right after each aspect's header, without and with the slider.")
    extra = ("\n\nUnknown sections: " + ", ".join(cell(h) for h, _ in report.unknown_sections)
             if report.unknown_sections else "")
    return summary + "\n\n" + "\n".join(head + rows) + extra


def verdict(v: Verdict, a: ModelLabel, b: ModelLabel) -> str:
    """The judge's verdict naming the systems (the judge itself saw them as A and B)."""
    if v.winner == NO_VERDICT:
        return "### No verdict\n\n" + escape(v.rationale or "The judge's answers could not be read.")
    names = {"A": a.title, "B": b.title, "tie": "tie"}
    lines = [f"### {escape(v.summary(a.title, b.title))}", "",
             escape(name_systems(v.rationale, a.short, b.short))]
    if v.aspects:
        lines += ["", "| aspect | better |", "|---|---|"]
        lines += [f"| {cell(c)} | {cell(names.get(w, w))} |" for c, w in v.aspects.items()]
    return "\n".join(lines)


def counted(n: int, noun: str) -> str:
    """'1 page', '13 pages': a count with its noun in the number it needs."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def paper_info(doc: Document, model_input: ModelInput | None, filename: str = "") -> str:
    """Title and size in one line, what the model reads in another; long lists folded away."""
    title = escape(doc.title or filename or "(no title found)")
    lines = [f"**{title}** · {counted(doc.page_count, 'page')} · {counted(len(doc.sections), 'section')}"]
    if model_input is not None and model_input.source == "edited":
        b = model_input.budget
        size = f" ({b.prompt_tokens:,} of {b.budget:,} prompt tokens{', cut at the end' if b.was_cut else ''})" if b else ""
        lines.append(f"**Your edited text** is what the models read{size}, not the parsed PDF; the downloads "
                     "record it as an edit.")
    elif model_input is not None:
        b = model_input.budget
        if b is None:
            lines.append("The models read the whole paper.")
        elif not b.was_cut:
            lines.append(f"The models read the whole paper ({b.prompt_tokens:,} of {b.budget:,} prompt tokens).")
        else:
            cut = []
            if b.truncated_section:
                cut.append(f"'{escape(b.truncated_section)}' shortened")
            if b.dropped_sections:
                cut.append(f"{counted(len(b.dropped_sections), 'section')} left out")
            lines.append(f"The models read {b.paper_tokens_kept:,} of {b.paper_tokens_total:,} paper tokens "
                         f"(prompt budget {b.budget:,}): {', '.join(cut)}.")
            if b.dropped_sections:
                items = "".join(f"<li>{escape(s)}</li>" for s in b.dropped_sections)
                lines.append(f"<details><summary>Sections left out ({len(b.dropped_sections)})</summary>"
                             f"<ul>{items}</ul></details>")
    for w in paper_check.warnings(doc):
        lines.append(f"⚠️ {escape(w)}")
    return "\n\n".join(lines)


def column_title(label: ModelLabel) -> str:
    return f"### {escape(label.title)}\n<span class='model-detail'>{escape(label.detail)}</span>"
