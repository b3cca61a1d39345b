"""The app's version as recorded in every download: the project version plus the git commit when known."""

from __future__ import annotations

import functools
import re
import subprocess

from .settings import ROOT


@functools.lru_cache(maxsize=1)
def app_version() -> str:
    m = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    version = m.group(1) if m else "unknown"
    try:  # a clone (and a Space's checkout) is a git repository; a copied folder may not be
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+{commit}" if commit else version
