"""The page (Gradio Blocks): upload -> what the models read -> two reviews streaming -> verdict.

Per-browser state is a `Session` in gr.State: the parsed Document (the models' input is built from
it with prepare(), or from the user's edit of the text, recorded as an edit) and the current Run,
whose phase decides what Stop and the status line say.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from typing import Any, Iterator

import gradio as gr

from reviewgpt.config import RECIPE_SUPPRESSION, GenerationConfig
from reviewgpt.errors import PDFError
from reviewgpt.format.review_format import parse

from . import api, compare_view, evidence_view, history, human_reviews, mcp_json, rating, render, upload_progress
from .export import export_run
from .preview import first_page
from .run import Run, RunPhase, finish
from .service import Paper, ReviewService, read_paper
from .settings import EXAMPLES_DIR

SLIDER_LABEL = "Fewer empty aspects"
SLIDER_HELP = ("How strongly to discourage the model from writing '<No related terms>' (nothing to say) under an "
               f"aspect. 0 = not at all; {RECIPE_SUPPRESSION} = the recipe's setting. Raise it if aspects come out empty.")
# the developers' account, behind a closed toggle (issue #26: the controls speak the reader's words)
SLIDER_DETAILS = (
    "**How the slider works.** At every word it writes, the model has some chance of starting the marker "
    "`<No related terms>`. The slider's strength *s* multiplies that chance by (1 - *s*) and spreads the rest "
    "over the other words, so a chance *p* becomes (1 - *s*) *p* / (1 - *s p*): at *s* = 0.95, 0.62 becomes 0.08. "
    "*s* = 0 changes nothing; *s* = 1 never starts the marker.\n\n"
    "**\"Chance of an empty aspect\"** under the fine-tuned model's review is, per aspect, that chance right after "
    "the aspect's header, without and with the slider (P(empty) before → after suppression in the API's `markers` "
    "and the JSON download), read from the same numbers the model drew its words from.")
READING = "Reading the PDF... (Generate is off until it is read)"  # the status line while a file is read
START_HINT = "Upload a PDF (or paste the paper text) to start."  # the status line while there is no text to review
AS_WRITTEN = "Each review as written (copy buttons, counts per aspect)"
ASPECTS = [("7 aspects", "7"), ("4 aspects", "4")]
GPU_QUEUE = "gpu"  # every event that runs the local model shares one slot: the GPU writes one review at a time

CSS = """
#upload-msg.error, #upload-msg .error { color: var(--error-text-color, #b91c1c); }
.upload-error { border: 1px solid #dc2626; background: #fef2f2; color: #991b1b; padding: 6px 10px;
  border-radius: 6px; }
.empty-badge { display: inline-block; font-family: var(--font-mono, monospace); font-size: 0.85em;
  background: #fff7ed; color: #9a3412; border: 1px solid #fdba74; border-radius: 999px; padding: 0 8px; }
.empty-note { font-size: 0.8em; color: #9a3412; font-style: italic; }
.model-detail { font-size: 0.8em; color: var(--body-text-color-subdued, #6b7280); }
.review-col h3 { margin-bottom: 0; }
#local-review h2, #gpt-review h2 { font-size: 1.05rem !important; margin: 0.9em 0 0.3em !important; }
#local-review, #gpt-review { font-size: 0.95rem; }
.stats table { table-layout: auto !important; width: 100%; }
.stats td, .stats th { white-space: normal !important; overflow-wrap: normal !important; word-break: normal !important;
  max-width: none !important; padding: 4px 8px !important; }
.stats td:not(:first-child) { white-space: nowrap !important; width: 1%; }
.stats th:not(:first-child) { width: 1%; }
@media (max-width: 700px) {  /* a phone: tables wrap inside the screen rather than run off its edge */
  .stats td, .stats th, .stats td:not(:first-child) { white-space: normal !important; font-size: 0.85em; }
}
/* the downloads' names carry the run's settings: shown whole (Gradio cuts a name to one line) */
#downloads .filename .stem { white-space: normal !important; overflow-wrap: anywhere; }
/* ... with the extension right after the name's last line (as a flex box it stood beside the first line);
   font-size 0 on the cell hides the template's blank between the name and ".md" (it showed as "review .md") */
#downloads .filename { display: block !important; font-size: 0; }
#downloads .filename .stem, #downloads .filename .ext { display: inline; font-size: var(--text-md); }
.copy-btn { max-width: 140px; align-self: flex-end; }
/* Stop and Generate when there is nothing to do: grey, not the colour of a button that acts */
#stop:disabled, #generate:disabled { background: var(--button-secondary-background-fill, #e5e7eb) !important;
  color: var(--body-text-color-subdued, #6b7280) !important;
  border-color: var(--border-color-primary, #d1d5db) !important;
  box-shadow: none !important; cursor: not-allowed; }
/* a run picker's label ends before the dropdown arrow (at 390 px it ran under it) */
.run-picker input[role=combobox] { padding-right: 28px !important; text-overflow: ellipsis; }
#status { min-height: 1.5em; }
#paper-info p { margin: 2px 0; }
"""


@dataclass
class Session:
    paper: Paper | None = None
    shown_text: str = ""  # the paper text as put in the textbox; a different box means the user edited it
    run: Run | None = None
    queued: bool = False  # Generate pressed, run not started yet (waiting for the GPU slot)
    evidence: evidence_view.EvidenceState = field(default_factory=evidence_view.EvidenceState)
    history: list[Run] = field(default_factory=list)  # finished runs, with their settings (app/history.py)
    runs_started: int = 0  # numbers the runs of this session
    upload_error: str | None = None  # the last upload could not be read: why


CLOSE_TOASTS = "() => { document.querySelectorAll('.toast-body .toast-close').forEach(b => b.click()); return []; }"


def build(service: ReviewService) -> gr.Blocks:
    local, gpt = service.local_label, service.gpt_label
    with gr.Blocks(title="Paper Review GPT") as demo:
        gr.Markdown("## Paper Review GPT\nUpload an ML paper (PDF): the fine-tuned model and GPT-4 each write a "
                    "structured review, and a judge says which is better.")
        banner = service.banner()
        gr.Markdown(banner, visible=bool(banner), elem_id="banner")
        session = gr.State(Session())
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                pdf = gr.File(label="Paper PDF", file_types=[".pdf"], type="filepath", elem_id="pdf", height=110)
                upload_msg = gr.Markdown(elem_id="upload-msg")
                info = gr.Markdown(elem_id="paper-info")
            with gr.Column(scale=3, min_width=300):
                with gr.Row():
                    aspects = gr.Radio(ASPECTS, value="7", label="Review type", elem_id="aspects", min_width=150)
                    suppression = gr.Slider(0.0, 1.0, value=RECIPE_SUPPRESSION, step=0.05,
                                            label=SLIDER_LABEL, info=SLIDER_HELP,
                                            elem_id="suppression", min_width=220)
                with gr.Accordion("How the slider works", open=False, elem_id="slider-details"):
                    gr.Markdown(SLIDER_DETAILS)
                with gr.Row():
                    # on only with paper text to review and a side that can run (no local model, no GPT
                    # key: the banner says why); Stop only while a run is queued or streaming
                    go = gr.Button("Generate reviews", variant="primary", elem_id="generate", interactive=False)
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop", interactive=False)
                status = gr.Markdown(START_HINT, elem_id="status")
        # once a run ends: both reviews aligned by aspect (app/compare_view.py); while it runs, the two
        # columns stream below, folded away when it ends
        comparison = gr.HTML(elem_id="comparison", elem_classes="cmp-view", visible=False)
        with gr.Accordion(AS_WRITTEN, open=True, elem_id="as-written") as as_written:
            with gr.Row(equal_height=False):
                with gr.Column(elem_classes="review-col", min_width=300):
                    gr.Markdown(render.column_title(local), elem_id="local-title")
                    local_md = gr.Markdown(elem_id="local-review", min_height=80)  # whole: no inner scroll hides aspects
                    local_copy = gr.Button("Copy review", size="sm", elem_id="local-copy", elem_classes="copy-btn")
                    local_stats = gr.Markdown(elem_id="local-stats", elem_classes="stats")
                with gr.Column(elem_classes="review-col", min_width=300):
                    gr.Markdown(render.column_title(gpt), elem_id="gpt-title")
                    gpt_md = gr.Markdown(elem_id="gpt-review", min_height=80)
                    gpt_copy = gr.Button("Copy review", size="sm", elem_id="gpt-copy", elem_classes="copy-btn")
                    gpt_stats = gr.Markdown(elem_id="gpt-stats", elem_classes="stats")
        # the copy buttons' text, outside the section: showing the section again (visible=True after a failed
        # upload hid it) would show every component inside it, these hidden boxes too
        local_raw = gr.Textbox(visible="hidden", elem_id="local-raw")
        gpt_raw = gr.Textbox(visible="hidden", elem_id="gpt-raw")
        verdict = gr.Markdown(elem_id="verdict", elem_classes="stats")
        evidence = evidence_view.build()
        files = gr.File(label="Downloads (named after the paper and the run's settings; each records the run)",
                        file_count="multiple", interactive=False, elem_id="downloads", visible=False)
        with gr.Accordion("Runs in this session: compare any two", open=False, elem_id="history") as hist_box:
            hist_table = gr.Markdown(history.table([]), elem_id="history-table", elem_classes="stats")
            with gr.Row():
                hist_a = gr.Dropdown([], label="Run", elem_id="history-a", elem_classes="run-picker", min_width=200)
                hist_b = gr.Dropdown([], label="side by side with run", elem_id="history-b", elem_classes="run-picker",
                                     min_width=200)
            hist_view = gr.HTML(elem_id="history-compare", elem_classes="cmp-view")
        with gr.Accordion("Paper text the models read (editable) and first page", open=False):
            with gr.Row():
                text = gr.Textbox(label="Extracted text: fix a bad parse here (your edit is used and recorded)",
                                  lines=12, max_lines=12, elem_id="paper-text", scale=3)
                preview = gr.Image(label="First page", type="pil", interactive=False, height=300, scale=1)
        with gr.Accordion("The paper's human reviews (optional): the judge compares against them", open=False,
                          elem_id="human-box"):
            with gr.Row():
                human_text = gr.Textbox(label="Paste the reviews, separated by a line of ---", lines=6, max_lines=12,
                                        elem_id="human-text", scale=3)
                human_file = gr.File(label="or an OpenReview forum export (JSON) or a text file",
                                     file_types=[".json", ".txt", ".md"], type="filepath", elem_id="human-file",
                                     height=110, scale=1)
            human_info = gr.Markdown(human_reviews.describe(human_reviews.HumanReviews()), elem_id="human-info")
        with gr.Accordion("Advanced", open=False):
            with gr.Row():
                temperature = gr.Slider(0.0, 1.5, value=GenerationConfig.temperature, step=0.05, label="Sampling temperature (0 = greedy)",
                                        elem_id="temperature")
                seed = gr.Number(-1, precision=0, label="Seed (-1 = random; the downloads record it)",
                                 elem_id="seed")
        examples = sorted(EXAMPLES_DIR.glob("*.pdf"))
        if examples:
            gr.Examples([[str(p)] for p in examples], inputs=[pdf], label="Example papers")

        results = [local_md, local_raw, local_stats, gpt_md, gpt_raw, gpt_stats, verdict, files, comparison, as_written]
        cleared = ("", "", "", "", "", "", "", gr.update(value=None, visible=False), gr.update(value="", visible=False),
                   gr.update(open=True, visible=True))
        # a file that could not be read: no review columns (their model lines say nothing about this failure)
        failed = cleared[:-1] + (gr.update(open=True, visible=False),)

        def generate_state(paper_text: str) -> dict:
            """Generate is on when there is paper text to review and a side that can write."""
            return gr.update(interactive=service.can_run and bool((paper_text or "").strip()))

        def stop_state(s: Session) -> dict:
            """Stop is on while this tab's run is queued or streaming, and off once pressed (the run then
            ends itself and keeps what it wrote)."""
            active = s.run is not None and s.run.phase.active
            stopping = active and s.run.stop.is_set()
            return gr.update(interactive=not stopping and (s.queued or active))

        # ------------------------------------------------------------ upload
        def stop_current(s: Session) -> None:
            if s.run is not None and s.run.phase.active:
                s.run.stop.set()
                finish(s.run, RunPhase.STOPPED)
            s.run, s.queued = None, False

        def on_pdf(path: str | None, schema: str, s: Session, progress: gr.Progress = gr.Progress()):
            stop_current(s)  # a run in flight belongs to the old paper
            s.paper, s.shown_text, s.upload_error = None, "", None
            shown = read_upload(path, schema, s, progress)
            stop_current(s)  # and any started while the file was read (OCR is slow): not into the new page
            return shown + ("", None, stop_state(s), generate_state(shown[2]))

        def read_upload(path: str | None, schema: str, s: Session, progress: gr.Progress) -> tuple:
            """The page for a new file: (message, info, text, preview, status) + the cleared results."""
            if not path:
                return ("", "", "", None, START_HINT) + cleared
            try:
                paper = read_paper(api._path(path), service.ingest, upload_progress.reporter(progress))
            except PDFError as e:
                s.upload_error = str(e)  # said as an error toast (upload_failed, below)
                msg = f"<div class='upload-error'><b>Could not read this file.</b> {render.escape(str(e))}</div>"
                return (msg, "", "", None, "No paper text to review: upload another PDF (or paste the paper text).") \
                    + failed
            s.paper, s.shown_text = paper, paper.document.to_text()
            mi = service.prepare(paper.document, schema)
            hidden = (" Hidden text was found and left out of what the models read (see the warning)."
                      if paper.document.hidden_text else "")
            return ("", render.paper_info(paper.document, mi, paper.filename), s.shown_text,
                    first_page(api._path(path)), f"Parsed.{hidden} Press Generate.") + cleared

        # a new paper: the previous paper's human reviews go with it (they would judge the wrong paper);
        # Generate follows the new text (also when it equals the old, so the box sends no change event)
        upload_outputs = [upload_msg, info, text, preview, status, *results, human_text, human_file, stop_btn, go]

        def on_info(schema: str, paper_text: str, s: Session):
            """What the models will read, said again when the schema or the text changes (an edit)."""
            if s.paper is None:
                return gr.update()
            edited = (paper_text or "").strip() and paper_text != s.shown_text
            mi = (service.prepare(paper_text, schema, edited=True) if edited
                  else service.prepare(s.paper.document, schema))
            return render.paper_info(s.paper.document, mi, s.paper.filename)

        # Generate follows the text box (an upload fills or empties it; a paste or an edit changes it)
        text.change(generate_state, [text], [go], api_visibility="private", queue=False)
        aspects.change(on_info, [aspects, text, session], [info], api_visibility="private", queue=False)
        # when the box loses focus (the click on Generate included): not on every keystroke
        text.blur(on_info, [aspects, text, session], [info], api_visibility="private", queue=False)

        # ------------------------------------------------------------ generate
        def outputs_for(run: Run) -> tuple:
            schema = run.settings.schema

            def column(side) -> str:
                if side.text:
                    return render.review(side.text)
                if side.error:
                    return f"**{render.escape(side.label.title)} {side.error_verb}:** {render.escape(side.error)}"
                return "*Writing...*" if run.phase.active else ""

            def stats(side, markers=None) -> str:
                if not side.text or not (side.done or not run.phase.active):
                    return ""
                return render.stats(parse(side.text, schema).report, markers)

            if run.verdict is not None:  # and what the judge was given to compare against
                v = (render.verdict(run.verdict, run.local.label, run.gpt.label)
                     + f"\n\n*{render.escape(human_reviews.describe(run.human))}*")
            else:
                v = render.escape(run.verdict_note)
            if not run.phase.active:  # each side's calibrated rating beside the verdict (issue #24)
                v = "\n\n".join(x for x in (v, rating.ratings_markdown(run)) if x)
            # the run ended with a review: the aligned view is the page's view, the columns fold away
            aligned = compare_view.aligned(run) if not run.phase.active else ""
            return (column(run.local), run.local.text, stats(run.local, run.local.markers),
                    column(run.gpt), run.gpt.text, stats(run.gpt), v,
                    gr.update(value=run.files or None, visible=bool(run.files)),
                    gr.update(value=aligned, visible=bool(aligned)), gr.update(open=not aligned), run.status())

        def on_queue(s: Session):
            """Runs at once (no queue): clears the old results and says the run is waiting for the GPU."""
            if s.run is not None and s.run.phase.active:
                said = ("Stopping the current run; press Generate when it has stopped." if s.run.stop.is_set()
                        else "A run is already going: Stop it first.")
                return (gr.update(),) * len(results) + (said, gr.update())
            s.queued = True
            if not service.busy:  # a lone user: no "waiting" flash before every run
                return cleared + ("Starting...", stop_state(s))
            return cleared + ("Waiting for the GPU: another review is being written. Your run starts when it "
                              "is free.", stop_state(s))

        def on_generate(s: Session, paper_text: str, schema: str, strength: float, temp: float,
                        seed_value: float | None, human_pasted: str, human_path: str | None) -> Iterator[tuple]:
            as_is = (gr.update(),) * (len(results) + 1)  # the page as it is (an event with no output blanks it)
            if not s.queued:  # "A run is already going", or the queued press was stopped / superseded:
                yield as_is
                return
            # s.queued stays set until the run is s.run: a Stop pressed while the run is set up finds one of them
            if not (paper_text or "").strip():
                s.queued = False
                gr.Warning("Upload a PDF (or paste the paper text) first.")
                yield cleared + ("**Upload a PDF (or paste the paper text) first.**",)
                return
            try:
                human = human_reviews.read(human_pasted, human_path)
            except (human_reviews.HumanReviewsError, OSError) as e:
                s.queued = False
                gr.Warning(str(e), title="Could not read the human reviews")
                yield cleared + (f"**Could not read the human reviews:** {render.escape(str(e))}",)
                return
            if s.paper is not None and paper_text == s.shown_text:
                mi = service.prepare(s.paper.document, schema)
            else:  # the user edited the parsed text (or pasted a paper): honoured, recorded as an edit
                mi = service.prepare(paper_text, schema, edited=s.paper is not None)
            # Pasted text: its first line, without the "Title: " label that Document.to_text() writes
            title = s.paper.title if s.paper else re.sub(r"^title:\s*", "", paper_text.strip().splitlines()[0], flags=re.I)[:120]
            run = service.new_run(mi, strength, temp, None if seed_value is None else int(seed_value), title,
                                  s.paper.filename if s.paper else None, s.paper.sha256 if s.paper else None, human)
            run.number, s.run = s.runs_started + 1, run  # from here on a Stop finds the run (still QUEUED: active)
            if not s.queued:  # Stop (or a new upload) came while it was set up: it never starts
                s.run = None
                yield as_is  # "Cancelled before it started." stays
                return
            s.queued, s.runs_started = False, run.number
            try:
                for r in service.execute(run):
                    if s.run is not run:
                        return  # a new paper (or a new run) owns the page now: nothing stale is shown
                    if not r.phase.active:
                        evidence_view.ground_run(r, s.evidence)  # before the export: the JSON carries it
                        rating.rate_run(r)  # likewise
                        r.files = export_run(r, service.models(), service.version)
                        history.keep(s.history, r)
                        if any(side.error and not side.off for side in (r.local, r.gpt)):
                            gr.Warning(r.status())  # a failure during the run; a side that is off is in the banner
                    yield outputs_for(r)
            finally:
                run.stop.set()  # also on a closed tab: the model stops writing

        gen_inputs = [session, text, aspects, suppression, temperature, seed, human_text, human_file]

        def on_human(pasted: str, path: str | None) -> str:
            """How many human reviews the judge will get, said as soon as they are given."""
            try:
                return human_reviews.describe(human_reviews.read(pasted, path))
            except (human_reviews.HumanReviewsError, OSError) as e:
                return f"⚠️ {render.escape(str(e))}"

        human_text.change(on_human, [human_text, human_file], [human_info], api_visibility="private", queue=False)
        human_file.change(on_human, [human_text, human_file], [human_info], api_visibility="private", queue=False)
        pressed = go.click(on_queue, [session], [*results, status, stop_btn], queue=False, api_visibility="private")
        # Stop and a new upload end a run through its phase (no `cancels`: a cancelled generator's last
        # output could still land after the page was cleared).
        generated = pressed.then(on_generate, gen_inputs, [*results, status], api_visibility="private",
                                 concurrency_id=GPU_QUEUE, concurrency_limit=1, show_progress_on=[local_md, gpt_md])
        generated.then(lambda s: evidence_view.refresh(s.evidence), [session], evidence.outputs,
                       api_visibility="private", queue=False)
        generated.then(stop_state, [session], [stop_btn], api_visibility="private", queue=False)

        # ------------------------------------------------------------ run history (app/history.py)
        def on_history(s: Session):
            """After each run: the table, the two pickers (the run before vs the latest) and their comparison."""
            runs = s.history
            numbers = [r.number for r in runs]
            a, b = (numbers[-2], numbers[-1]) if len(runs) >= 2 else (None, None)
            choices = history.choices(runs)
            opened = gr.update(open=True) if len(runs) == 2 else gr.update()  # the first time two can be compared
            return (history.table(runs), gr.update(choices=choices, value=a), gr.update(choices=choices, value=b),
                    history.compare(runs, a, b), opened)

        generated.then(on_history, [session], [hist_table, hist_a, hist_b, hist_view, hist_box],
                       api_visibility="private", queue=False)

        def on_pick(a: int | None, b: int | None, s: Session) -> str:
            return history.compare(s.history, a, b)

        for picker in (hist_a, hist_b):
            picker.input(on_pick, [hist_a, hist_b, session], [hist_view], api_visibility="private", queue=False)

        # ------------------------------------------------------------ stop
        def on_stop(s: Session):
            """Stop tells the run; the run itself ends, keeps what was written and exports it marked partial."""
            run = s.run
            if run is None or not run.phase.active:
                if s.queued:
                    s.queued = False  # the queued event finds this and does nothing
                    return "Cancelled before it started.", stop_state(s)
                return "Nothing is running.", stop_state(s)
            run.stop.set()
            return run.status(), stop_state(s)

        stop_btn.click(on_stop, [session], [status, stop_btn], queue=False, api_visibility="private")
        # the reading bar (pages, OCR, time left) on the status line, not over every cleared output
        # Generate is off while the file is read: a run started then would review the old text on the new page
        # and the last file's error toast is closed: beside a new file being read it reads as this file's error
        reading = pdf.change(lambda: (gr.update(interactive=False), READING), None, [go, status],
                             api_visibility="private", queue=False, js=CLOSE_TOASTS)
        # always_last: a file chosen while the last one's reading (or the box's Clear) is pending is read
        # after it, so the newest file's outcome is the page's; with a .then's default ("once") it was dropped
        # and the page stayed on "Upload a PDF" beside the new file (CI under load)
        uploaded = reading.then(on_pdf, [pdf, aspects, session], upload_outputs, api_visibility="private",
                                show_progress_on=[status], trigger_mode="always_last")

        # ------------------------------------------------------------ evidence (reviewgpt.grounding)
        def on_paper_evidence(path: str | None, s: Session):
            """The new paper indexed for grounding (the old paper's evidence is gone with it)."""
            s.evidence = evidence_view.for_paper(s.paper.document if s.paper else None,
                                                 api._path(path) if path and s.paper else None)
            return evidence_view.view(s.evidence)

        uploaded.then(on_paper_evidence, [pdf, session], evidence.outputs, api_visibility="private",
                      trigger_mode="always_last")

        def upload_failed(s: Session) -> None:
            """A file that could not be read: an error toast titled as one (gr.Warning would say "Warning")."""
            if s.upload_error:
                raise gr.Error(s.upload_error, title="Upload failed")

        uploaded.then(upload_failed, [session], None, api_visibility="private",  # queued: its error is a toast
                      trigger_mode="always_last")
        evidence_view.wire(evidence, session, lambda s: s.evidence, aspects)

        # ------------------------------------------------------------ copy buttons (the raw review text)
        copy_js = "(t) => { if (t) navigator.clipboard.writeText(t); return []; }"
        local_copy.click(None, [local_raw], None, js=copy_js, api_visibility="private")
        gpt_copy.click(None, [gpt_raw], None, js=copy_js, api_visibility="private")

        # ------------------------------------------------------------ named API endpoints / MCP tools
        for fn, name in api.endpoints(service):
            limits = dict(concurrency_id=GPU_QUEUE, concurrency_limit=1) if name == "review" else {}
            gr.api(fn, api_name=name, **limits)
    return demo


def launch(demo: gr.Blocks, mcp_server: bool = True, **kwargs: Any):
    """Queue (the GPU slot is per event, see GPU_QUEUE), the page's CSS, and the MCP server."""
    if mcp_server:
        mcp_json.install()  # tool results as JSON, not Python reprs
    css = CSS + evidence_view.CSS + compare_view.CSS + history.CSS
    return demo.queue(default_concurrency_limit=4).launch(css=css, mcp_server=mcp_server,
                                                          show_error=True, **kwargs)
