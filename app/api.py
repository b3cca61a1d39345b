"""The named API endpoints (also the MCP tools): parse, review, gpt4_review, judge, ground, rate.

Each takes the paper text and builds the ModelInput with the page's prepare(): the "text" that parse
returned, passed back unchanged, is read from its parsed Document with the page's section policy
(the same cut, the same model input as on the page); any other text is cut at the end.
"""

from __future__ import annotations

import random
from typing import Any, Iterator

import gradio as gr
from gradio.data_classes import FileData

from reviewgpt.config import RECIPE_SUPPRESSION, GenerationConfig
from reviewgpt.errors import PDFError, ReviewGPTError
from reviewgpt.grounding import PaperIndex, counts, ground_review
from reviewgpt.prepare.model_input import ModelInput

from . import paper_check
from .api_docs import one_line_items
from .human_reviews import HumanReviews, split_pasted
from .rating import rate as rate_review
from .service import Paper, ReviewService, UnknownPaperId, read_paper


def _path(file: Any) -> str:
    """A local path from what Gradio hands over: a path, a FileData, or its dict form."""
    if isinstance(file, str):
        return file
    return getattr(file, "path", None) or getattr(file, "name", None) or file["path"]


def _text(paper_text: str | None) -> str:
    if not (paper_text or "").strip():
        raise gr.Error("The paper text is empty: pass the paper as text (e.g. the 'text' that parse returns).")
    return paper_text


def _input(service: ReviewService, paper_text: str | None, aspects: str) -> ModelInput:
    """What the models read: parse's text or id as the page reads the PDF, other text cut at the end."""
    try:
        return service.prepare(service.paper_for(_text(paper_text)), aspects)
    except UnknownPaperId as e:
        raise gr.Error(str(e)) from None


def paper_dict(paper: Paper, mi: ModelInput, paper_id: str = "") -> dict[str, Any]:
    d = paper.document
    return {"id": paper_id, "title": d.title, "abstract": d.abstract, "pages": d.page_count, "file": paper.filename,
            "pdf_sha256": paper.sha256, "sections": [s.heading for s in d.sections], "text": d.to_text(),
            "warnings": paper_check.warnings(d),
            "hidden_text": [{"page": h.page, "text": h.text, "reason": h.reason} for h in d.hidden_text],
            "budget": mi.summary(), "model_input": mi.to_dict()}


def endpoints(service: ReviewService) -> list[tuple[Any, str]]:
    """(function, api_name) pairs; the docstrings are what API and MCP clients read."""

    def parse(pdf_file: FileData, aspects: str = "7") -> dict:
        """Parse a paper PDF into text.

        Args:
            pdf_file: the paper as a PDF file: a public http(s) URL, a base64 data URL (for a file on the
                caller's machine; Gradio refuses loopback and private URLs), or an upload (the upload tool is
                Gradio's helper `gradio upload-mcp <app url> <folder>`, run beside the MCP client).
            aspects: "7" or "4": the review schema whose prompt budget is reported.

        Returns:
            id (pass it, or the text, as paper_text to review, gpt4_review or judge: the models then read the
            paper exactly as the page does), title, abstract, pages, sections, text (the whole parsed paper), warnings, hidden_text
            (text a human cannot see, left out of the model input), pdf_sha256, budget (what the
            models will read) and model_input (its token counts and what was cut).
        """
        try:
            paper = read_paper(_path(pdf_file), service.ingest)
        except PDFError as e:
            raise gr.Error(str(e)) from None
        paper_id = service.remember(paper.document)  # its "text" or "id" passed back reads as the page reads the PDF
        return paper_dict(paper, service.prepare(paper.document, aspects), paper_id)

    def review(paper_text: str, aspects: str = "7", suppression: float = RECIPE_SUPPRESSION,
               temperature: float = GenerationConfig.temperature,
               seed: int = -1) -> Iterator[dict]:
        """The fine-tuned model's structured review of a paper (streamed: each update is the review so far).

        Args:
            paper_text: the paper: the "id" or the "text" that parse returns is read as the page reads the
                PDF (same sections kept and left out); other text is cut at the end of the budget.
            aspects: "7" or "4" review aspects.
            suppression: 0..1, how strongly the empty-item marker <No related terms> is discouraged (default: the recipe's strength).
            temperature: sampling temperature; 0 = greedy.
            seed: random seed; -1 picks one (the result records it).

        Returns:
            review (Markdown), markers (per aspect: P(empty) before and after suppression, empty or
            not; filled in the last update), model, settings, model_input.
        """
        try:
            mi = _input(service, paper_text, aspects)
            gen = service.generation(suppression, temperature, seed if seed is not None and seed >= 0 else None)
            if gen.seed is None:
                gen.seed = random.randrange(2**31)
            result = {"review": "", "markers": None, "model": service.local_label.detail,
                      "settings": {"aspects": mi.schema, "suppression": suppression, "temperature": temperature,
                                   "seed": gen.seed, "max_new_tokens": gen.max_new_tokens},
                      "model_input": mi.to_dict()}
            for item in service.stream_local(mi, gen):
                if isinstance(item, str):
                    result["review"] += item
                else:
                    result["markers"] = item.to_dict()
                yield dict(result)
        except ReviewGPTError as e:
            raise gr.Error(str(e)) from None

    def gpt4_review(paper_text: str, aspects: str = "7", temperature: float = 0.7) -> Iterator[str]:
        """The GPT-4 baseline's review of the same paper text, in the same format (streamed).

        Args:
            paper_text: the paper: parse's "id" or "text" (read as the page reads the PDF), or other text;
                fitted to the same budget as for the fine-tuned model.
            aspects: "7" or "4".
            temperature: sampling temperature.
        """
        try:
            out = ""
            for piece in service.stream_gpt(_input(service, paper_text, aspects), temperature):
                out += piece
                yield out
        except ReviewGPTError as e:
            raise gr.Error(str(e)) from None

    def judge(paper_text: str, review_a: str, review_b: str, aspects: str = "7", human_reviews: str = "") -> dict:
        """Pairwise verdict on two reviews of the paper, asked in both orders.

        Args:
            paper_text: the paper: parse's "id" or "text", or other text (the judge reads the same budgeted
                text as the reviewers).
            review_a: the first review.
            review_b: the second review.
            aspects: "7" or "4".
            human_reviews: optional: the paper's human reviews, separated by a line of ---; the judge compares
                against them (its ground truth), as on the page.

        Returns:
            winner ("A", "B", "tie" or "no verdict"), consistent (both orders agree), rationale, aspects,
            human_reviews (given, count, sha256).
        """
        try:
            if not (review_a or "").strip() or not (review_b or "").strip():
                raise gr.Error("Both reviews are needed: review_a or review_b is empty.")
            human = HumanReviews(split_pasted(human_reviews or ""), "pasted")
            verdict = service.judge(_input(service, paper_text, aspects), review_a, review_b, human.texts or None)
            return {**verdict.to_dict(), "human_reviews": human.record()}
        except ReviewGPTError as e:
            raise gr.Error(str(e)) from None

    def ground(pdf_file: FileData, review: str, aspects: str = "7") -> dict:
        """Trace every item of a review to the paper: a quoted span is verified against the paper's text
        and located on its page; an item without a quote gets the best-matching passage (BM25) as related.

        Args:
            pdf_file: the paper as a PDF file (an http(s) URL, a base64 data URL, or an upload).
            review: the review in the review format (## aspect headers, numbered items), e.g. what review returns.
            aspects: "7" or "4": the schema the review follows.

        Returns:
            items: one per review item {aspect, item, title, quote, status (verified | related |
            not_found), page, bbox, boxes (page, rect per line), passage (the paper's text), score,
            score_kind (exact | bm25 | fuzzy)}; counts per status. A quote that is not in the paper is
            never verified: it is not_found, with the paper's closest text as passage when near.
        """
        if not (review or "").strip():
            raise gr.Error("The review is empty: pass the review text (e.g. the 'review' that review returns).")
        path = _path(pdf_file)
        try:
            paper = read_paper(path, service.ingest)
        except PDFError as e:
            raise gr.Error(str(e)) from None
        evidence = ground_review(PaperIndex.build(paper.document, path), review, aspects)
        return {"items": [e.to_dict() for e in evidence], "counts": counts(evidence)}

    def rate(review: str) -> dict:
        """The calibrated rating of a review: the rating a reviewer who wrote this review would give on
        ICLR's 1-10 scale (calibrated on ICLR 2017 reviews), its 80% interval, and P(accept).

        Args:
            review: the review text (any review: the local model's, GPT-4's, or pasted).

        Returns:
            rating, low, high (the 80% interval), p_accept, calibrated; text that is not a review of an
            ML paper (a paper's own text, a recipe, gibberish) gets calibrated false, the numbers null
            and the reason. Also label (what the number means) and model (the rating model's version).
        """
        if not (review or "").strip():
            raise gr.Error("The review is empty: pass the review text (e.g. the 'review' that review returns).")
        return rate_review(review)

    return [(one_line_items(fn), name) for fn, name in
            [(parse, "parse"), (review, "review"), (gpt4_review, "gpt4_review"), (judge, "judge"), (ground, "ground"),
             (rate, "rate")]]
