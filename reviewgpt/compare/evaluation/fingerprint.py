"""Fingerprints: a stable hash of everything that determines a result, so a changed setting means
a new key (and a new result) instead of a silently reused old one."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

_CONTENT_HASH_LIMIT = 1 << 30  # files up to 1 GiB are hashed by content (adapters, tokenizers, configs)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(obj: Any) -> str:
    """sha256 of the canonical JSON of `obj` (sorted keys, no whitespace)."""
    return sha256_text(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str))


def short(key: str) -> str:
    return key[:10]


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=64)
def _dir_identity(path: str, stamp: tuple) -> str:
    parts = []
    root = Path(path)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        size = f.stat().st_size
        content = _file_sha(f) if size <= _CONTENT_HASH_LIMIT else f"{size} bytes"
        parts.append((str(f.relative_to(root)), content))
    return fingerprint(parts)


def model_identity(ref: str | None) -> str | None:
    """What a model or adapter reference points at: for a local folder or file, a hash of its files
    (content up to 1 GiB a file, size beyond: an 8B shard), so retraining into the same folder
    changes it; for a Hub id, the id itself."""
    if not ref:
        return None
    p = Path(ref)
    if p.is_dir():
        stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(p.rglob("*")) if f.is_file())
        return "dir:" + _dir_identity(str(p.resolve()), stamp)
    if p.is_file():
        return "file:" + _file_sha(p)
    return "hub:" + ref if not os.path.isabs(ref) else "missing:" + ref
