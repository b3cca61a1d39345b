"""The review text format: one Markdown layout, a renderer and a tolerant parser.

Format (what `render` writes and what the models are trained to write)::

    ## <criterion 1, verbatim from the schema>
    1. **<short title>**: <explanation>
    2. **<short title>**: <explanation>

    ## <criterion 2>
    <No related terms>

Every criterion of the schema appears once, in schema order, as a level-2 header. Under it come
numbered items (a bold short title, a colon, the explanation on the same line) or the empty marker
alone. `parse(render(r)) == r` for every review `r`.

The parser reads what models really write: headers as `## X`, `**X**`, `** X **` or `X:`; headers
missing, reordered, duplicated or unknown ("Summary", "Strengths"...); bullets (`-`, `*`, `•`) or
`1)` instead of `1.`; items without a bold title; multi-line explanations; text before the first
header or after the last item. It never raises on text; it reports what it saw.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field

from reviewgpt.format.schema import EMPTY_MARKER, ReviewSchema, get_schema


@dataclass(frozen=True)
class ReviewItem:
    title: str
    explanation: str


@dataclass
class Review:
    """A structured review: for each criterion of the schema, its items (empty list = marker)."""

    schema_name: str
    sections: dict[str, list[ReviewItem]]

    @property
    def schema(self) -> ReviewSchema:
        return get_schema(self.schema_name)

    def to_dict(self) -> dict:
        return {
            "schema": self.schema_name,
            "sections": {k: [asdict(i) for i in v] for k, v in self.sections.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Review":
        return cls(
            schema_name=data["schema"],
            sections={k: [ReviewItem(**i) for i in v] for k, v in data["sections"].items()},
        )


@dataclass
class CriterionReport:
    criterion: str
    present: bool  # a header for it was found
    empty: bool  # present and only the empty marker (or nothing) under it
    item_count: int


@dataclass
class ParseReport:
    criteria: list[CriterionReport]
    unknown_sections: list[tuple[str, str]] = field(default_factory=list)  # (heading, text)
    in_order: bool = True
    duplicates: list[str] = field(default_factory=list)
    leading_text: str = ""
    trailing_text: str = ""

    @property
    def missing(self) -> list[str]:
        return [c.criterion for c in self.criteria if not c.present]

    @property
    def empty(self) -> list[str]:
        return [c.criterion for c in self.criteria if c.present and c.empty]

    @property
    def empty_rate(self) -> float:
        """Share of criteria that are empty or missing: what sequence suppression aims to lower."""
        return sum(1 for c in self.criteria if c.empty or not c.present) / len(self.criteria)

    @property
    def is_well_formed(self) -> bool:
        return not self.missing and self.in_order and not self.duplicates and not self.unknown_sections

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(missing=self.missing, empty=self.empty, empty_rate=self.empty_rate,
                 is_well_formed=self.is_well_formed)
        return d


@dataclass
class ParsedReview:
    review: Review
    report: ParseReport


# ----------------------------------------------------------------------------------- render


def render_item(number: int, item: ReviewItem) -> str:
    if item.title:
        return f"{number}. **{item.title}**: {item.explanation}".rstrip()
    return f"{number}. {item.explanation}"


def render(review: Review) -> str:
    """Structured review -> the canonical Markdown text."""
    blocks = []
    for criterion in review.schema.criteria:
        items = review.sections.get(criterion, [])
        body = "\n".join(render_item(n, it) for n, it in enumerate(items, 1)) if items else EMPTY_MARKER
        blocks.append(f"## {criterion}\n{body}")
    return "\n\n".join(blocks) + "\n"


# ------------------------------------------------------------------------------------ parse

_MD_HEADER = re.compile(r"^\s{0,3}#{1,6}\s+(?P<h>.+?)\s*#*\s*$")
_BOLD_HEADER = re.compile(r"^\s*\*\*\s*(?P<h>[^*]+?)\s*\*\*\s*:?\s*$")
_COLON_HEADER = re.compile(r"^\s*(?P<h>[A-Z][^:]{2,150}):\s*$")
_ITEM = re.compile(r"^(?P<indent>\s*)(?:(?P<num>\d{1,3})[.)]|[-*•+])\s+(?P<body>.*)$")
_BOLD_TITLE = re.compile(r"^\*\*(?P<t>.+?)\*\*\s*(?:[:：\-–—]\s*)?(?P<rest>.*)$")
_PLAIN_TITLE = re.compile(r"^(?P<t>[^:]{2,80}?):\s+(?P<rest>.+)$")


def _norm(text: str) -> str:
    text = re.sub(r"[*#_`]", " ", text).lower()
    text = re.sub(r"^\s*(\d+[.)]|[ivx]+[.)])\s+", "", text)  # "1. Idea" / "iv) ..."
    return re.sub(r"[^a-z0-9&]+", " ", text).strip()


def _match_criterion(heading: str, schema: ReviewSchema) -> int | None:
    """Index of the schema criterion a heading names, or None for an unknown section."""
    h = _norm(heading)
    if not h:
        return None
    best, best_score = None, 0.0
    for i, criterion in enumerate(schema.criteria):
        names = [_norm(criterion), *(_norm(a) for a in schema.aliases_for(i))]
        for name in names:
            if h == name:
                return i
            score = difflib.SequenceMatcher(None, h, name).ratio()
            if score > best_score:
                best, best_score = i, score
    return best if best_score >= 0.82 else None


def _heading_of(line: str, schema: ReviewSchema) -> tuple[str | None, int | None]:
    """(heading text, criterion index) if the line is a header; (None, None) otherwise.

    A bold-only or `Name:` line counts as a header only when it names a known criterion or is
    a short title-like line: this keeps `**Note**` inside an item from splitting sections.
    """
    m = _MD_HEADER.match(line)
    if m:
        return m["h"], _match_criterion(m["h"], schema)
    for pattern in (_BOLD_HEADER, _COLON_HEADER):
        m = pattern.match(line)
        if m:
            idx = _match_criterion(m["h"], schema)
            if idx is not None or (pattern is _BOLD_HEADER and len(m["h"].split()) <= 6):
                return m["h"], idx
    return None, None


def criterion_of_header(line: str, schema: ReviewSchema | str | int) -> int | None:
    """The schema index of the criterion a header line names, or None (not a header / unknown)."""
    return _heading_of(line, get_schema(schema))[1]


def _split_item(body: str) -> ReviewItem:
    body = body.strip()
    m = _BOLD_TITLE.match(body)
    if m:
        return ReviewItem(m["t"].strip().rstrip(":").strip(), m["rest"].strip())
    m = _PLAIN_TITLE.match(body)
    if m and len(m["t"].split()) <= 12:
        return ReviewItem(m["t"].strip(), m["rest"].strip())
    return ReviewItem("", body)


@dataclass
class _Section:
    heading: str
    index: int | None
    items: list[list[str]] = field(default_factory=list)  # raw lines of each item
    free_text: list[str] = field(default_factory=list)  # non-item lines before the first item
    after_text: list[str] = field(default_factory=list)  # paragraphs after the items

    def text(self) -> str:
        lines = self.free_text + [ln for it in self.items for ln in it] + self.after_text
        return "\n".join(lines).strip()


def _is_marker(text: str) -> bool:
    return _norm(text) == _norm(EMPTY_MARKER) or text.strip().strip("*_`.") == EMPTY_MARKER


def _section_items(sec: _Section) -> list[ReviewItem]:
    items = []
    for lines in sec.items:
        first, rest = lines[0], [ln.strip() for ln in lines[1:] if ln.strip()]
        item = _split_item(first)
        if rest:
            sep = " " if item.explanation else ""
            item = ReviewItem(item.title, (item.explanation + sep + " ".join(rest)).strip())
        if _is_marker(item.title + item.explanation) or _is_marker(item.explanation) and not item.title:
            continue
        items.append(item)
    if not items:
        # A section written as prose (no list): keep it as one untitled item unless it is the marker.
        prose = " ".join(ln.strip() for ln in sec.free_text if ln.strip())
        if prose and not _is_marker(prose):
            items.append(ReviewItem("", prose))
    return items


def parse(text: str, schema: ReviewSchema | str | int) -> ParsedReview:
    """Model or human text -> structured review plus a report of every deviation from the format."""
    schema = get_schema(schema)
    sections: list[_Section] = []
    leading: list[str] = []
    current: _Section | None = None
    blank_since_item = False

    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.rstrip()
        heading, idx = _heading_of(line, schema) if line.strip() else (None, None)
        if heading is not None:
            current = _Section(heading.strip(), idx)
            sections.append(current)
            blank_since_item = False
            continue
        if current is None:
            leading.append(line)
            continue
        if not line.strip():
            blank_since_item = True
            continue
        item = _ITEM.match(line)
        if item and not (item["indent"] and current.items and not blank_since_item and len(item["indent"]) >= 2):
            current.items.append([item["body"]])
            blank_since_item = False
        elif current.items and (not blank_since_item or raw.startswith((" ", "\t"))):
            # Continuation of the previous item (wrapped line or indented sub-point).
            current.items[-1].append(line)
            blank_since_item = False
        elif current.items:
            current.after_text.append(line)
        else:
            current.free_text.append(line)

    result: dict[str, list[ReviewItem]] = {c: [] for c in schema.criteria}
    seen: dict[int, int] = {}
    order: list[int] = []
    unknown: list[tuple[str, str]] = []
    duplicates: list[str] = []
    for sec in sections:
        if sec.index is None:
            unknown.append((sec.heading, sec.text()))
            continue
        criterion = schema.criteria[sec.index]
        if sec.index in seen:
            duplicates.append(criterion)
        seen[sec.index] = seen.get(sec.index, 0) + 1
        order.append(sec.index)
        result[criterion].extend(_section_items(sec))

    trailing = ""
    known = [s for s in sections if s.index is not None]
    if known and known[-1] is sections[-1] and known[-1].after_text:
        trailing = "\n".join(known[-1].after_text).strip()

    report = ParseReport(
        criteria=[
            CriterionReport(c, present=i in seen, empty=i in seen and not result[c],
                            item_count=len(result[c]))
            for i, c in enumerate(schema.criteria)
        ],
        unknown_sections=unknown,
        in_order=order == sorted(order),
        duplicates=duplicates,
        leading_text="\n".join(leading).strip(),
        trailing_text=trailing,
    )
    return ParsedReview(Review(schema.name, result), report)
