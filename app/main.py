"""Start the app: `python -m app` (or `python app/main.py`, as Hugging Face Spaces does)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (Spaces' app_file): make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if os.environ.get("SPACES_ZERO_GPU"):  # ZeroGPU: `spaces` must be imported before torch touches CUDA
    import spaces  # noqa: F401

from app.settings import AppSettings  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Paper Review GPT web app")
    p.add_argument("--base-model", help="base model Hub id or folder (env REVIEWGPT_BASE_MODEL)")
    p.add_argument("--adapter", help="LoRA adapter Hub id or folder (env REVIEWGPT_ADAPTER)")
    p.add_argument("--precision", choices=["auto", "nf4", "bf16", "fp32"], help="env REVIEWGPT_PRECISION")
    p.add_argument("--demo", action=argparse.BooleanOptionalAction, default=None,
                   help="force (or forbid) the bundled demo model (env REVIEWGPT_DEMO)")
    p.add_argument("--host", help="default 127.0.0.1; 0.0.0.0 on Spaces (GRADIO_SERVER_NAME)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument("--mcp", action=argparse.BooleanOptionalAction, default=True,
                   help="serve the API endpoints as MCP tools at /gradio_api/mcp/ (default: on)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    settings = AppSettings.from_env()
    for key in ("base_model", "adapter", "precision", "demo"):
        if getattr(args, key) is not None:
            setattr(settings, key, getattr(args, key))
    on_spaces = bool(os.environ.get("SPACE_ID"))
    host = args.host or os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if on_spaces else "127.0.0.1")

    from app import rating
    from app.service import ReviewService
    from app.ui import build, launch

    service = ReviewService(settings)
    service.load()  # the model goes to the GPU now, at start-up (on ZeroGPU too)
    rating.load()  # the calibrated rating model too, not on the first review (issue #24)
    launch(build(service), mcp_server=args.mcp, server_name=host, server_port=args.port)


if __name__ == "__main__":
    main()
