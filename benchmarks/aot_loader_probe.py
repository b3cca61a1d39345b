"""Does torch's AOTInductor loader run on this machine, and with which build setting? (issue #25)

    python -m benchmarks.aot_loader_probe [--device cuda] [--variants baseline no-pch bsymbolic]

On the H200 machine (torch 2.11.0+cu130, Ubuntu 24.04, g++ 13.3) `aoti_load_package` died with SIGSEGV
on every package, a single CPU Linear included: inside the generated model's constructor, in
`torch::aot_inductor::parse_device_str`'s `std::regex` (aoti_runtime/model_base.h), compiled into the
package's wrapper.so by the machine's g++. The same torch with Debian's g++ 12.2 loads it. This script
builds a one-Linear package per build variant (aot_step.build_fix_options for each REVIEWGPT_AOT_BUILD
value, in parallel, each with its own inductor cache), loads each in a child process with a native
backtrace on SIGSEGV, and prints one line per variant as it goes, plus the C++ runtime the loading
process maps. On the H200 machine it once printed baseline: CRASH, no-pch: CRASH, bsymbolic: LOADS, but
that bsymbolic build had called the system g++ by name while the others used CXX (/opt/gcc/bin/g++, which
copies libstdc++ in); with /opt/gcc for all, bsymbolic crashed too. aot_step keeps bsymbolic on (untested
whether still needed); run this on a new host or torch before shipping packages there.

Every variant is compiled by aot_step.runtime_matched_cxx: the H200 machine's CXX (/opt/gcc/bin/g++) is a
GCC whose libstdc++ is not the one torch's process maps, and with it even bsymbolic crashed (2026-12-04).

- baseline: torch's defaults, with the matched compiler.
- no-pch: `aot_inductor.precompile_headers=False` (experimental in torch's config).
- bsymbolic: the wrapper linked with `-Wl,-Bsymbolic` (its own std::regex instantiations, not
  libtorch_cpu's exported weak ones).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BUILD = textwrap.dedent("""
    import sys, torch, torch._inductor
    from reviewgpt.generate import aot_step  # its build options, for REVIEWGPT_AOT_BUILD as set by the parent
    path, device = sys.argv[1], sys.argv[2]
    m = torch.nn.Linear(64, 64).to(device)
    x = torch.randn(4, 64, device=device)
    torch._inductor.aoti_compile_and_package(torch.export.export(m, (x,)), package_path=path,
                                             inductor_configs=aot_step.build_fix_options())
""")
LOAD = textwrap.dedent("""
    import sys, torch, torch._inductor
    maps = {l.split()[-1] for l in open("/proc/self/maps") if "libstdc++" in l}
    print("libstdc++ mapped:", sorted(maps), flush=True)
    c = torch._inductor.aoti_load_package(sys.argv[1])
    print("loaded and ran:", tuple(c(torch.randn(4, 64, device=sys.argv[2])).shape), flush=True)
""")
# A SIGSEGV handler preloaded into the loading process: the native frames (faulthandler gives Python's).
SEGV_C = r"""
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>
static void on_segv(int s) { void* b[48]; int n = backtrace(b, 48); backtrace_symbols_fd(b, n, 2); _exit(139); }
__attribute__((constructor)) static void install(void) { signal(SIGSEGV, on_segv); }
"""
VARIANTS = ["baseline", "no-pch", "bsymbolic", "no-pch+bsymbolic"]  # REVIEWGPT_AOT_BUILD values


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aoti-probe-"))
    (work / "segv.c").write_text(SEGV_C)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(work / "libsegv.so"), str(work / "segv.c")], check=True)
    print(subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0], flush=True)
    t0 = time.time()
    builds = {}
    for name in args.variants:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(work / f"cache-{name}"), "REVIEWGPT_AOT_BUILD": name}
        builds[name] = subprocess.Popen([sys.executable, "-c", BUILD, str(work / f"{name}.pt2"), args.device], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for name, proc in builds.items():
        out, _ = proc.communicate()
        if proc.returncode:
            print(f"{name}: build failed ({proc.returncode}):", *[l for l in out.splitlines() if "error" in l.lower()][:6], sep="\n  ", flush=True)
            continue
        env = {**os.environ, "LD_PRELOAD": str(work / "libsegv.so")}
        load = subprocess.run([sys.executable, "-c", LOAD, str(work / f"{name}.pt2"), args.device], env=env,
                              capture_output=True, text=True, timeout=300)
        verdict = "LOADS" if load.returncode == 0 else f"CRASH (exit {load.returncode})"
        print(f"{name}: {verdict} [{time.time() - t0:.0f} s]", flush=True)
        print(textwrap.indent(load.stdout.strip(), "  "), flush=True)
        if load.returncode:
            frames = [line for line in load.stderr.splitlines() if "(" in line and ")[" in line]
            print(textwrap.indent("\n".join(frames[:12] or load.stderr.strip().splitlines()[-3:]), "  "), flush=True)


if __name__ == "__main__":
    main()
