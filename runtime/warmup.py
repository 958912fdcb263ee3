"""The runtime's one-time preparations, started in a background thread at the end of `import jitflow`
so that they overlap with the program building its first graph instead of delaying its first run
(W8: ~3-4 ms of a fresh process's first step).

What it prepares, each idempotent and each also done on demand by its first user (whichever comes
first does it; the others find it done): LLVM's native target and the process's JIT (codegen/cpu.py),
the BLAS library and its symbols (blas.py: a dlopen of the OpenBLAS shared library), and, when the
disk kernel cache is enabled, the compiler fingerprint (fingerprint.py). It never changes a setting
(thread counts stay with the first build, thread_budget.py), starts no worker threads and compiles
nothing. Most of that time is spent in native code that releases the GIL.

Forking while it runs could leave a lock (LLVM's, the loader's) held in the child, so a fork waits
for it first (os.register_at_fork). JITFLOW_WARMUP=0 turns it off.
"""
from __future__ import annotations

import os
import threading

_thread: list = []


def _prepare():
    try:
        from jitflow.codegen import cpu
        cpu.prepare_jit()
        from . import blas, kernel_cache
        blas.blas_symbols()
        if kernel_cache.enabled():
            kernel_cache.compiler_fingerprint()
    except Exception:       # noqa: BLE001 - a failure here resurfaces, with its message, at first use
        pass


def start():
    """Starts the preparation thread (once per process; not when JITFLOW_WARMUP=0)."""
    if _thread or os.environ.get("JITFLOW_WARMUP", "1") in ("0", "false", "off"):
        return
    thread = threading.Thread(target=_prepare, name="jitflow-warmup", daemon=True)
    _thread.append(thread)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=finish)
    thread.start()


def finish(timeout: float | None = None):
    """Waits for the preparations (before a fork, and in tests)."""
    if _thread and _thread[0].is_alive() and _thread[0] is not threading.current_thread():
        _thread[0].join(timeout)
