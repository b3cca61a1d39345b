"""The decode step compiled ahead of time (AOTInductor), for hosts where torch.compile cannot run at
request time: Hugging Face ZeroGPU lends a GPU to a short-lived worker per call, so the engine there
decoded eagerly (28.7 tok/s on an H200 against ~200 compiled).

`build` exports the engine's own decode step (`engine.decode_step`: the model's forward over the
static cache, then suppression, temperature, top-p and sampling, settings as tensors, so the
slider needs no rebuild) with `torch.export`, and compiles it with
`torch._inductor.aoti_compile_and_package` into `<folder>/<key>/step.pt2` plus `key.json`. The
package holds code only, no weights (as the `spaces` package's ZeroGPU helpers do it:
`package_constants_in_so=False`): `AotDecoder` loads it with `aoti_load_package` and binds the live
model's weights (the merged adapter included), the static cache and the step's state as
user-managed constants, so the compiled step reads and writes the engine's own tensors, and the
decode loop (`_FastDecoder.generate_rows`) is unchanged. On CUDA the step is then captured once in a
CUDA graph (a capture, not a compilation: kernel launches cost ~1.5 ms a step otherwise). Prefill
stays eager (one pass over the prompt; its kernels are the stock ones).

Why not `spaces.aoti_capture` / `aoti_compile` / `aoti_apply`: they replace a module's `forward`
with a compiled one taking the same arguments; a decode step is not one module's forward but the
model, a cache it mutates and a sampler, and it must run without Python between tokens. The same
PyTorch calls and options are used here directly (`INDUCTOR_OPTIONS`).

The key says what a package is valid for: GPU architecture, torch and transformers versions, this
step's source, the model and adapter (config files and safetensors headers: names, shapes, dtypes,
sizes; the values are bound at load, so the compiled code does not depend on them), precision,
whether the adapter is merged, batch size and cache length. Nothing matches -> the engine decodes
with eager generate() and says why (LoadInfo.notes, shown on the page).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from reviewgpt.generate import engine, sampling, step_cache, suppression
from reviewgpt.generate.engine import _FastDecoder, decode_step
from reviewgpt.generate.fallback import fallback

log = logging.getLogger(__name__)

PACKAGE = "step.pt2"
# Replay the loaded step as one CUDA graph (see _cuda_graph); 0 measures the package's own launches.
CUDA_GRAPH = os.environ.get("REVIEWGPT_AOT_CUDA_GRAPH", "1") != "0"
KEY_FILE = "key.json"
# No weights in the package (bound from the live model at load); buffers (cache, state, settings) are
# not folded into constants: their values at export time are not the values at run time.
INDUCTOR_OPTIONS: dict[str, Any] = {
    "aot_inductor.package_constants_in_so": False,
    "always_keep_tensor_constants": True,
    "joint_graph_constant_folding": False,
}
# "always": test-load the package in a child process at every bind, even when the build tested it here
LOADER_TEST = os.environ.get("REVIEWGPT_AOT_LOADER_TEST", "auto")
if LOADER_TEST not in ("auto", "always"):
    raise ValueError(f"REVIEWGPT_AOT_LOADER_TEST={LOADER_TEST!r}: auto or always")
# Build work-arounds for torch's loader, '+'-separated, on top of the compiler choice (runtime_matched_cxx,
# the fix for issue #25's crash in the package constructor's std::regex on the H200 machine):
# no-pch: no precompiled headers; bsymbolic: the wrapper .so binds its own C++ template instances
# (-Wl,-Bsymbolic) rather than libtorch's exported ones. (Linking libstdc++ in statically as well breaks
# the loader's error handling on a machine where the default loads: benchmarks/aot_loader_probe.py.)
BUILD_FIXES = [f for f in os.environ.get("REVIEWGPT_AOT_BUILD", "bsymbolic").split("+") if f and f != "baseline"]


def _step_source_hash() -> str:
    """The source the exported step is traced from: an edit to any of it needs a rebuild."""
    h = hashlib.sha256()
    for module in (engine, sampling, suppression, step_cache):
        h.update(Path(module.__file__).read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def _safetensors_header(path: Path) -> bytes:
    with path.open("rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return f.read(n)


def identity(source: str | None, local_files_only: bool = False, token: str | None = None) -> str:
    """A hash of a model or adapter's files as they decide the compiled code: its JSON configs and its
    safetensors headers (tensor names, shapes, dtypes, offsets) and file sizes. A Hub id resolves to
    its downloaded snapshot (the commit is part of the path)."""
    if not source:
        return "none"
    folder = Path(source)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(source, allow_patterns=["*.json", "*.safetensors"],
                                        local_files_only=local_files_only, token=token))
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.suffix == ".json" and f.name != "tokenizer.json":
            h.update(f.name.encode() + f.read_bytes())
        elif f.suffix == ".safetensors":
            h.update(f.name.encode() + str(f.stat().st_size).encode() + _safetensors_header(f))
    return h.hexdigest()[:16]


def gpu_arch(device: torch.device | str = "cuda") -> str:
    if torch.device(device).type != "cuda":
        return "cpu"
    major, minor = torch.cuda.get_device_capability(device)
    return f"sm_{major}{minor}"


@dataclass(frozen=True)
class AotKey:
    torch: str
    transformers: str
    step: str  # _step_source_hash()
    model: str  # identity(base_model)
    adapter: str  # identity(adapter)
    precision: str
    merged: bool
    batch: int
    cache_len: int

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def of(cls, engine: Any, batch: int = 1) -> "AotKey":
        import transformers

        cfg, info = engine.config, engine.info
        token = cfg.hf_token or os.environ.get("HF_TOKEN")
        return cls(torch=torch.__version__, transformers=transformers.__version__, step=_step_source_hash(),
                   model=identity(cfg.base_model, cfg.local_files_only, token),
                   adapter=identity(cfg.adapter, cfg.local_files_only, token), precision=info.precision,
                   merged=info.adapter_merged, batch=batch, cache_len=engine._cache_len())


class StepModule(torch.nn.Module):
    """The decode step as one module to export: the model plus every tensor the step reads or writes
    across tokens (static cache, `_State`, the sampler's settings and records) registered as buffers,
    under names the loader binds the same tensors to."""

    def __init__(self, decoder: Any) -> None:
        super().__init__()
        self.model = decoder.model
        self.decoder = decoder
        for name, t in bound_tensors(decoder).items():
            self.register_buffer(name, t, persistent=False)

    def forward(self) -> torch.Tensor:
        d = self.decoder
        return decode_step(d.model, d.cache, d._state, d._sampler, d.max_cache_len)


def bound_tensors(decoder: Any) -> dict[str, torch.Tensor]:
    """The step's tensors by name (not the model's weights), allocated if not yet."""
    sampler = decoder.sampler()
    decoder._ensure_cache(decoder._state.tokens.device)
    out: dict[str, torch.Tensor] = {}
    for i, layer in enumerate(decoder.cache.layers):
        out[f"cache_k{i}"], out[f"cache_v{i}"] = layer.keys, layer.values
    for name, t in zip(("tokens", "window", "pos", "used", "first"), decoder._state.tensors()):
        out[f"state_{name}"] = t
    for i, t in enumerate(sampler.tensors()):
        out[f"sampler_{i}"] = t
    return out


def build(engine: Any, folder: str | Path, batch: int = 1) -> Path:
    """Export and compile `engine`'s decode step for its model, device and settings into
    folder/<key>-<arch>/; returns that directory. Runs on the GPU kind the package is for."""
    from reviewgpt.generate import attention

    if engine.info.attn_implementation not in (attention.NAME_SDPA, "eager"):
        raise ValueError(f"the engine's attention is {engine.info.attn_implementation!r}: load it with "
                         "fast_decoding=False and aot_package set (load_engine then picks SDPA with GQA)")
    key = AotKey.of(engine, batch)
    arch = gpu_arch(engine.device)
    out = Path(folder) / f"{key.digest()}-{arch}"
    out.mkdir(parents=True, exist_ok=True)
    decoder = _FastDecoder(engine.model, max_cache_len=engine._cache_len(), tokenizer=engine.tokenizer, compile=False,
                           batch_size=batch)
    decoder.sampler().opaque_sort = False  # no Python custom op in the package: it must load without Python
    t0 = time.perf_counter()
    with torch.no_grad():
        program = torch.export.export(StepModule(decoder), (), strict=True)
    t1 = time.perf_counter()
    _compile(program, out / PACKAGE)
    t2 = time.perf_counter()
    try:  # recorded: a worker on this platform need not test-load it again (`_tested_at_build`)
        loads_on: dict[str, Any] | None = {**loader_platform(out / PACKAGE, arch), **_loads_in_a_child(out / PACKAGE)}
    except RuntimeError as e:  # kept: a worker tests it again and decodes eagerly if it fails there too
        loads_on = None
        log.warning("the package failed to load in a test process here: %s", e)
    meta = {**asdict(key), "arch": arch, "device_name": torch.cuda.get_device_name(engine.device)
            if engine.device.type == "cuda" else "cpu", "base_model_source": engine.config.base_model,
            "adapter_source": engine.config.adapter, "compiler": runtime_matched_cxx(), "build_fixes": BUILD_FIXES,
            "export_s": round(t1 - t0, 1),
            "compile_s": round(t2 - t1, 1), "loads_on": loads_on}
    (out / KEY_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    log.info("ahead-of-time decode step: exported in %.0f s, compiled in %.0f s -> %s", t1 - t0, t2 - t1, out)
    return out


def _compile(program: torch.export.ExportedProgram, path: Path) -> None:
    """AOTInductor's files for `program`, packaged without its weights (what the `spaces` package's
    `aoti_compile` does: `aoti_compile_and_package` would also write the weights into the package,
    16 GB for the 8B, and a package compiled to read them from disk but shipped without them crashed
    torch 2.11's loader)."""
    from torch._inductor.package.package import package_aoti

    args, kwargs = program.example_inputs
    options = {**INDUCTOR_OPTIONS, "aot_inductor.package": True,
               "aot_inductor.package_constants_on_disk_format": "pickle_weights", **build_fix_options()}
    artifacts = torch._inductor.aot_compile(program.module(), args, kwargs, options=options)
    files = [a for a in artifacts if isinstance(a, str)]
    for f in files:
        if f.endswith(".so"):
            clear_exec_stack(Path(f))
    package_aoti(str(path), files)


def build_fix_options() -> dict[str, Any]:
    """Inductor options for the package's C++: the compiler (`runtime_matched_cxx`) and BUILD_FIXES; link
    flags go through a `g++` wrapper script (inductor has no link-flag option; it reads the compiler
    from `cpp.cxx`), added only where it links the .so."""
    unknown = set(BUILD_FIXES) - {"no-pch", "bsymbolic"}
    if unknown:
        raise ValueError(f"REVIEWGPT_AOT_BUILD: unknown {sorted(unknown)} (no-pch, bsymbolic)")
    cxx = runtime_matched_cxx()
    options: dict[str, Any] = {"cpp.cxx": (None, cxx)}
    if "no-pch" in BUILD_FIXES:
        options["aot_inductor.precompile_headers"] = False
    if "bsymbolic" in BUILD_FIXES:
        import shlex
        import tempfile

        wrapper = Path(tempfile.mkdtemp(prefix="reviewgpt-cxx-")) / "g++"  # named g++: inductor takes it for GCC
        wrapper.write_text(f'#!/bin/sh\ncase " $* " in *" -shared "*) exec {shlex.quote(cxx)} "$@" -Wl,-Bsymbolic;; esac\n'
                           f'exec {shlex.quote(cxx)} "$@"\n')
        wrapper.chmod(0o755)
        options["cpp.cxx"] = (None, str(wrapper))
    return options


def _mapped_libstdcxx() -> set[str]:
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return set()
    paths = (line.split(maxsplit=5)[5].removesuffix(" (deleted)") for line in maps.read_text().splitlines()
             if "libstdc++" in line and len(line.split(maxsplit=5)) == 6)
    return {os.path.realpath(path) for path in paths}


def _links_libstdcxx_dynamically(cxx: str) -> bool:
    """Whether `cxx` links a shared object against libstdc++.so (NEEDED), rather than copying libstdc++ in
    (a GCC built or wrapped to link it statically, as the H200 machine's /opt/gcc/bin/g++ does)."""
    import shutil
    import subprocess
    import tempfile

    if not shutil.which("readelf"):
        return True  # cannot tell: trust the compiler's libstdc++ path
    with tempfile.TemporaryDirectory() as tmp:
        src, lib = Path(tmp) / "probe.cpp", Path(tmp) / "probe.so"
        src.write_text('#include <string>\nstd::string probe() { return std::string(64, \'x\'); }\n')
        try:
            subprocess.run([cxx, "-shared", "-fPIC", "-o", str(lib), str(src)], capture_output=True, check=True, timeout=120)
            dyn = subprocess.run(["readelf", "-dW", str(lib)], capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            return False
    return "[libstdc++.so" in dyn


@functools.cache  # a build asks twice (options, key.json); each answer compiles probes
def runtime_matched_cxx() -> str:
    """The C++ compiler to build the package with: inductor's own (CXX, else g++) if it links against the
    libstdc++.so this process maps, else the first of g++ / c++ that does. On the H200 machine CXX is
    /opt/gcc/bin/g++, whose packages carry no libstdc++.so dependency (a static copy): their std::regex
    then crashed in the constructor (SIGSEGV in codecvt::do_unshift, even for one Linear), with or
    without -Bsymbolic; the system g++, called by name, built packages that load."""
    import shutil
    import subprocess

    from torch._inductor import config

    mapped = _mapped_libstdcxx()
    candidates = [config.cpp.cxx[1] or "g++", "g++", "c++"]
    if not mapped:  # not Linux, or torch linked it statically: nothing to match
        return candidates[0]
    for cxx in dict.fromkeys(candidates):
        if not shutil.which(cxx):
            continue
        try:
            lib = subprocess.run([cxx, "-print-file-name=libstdc++.so.6"], capture_output=True, text=True,
                                 timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if lib and os.path.realpath(lib) in mapped and _links_libstdcxx_dynamically(cxx):
            if cxx != candidates[0]:
                log.info("ahead-of-time build: compiling with %s (its libstdc++ is this process's), not %s",
                         cxx, candidates[0])
            return cxx
    log.warning("no C++ compiler here matches the libstdc++ this process maps (%s); using %s: the package may "
                "not load", ", ".join(sorted(mapped)), candidates[0])
    return candidates[0]


def clear_exec_stack(path: Path) -> bool:
    """Mark an ELF64 shared object as not needing an executable stack. AOTInductor links the CUDA
    kernels' binary blob in without a .note.GNU-stack section, so the linker asks for one, and recent
    glibc refuses to dlopen such a library (torch 2.11's loader then crashed on the H200 machine); the
    `spaces` package's AOT helpers clear the same flag. Returns whether it was set."""
    import struct

    pt_gnu_stack, pf_x = 0x6474E551, 0x1
    with path.open("r+b") as f:
        head = f.read(64)
        if head[:6] != b"\x7fELF\x02\x01":  # 64-bit little-endian only
            return False
        (ph_off,) = struct.unpack_from("<Q", head, 32)
        ph_size, ph_count = struct.unpack_from("<HH", head, 54)
        for i in range(ph_count):
            f.seek(ph_off + i * ph_size)
            p_type, p_flags = struct.unpack("<II", f.read(8))
            if p_type == pt_gnu_stack:
                if not p_flags & pf_x:
                    return False
                f.seek(ph_off + i * ph_size + 4)
                f.write(struct.pack("<I", p_flags & ~pf_x))
                return True
    return False


def _local_folder(source: str) -> Path:
    """A folder, or hf://owner/repo[@revision] (the Space's own files or a Hub repo of packages)."""
    if source.startswith("hf://"):
        from huggingface_hub import snapshot_download

        repo, _, revision = source[len("hf://"):].partition("@")
        return Path(snapshot_download(repo, revision=revision or None, allow_patterns=[f"*/{KEY_FILE}", f"*/{PACKAGE}"]))
    return Path(source)


def find_package(source: str, key: AotKey) -> tuple[list[Path], str | None]:
    """The package directories built for `key` (one per GPU architecture), or [] and why none fits."""
    folder = _local_folder(source)
    if not folder.is_dir():
        return [], f"no folder {source}"
    found = sorted(p for p in folder.glob(f"{key.digest()}-*") if (p / PACKAGE).exists())
    if found:
        return found, None
    others = [json.loads(p.read_text()) for p in folder.glob(f"*/{KEY_FILE}")]
    if not others:
        return [], f"{source} holds no package (build one with `python -m app.build_aot`)"
    want = asdict(key)
    nearest = min(others, key=lambda o: sum(o.get(k) != v for k, v in want.items()))
    diff = [f"{k} {nearest.get(k)} (this is {v})" for k, v in want.items() if nearest.get(k) != v]
    return [], f"the packages in {source} were built for another setup: {'; '.join(diff)}"


class AotDecoder(_FastDecoder):
    """The engine's batch-1 decoder whose step is an ahead-of-time package: `_compiled_step` is the
    loaded package bound to this decoder's tensors, captured in a CUDA graph on CUDA. Loaded at first
    use, in the process that decodes (ZeroGPU's worker), so the architecture is checked there."""

    aot = True

    def __init__(self, engine: Any, packages: list[Path]) -> None:
        super().__init__(engine.model, max_cache_len=engine._cache_len(), tokenizer=engine.tokenizer, compile=False,
                         batch_size=1)
        self.packages = packages
        self._runner: Any = None
        self._failed: str | None = None  # why the package cannot run here: tried once, not at every generation
        self.load_s: float | None = None
        self.launch: str | None = None  # how a step's kernels are launched, once bound
        self.load_parts: dict[str, float] = {}

    def bind(self) -> None:
        if self._runner is not None:
            return
        if self._failed is not None:
            raise RuntimeError(self._failed)
        try:
            self._bind()
        except Exception as e:
            self._failed = f"{type(e).__name__}: {e}"
            raise

    def _bind(self) -> None:
        t0 = time.perf_counter()
        device = next(self.model.parameters()).device
        arch = gpu_arch(device)
        match = [p for p in self.packages if p.name.endswith(f"-{arch}")]
        if not match:
            raise RuntimeError(f"packages built for {', '.join(p.name.split('-')[-1] for p in self.packages)}, "
                               f"this GPU is {arch}")
        child: dict[str, float] = {}
        if LOADER_TEST == "always" or not _tested_at_build(match[0], arch):
            child = _loads_in_a_child(match[0] / PACKAGE)
        t_child = time.perf_counter()
        compiled = torch._inductor.aoti_load_package(str(match[0] / PACKAGE))
        t_load = time.perf_counter()
        module = StepModule(self)  # the names the export gave the weights and the step's tensors
        tensors = {**dict(module.named_parameters(remove_duplicate=False)),
                   **dict(module.named_buffers(remove_duplicate=False))}
        names = compiled.get_constant_fqns()
        missing = [n for n in names if n not in tensors]
        if missing:
            raise RuntimeError(f"the package wants tensors this model lacks: {missing[:3]}")
        compiled.load_constants({n: tensors[n] for n in names}, check_full_update=True, user_managed=True)
        t_bind = time.perf_counter()
        step, self.launch = compiled, "the package's kernel launches"
        if device.type == "cuda" and CUDA_GRAPH:
            try:
                step, self.launch = _cuda_graph(compiled, device), "one CUDA graph a token"
            except Exception as e:  # still ahead of time, one launch a kernel
                _repair_cuda_generator(device)
                fallback("CUDA graph of the ahead-of-time step", "the package's kernel launches",
                         f"{type(e).__name__}: {e}")
        self._runner = step
        self.load_s = time.perf_counter() - t0
        # where a worker's cold start goes (H200, 2026-12-05: aoti_load 46 s of a 76 s cold start)
        self.load_parts = {"child_test_s": round(t_child - t0, 2), "aoti_load_s": round(t_load - t_child, 2),
                           "bind_s": round(t_bind - t_load, 2), "graph_s": round(self.load_s - (t_bind - t0), 2), **child}
        log.info("ahead-of-time decode step loaded from %s in %.1f s", match[0], self.load_s)

    def accepts(self, processors: Any) -> bool:
        if not super().accepts(processors):
            return False
        try:
            self.bind()
        except Exception:  # a package that cannot run here: eager generate(), said once
            fallback("ahead-of-time decode step", "eager generate()", str(self._failed))
            return False
        return True

    def _compiled_step(self) -> Any:
        self.bind()
        self.step_forward = "ahead-of-time compiled step (model's forward)"
        return self._runner


def loader_platform(package: Path, arch: str) -> dict[str, Any]:
    """What decides whether torch's loader can read this package in this process: the package's bytes,
    the GPU architecture, torch (and its CUDA), the C and C++ runtime libraries loaded."""
    import platform

    libstdcxx = ",".join(f"{f}:{Path(f).stat().st_size}" for f in sorted(_mapped_libstdcxx()) if Path(f).exists())
    return {"package_sha256": hashlib.sha256(package.read_bytes()).hexdigest()[:16], "arch": arch,
            "torch": torch.__version__, "cuda": str(torch.version.cuda), "libc": "-".join(platform.libc_ver()),
            "libstdc++": libstdcxx}


def _tested_at_build(folder: Path, arch: str) -> bool:
    """Whether the build loaded this very package in a child process on a platform like this one (the
    Space that built it): then a worker need not test it again before its first token."""
    try:
        tested = json.loads((folder / KEY_FILE).read_text()).get("loads_on")
    except (OSError, ValueError):
        return False
    here = loader_platform(folder / PACKAGE, arch)
    return bool(tested) and all(tested.get(k) == v for k, v in here.items())


def _loads_in_a_child(package: Path) -> dict[str, float]:
    """Load the package once in a child process first: torch 2.11's loader crashed (SIGSEGV) on a
    package built on the H200 machine, which would take the app down with it; a crash in the child
    is an exception here, and the engine decodes eagerly instead. Done at build time, and again at
    bind only where the build's platform record does not match (`_tested_at_build`)."""
    import subprocess
    import sys

    code = ("import sys, time; t0 = time.perf_counter(); import torch._inductor; t1 = time.perf_counter(); "
            "torch._inductor.aoti_load_package(sys.argv[1]); "
            "print(f'{t1 - t0:.2f} {time.perf_counter() - t1:.2f}')")
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(package)], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"torch's loader did not finish reading {package} in a test process in 300 s") from None
    if proc.returncode != 0:
        import signal

        names = {-int(sig): sig.name for sig in signal.Signals}
        code_text = (f"killed by {names[proc.returncode]}" if proc.returncode in names
                     else f"exit status {proc.returncode}")
        tail = "".join(f"; {line}" for line in proc.stderr.strip().splitlines()[-1:])
        raise RuntimeError(f"torch's loader failed on {package} in a test process ({code_text}{tail})")
    try:
        import_s, load_s = map(float, proc.stdout.split()[-2:])
    except ValueError:  # it loaded; only the timing line is missing (something else wrote to stdout)
        return {}
    return {"child_import_s": import_s, "child_load_s": load_s}


def _cuda_graph(compiled: Any, device: torch.device) -> Any:
    """One replay a token: AOTInductor launches each kernel from C++ (~300 a step for the 8B); a CUDA
    graph launches them as one. The warm-up steps write garbage into the cache and state, which the
    next generation's prefill and `_State.start` overwrite."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(2):
            compiled()
    torch.cuda.current_stream(device).wait_stream(stream)
    torch.cuda.synchronize(device)
    graph = torch.cuda.CUDAGraph()
    # relaxed: the default mode's capture failed on the H200 (likely AOTInductor's model container querying
    # and waiting on its last run's CUDA event before a run, which that mode forbids); relaxed captured it
    with torch.cuda.graph(graph, capture_error_mode="relaxed"):
        compiled()
    return graph.replay


def _repair_cuda_generator(device: torch.device) -> None:
    """A capture that failed half-way leaves the default CUDA generator marked as capturing, and every
    later random op on the GPU (eager sampling included) raises "Offset increment outside graph capture
    encountered unexpectedly" (seen on the H200): give it a fresh state with the same seed."""
    try:
        gen = torch.cuda.default_generators[device.index or 0]
        fresh = torch.Generator(device)
        fresh.manual_seed(gen.initial_seed())
        gen.graphsafe_set_state(fresh.graphsafe_get_state())
    except Exception as e:  # noqa: BLE001 - the fall-back note below still says what happened
        log.warning("could not reset the CUDA generator after a failed capture: %s", e)
