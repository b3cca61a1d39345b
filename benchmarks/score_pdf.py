"""Structure score (0-10) of a PDF parser on the committed real papers with hand-checked answers.

    python -m benchmarks.score_pdf                       # this project's parser
    python -m benchmarks.score_pdf --engine pymupdf4llm  # pymupdf4llm 2.0 with pymupdf-layout
    python -m benchmarks.score_pdf --engine pymupdf4llm-legacy  # pymupdf4llm without layout

Cases: tests/fixtures/pdfs/*.json (pdf path, title, abstract start, headings in order, optional
headings, running header/footer strings). Parts and weights:
  title 1.5     similarity to the expected title
  abstract 1.5  the abstract starts with the expected text (0.5 if found later in it)
  headings 3    0.7 x F1 of headings found (optional ones neither count nor cost) + 0.3 x order
  coverage 2    share of the page words (MuPDF, de-hyphenated; running lines left out) in the output
  running 1     running headers/footers left in the body text (each beyond one occurrence costs)
  clean 1       defects: "xx- yy" hyphens left (not "one- and two-"), ligature code points, control characters
Also counted, outside the score: body lines dropped (`dropped_lines`: a horizontal page line of four
words or more, not a running line, whose text is nowhere in the output); `--show-dropped` lists them.
Both parsers are scored with references kept (pymupdf4llm keeps them).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymupdf

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "fixtures" / "pdfs"
WEIGHTS = {"title": 1.5, "abstract": 1.5, "headings": 3.0, "coverage": 2.0, "running": 1.0, "clean": 1.0}


@dataclass
class Case:
    name: str
    pdf: Path
    title: str
    abstract: str
    headings: list[str]
    optional: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    template: str = ""


@dataclass
class Parsed:
    """What a parser gave, in the terms the score needs."""
    title: str
    abstract: str
    headings: list[str]
    body: str  # everything but the title and abstract


def load_cases() -> list[Case]:
    out = []
    for f in sorted(CASES.glob("*.json")):
        d = json.loads(f.read_text())
        out.append(Case(f.stem, ROOT / d.pop("pdf"), **d))
    return out


def norm(s: str) -> str:
    s = unicodedata.normalize("NFKC", s).lower()
    return re.sub(r"[\W_]+", "", s)


def words(s: str) -> Counter[str]:
    """Runs of letters and runs of digits: a footnote mark counts the same glued to its word
    ("1OpenReview", as MuPDF's plain text has it) or set apart ("1 OpenReview")."""
    return Counter(re.findall(r"\d+|[^\W\d_]+", unicodedata.normalize("NFKC", s).lower()))


def page_words(case: Case) -> Counter[str]:
    """The words a reader sees on the pages, hyphenation undone, running lines and page numbers out."""
    doc = pymupdf.open(case.pdf)
    flags = pymupdf.TEXTFLAGS_TEXT | pymupdf.TEXT_DEHYPHENATE
    running = {norm(r) for r in case.running}
    kept = []
    for page in doc:
        for line in page.get_text(flags=flags).split("\n"):
            n = norm(line)
            if n and not n.isdigit() and n not in running:
                kept.append(line)
    return words("\n".join(kept))


def dropped_lines(p: Parsed, case: Case) -> list[tuple[int, str]]:
    """(page, text) of each body line of the PDF whose text is not in the output: a horizontal line
    of four words or more (sideways figure labels and margin stamps, table cells and lone numbers
    are not body lines), not one of the case's running lines. Compared without spaces or
    punctuation, so that hyphens undone and lines rejoined still match."""
    out = norm(f"{p.title}\n{p.abstract}\n{' '.join(p.headings)}\n{p.body}")
    running = {norm(r) for r in case.running}
    lost = []
    doc = pymupdf.open(case.pdf)
    for pno in range(1, doc.page_count + 1):
        for block in doc[pno - 1].get_text("dict", flags=pymupdf.TEXTFLAGS_TEXT)["blocks"]:
            for line in block.get("lines", []):
                text = "".join(s["text"] for s in line["spans"])
                if abs(line["dir"][1]) > 0.2 or len(re.findall(r"[^\W\d_]{2,}", text)) < 4:
                    continue
                n = re.sub(r"^abstract", "", norm(text))  # "Abstract. Lorem ..." opens the abstract
                if n not in running and n not in out:
                    lost.append((pno, text.strip()))
    return lost


def _same(a: str, b: str) -> bool:
    a, b = norm(a), norm(b)
    return a == b or (len(a) > 8 and difflib.SequenceMatcher(None, a, b).ratio() >= 0.9)


def _in_order(found_positions: list[int]) -> float:
    """Longest increasing run of expected-heading positions, as a share."""
    if not found_positions:
        return 0.0
    tails: list[int] = []
    import bisect
    for p in found_positions:
        i = bisect.bisect_left(tails, p)
        tails[i:i + 1] = [p]
    return len(tails) / len(found_positions)


def score(p: Parsed, case: Case, seen: Counter[str]) -> dict[str, Any]:
    """The parts (0-1 each), "total" (0-10) and "heading_counts" (right, wrong, expected)."""
    parts: dict[str, Any] = {}
    t = difflib.SequenceMatcher(None, norm(p.title), norm(case.title)).ratio()
    parts["title"] = 1.0 if t >= 0.9 else t
    want, got = norm(case.abstract), norm(p.abstract)
    parts["abstract"] = 1.0 if got.startswith(want[:80]) else 0.5 if want[:80] in got else 0.0
    matched, positions, extra = set(), [], 0
    for h in p.headings:
        hit = next((i for i, e in enumerate(case.headings) if i not in matched and _same(h, e)), None)
        if hit is not None:
            matched.add(hit)
            positions.append(hit)
        elif not any(_same(h, o) for o in case.optional):
            extra += 1
    recall = len(matched) / max(len(case.headings), 1)
    precision = len(matched) / max(len(matched) + extra, 1)
    parts["heading_counts"] = (len(matched), extra, len(case.headings))  # found right, found wrong, expected
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    parts["headings"] = 0.7 * f1 + 0.3 * _in_order(positions)
    out = words(f"{p.title}\n{p.abstract}\n{' '.join(p.headings)}\n{p.body}")
    parts["coverage"] = sum(min(n, out[w]) for w, n in seen.items()) / max(sum(seen.values()), 1)
    body = re.sub(r"\s+", " ", p.body)
    leaks = sum(max(0, body.count(r) - 1) for r in case.running)
    n_pages = pymupdf.open(case.pdf).page_count
    parts["running"] = max(0.0, 1 - leaks / max(n_pages - 1, 1))
    broken_hyphens = re.findall(r"[a-z]- (?!and\b|or\b|to\b)[a-z]", body)  # not "one- and two-page"
    defects = (len(broken_hyphens) + len(re.findall(r"[\ufb00-\ufb06]", body))
               + len(re.findall(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", body)))
    parts["clean"] = max(0.0, 1 - defects / 20)
    parts["total"] = sum(WEIGHTS[k] * parts[k] for k in WEIGHTS)
    return parts


# --- parsers -----------------------------------------------------------------------------------

def parse_ours(path: Path) -> Parsed:
    from reviewgpt.config import IngestConfig
    from reviewgpt.ingest import extract
    doc = extract(path, IngestConfig(keep_references=True))
    return Parsed(doc.title, doc.abstract, [s.heading for s in doc.sections if s.heading],
                  "\n\n".join(f"{s.heading}\n{s.text}" for s in doc.sections))


def _strip_md(s: str) -> str:
    s = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", s)
    s = re.sub(r"</?(?:sup|sub|br)>", "", s)
    s = s.replace("**", "").replace("|", " ")
    s = re.sub(r"(?<!\w)_(?=\S)|(?<=\S)_(?!\w)", "", s)
    s = re.sub(r"^[-=]{3,}\s*$", "", s, flags=re.M)
    return s


def from_markdown(md: str) -> Parsed:
    """pymupdf4llm's Markdown in the same terms: '#' lines are headings (the first one, unless it
    is "Abstract", is the title); lines between blank lines are one paragraph, as Markdown reads."""
    title, abstract, headings, body = "", "", [], []
    in_abstract = False
    for block in re.split(r"\n\s*\n", md):
        lines = [ln for ln in block.split("\n") if ln.strip()]
        while lines and re.match(r"^#{1,6}\s+", lines[0]):
            text = _strip_md(re.sub(r"^#{1,6}\s+", "", lines.pop(0))).strip()
            if not title and not headings and not re.match(r"abstract", text, re.I):
                title = text
                continue
            in_abstract = bool(re.match(r"^abstract\s*$", text, re.I))
            if not in_abstract:
                headings.append(text)
                body.append(text)
        para = " ".join(_strip_md(ln).strip() for ln in lines).strip()
        if not para:
            continue
        if in_abstract:
            abstract = f"{abstract} {para}".strip()
        elif not abstract and re.match(r"^abstract\b", para, re.I) and len(para) > 60:
            abstract = re.sub(r"^abstract\s*[:.—-]?\s*", "", para, flags=re.I)
        else:
            body.append(para)
    return Parsed(title, abstract, headings, "\n".join(body))


def parse_pymupdf4llm(path: Path) -> Parsed:
    import pymupdf4llm
    return from_markdown(pymupdf4llm.to_markdown(str(path), show_progress=False))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="ours", choices=["ours", "pymupdf4llm", "pymupdf4llm-legacy"])
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--show-dropped", action="store_true", help="list the body lines missing from the output")
    ap.add_argument("--show-headings", action="store_true", help="list the headings found wrongly and missed")
    args = ap.parse_args()
    if args.engine.startswith("pymupdf4llm"):
        import pymupdf4llm
        pymupdf4llm.use_layout(args.engine == "pymupdf4llm")  # 2.0 uses pymupdf-layout by default
    parse = parse_ours if args.engine == "ours" else parse_pymupdf4llm
    rows = []
    print(f"engine: {args.engine}")
    print("| case | pages | s | title | abstract | headings | coverage | running | clean | score /10 "
          "| body lines dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for case in load_cases():
        t = time.perf_counter()
        parsed = parse(case.pdf)
        secs = time.perf_counter() - t
        parts = score(parsed, case, page_words(case))
        pages = pymupdf.open(case.pdf).page_count
        lost = dropped_lines(parsed, case)
        rows.append({"case": case.name, "pages": pages, "seconds": secs, **parts, "dropped_lines": len(lost)})
        print(f"| {case.name} | {pages} | {secs:.2f} | " + " | ".join(f"{parts[k]:.2f}" for k in WEIGHTS)
              + f" | {parts['total']:.2f} | {len(lost)} |")
        if args.show_headings:
            got = [h for h in parsed.headings if not any(_same(h, e) for e in case.headings + case.optional)]
            miss = [e for e in case.headings if not any(_same(h, e) for h in parsed.headings)]
            for h in got:
                print(f"    heading not expected: {h}")
            for e in miss:
                print(f"    heading missed: {e}")
        if args.show_dropped:
            for pno, text in lost:
                print(f"    dropped, page {pno}: {text}")
    mean = sum(r["total"] for r in rows) / len(rows)
    right, wrong, expected = (sum(r["heading_counts"][i] for r in rows) for i in range(3))
    print(f"headings over all cases: precision {right / max(right + wrong, 1):.3f} ({wrong} wrong), "
          f"recall {right / max(expected, 1):.3f} ({expected - right} missed of {expected})")
    seconds, pages = sum(r["seconds"] for r in rows), sum(r["pages"] for r in rows)
    print(f"mean score {mean:.2f}/10, total {seconds:.1f} s for {pages} pages, "
          f"{sum(r['dropped_lines'] for r in rows)} body lines dropped")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
