"""Every fall-back from a fast path, said once with its reason (a log line per distinct cause, not per token)."""

from __future__ import annotations

import logging

log = logging.getLogger("reviewgpt.fallback")
_SAID: set[tuple[str, str, str]] = set()


def fallback(path: str, instead: str, reason: str, expected: bool = False) -> bool:
    """Log that `path` is not used (`instead` runs) because of `reason`, the first time this cause is
    seen in the process: a warning, or an info line where it is the expected state of this setup
    (`expected`: a CPU machine, NF4 keeping its adapter unmerged). Returns whether it was logged now."""
    key = (path, instead, reason)
    if key in _SAID:
        return False
    _SAID.add(key)
    log.log(logging.INFO if expected else logging.WARNING, "%s not used, %s instead: %s", path, instead, reason)
    return True


def reset() -> None:
    """Forget what was said (tests that read the log as a fresh process would)."""
    _SAID.clear()
