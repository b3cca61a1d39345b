"""Append-only JSONL files keyed by record id: what is written is never asked for again.

A line that cannot be read (cut by a kill mid-write) or has no key (a file from an older format)
is skipped and counted in `skipped`; its item is simply redone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator


class JsonlStore:
    def __init__(self, path: str | Path, key: Callable[[dict[str, Any]], Any]) -> None:
        self.path = Path(path)
        self.key = key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._rows: dict[Any, dict[str, Any]] = {}
        self.skipped = 0
        # A kill mid-write can leave a last line without its newline: the next row must start a line
        # of its own, or it would be glued to the cut one and lost with it.
        self._cut_tail = False
        if self.path.exists():
            with self.path.open() as f:
                for line in f:
                    self._cut_tail = not line.endswith("\n")  # only the last line can lack it
                    try:
                        row = json.loads(line)
                        k = self.key(row)
                    except (json.JSONDecodeError, KeyError, TypeError):
                        self.skipped += 1
                        continue
                    self._rows[k] = row

    def __contains__(self, k: Any) -> bool:
        return k in self._rows

    def get(self, k: Any) -> dict[str, Any] | None:
        return self._rows.get(k)

    def add(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(("\n" if self._cut_tail else "") + json.dumps(row) + "\n")
            self._cut_tail = False
            f.flush()
        self._rows[self.key(row)] = row

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._rows.values())

    def __len__(self) -> int:
        return len(self._rows)
