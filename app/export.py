"""The downloads of a run: each review (Markdown), the verdict, and everything as JSON, named after
the paper and recording where they came from (paper, PDF hash, models, settings, cuts, times)."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from reviewgpt.format.review_format import parse
from reviewgpt.grounding import counts

from .human_reviews import describe as describe_human
from .rating import ratings_markdown
from .render import verdict as verdict_markdown
from .run import Run


def slug(title: str, limit: int = 60) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", title or "").strip("-").lower()
    return (s[:limit].rstrip("-") or "paper")


def settings_tag(run: Run) -> str:
    """The run's settings in a file name, so two runs' downloads differ: '7aspect-s0.95-t0.7-seed0'."""
    st = run.settings
    return f"{st.schema}aspect-s{st.suppression:g}-t{st.temperature:g}-seed{st.seed}"


def provenance(run: Run, models: dict[str, Any], app_version: str) -> dict[str, Any]:
    """What a download records about its run."""
    mi = run.model_input
    b = mi.budget
    return {
        "paper": {"title": run.paper_title, "pdf_file": run.pdf_name, "pdf_sha256": run.pdf_sha256},
        "status": "partial" if run.partial else run.phase.value,
        "phase": run.phase.value,
        "models": models,
        "settings": {"schema": run.settings.schema, "suppression": run.settings.suppression,
                     "temperature": run.settings.temperature, "seed": run.settings.seed,
                     "max_new_tokens": run.settings.max_new_tokens},
        "model_input": {**mi.to_dict(), "summary": mi.summary(),
                        "budget_tokens": b.budget if b else None},
        "human_reviews": run.human.record(),  # given to the judge or not; the texts are in the JSON
        "started_at": run.started_at, "finished_at": run.finished_at,
        "app_version": app_version,
    }


def _front_matter(meta: dict[str, Any]) -> str:
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100) + "---\n\n"


def export_run(run: Run, models: dict[str, Any], app_version: str, folder: Path | None = None) -> list[str]:
    folder = folder or Path(tempfile.mkdtemp(prefix="review-"))
    meta = provenance(run, models, app_version)
    name = f"{slug(run.paper_title or Path(run.pdf_name or '').stem)}-{settings_tag(run)}"
    tag = "-PARTIAL" if run.partial else ""  # stopped before the end: the text is incomplete
    note = "> **Partial:** the run was stopped before this review was finished; this is what had been written.\n\n"
    files: list[Path] = []
    for key, side in (("local", run.local), ("gpt", run.gpt)):
        if not side.text:
            continue
        cut = run.cut_short(side)  # a review that had ended before Stop is whole: not named or noted partial
        p = folder / f"{name}-{key}-review{'-PARTIAL' if cut else ''}.md"
        side_meta = {**meta, "review_by": {"title": side.label.title, "detail": side.label.detail},
                     "error": side.error, "calibrated_rating": side.rating}
        if run.partial and not cut:
            side_meta["status"] = "done"  # this review ended before Stop ('phase' says the run was stopped)
        if key == "gpt":  # the GPT side samples at the run's temperature; suppression, seed and length are the local model's
            side_meta["settings"] = {"schema": run.settings.schema, "temperature": run.settings.temperature}
        p.write_text(_front_matter(side_meta) + (note if cut else "") + side.text.rstrip() + "\n")
        files.append(p)
    if run.verdict:
        p = folder / f"{name}-verdict{tag}.md"
        ratings = ratings_markdown(run)  # each side's calibrated rating, side by side (issue #24)
        p.write_text(_front_matter(meta) + verdict_markdown(run.verdict, run.local.label, run.gpt.label) + "\n"
                     + f"\n{describe_human(run.human)}\n" + (f"\n{ratings}\n" if ratings else ""))
        files.append(p)
    data = {**meta,
            "local": _side(run.local, run.settings.schema), "gpt": _side(run.gpt, run.settings.schema),
            "verdict": run.verdict.to_dict() if run.verdict else None, "verdict_note": run.verdict_note,
            "human_reviews": {**run.human.record(), "texts": run.human.texts}}
    p = folder / f"{name}-results{tag}.json"
    p.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    files.append(p)
    return [str(f) for f in files]


def _side(side: Any, schema: str) -> dict[str, Any]:
    return {"title": side.label.title, "detail": side.label.detail, "review": side.text, "error": side.error,
            "off": side.off,
            "started_at": side.started_at, "finished_at": side.finished_at,
            "format": parse(side.text, schema).report.to_dict() if side.text else None,
            "markers": side.markers.to_dict() if side.markers is not None else None,
            "rating": getattr(side, "rating", None),  # calibrated rating, interval, P(accept), own rating
            # each item traced to the paper: status, page, boxes, the paper's text, score
            "evidence": ({"counts": counts(side.evidence), "items": [e.to_dict() for e in side.evidence]}
                         if getattr(side, "evidence", None) is not None else None)}

