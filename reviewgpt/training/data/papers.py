"""Paper records: the ICLR 2017 reader, the generic JSONL format, and the deterministic split.

Generic JSONL (one paper a line), for bringing your own data::

    {"id": "...", "title": "...", "abstract": "...",
     "sections": [{"heading": "1 Introduction", "text": "..."}, ...],   # or "text": "full text"
     "reviews": ["review 1 text", "review 2 text", ...],
     "decision": "Accept" }                                              # optional
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from reviewgpt.ingest.document import Document, Section


@dataclass
class PaperRecord:
    id: str
    document: Document
    reviews: list[str]
    decision: str = ""
    ratings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "id": self.id, "title": self.document.title, "abstract": self.document.abstract,
            "sections": [{"heading": s.heading, "text": s.text} for s in self.document.sections],
            "reviews": self.reviews, "decision": self.decision, "ratings": self.ratings,
        }

    @classmethod
    def from_json(cls, d: dict) -> "PaperRecord":
        if "sections" in d:
            sections = [Section(s.get("heading") or "", s.get("text") or "") for s in d["sections"]]
        else:
            sections = [Section("", d.get("text", ""))]
        reviews = [r["review"] if isinstance(r, dict) else str(r) for r in d.get("reviews", [])]
        return cls(str(d["id"]), Document(d.get("title", ""), d.get("abstract", ""), sections),
                   reviews, d.get("decision", ""), list(d.get("ratings", [])))


def iclr2017_reviews(root: str | Path) -> Iterator[tuple[str, dict, list[dict]]]:
    """(paper id, its paper/ record, its reviews that have text) for each paper with a review/ file,
    in id order. A review without text is dropped whole, so its rating goes with it."""
    root = Path(root)
    for paper_file in sorted((root / "paper").glob("*_paper.json")):
        pid = paper_file.name[: -len("_paper.json")]
        review_file = root / "review" / f"{pid}_review.json"
        if not review_file.exists():
            continue
        reviews = [r for r in json.loads(review_file.read_text()).get("reviews", [])
                   if (r.get("review") or "").strip()]
        yield pid, json.loads(paper_file.read_text()), reviews


def read_iclr2017(root: str | Path) -> Iterator[PaperRecord]:
    """Read the ASAP-Review ICLR 2017 layout (paper/, content/, review/ joined by id); a record's
    reviews and ratings are parallel lists."""
    root = Path(root)
    for pid, paper, reviews in iclr2017_reviews(root):
        content_file = root / "content" / f"{pid}_content.json"
        if not reviews or not content_file.exists():
            continue
        meta = json.loads(content_file.read_text()).get("metadata", {})
        sections = [Section((s.get("heading") or "").strip(), (s.get("text") or "").strip())
                    for s in meta.get("sections") or [] if (s.get("text") or "").strip()]
        if not sections:
            continue
        doc = Document(title=(meta.get("title") or paper.get("title") or "").strip(),
                       abstract=(meta.get("abstractText") or "").strip(), sections=sections)
        yield PaperRecord(pid, doc, [r["review"].strip() for r in reviews], paper.get("decision", ""),
                          [r.get("rating", "") for r in reviews])


def read_jsonl(path: str | Path) -> Iterator[PaperRecord]:
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield PaperRecord.from_json(json.loads(line))
                except (KeyError, json.JSONDecodeError) as e:
                    raise ValueError(f"{path}:{n}: not a paper record ({e})") from e


def read_papers(source: str | Path) -> list[PaperRecord]:
    """A folder in the ICLR layout or a JSONL file."""
    source = Path(source)
    if source.is_dir():
        return list(read_iclr2017(source))
    return list(read_jsonl(source))


def split_of(paper_id: str, seed: int, val_frac: float, test_frac: float) -> str:
    """'train' | 'val' | 'test', by a hash of (seed, id): stable as papers are added or removed."""
    h = int(hashlib.sha256(f"{seed}:{paper_id}".encode()).hexdigest()[:12], 16) / 16**12
    if h < test_frac:
        return "test"
    if h < test_frac + val_frac:
        return "val"
    return "train"


def split(papers: Iterable[PaperRecord], seed: int = 0, val_frac: float = 0.05,
          test_frac: float = 0.1) -> dict[str, list[PaperRecord]]:
    out: dict[str, list[PaperRecord]] = {"train": [], "val": [], "test": []}
    for p in papers:
        out[split_of(p.id, seed, val_frac, test_frac)].append(p)
    return out
