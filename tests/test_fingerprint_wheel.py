"""Issue 16 item 4: the kernel-cache key sees the code that is actually installed.

The compiler fingerprint used to glob a `codegen/` directory next to the `jitflow` package, which exists
only in a source checkout; in a wheel install it hashed no code generator at all, so a changed codegen
reused stale native code from the disk cache. These tests build a real wheel of the project, install it
into a fresh virtual environment (no system site-packages, so the editable install is invisible), and
check there that the fingerprint covers the code generator and that one changed byte of an installed
codegen file changes the fingerprint and makes the disk cache miss.

How the fresh environment gets its dependencies, offline: `python -m venv --without-pip` (no network,
no bundled pip needed), then this venv's own pip installs the wheel into it with
`pip --python NEW install --no-deps --no-index`. numpy, llvmlite, safetensors, scipy-openblas64 (and
google-crc32c, optional) are made importable by a `.pth` file naming a directory that holds symlinks to
exactly those packages (with their `.libs` and `.dist-info` siblings) from the test's own interpreter:
no download, no pip cache, nothing else from the outer site-packages (in particular not the editable jitflow finder). Building the
wheel uses the installed setuptools offline when it can build wheels (setuptools >= 70.1 or the `wheel`
package present); otherwise pip's isolated build fetches setuptools from the configured package index.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "jitflow", "codegen", "runtime")
DEPENDENCIES = ("numpy", "llvmlite", "google_crc32c", "safetensors", "scipy_openblas64")

SNIPPET = r"""
import json, sys
import numpy as np
import jitflow as tf
import jitflow.codegen, jitflow.codegen.loops
from jitflow.runtime import fingerprint, counters, build
info = fingerprint.fingerprint_info()
x = tf.placeholder(tf.float32, (4,))
y = x * 3.0 + 1.25
with tf.Session() as sess:
    value = sess.run(y, {x: np.arange(4, dtype=np.float32)})
print("@@" + json.dumps({
    "jitflow": tf.__file__, "codegen": jitflow.codegen.__file__, "loops": jitflow.codegen.loops.__file__,
    "sys_path": sys.path, "digest": info["digest"], "modules": info["modules"],
    "key_compiler": build.key_parts("x")["compiler"], "value": value.tolist(), "stats": counters.stats()}))
"""


def _wheel_can_build_offline() -> bool:
    import setuptools
    version = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())
    return version >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _build_wheel(src: Path, out: Path) -> Path:
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)]
    if _wheel_can_build_offline():
        command[5:5] = ["--no-build-isolation", "--no-index"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=240)
    wheels = list(out.glob("jitflow-*.whl"))
    assert proc.returncode == 0 and wheels, f"building the wheel failed:\n{proc.stdout}\n{proc.stderr}"
    return wheels[0]


def _link_dependencies(target: Path):
    """Symlinks numpy, llvmlite (google_crc32c when present) with their .libs / .dist-info into `target`."""
    target.mkdir()
    for name in DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            assert name == "google_crc32c", f"{name} is not importable here"
            continue
        package = Path(list(spec.submodule_search_locations)[0])
        site = package.parent
        for entry in [package, site / f"{name}.libs", *site.glob(f"{name}-*.dist-info")]:
            if entry.exists():
                (target / entry.name).symlink_to(entry)


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "JITFLOW_", "VIRTUAL_ENV"))}
    env.update(PYTHONNOUSERSITE="1", **extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel_install")
    src = root / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    wheel = _build_wheel(src, root / "wheels")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                           "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"installing the wheel failed:\n{proc.stdout}\n{proc.stderr}"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, env=_clean_env()).stdout.strip()
    deps = root / "deps"
    _link_dependencies(deps)
    Path(purelib, "_jitflow_test_deps.pth").write_text(str(deps) + "\n")
    return {"python": python, "site": Path(purelib), "root": root}


def _run_installed(installed, cache_dir: Path) -> dict:
    proc = subprocess.run([str(installed["python"]), "-c", SNIPPET], capture_output=True, text=True,
                          timeout=180, cwd=installed["root"], env=_clean_env(JITFLOW_CACHE_DIR=str(cache_dir)))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("@@")]
    assert proc.returncode == 0 and lines, f"snippet failed in the installed venv:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1][2:])


def test_kernel_cache_key_sees_installed_code(installed):
    """The bug: in a wheel install, codegen/ is not next to the jitflow package, so nothing of it was hashed."""
    out = _run_installed(installed, installed["root"] / "cache-a")
    site = installed["site"]
    for key in ("jitflow", "codegen", "loops"):                       # really the installed copy
        assert Path(out[key]).resolve().is_relative_to(site.resolve()), out[key]
    assert not any(Path(p).resolve() == REPO.resolve() for p in out["sys_path"] if p)
    assert not (site / "codegen").exists()                            # the old glob's directory: absent
    modules = set(out["modules"])
    for name in ("jitflow.codegen.loops", "jitflow.codegen.cpu", "jitflow.codegen.scalar_llvm",
                 "jitflow.runtime.build", "jitflow.runtime.executable", "jitflow.ops.elementwise",
                 "jitflow.ops.registry", "jitflow.passes.pipeline", "jitflow.ir.core",
                 "jitflow.framework.lowering"):
        assert name in modules, f"{name} not covered by the fingerprint: {sorted(modules)}"
    assert not any(m.startswith(("jitflow.keras", "jitflow.api")) for m in modules)
    assert out["key_compiler"] == out["digest"]                      # what the cache key really uses
    assert out["value"] == [1.25, 4.25, 7.25, 10.25]


def test_changed_installed_codegen_byte_changes_fingerprint(installed):
    cache = installed["root"] / "cache-b"
    first = _run_installed(installed, cache)
    assert first["stats"]["disk_misses"] >= 1 and first["stats"]["disk_hits"] == 0
    again = _run_installed(installed, cache)                          # same code: the disk cache is reused
    assert again["digest"] == first["digest"]
    assert again["stats"]["disk_hits"] >= 1 and again["stats"]["compiles"] == 0
    loops = installed["site"] / "jitflow" / "codegen" / "loops.py"
    original = loops.read_bytes()
    position = original.index(b'"""') + 3                             # a byte of the module docstring
    changed = bytearray(original)
    changed[position] = ord("x") if changed[position] != ord("x") else ord("y")
    try:
        loops.write_bytes(bytes(changed))
        after = _run_installed(installed, cache)
    finally:
        loops.write_bytes(original)
    assert after["digest"] != first["digest"]
    assert after["stats"]["disk_hits"] == 0 and after["stats"]["compiles"] >= 1   # no stale native code
    assert after["value"] == first["value"]


def test_fingerprint_is_computed_once_and_is_fast():
    from jitflow.runtime import fingerprint, kernel_cache
    fingerprint._reset_for_tests()
    start = time.perf_counter()
    digest = kernel_cache.compiler_fingerprint()
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(1000):
        assert kernel_cache.compiler_fingerprint() == digest
    cached = (time.perf_counter() - start) / 1000
    info = fingerprint.fingerprint_info()
    print(f"compiler fingerprint: {len(info['modules'])} modules hashed in {first * 1e3:.2f} ms; "
          f"cached call {cached * 1e6:.2f} us")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert first < 0.5 and cached < 1e-4
    assert {"jitflow.codegen.loops", "jitflow.codegen.cpu", "jitflow.runtime.fingerprint"} <= set(info["modules"])


def test_fingerprint_names_modules_not_paths(tmp_path, monkeypatch):
    """Same code at another path hashes the same; a changed byte in a covered file hashes differently."""
    from jitflow.runtime import fingerprint
    fingerprint._reset_for_tests()
    baseline = fingerprint.fingerprint_info()["digest"]
    fake = tmp_path / "pkg" / "extra_fp_probe"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    monkeypatch.setattr(fingerprint, "COVERED_PACKAGES", fingerprint.COVERED_PACKAGES + ("extra_fp_probe",))
    try:
        fingerprint._reset_for_tests()
        with_probe = fingerprint.fingerprint_info()
        assert "extra_fp_probe" in with_probe["modules"] and with_probe["digest"] != baseline
        moved = tmp_path / "elsewhere" / "extra_fp_probe"
        shutil.copytree(fake, moved)
        sys.modules.pop("extra_fp_probe", None)
        monkeypatch.syspath_prepend(str(tmp_path / "elsewhere"))
        fingerprint._reset_for_tests()
        assert fingerprint.fingerprint_info()["digest"] == with_probe["digest"]
        (moved / "__init__.py").write_text("VALUE = 2\n")
        fingerprint._reset_for_tests()
        assert sys.modules["extra_fp_probe"].__file__ == str(moved / "__init__.py")
        assert fingerprint.fingerprint_info()["digest"] != with_probe["digest"]
    finally:
        sys.modules.pop("extra_fp_probe", None)
        fingerprint._reset_for_tests()
