#!/usr/bin/env bash
# Install what the app needs (default) or everything the tests need (`dev`), on a CPU or GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! python3 -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    python3 -m pip install "torch>=2.4"
  else
    # CPU machines: the CPU build (a local wheel on this project's machines; PyTorch's CPU index elsewhere)
    python3 -m pip install "torch==2.13.0" 2>/dev/null \
      || python3 -m pip install torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi
case "${1:-app}" in
  # dev: also llama.cpp's GGUF converter, which the export test runs (train/gguf_converter.py fetches it once)
  dev) python3 -m pip install -r requirements-dev.txt && python3 -m train.gguf_converter ;;
  train) python3 -m pip install -r requirements-train.txt ;;
  *) python3 -m pip install -r requirements.txt ;;
esac
