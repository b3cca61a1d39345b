"""PDF (or dataset record) -> Document: text extraction, structure, the hidden-text guard."""

from typing import Any

__all__ = ["extract", "join_lines"]


def __getattr__(name: str) -> Any:
    # PyMuPDF is imported with the PDF reader only: the Document (ingest.document) and everything that
    # only reads text (the engine, training, a GPU machine without PyMuPDF) do not need it.
    if name in __all__:
        from reviewgpt.ingest import pdf

        return getattr(pdf, name)
    raise AttributeError(name)
