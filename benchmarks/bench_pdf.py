"""Parse time and structure score of each committed real PDF (ingestion with the hidden-text guard).

    python -m benchmarks.bench_pdf [--repeat 5]    # targets: <= 1 s for a 15-page paper on 2 cores,
                                                   # structure score >= 9.5/10

Cases: tests/fixtures/pdfs/*.json (see benchmarks/score_pdf.py for the score). Times are wall
seconds of `extract()` (open, text, guard rendering, layout), best and median of --repeat runs,
one process, and the best CPU seconds of the process (what the parse costs when it has a core to
itself); the load average is printed because the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from benchmarks.score_pdf import load_cases, page_words, parse_ours, score
from reviewgpt.ingest import extract


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, cpus: {os.cpu_count()}")
    print("| PDF | pages | best (s) | median (s) | CPU best (s) | hidden spans | score /10 |")
    print("|---|---|---|---|---|---|---|")
    scores = []
    for case in load_cases():
        times, cpu = [], []
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            doc = extract(case.pdf)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        total = score(parse_ours(case.pdf), case, page_words(case))["total"]
        scores.append(total)
        print(f"| {case.name} | {doc.page_count} | {min(times):.3f} | {statistics.median(times):.3f} | "
              f"{min(cpu):.3f} | {len(doc.hidden_text)} | {total:.2f} |")
    print(f"mean score {statistics.mean(scores):.2f}/10, lowest {min(scores):.2f}; "
          f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
