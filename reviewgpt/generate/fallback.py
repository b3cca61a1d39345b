"""Every fall-back from a fast path, said once with its reason (a log line per distinct cause, not per token)."""

from __future__ import annotations

import logging

log = logging.getLogger("reviewgpt.fallback")
_SAID: set[tuple[str, str, str]] = set()


def fallback(path: str, instead: str, reason: str) -> bool:
    """Log that `path` is not used (`instead` runs) because of `reason`, the first time this cause is
    seen in the process. Returns whether it was logged now."""
    key = (path, instead, reason)
    if key in _SAID:
        return False
    _SAID.add(key)
    log.warning("%s not used, %s instead: %s", path, instead, reason)
    return True
