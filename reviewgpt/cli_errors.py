"""How the command-line tools (eval, data prep) end on a user's error or Ctrl-C: one line on stderr
naming the problem, no traceback; what was already written stays as it is."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

from reviewgpt.errors import ReviewGPTError


@contextmanager
def user_errors(on_interrupt: str) -> Iterator[None]:
    """Errors this project raises for the user (ReviewGPTError: config, model load, API) exit with
    status 1 and their message; Ctrl-C exits with 130 and `on_interrupt` (what is kept, how to go on)."""
    try:
        yield
    except ReviewGPTError as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        print(f"\ninterrupted: {on_interrupt}", file=sys.stderr)
        sys.exit(130)
