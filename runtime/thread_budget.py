"""One thread budget for the process: JITFLOW_NUM_THREADS (default: the CPUs this process may use).

Everything jitflow runs in parallel shares it:
- generated parallel loops run on the persistent pool (codegen/thread_pool.py): the calling thread
  plus budget - 1 workers;
- GEMMs: the OpenBLAS jitflow calls (runtime/blas.py: the scipy-openblas64 wheel, else numpy's
  bundled copy) is set to ONE thread, and jitflow splits a large GEMM by rows (columns) of its output
  across the same pool (codegen/parallel_gemm.py). So there is one pool, never two pools of
  `budget` threads each: OpenBLAS's own workers spin for a long while after every call (its
  THREAD_TIMEOUT), which on a shared machine took the cores from the pool's workers and turned
  1 ms steps into 80 ms ones;
- numpy's own OpenBLAS copy (a second library when jitflow uses the wheel) is capped at the
  budget (never raised), through its exported `scipy_openblas_set_num_threads64_` (what
  threadpoolctl does, in a few ctypes lines). Only that library file is touched; a numpy
  built against another BLAS (MKL, Accelerate) is left alone: JITFLOW_NUM_THREADS does not cap it.
When jitflow's BLAS IS numpy's copy (the fallback without the wheel), that one library runs on one
thread, numpy's own matmuls included. The settings are applied once per process, when the first
executable is built (runtime/build.py); JITFLOW_NUM_THREADS is read then and the pool's size is
fixed at its first use.
"""
from __future__ import annotations

import ctypes
import os
import threading

_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads")
_lock = threading.Lock()
_applied: dict = {}
_pool_cache_set = [False]


def budget() -> int:
    """Threads jitflow may keep busy: JITFLOW_NUM_THREADS (validated: a bad value warns once,
    naming the variable, and the default is used), else the CPUs this process may use."""
    from jitflow.codegen.cpu import num_threads
    return num_threads()


def _function(lib, names, restype, argtypes):
    for name in names:
        if hasattr(lib, name):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
            return fn
    return None


def openblas_threads(path: str) -> int | None:
    """The thread count of the (loaded) OpenBLAS at `path`, None when it has no getter."""
    try:
        get = _function(ctypes.CDLL(path), _GETTERS, ctypes.c_int, [])
    except OSError:
        return None
    return None if get is None else int(get())


def set_openblas_threads(path: str, threads: int, only_lower: bool = False) -> bool:
    """Sets the OpenBLAS at `path` to `threads` threads (`only_lower`: never raises its count)."""
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return False
    set_ = _function(lib, _SETTERS, None, [ctypes.c_int])
    if set_ is None:
        return False
    get = _function(lib, _GETTERS, ctypes.c_int, [])
    if only_lower and get is not None and int(get()) <= threads:
        return True
    set_(int(threads))
    return True


def apply_blas_budget() -> dict:
    """Once per process: jitflow's BLAS to one thread, numpy's copy capped at the budget.
    Returns {path: threads set} (tests and the benchmark report read it)."""
    with _lock:
        if "done" in _applied:
            return _applied["done"]
        from . import blas
        done = {}
        _, ours = blas.blas_source()
        if ours is not None and set_openblas_threads(ours, 1):
            done[ours] = 1
        limit = budget()
        for path in blas.numpy_library_paths():
            if path != ours and _is_loaded(path) and set_openblas_threads(path, limit, only_lower=True):
                done[path] = openblas_threads(path)
        _applied["done"] = done
        return done


def _is_loaded(path: str) -> bool:
    """Whether the library is already mapped into this process (never load numpy's copy just to cap it):
    dlopen with RTLD_NOLOAD answers without loading (reading /proc/self/maps cost ~0.8 ms)."""
    noload = getattr(os, "RTLD_NOLOAD", None)
    if noload is not None:
        try:
            ctypes.CDLL(path, mode=noload | os.RTLD_LAZY)
            return True
        except OSError:
            return False
    try:  # pragma: no cover - no RTLD_NOLOAD
        with open("/proc/self/maps") as maps:
            real = os.path.realpath(path)
            return any(real in line for line in maps)
    except OSError:     # pragma: no cover - no /proc: numpy imported it if numpy is imported
        return True


def cache_pool_object():
    """The thread pool's object code goes through the disk kernel cache like any executable's (once)."""
    if _pool_cache_set[0]:
        return
    _pool_cache_set[0] = True
    from jitflow.codegen import cpu, thread_pool

    from .kernel_cache import disk_cache, make_key

    target = cpu.target_fingerprint()     # now: the pool compiles while codegen holds its init lock

    def key(text):
        import hashlib
        return make_key({"thread_pool_ir": hashlib.sha256(text.encode()).hexdigest(), "target": target})

    def load(text):
        disk = disk_cache()
        stored = disk.load(key(text)) if disk is not None else None
        return stored[0] if stored is not None else None

    def store(text, object_code):
        disk = disk_cache()
        if disk is not None:
            disk.store(key(text), object_code, {"parts": {"thread_pool": True}, "imports": []})
    thread_pool.set_object_cache(load, store)
