"""Load test: N concurrent gradio_client users on the running app's /review endpoint (the demo model
by default), each with its own paper text and seed. Checks every user completes and gets the review
of its own request; prints queue positions seen and per-user wait / total times.

    python -m benchmarks.bench_app_load                 # starts the app with the demo model, 8 users
    python -m benchmarks.bench_app_load --url http://127.0.0.1:7860/ --users 8
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import statistics
import threading
import time

from gradio_client import Client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_demo_app() -> str:
    from app.service import ReviewService
    from app.settings import AppSettings
    from app.ui import build, launch

    service = ReviewService(AppSettings(demo=True))
    service.load()
    port = _free_port()
    launch(build(service), server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    print(f"app: {service.local_label.title} ({service.local_label.detail}), "
          f"max_new_tokens={service.engine.config.max_new_tokens}")
    return f"http://127.0.0.1:{port}/"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="a running app (default: start one with the demo model)")
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--temperature", type=float, default=0.7)
    args = p.parse_args()
    url = args.url or start_demo_app()
    texts = [f"Title: Paper number {i}\n\nAbstract: We study problem {i} with a new method and evaluate it on "
             f"{i + 2} datasets against strong baselines." for i in range(args.users)]
    clients = [Client(url, verbose=False) for _ in range(args.users)]
    ranks: list[set] = [set() for _ in range(args.users)]
    started: dict[int, float] = {}
    finished: dict[int, float] = {}
    t0 = time.perf_counter()
    jobs = [c.submit(t, "7", 0.95, args.temperature, 1000 + i, api_name="/review")
            for i, (c, t) in enumerate(zip(clients, texts))]
    while len(finished) < len(jobs):
        for i, j in enumerate(jobs):
            st = j.status()
            if st.rank is not None:
                ranks[i].add(st.rank)
            if i not in started and st.code.name in ("PROCESSING", "ITERATING"):
                started[i] = time.perf_counter() - t0
            if j.done() and i not in finished:
                finished[i] = time.perf_counter() - t0
        time.sleep(0.02)
    threading.Event().wait(0.1)
    results = [j.result() for j in jobs]
    own = all(r["model_input"]["text_sha256"] == hashlib.sha256(t.encode()).hexdigest()
              and r["settings"]["seed"] == 1000 + i for i, (r, t) in enumerate(zip(results, texts)))
    print("| user | queue positions seen | started (s) | finished (s) | review chars | own request |")
    print("|---|---|---|---|---|---|")
    for i, r in enumerate(results):
        print(f"| {i} | {sorted(ranks[i]) or '-'} | {started.get(i, float('nan')):.1f} | {finished[i]:.1f} | "
              f"{len(r['review'])} | {r['settings']['seed'] == 1000 + i} |")
    gen = [finished[i] - started[i] for i in started]
    print(f"\n{len(results)} users, all completed: {all(r['review'].strip() for r in results)}; "
          f"each got its own review: {own}; last finished after {max(finished.values()):.1f} s; "
          f"median time on the GPU slot {statistics.median(gen):.1f} s")


if __name__ == "__main__":
    main()
