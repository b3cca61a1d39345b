"""Parse time of each real PDF (PyMuPDF ingestion with the hidden-text guard), CPU.

    python -m benchmarks.bench_pdf [more.pdf ...]      # target: <= 0.5 s for a 15-page paper
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from reviewgpt.ingest import extract

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted((ROOT / "assets" / "examples").glob("*.pdf"))
    print("| PDF | pages | sections | best of 5 (s) | median (s) |\n|---|---|---|---|---|")
    for path in paths:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            doc = extract(path)
            times.append(time.perf_counter() - t)
        times.sort()
        print(f"| {path.name} | {doc.page_count} | {len(doc.sections)} | {times[0]:.3f} | {times[2]:.3f} |")


if __name__ == "__main__":
    main()
