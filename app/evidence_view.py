"""The page's evidence section: each review item with its mark (verified / related / not found) and
page, and the paper itself with the located spans highlighted; clicking an item opens its page.

The paper is indexed once per upload (reviewgpt.grounding: 0.17 s best, 0.27 s median for 15 pages,
benchmarks/results/ground.md); the reviews are grounded when a run ends (before its downloads are
written, so the JSON carries the anchors) and a review the user pastes is grounded on request. The viewer shows one page of a highlighted copy of the
PDF (PyMuPDF draws the annotations and renders the page): no PDF.js from a CDN, so it works offline.
"""

from __future__ import annotations

import html
import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import pymupdf
from PIL import Image

from reviewgpt.grounding import Evidence, PaperIndex, counts, ground_review
from reviewgpt.grounding.ground import guess_schema
from reviewgpt.grounding.highlight import annotate, render_page
from reviewgpt.ingest.document import Document, Section
from reviewgpt.rating.model import LABEL

from . import rating

MARKS = {"verified": "✓ Verified quote", "related": "≈ Related passage", "not_found": "✗ Not found"}
PASTED = "Your review"  # the name a review pasted into the section is listed under
SNIPPET = 220  # characters of a quote or passage shown under an item (the page shows the rest)

CSS = """
#evidence-list ol { list-style: none; padding-left: 0; margin: 0.3em 0 0.8em; }
#evidence-list li { margin: 0 0 6px; }
.ev-item { display: block; width: 100%; text-align: left; border: 1px solid var(--border-color-primary, #d1d5db);
  border-left-width: 5px; border-radius: 6px; padding: 5px 8px; background: var(--block-background-fill, #fff);
  color: inherit; font: inherit; font-size: 0.9em; cursor: pointer; }
.ev-item[disabled] { cursor: default; opacity: 0.85; }
.ev-verified { border-left-color: #16a34a; } .ev-related { border-left-color: #eab308; }
.ev-not_found { border-left-color: #dc2626; }
.ev-mark { font-weight: 600; } .ev-verified .ev-mark { color: #15803d; } .ev-related .ev-mark { color: #a16207; }
.ev-not_found .ev-mark { color: #b91c1c; }
.ev-text { display: block; margin-top: 2px; overflow-wrap: anywhere; }
.ev-summary { font-size: 0.9em; }
#evidence-page img { object-fit: contain; }
"""

# a click on an item with a page asks Python to show that page (custom gr.HTML event, see the guide
# "Custom Components with gr.HTML": trigger(name, data) reaches the listener as gr.EventData)
OPEN_PAGE_JS = """
element.addEventListener('click', (e) => {
  const item = e.target.closest('[data-page]');
  if (!item) return;
  trigger('open_page', {page: Number(item.dataset.page)});
  // on a narrow screen the page is below the list: bring it into view
  const shown = document.querySelector('#evidence-page');
  if (shown && shown.getBoundingClientRect().top > window.innerHeight) shown.scrollIntoView({block: 'start'});
});
"""


@dataclass
class EvidenceState:
    """One paper's grounding on the page: its index, the reviews grounded so far, the viewer's page."""

    index: PaperIndex | None = None
    pdf: str | None = None
    reviews: dict[str, list[Evidence]] = field(default_factory=dict)  # review name -> its items' evidence
    ratings: dict[str, dict] = field(default_factory=dict)  # a pasted review's calibrated rating (issue #24)
    highlighted: str | None = None  # the annotated copy of the PDF
    page: int = 1
    pages: int = 0


def for_paper(document: Document | None, pdf: str | None) -> EvidenceState:
    """A new paper: index it (and remember its PDF for the viewer)."""
    if document is None:
        return EvidenceState()
    if pdf is None:
        return EvidenceState(PaperIndex.build(document))
    with pymupdf.open(pdf) as doc:  # one open: the words' boxes and the viewer's page count
        return EvidenceState(PaperIndex.build(document, doc), pdf, pages=doc.page_count)


def ground(state: EvidenceState, name: str, review: str, schema: str | None = None) -> list[Evidence]:
    """Ground one review into the state (replacing an earlier one of the same name)."""
    if state.index is None or not review.strip():
        state.reviews.pop(name, None)
        return []
    evidence = ground_review(state.index, review, schema or guess_schema(review))
    state.reviews[name] = evidence
    return evidence


def _highlight(state: EvidenceState) -> None:
    if state.pdf is None:
        return
    out = Path(tempfile.mkdtemp(prefix="evidence-")) / f"{Path(state.pdf).stem}-highlighted.pdf"
    state.highlighted = str(annotate(state.pdf, [(n, e) for n, evs in state.reviews.items() for e in evs], out))


def _item(ev: Evidence) -> str:
    esc = html.escape
    where = f"p. {ev.page}" if ev.page else "no page"
    mark = MARKS[ev.status]
    if ev.status in ("related", "verified"):
        mark += f" · {where}"  # a related passage's BM25 score means nothing to a reader: the JSON download keeps it
    item = f"{esc(ev.aspect)} · item {ev.item}" + (f": {esc(ev.title)}" if ev.title else "")

    def cut(t: str) -> str:
        return esc(t if len(t) <= SNIPPET else t[:SNIPPET].rsplit(" ", 1)[0] + " …")

    if ev.status == "verified":
        text = f"“{cut(ev.passage)}”"
    elif ev.status == "related":
        text = f"Related passage (not a quote): {cut(ev.passage)}"
    elif ev.quote:
        text = f"Quoted “{cut(ev.quote)}”, which is not in the paper."
        if ev.passage:
            text += f" Closest text ({where}, {ev.score:.0f}% similar): {cut(ev.passage)}"
    else:
        text = "Nothing in the paper matches this point."
    attrs = f'data-page="{ev.page}"' if ev.page else "disabled"
    title = f"Open page {ev.page}" if ev.page else "Not placed on a page"
    return (f'<li><button type="button" class="ev-item ev-{ev.status}" {attrs} title="{title}">'
            f'<span class="ev-mark">{mark}</span> — <span class="ev-where">{item}</span>'
            f'<span class="ev-text">{text}</span></button></li>')


def list_html(state: EvidenceState) -> str:
    """Every grounded review's items, marked, each a button to its page."""
    if state.index is None:
        return "<p>Upload a PDF (or paste the paper): each point of the reviews will be traced to it here.</p>"
    if not state.reviews:
        return "<p>The reviews' points will be traced to the paper when they are written.</p>"
    parts = []
    for name, evs in state.reviews.items():
        parts.append(f"<h4>{html.escape(name)}</h4>")
        if name in state.ratings:  # a pasted review is shown only here: its rating too, labelled as on the verdict
            parts.append(f"<p class='ev-rating'>{html.escape(rating.rating_text(state.ratings[name]))}<br>"
                         f"<small>{html.escape(LABEL[0].upper() + LABEL[1:])}.</small></p>")
        if not evs:
            parts.append("<p class='ev-summary'>No items to trace (no numbered items under the aspect headers).</p>")
            continue
        c = counts(evs)
        parts.append(f"<p class='ev-summary'>{len(evs)} items: {c['verified']} verified, {c['related']} related, "
                     f"{c['not_found']} not found.</p><ol>" + "".join(_item(e) for e in evs) + "</ol>")
    return "".join(parts)


def _page_image(state: EvidenceState) -> Image.Image | None:
    pdf = state.highlighted or state.pdf
    return Image.open(io.BytesIO(render_page(pdf, state.page))) if pdf else None


def _page_label(state: EvidenceState) -> str:
    return f"Page {state.page} of {state.pages}" if state.pages else "No PDF"


@dataclass
class EvidenceSection:
    """The components; `outputs` is what every handler below returns, in this order."""

    items: gr.HTML
    viewer: gr.Column  # the page viewer: shown only when there is a PDF (a pasted paper has no pages)
    page_label: gr.Markdown
    page: gr.Image
    highlighted: gr.File
    pasted: gr.Textbox
    check: gr.Button
    prev: gr.Button
    next: gr.Button

    @property
    def outputs(self) -> list[Any]:
        return [self.items, self.viewer, self.page_label, self.page, self.highlighted]


def view(state: EvidenceState) -> tuple:
    """What the section shows for a state (the `outputs` order)."""
    return (list_html(state), gr.update(visible=bool(state.pdf)), _page_label(state), _page_image(state),
            gr.update(value=state.highlighted, visible=bool(state.highlighted)))


def build() -> EvidenceSection:
    """Lay the section out (inside the caller's Blocks)."""
    with gr.Accordion("Evidence: each point of the reviews traced to the paper", open=True, elem_id="evidence"):
        gr.Markdown("✓ **verified**: the quote is in the paper (highlighted green) · ≈ **related**: no quote; "
                    "the best-matching passage (yellow), not a quote · ✗ **not found**: the quote is not in the "
                    "paper (its closest text, if any, in red). Click an item to open its page.",
                    elem_id="evidence-legend")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                items = gr.HTML(list_html(EvidenceState()), elem_id="evidence-list", js_on_load=OPEN_PAGE_JS,
                                max_height=640)
                with gr.Accordion("Check a review of your own against the paper", open=False):
                    pasted = gr.Textbox(label="Paste a review (## aspect headers, numbered items; quote the paper "
                                              "in double quotes)", lines=6, elem_id="pasted-review")
                    check = gr.Button("Check against the paper", size="sm", elem_id="check-review")
            with gr.Column(scale=3, min_width=300, visible=False) as viewer:
                with gr.Row():
                    prev = gr.Button("◀ Previous", size="sm", elem_id="page-prev", min_width=90)
                    page_label = gr.Markdown("No PDF", elem_id="page-label")
                    nxt = gr.Button("Next ▶", size="sm", elem_id="page-next", min_width=90)
                page = gr.Image(type="pil", interactive=False, show_label=False, elem_id="evidence-page",
                                buttons=["fullscreen"])
                highlighted = gr.File(label="The PDF with the highlights", elem_id="highlighted-pdf",
                                      visible=False, interactive=False)
    return EvidenceSection(items, viewer, page_label, page, highlighted, pasted, check, prev, nxt)


def wire(section: EvidenceSection, state: gr.State, get: Any, schema: gr.Radio) -> None:
    """The section's own events. `get(session)` returns the session's EvidenceState."""

    def turn(s: Any, step: int) -> tuple:
        st = get(s)
        if st.pages:
            st.page = max(1, min(st.pages, st.page + step))
        return view(st)

    def on_open(s: Any, evt: gr.EventData) -> tuple:
        st = get(s)
        page = int(getattr(evt, "page", 0) or 0)
        if st.pages and 1 <= page <= st.pages:
            st.page = page
        return view(st)

    def on_check(s: Any, review: str, aspects: str) -> tuple:
        st = get(s)
        if st.index is None:
            gr.Warning("Upload the paper's PDF first: a review is checked against its text and pages.")
            return view(st)
        if not (review or "").strip():
            gr.Warning("Paste a review first.")
            return view(st)
        evs = ground(st, PASTED, review)  # its schema: the one its headers name
        st.ratings[PASTED] = rating.rate(review)
        if not evs:
            gr.Warning(f"No review items found: write ## headers naming the {aspects}-aspect criteria and numbered items.")
        _highlight(st)
        return view(st)

    outs = section.outputs
    section.prev.click(lambda s: turn(s, -1), [state], outs, api_visibility="private", queue=False)
    section.next.click(lambda s: turn(s, +1), [state], outs, api_visibility="private", queue=False)
    section.items.open_page(on_open, [state], outs, api_visibility="private", queue=False)
    section.check.click(on_check, [state, section.pasted, schema], outs, api_visibility="private")


def refresh(state: EvidenceState) -> tuple:
    """After the reviews were grounded: draw the highlights, show the first page that has evidence."""
    _highlight(state)
    pages = sorted(e.page for evs in state.reviews.values() for e in evs if e.page)
    if pages:
        state.page = pages[0]
    return view(state)


def ground_run(run: Any, state: EvidenceState) -> None:
    """Ground a finished run's reviews (each side's text, the run's schema) into the state and onto the
    run's sides (`side.evidence`, which the downloads' JSON carries). A paper pasted as text (no PDF)
    is grounded in the text the models read: verified and related, without pages."""
    if state.pdf is None and run.model_input.text.strip():  # rebuilt: the pasted text may have changed
        state.index = PaperIndex.build(Document("", "", [Section("", run.model_input.text)]))
    for side in (run.local, run.gpt):
        side.evidence = ground(state, side.label.title, side.text, run.settings.schema) if side.text else None
        if state.index is None:
            side.evidence = None
