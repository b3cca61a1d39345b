"""Build the decode step ahead of time for the model the app runs, on the GPU the Space runs on.

    REVIEWGPT_BASE_MODEL=... REVIEWGPT_ADAPTER=... REVIEWGPT_PRECISION=bf16 python -m app.build_aot --out aot

Loads the model exactly as the app does (same environment variables), exports its decode step and
compiles it with AOTInductor into OUT/<key>-<arch>/ (reviewgpt/generate/aot_step.py). Run it on the
hardware the Space gets (its ZeroGPU GPU's architecture) with the torch version the Space installs;
commit OUT to the Space (or upload it to a Hub repo and set REVIEWGPT_AOT=hf://owner/repo). The app
then loads it with no compilation at run time; a mismatch is reported and decoding is eager.
"""

from __future__ import annotations

import argparse
import json
import logging

from reviewgpt.generate import aot_step
from reviewgpt.generate.engine import load_engine

from .settings import AOT_DIR, AppSettings


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(AOT_DIR), help="folder of packages (default: the app's aot/)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    cfg = AppSettings.from_env().engine_config()
    # as on ZeroGPU: no compiled step at load, the attention the package is exported with
    cfg.fast_decoding, cfg.aot_package, cfg.warmup = False, args.out, False
    engine = load_engine(cfg)
    out = aot_step.build(engine, args.out)
    key = json.loads((out / aot_step.KEY_FILE).read_text())
    print(f"built {out} for {engine.info.describe()} with {key['compiler']}")
    if key["loads_on"]:
        print("torch's loader read it in a test process here: a worker on this platform binds it without that test")
    else:  # kept, as a worker retests it; but say so where the person building can act on it
        print("WARNING: torch's loader failed on it in a test process here: workers will decode eagerly "
              "(python -m benchmarks.aot_loader_probe says which build setting loads on this machine)")


if __name__ == "__main__":
    main()
