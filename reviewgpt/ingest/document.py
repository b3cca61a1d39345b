"""The parsed paper: the one type that flows from ingestion (PDF or dataset) to the prompt."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Section:
    heading: str
    text: str


@dataclass
class HiddenSpan:
    page: int  # 1-based
    text: str
    reason: str  # why a reader cannot see it: see reviewgpt.ingest.hidden_text (e.g. "off-page")


@dataclass
class Document:
    title: str
    abstract: str
    sections: list[Section]
    page_count: int = 0
    warnings: list[str] = field(default_factory=list)
    hidden_text: list[HiddenSpan] = field(default_factory=list)
    references_dropped: bool = False
    ocr_pages: list[int] = field(default_factory=list)  # 1-based pages read by OCR (scanned)

    def section_texts(self) -> list[tuple[str, str]]:
        """(label, text) blocks in reading order: title, abstract, then each section."""
        blocks = []
        if self.title:
            blocks.append(("Title", f"Title: {self.title}"))
        if self.abstract:
            blocks.append(("Abstract", f"Abstract: {self.abstract}"))
        for s in self.sections:
            body = f"{s.heading}\n{s.text}".strip() if s.heading else s.text.strip()
            if body:
                # a section without a heading is named by its first words, so a cut note can say which
                blocks.append((s.heading or f"text starting “{' '.join(body.split()[:6])}…”", body))
        return blocks

    def to_text(self) -> str:
        """The paper as the model reads it (the user turn of the chat)."""
        return "\n\n".join(text for _, text in self.section_texts())


_INTRO = re.compile(r"^\s*(?:[0-9IVX]+\.?\s*)?introduction\b", re.I)
_APPENDIX = re.compile(r"^\s*(?:appendix|appendices|supplementary|[A-H](?:\.\d+)*\.?\s+\S)", re.I)


def is_introduction(heading: str) -> bool:
    return bool(_INTRO.match(heading or ""))


def is_appendix(heading: str) -> bool:
    return bool(_APPENDIX.match(heading or ""))
