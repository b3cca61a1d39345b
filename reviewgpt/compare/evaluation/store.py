"""Append-only JSONL files keyed by record id: what is written is never asked for again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator


class JsonlStore:
    def __init__(self, path: str | Path, key: Callable[[dict[str, Any]], tuple]) -> None:
        self.path = Path(path)
        self.key = key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._rows: dict[tuple, dict[str, Any]] = {}
        if self.path.exists():
            with self.path.open() as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:  # a line cut by a kill mid-write: redo that item
                        continue
                    self._rows[self.key(row)] = row

    def __contains__(self, k: tuple) -> bool:
        return k in self._rows

    def get(self, k: tuple) -> dict[str, Any] | None:
        return self._rows.get(k)

    def add(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
        self._rows[self.key(row)] = row

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._rows.values())

    def __len__(self) -> int:
        return len(self._rows)
