"""Does an upload look like a research paper? A one-page table sheet, a form or a slide is reviewed
all the same, but the page and /parse say so first (issue #26)."""

from __future__ import annotations

from reviewgpt.ingest.document import Document

MIN_WORDS = 400  # below this no paper, whatever its shape (a short workshop paper has ~1,500+)
SHORT_WORDS, SHORT_PAGES = 1500, 2  # without an abstract, this short is not a paper either


def not_a_paper(doc: Document) -> str | None:
    """Why the document does not look like a paper, in one sentence; None when it does."""
    words = len(doc.to_text().split())
    abstract = bool((doc.abstract or "").strip())
    if words >= MIN_WORDS and (abstract or (words >= SHORT_WORDS and doc.page_count > SHORT_PAGES)):
        return None
    headings = sum(1 for s in doc.sections if (s.heading or "").strip())
    shape = (f"{doc.page_count} page{'s' if doc.page_count != 1 else ''}, {words:,} words, "
             f"{'an abstract' if abstract else 'no abstract'}, "
             f"{headings or 'no'} section heading{'s' if headings != 1 else ''}")
    return (f"This does not look like a research paper ({shape}). The models will review it anyway; "
            "read their reviews with that in mind.")


def warnings(doc: Document) -> list[str]:
    """What the page and /parse warn about a document: the parser's warnings, then not_a_paper's."""
    return doc.warnings + ([odd] if (odd := not_a_paper(doc)) else [])
