"""The decode step compiled ahead of time (ZeroGPU's path, issue #25): a tiny model's step exported and
compiled into a package once; a fresh process that only loads it decodes the same greedy tokens as
eager generate(), the suppression setting still acts without a rebuild, and nothing is compiled there."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch._inductor.config

from reviewgpt.config import EngineConfig
from reviewgpt.generate import aot_step
from reviewgpt.generate.engine import load_engine

ROOT = Path(__file__).resolve().parents[1]


def _config(model_dir: Path, aot: Path | None) -> EngineConfig:
    return EngineConfig(base_model=str(model_dir), local_files_only=True, fast_decoding=False, warmup=False,
                        aot_package=str(aot) if aot else None, max_prompt_tokens=256, max_new_tokens=96)


@pytest.fixture(scope="module")
def package(marker_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("aot")
    engine = load_engine(_config(marker_model_dir, folder))
    assert engine._fast is None and "no ahead-of-time compiled step" in " ".join(engine.info.notes)
    # Scalar C++, an unoptimised wrapper and no precompiled header (it costs more than it saves for one
    # wrapper): the CPU package compiles in a fifth of the time (110 -> 22 s here, with sampling.py's
    # realized key), which CI's 10 minutes need; what is tested (it loads in a fresh process, decodes as
    # eager generate(), compiles nothing there) does not depend on them; the GPU package has Triton kernels.
    with torch._inductor.config.patch({"cpp.simdlen": 1, "aot_inductor.compile_wrapper_opt_level": "O0",
                                       "aot_inductor.precompile_headers": False}):
        built = aot_step.build(engine, folder)
    return folder, built


# Run in a fresh process: what a ZeroGPU worker does. Any compilation there raises.
LOADER = textwrap.dedent("""
    import json, sys, torch, torch._inductor, torch._inductor.compile_fx
    def refuse(*a, **k):
        raise AssertionError("compilation at run time")
    torch.compile = torch.export.export = torch._inductor.aot_compile = refuse
    torch._inductor.compile_fx.compile_fx = torch._inductor.compile_fx.compile_fx_inner = refuse
    from torch._dynamo.utils import counters
    from reviewgpt.config import EngineConfig, GenerationConfig
    from reviewgpt.generate.engine import load_engine
    from tests.conftest import MARKER_PAPER
    model_dir, aot = sys.argv[1], sys.argv[2]
    out = {}
    for name, source in (("aot", aot), ("eager", None)):
        engine = load_engine(EngineConfig(base_model=model_dir, local_files_only=True, fast_decoding=False,
                                          warmup=False, aot_package=source, max_prompt_tokens=256, max_new_tokens=96))
        out[name + "_notes"] = engine.info.notes
        out[name + "_decoder"] = type(engine._fast).__name__ if engine._fast else None
        for s in (0.0, 1.0):
            gen = GenerationConfig(max_new_tokens=80, do_sample=False, suppression=s)
            out[f"{name}_{s}"] = engine.generate(MARKER_PAPER, "4", gen)
        out[name + "_step"] = getattr(engine._fast, "step_forward", None)
    out["frames_compiled"] = sum(counters["stats"].values()) if "stats" in counters else 0
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_a_fresh_process_decodes_with_the_package_like_eager_generate(package, marker_model_dir):
    folder, built = package
    key = json.loads((built / aot_step.KEY_FILE).read_text())
    assert key["arch"] == "cpu" and key["batch"] == 1 and key["cache_len"] == 256 + 96
    proc = subprocess.run([sys.executable, "-c", LOADER, str(marker_model_dir), str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["aot_decoder"] == "AotDecoder" and out["eager_decoder"] is None
    assert any("ahead-of-time compiled step" in n for n in out["aot_notes"])
    assert out["aot_step"].startswith("ahead-of-time")  # the package's step ran, not a fall-back
    for s in ("0.0", "1.0"):
        assert out[f"aot_{s}"] == out[f"eager_{s}"]  # the same greedy review as eager generate()
    # the marker model writes the empty marker; full suppression removes it: the setting acts through
    # the package's tensors, with no rebuild
    assert "<No related terms>" in out["aot_0.0"] and "<No related terms>" not in out["aot_1.0"]
    assert out["frames_compiled"] == 0


def test_a_package_for_another_setup_is_not_used_and_the_note_says_why(package, marker_model_dir, tmp_path):
    folder, built = package
    other = tmp_path / "aot"
    other.mkdir()
    stale = other / built.name.replace(built.name[:16], "0" * 16)
    stale.mkdir()
    key = json.loads((built / aot_step.KEY_FILE).read_text())
    (stale / aot_step.KEY_FILE).write_text(json.dumps({**key, "torch": "2.0.0"}))
    (stale / aot_step.PACKAGE).write_bytes((built / aot_step.PACKAGE).read_bytes())
    engine = load_engine(_config(marker_model_dir, other))
    assert engine._fast is None  # eager generate()
    note = " ".join(engine.info.notes)
    assert "built for another setup" in note and "torch 2.0.0" in note
    assert load_engine(_config(marker_model_dir, tmp_path / "missing"))._fast is None


def test_a_package_that_crashes_the_loader_leaves_eager_decoding(package, marker_model_dir, tmp_path, monkeypatch):
    """A package torch's loader cannot read (here: a cut file) is found, tried in a child process, and
    the engine decodes with eager generate(), saying why, instead of crashing the app."""
    from reviewgpt.config import GenerationConfig
    from tests.conftest import MARKER_PAPER

    folder, built = package
    broken = tmp_path / "aot" / built.name
    broken.mkdir(parents=True)
    (broken / aot_step.KEY_FILE).write_text((built / aot_step.KEY_FILE).read_text())
    (broken / aot_step.PACKAGE).write_bytes((built / aot_step.PACKAGE).read_bytes()[:4096])
    engine = load_engine(_config(marker_model_dir, tmp_path / "aot"))
    assert engine._fast is not None  # found and keyed right
    eager = load_engine(_config(marker_model_dir, None))
    gen = GenerationConfig(max_new_tokens=24, do_sample=False, suppression=0.0)
    tries = []
    monkeypatch.setattr(aot_step, "_loads_in_a_child", lambda p, real=aot_step._loads_in_a_child: (tries.append(p), real(p))[1])
    assert engine.generate(MARKER_PAPER, "4", gen) == eager.generate(MARKER_PAPER, "4", gen)
    assert not engine._fast.accepts(engine._processors(gen))  # it said no, and keeps saying so
    assert len(tries) == 1  # tried once, not at every generation


def test_a_package_the_build_loaded_here_is_not_test_loaded_again(package, marker_model_dir, monkeypatch):
    """The build test-loads its package in a child process and records the platform; a worker on the
    same platform binds it without that second process (the cold start), unless told to test always."""
    folder, built = package
    assert json.loads((built / aot_step.KEY_FILE).read_text())["loads_on"]["package_sha256"]
    tries = []
    monkeypatch.setattr(aot_step, "_loads_in_a_child", lambda p, real=aot_step._loads_in_a_child: (tries.append(p), real(p))[1])
    engine = load_engine(_config(marker_model_dir, folder))
    engine._fast.bind()
    assert tries == [] and "child_load_s" not in engine._fast.load_parts
    monkeypatch.setattr(aot_step, "LOADER_TEST", "always")
    again = load_engine(_config(marker_model_dir, folder))
    again._fast.bind()
    assert len(tries) == 1 and again._fast.load_parts["child_load_s"] >= 0


def test_the_packaged_step_is_linked_to_bind_its_own_symbols(package, tmp_path):
    """The -Bsymbolic build setting (kept on; whether the H200 machine still needs it once the compiler
    is the right one is untested): the package's .so carries DT_FLAGS SYMBOLIC, read back by readelf."""
    import zipfile

    folder, built = package
    assert json.loads((built / aot_step.KEY_FILE).read_text())["build_fixes"] == ["bsymbolic"]
    with zipfile.ZipFile(built / aot_step.PACKAGE) as z:
        libs = [n for n in z.namelist() if n.endswith(".so")]
        assert libs
        z.extractall(tmp_path, libs)
    for lib in libs:
        out = subprocess.run(["readelf", "-dW", str(tmp_path / lib)], capture_output=True, text=True, check=True).stdout
        assert "SYMBOLIC" in out, out


def _fake_cxx(folder: Path, script: str) -> str:
    folder.mkdir()
    path = folder / "g++"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)
    return str(path)


def test_the_package_is_compiled_by_a_compiler_linking_the_cpp_runtime_torch_runs_with(tmp_path, monkeypatch):
    """The H200 machine's CXX (/opt/gcc/bin/g++) copied libstdc++ into what it linked, and every package
    it built crashed torch's loader: the build takes inductor's compiler only when it links against the
    libstdc++.so this process maps, else the system g++ / c++ that does."""
    import os
    import shutil

    from torch._inductor import config

    mapped = aot_step._mapped_libstdcxx()
    assert mapped  # torch's process maps libstdc++ on Linux
    gxx = shutil.which("g++")
    cases = {  # a compiler from elsewhere; one that reports the system libstdc++ but links it statically
        "elsewhere": _fake_cxx(tmp_path / "elsewhere", "echo /opt/gcc-elsewhere/lib64/libstdc++.so.6"),
        "static": _fake_cxx(tmp_path / "static", f'exec {gxx} -static-libstdc++ "$@"'),
    }
    for name, cxx in cases.items():
        monkeypatch.setattr(config.cpp, "cxx", (None, cxx))
        aot_step.runtime_matched_cxx.cache_clear()
        chosen = aot_step.runtime_matched_cxx()
        assert chosen in ("g++", "c++"), name
        lib = subprocess.run([chosen, "-print-file-name=libstdc++.so.6"], capture_output=True, text=True).stdout.strip()
        assert os.path.realpath(lib) in mapped
    assert not aot_step._links_libstdcxx_dynamically(cases["static"]) and aot_step._links_libstdcxx_dynamically(gxx)
    monkeypatch.setattr(config.cpp, "cxx", (None, gxx))
    aot_step.runtime_matched_cxx.cache_clear()
    assert aot_step.runtime_matched_cxx() == gxx  # inductor's own, when it links the mapped one
    wrapper = aot_step.build_fix_options()["cpp.cxx"][1]  # the -Bsymbolic wrapper runs the chosen compiler
    assert gxx in Path(wrapper).read_text()
    aot_step.runtime_matched_cxx.cache_clear()  # later builds in this process see inductor's real setting


def test_a_shared_object_asking_for_an_executable_stack_is_cleared(tmp_path):
    """clear_exec_stack on a real library linked with -z execstack, read back by binutils' readelf."""
    import shutil

    if not (shutil.which("gcc") and shutil.which("readelf")):
        pytest.fail("gcc and readelf are needed (AOTInductor needs the compiler anyway)")
    src = tmp_path / "x.c"
    src.write_text("int f(void) { return 1; }\n")
    lib = tmp_path / "x.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-z", "execstack", "-o", str(lib), str(src)], check=True)

    def stack_flags() -> str:
        out = subprocess.run(["readelf", "-lW", str(lib)], capture_output=True, text=True, check=True).stdout
        return next(line for line in out.splitlines() if "GNU_STACK" in line).split()[-2]

    assert stack_flags() == "RWE"
    assert aot_step.clear_exec_stack(lib) is True
    assert stack_flags() == "RW"
    assert aot_step.clear_exec_stack(lib) is False  # nothing left to clear


def test_the_page_says_which_decode_step_runs_when_a_package_was_asked_for(marker_model_dir, tmp_path):
    from app.service import ReviewService
    from app.settings import AppSettings

    service = ReviewService(AppSettings(base_model=str(marker_model_dir), demo=False, aot_package=str(tmp_path)))
    service.load()
    assert "Decoding: eager generate(), no ahead-of-time compiled step" in service.banner()
    assert "holds no package" in service.banner()
