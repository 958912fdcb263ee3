"""The CBLAS routines compiled code calls (GEMM, GEMV and SYRK for float32/float64, ILP64).

Where they come from, in order:
1. the `scipy-openblas64` wheel, a declared dependency of jitflow (the OpenBLAS build made for
   Python packaging): loaded explicitly from its own helpers, `get_lib_dir()` and
   `get_library(fullname=True)`; its symbols carry the `scipy_` prefix and the `64_` suffix
   (`scipy_cblas_sgemm64_`), the ILP64 ABI our generated calls use (64-bit integer arguments);
2. second choice, the same library as numpy's own wheels bundle it (`numpy.libs/libscipy_openblas64_*.so`),
   for an environment where the wheel is missing (a `--no-deps` install);
3. neither: codegen emits its own GEMM loops (several times slower), and the first executable
   that needs one warns once (`warn_gemm_fallback`). `JITFLOW_BLAS=0` asks for the loops on
   purpose (no warning).
"""
from __future__ import annotations

import ctypes
import glob
import os
import threading
import warnings

_CANDIDATES = {f"jf_cblas_{p}{routine}": (f"scipy_cblas_{p}{routine}64_", f"cblas_{p}{routine}64_")
               for p in "sd" for routine in ("gemm", "gemv", "syrk")}
_lock = threading.Lock()
_cache: dict = {}
_warned: list = []


class BlasFallbackWarning(RuntimeWarning):
    """No BLAS library was found: matmul runs generated loops (correct, several times slower)."""


def wheel_library_paths() -> list:
    """The scipy-openblas64 wheel's shared library ([] if absent). The package's helpers say where it
    is (`get_lib_dir()` is its `lib/` folder); importing the package to ask costs ~16 ms per process
    (its __init__ reads its own version through importlib.metadata), so the folder is found with
    `find_spec` first, and the helpers are asked only when that finds no single library there."""
    import importlib.util
    try:
        spec = importlib.util.find_spec("scipy_openblas64")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return []
    for folder in spec.submodule_search_locations or ():
        found = glob.glob(os.path.join(folder, "lib", "libscipy_openblas64*.so*"))
        if len(found) == 1:
            return found
    try:
        import scipy_openblas64
    except (ImportError, OSError):     # not installed, or its library failed to load
        return []
    libdir = scipy_openblas64.get_lib_dir()
    try:
        return [os.path.join(libdir, scipy_openblas64.get_library(fullname=True))]
    except (TypeError, IndexError, OSError):     # an older helper without `fullname`
        return sorted(glob.glob(os.path.join(libdir, "libscipy_openblas64*")))


def numpy_library_paths() -> list:
    """The OpenBLAS numpy's wheel bundles (a private location: the second choice)."""
    import numpy
    libdir = os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs")
    return sorted(glob.glob(os.path.join(libdir, "libscipy_openblas64_*.so")))


def _load_single_threaded(path: str):
    """dlopen with OPENBLAS_NUM_THREADS=1 while the library initializes: jitflow runs its BLAS on one
    thread (thread_budget.py), and an OpenBLAS that starts its own thread pool when loaded keeps those
    threads spinning for ~0.1 s (its THREAD_TIMEOUT), taking the core the first steps' pool workers
    need (W8: the first ~15 W4 steps of a process ran at single-thread speed). Restored right after;
    a library already loaded (numpy's copy) is not initialized again, so this changes nothing there."""
    with _lock_env:
        saved = os.environ.get("OPENBLAS_NUM_THREADS")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        try:
            return ctypes.CDLL(path)
        finally:
            if saved is None:
                os.environ.pop("OPENBLAS_NUM_THREADS", None)
            else:
                os.environ["OPENBLAS_NUM_THREADS"] = saved


_lock_env = threading.Lock()


def _symbols_of(path: str):
    """({our name: address}, the loaded library) when `path` has every routine, else None."""
    try:
        lib = _load_single_threaded(path)
    except OSError:
        return None
    found = {}
    for ours, names in _CANDIDATES.items():
        for name in names:   # ILP64 names only: our ABI passes 64-bit ints
            if hasattr(lib, name):
                found[ours] = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                break
    return (found, lib) if len(found) == len(_CANDIDATES) else None


def blas_symbols() -> dict:
    """{'jf_cblas_sgemm': address, ...} (every routine) or {} when no library is found or JITFLOW_BLAS=0."""
    with _lock:
        if "symbols" in _cache:
            return _cache["symbols"]
        symbols = {}
        if os.environ.get("JITFLOW_BLAS", "1") != "0":
            for source, finder in (("scipy-openblas64", wheel_library_paths), ("numpy", numpy_library_paths)):
                for path in finder():
                    loaded = _symbols_of(path)
                    if loaded is not None:
                        symbols, _cache["lib"] = loaded
                        _cache["source"], _cache["path"] = source, path
                        break
                if symbols:
                    break
        _cache["symbols"] = symbols
        return symbols


def blas_source() -> tuple:
    """(which library: 'scipy-openblas64' | 'numpy' | None, its path or None)."""
    blas_symbols()
    return _cache.get("source"), _cache.get("path")


def schedule_uses_gemm(schedule) -> bool:
    """Whether a CPU schedule has a floating-point matmul kernel (the kind BLAS would run)."""
    return any(k.kind == "library" and getattr(k.root.node, "op", None) == "matmul"
               and k.out.dtype.name in ("float32", "float64") for k in schedule.kernels)


def warn_gemm_fallback(uses_gemm: bool):
    """Warns once per process when an executable needs GEMM and no BLAS was found (not when
    JITFLOW_BLAS=0 chose the loops)."""
    if not uses_gemm or blas_symbols() or os.environ.get("JITFLOW_BLAS", "1") == "0":
        return
    with _lock:
        if _warned:
            return
        _warned.append(True)
    warnings.warn("jitflow found no BLAS library (neither the scipy-openblas64 package nor the OpenBLAS "
                  "bundled with numpy), so matmul runs generated loops, several times slower: "
                  "`pip install scipy-openblas64`", BlasFallbackWarning, stacklevel=2)


def reset_for_tests():
    """Forgets the loaded library and the warning (tests monkeypatch the finders)."""
    with _lock:
        _cache.clear()
        _warned.clear()
