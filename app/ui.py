"""The Gradio Blocks UI and the named API endpoints (parse, review, gpt4_review, judge)."""

from __future__ import annotations

import io
import threading
from typing import Any, Iterator

import gradio as gr
from PIL import Image

from reviewgpt.errors import PDFError, ReviewGPTError
from reviewgpt.format.review_format import parse

from .service import ReviewService, as_api_dict, describe_paper, stats_markdown, verdict_markdown
from .settings import EXAMPLES_DIR

SUPPRESSION_HELP = ("How strongly to discourage the empty-item marker <No related terms>: the chance of starting "
                    "it is multiplied by (1 - strength). 0 = off; 0.95 = the recipe's setting.")
ASPECTS = [("7 aspects", "7"), ("4 aspects", "4")]


def _paper_path(file: Any) -> str:
    return file if isinstance(file, str) else getattr(file, "name", None) or file["path"]


def build(service: ReviewService) -> gr.Blocks:
    with gr.Blocks(title="Paper Review GPT") as demo:
        gr.Markdown("# Paper Review GPT\nUpload an ML paper (PDF): a fine-tuned Llama 3.1 and GPT-4 each write a "
                    "structured review, and a judge says which is better.")
        banner = service.banner()
        gr.Markdown(banner, visible=bool(banner), elem_id="banner")
        doc_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                pdf = gr.File(label="Paper PDF", file_types=[".pdf"], type="filepath", elem_id="pdf")
                examples = sorted(EXAMPLES_DIR.glob("*.pdf"))
                if examples:
                    gr.Examples([[str(p)] for p in examples], inputs=[pdf], label="Example papers")
                preview = gr.Image(label="First page", type="pil", interactive=False, height=360)
            with gr.Column(scale=2):
                info = gr.Markdown(elem_id="paper-info")
                text = gr.Textbox(label="Extracted text (editable: fix a bad parse here)", lines=14, max_lines=14,
                                  elem_id="paper-text")
        with gr.Row():
            aspects = gr.Radio(ASPECTS, value="7", label="Review type", elem_id="aspects")
            suppression = gr.Slider(0.0, 1.0, value=0.95, step=0.05, label="Suppression strength",
                                    info=SUPPRESSION_HELP, elem_id="suppression")
        with gr.Accordion("Advanced", open=False):
            temperature = gr.Slider(0.0, 1.5, value=0.6, step=0.05, label="Sampling temperature (0 = greedy)")
        with gr.Row():
            go = gr.Button("Generate reviews", variant="primary", elem_id="generate")
            stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
        status = gr.Markdown("Upload a PDF to start.", elem_id="status")
        with gr.Row():
            with gr.Column():
                gr.Markdown(f"### {service.local_name}")
                local_md = gr.Markdown(elem_id="local-review", height=520)
                local_stats = gr.Markdown(elem_id="local-stats")
            with gr.Column():
                gr.Markdown(f"### {service.gpt_name}")
                gpt_md = gr.Markdown(elem_id="gpt-review", height=520)
                gpt_stats = gr.Markdown(elem_id="gpt-stats")
        verdict = gr.Markdown(elem_id="verdict")
        files = gr.File(label="Download (Markdown and JSON)", file_count="multiple", interactive=False)

        def on_pdf(path: str | None, schema: str):
            if not path:
                return None, "", "", None, "Upload a PDF to start."
            try:
                paper = service.read_pdf(_paper_path(path), schema)
            except PDFError as e:
                return None, "", "", None, f"**Error:** {e}"
            image = Image.open(io.BytesIO(paper.preview_png)) if paper.preview_png else None
            hidden = " Hidden text was found and left out (see the warning)." if paper.document.hidden_text else ""
            return paper.document, describe_paper(paper), paper.text, image, f"Parsed.{hidden} Press Generate."

        pdf.change(on_pdf, [pdf, aspects], [doc_state, info, text, preview, status], api_visibility="private")

        def on_generate(paper_text: str, document, schema: str, strength: float, temp: float) -> Iterator[tuple]:
            if not (paper_text or "").strip():
                yield "", "", "", "", "", None, "**Error:** upload a PDF (or paste the paper text) first."
                return
            stop = threading.Event()
            model_text = service.model_input(paper_text, schema, document)
            yield "", "", "", "", "", None, "Generating both reviews..."
            try:
                for out in service.run_both(model_text, schema, strength, temp, stop):
                    local = out.local.text or (f"**Error:** {out.local.error}" if out.local.error else "")
                    gpt = out.gpt.text or (f"**Not available:** {out.gpt.error}" if out.gpt.error else "")
                    finished = out.local.done and out.gpt.done
                    if not finished:
                        yield local, gpt, "", "", "", None, "Generating both reviews..."
                        continue
                    if out.verdict is None and not out.verdict_note and not out.files:
                        yield local, gpt, "", "", "", None, "Judging..."
                        continue
                    v = verdict_markdown(out.verdict, out.local.name, out.gpt.name) if out.verdict else out.verdict_note
                    ls = stats_markdown(parse(out.local.text, schema).report) if out.local.text else ""
                    gs = stats_markdown(parse(out.gpt.text, schema).report) if out.gpt.text else ""
                    yield local, gpt, ls, gs, v, out.files, "Done."
            finally:
                stop.set()  # also on Stop / a closed tab: the model stops writing

        event = go.click(on_generate, [text, doc_state, aspects, suppression, temperature],
                         [local_md, gpt_md, local_stats, gpt_stats, verdict, files, status],
                         api_visibility="private", concurrency_limit=4)
        stop_btn.click(lambda: "Stopped.", None, status, cancels=[event], api_visibility="private")

        # ------------------------------------------------------------ named API endpoints
        def api_parse(pdf_file: str) -> dict:
            """Parse a paper PDF: title, pages, sections, text, warnings, hidden text, token budget."""
            try:
                return as_api_dict(service.read_pdf(_paper_path(pdf_file)))
            except PDFError as e:
                raise gr.Error(str(e)) from None

        def api_review(paper_text: str, aspects: str = "7", suppression: float = 0.95,
                       temperature: float = 0.6) -> Iterator[str]:
            """The fine-tuned model's review of the paper text (streamed)."""
            try:
                yield from service.stream_local(service.model_input(paper_text, aspects), aspects, suppression,
                                                temperature)
            except ReviewGPTError as e:
                raise gr.Error(str(e)) from None

        def api_gpt4_review(paper_text: str, aspects: str = "7", temperature: float = 0.7) -> Iterator[str]:
            """The GPT-4 review of the paper text (streamed)."""
            try:
                yield from service.stream_gpt(service.model_input(paper_text, aspects), aspects, temperature)
            except ReviewGPTError as e:
                raise gr.Error(str(e)) from None

        def api_judge(paper_text: str, review_a: str, review_b: str, aspects: str = "7") -> dict:
            """Pairwise verdict (both orders): winner 'A', 'B', 'tie' or 'no verdict', rationale, consistency."""
            try:
                return service.judge(paper_text, aspects, review_a, review_b).to_dict()
            except ReviewGPTError as e:
                raise gr.Error(str(e)) from None

        gr.api(api_parse, api_name="parse")
        gr.api(api_review, api_name="review")
        gr.api(api_gpt4_review, api_name="gpt4_review")
        gr.api(api_judge, api_name="judge")
    return demo
