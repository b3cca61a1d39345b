from .ingest import extract, join_lines

__all__ = ["extract", "join_lines"]
