"""llama.cpp's Hugging Face -> GGUF converter: where it is, and fetching it once.

    python -m train.gguf_converter            # fetch it (scripts/install.sh dev does), print its folder

The converter is llama.cpp's own `convert_hf_to_gguf.py` with its `conversion/` package and the `gguf-py`
of the same commit (the script puts that gguf first on sys.path; the `gguf` release on PyPI can lag the
script's model tables). It is not a PyPI package of its own, so it is taken from one that vendors it:
the sdist of llama-cpp-python `LLAMA_CPP_PYTHON`, fetched with pip (only those parts are kept, ~2 MB),
the same release whose server the GGUF export was measured on (benchmarks/results/llamacpp_served.md).
A llama.cpp checkout of the same layout (convert_hf_to_gguf.py beside conversion/) can be named instead
with `LLAMA_CPP_DIR` or `--llama-cpp`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

LLAMA_CPP_PYTHON = "0.3.36"  # the llama-cpp-python release whose vendored llama.cpp converts (and served)
PARTS = ("convert_hf_to_gguf.py", "conversion", "gguf-py", "LICENSE")  # what the converter reads
SCRIPT = "convert_hf_to_gguf.py"


def cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "reviewgpt" / f"llama.cpp-convert-{LLAMA_CPP_PYTHON}"


def is_converter(folder: Path) -> bool:
    return (folder / SCRIPT).is_file() and (folder / "conversion" / "base.py").is_file()


def fetch(dest: Path | None = None) -> Path:
    """Download llama-cpp-python's sdist with pip and keep the converter's parts in `dest`."""
    dest = dest or cache_dir()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"llama-cpp-python=={LLAMA_CPP_PYTHON}", "-d", tmp], check=True)
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        prefix = f"{sdist.name[: -len('.tar.gz')]}/vendor/llama.cpp/"
        staging = Path(tmp) / "converter"
        with tarfile.open(sdist) as tar:
            members = []
            for m in tar.getmembers():
                rel = m.name[len(prefix):] if m.name.startswith(prefix) else ""
                if rel and rel.split("/")[0] in PARTS and (m.isfile() or m.isdir()):
                    m.name = rel
                    members.append(m)
            tar.extractall(staging, members=members, filter="data")
        if not is_converter(staging):
            raise RuntimeError(f"llama-cpp-python {LLAMA_CPP_PYTHON}'s sdist has no {SCRIPT} beside conversion/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.move(str(staging), dest)  # whole or not at all: a cut download leaves no half converter
    return dest


def converter_dir(explicit: str | Path | None = None, fetch_missing: bool = True) -> Path:
    """The converter's folder: `explicit`, else LLAMA_CPP_DIR, else the cache (fetched when missing)."""
    named = explicit or os.environ.get("LLAMA_CPP_DIR")
    if named:
        folder = Path(named)
        if not is_converter(folder):
            raise FileNotFoundError(f"{folder} is not a llama.cpp converter: no {SCRIPT} beside conversion/base.py "
                                    f"(a llama.cpp checkout of 2026, or `python -m train.gguf_converter`)")
        return folder
    folder = cache_dir()
    if is_converter(folder):
        return folder
    if not fetch_missing:
        raise FileNotFoundError(f"no llama.cpp converter in {folder}: run `python -m train.gguf_converter`")
    return fetch(folder)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dest", type=Path, default=None, help=f"default: {cache_dir()}")
    args = p.parse_args(argv)
    folder = args.dest or cache_dir()
    print(folder if is_converter(folder) else fetch(folder))


if __name__ == "__main__":
    main()
