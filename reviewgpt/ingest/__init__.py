"""PDF (or dataset record) -> Document: text extraction, structure, the hidden-text guard."""

from reviewgpt.ingest.pdf import extract, join_lines

__all__ = ["extract", "join_lines"]
