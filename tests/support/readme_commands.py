"""The README's command lines, read from README.md and run as a user runs them (`python -m ...`)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def readme_line(start: str) -> list[str]:
    """The one README command line that begins with `start`, without its comment, as argv."""
    lines = [m.group(1) for m in re.finditer(r"^(python -m .*?)(?:\s+#.*)?$", README, flags=re.M)
             if m.group(1).startswith(start)]
    assert len(lines) == 1, f"README: {len(lines)} command lines start with {start!r}"
    return shlex.split(lines[0])


def user_layout(folder: Path, *names: str) -> Path:
    """`folder` laid out as a checkout for the commands: `names` (train, eval, assets) linked from it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).symlink_to(ROOT / name)
    return folder


def run(argv: list[str], cwd: Path, env_extra: dict[str, str] | None = None, timeout: float = 300) -> str:
    """`python -m ...` in `cwd` with this interpreter and the checkout importable; its stdout."""
    assert argv[:2] == ["python", "-m"], argv
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    done = subprocess.run([sys.executable, *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{shlex.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout
