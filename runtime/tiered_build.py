"""Tiered compilation: a new executable first runs quick-tier code (codegen/quick_tier.py: the same
module with LLVM's work limited to the reductions, about half the compile time), and the fully
optimized code replaces it in place once a background thread has compiled it.

- The optimized compile starts at the executable's SECOND call: graphs run once (initializers,
  a final evaluation) never pay for it.
- Both tiers compute bit-identical results (quick_tier.py says why), so the swap is invisible to
  the program except in time; `Executable` keeps the retired code alive for calls still in it.
- The disk cache entry of the executable first holds the quick object (its metadata says
  `"tier": "quick"`), then the optimized one, which replaces it; a process that loads a quick
  entry optimizes it in the background in turn.
- At exit, background compiles in progress are finished (bounded by JITFLOW_TIERED_EXIT_WAIT
  seconds, default 60) so that their objects reach the disk cache.
- JITFLOW_TIERED_COMPILE=0 compiles every executable fully before its first call (as before).
"""
from __future__ import annotations

import atexit
import os
import threading
import time
import warnings
import weakref

from jitflow.codegen import compile_pool, cpu    # compile_pool first: its exit hook must run after ours
from jitflow.codegen.quick_tier import quick_tier_text, skipped_functions

from . import counters

_threads: list[threading.Thread] = []
_threads_lock = threading.Lock()
_slots = threading.BoundedSemaphore(1)     # one background compile at a time: the program keeps a core


def enabled() -> bool:
    """On unless JITFLOW_TIERED_COMPILE=0, and only with compile workers (a background compile in this
    process would share LLVM's global context, which is not thread-safe, with the program's compiles)."""
    return os.environ.get("JITFLOW_TIERED_COMPILE", "1") not in ("0", "false", "off") and compile_pool.enabled()


QUICK = "quick"     # the disk-cache metadata's `tier` of a quick-tier object


def compile_quick(llvm_ir: str, imports: tuple):
    """The quick tier's CompiledModule, or None when it would skip nothing (one compile suffices)."""
    text = quick_tier_text(llvm_ir)
    if not skipped_functions(text):
        return None
    return cpu.compile_llvm_ir(text, imports, quick=True)


class Upgrade:
    """The pending optimized compile of one executable (held by it until it has run)."""

    def __init__(self, llvm_ir, imports: tuple, key: str, parts: dict, disk, symbols: dict, kernels: int):
        """`llvm_ir`: the module's text, or a function making it (a quick-tier entry loaded from the disk
        cache: its text is generated only if the upgrade ever starts, in the background thread)."""
        self.llvm_ir, self.imports, self.key, self.parts = llvm_ir, imports, key, parts
        self.disk, self.symbols, self.kernels = disk, symbols, kernels
        self.calls = 0
        self.thread: threading.Thread | None = None
        self.done = threading.Event()

    def tick(self, executable):
        """Called by the executable on each call until the upgrade is installed; starts it on the second."""
        self.calls += 1
        if self.calls == 2 and self.thread is None:
            self.start(executable)

    def start(self, executable):
        # a weak reference: an executable dropped meanwhile is freed (its object still reaches the disk cache)
        self.thread = threading.Thread(target=self._run, args=(weakref.ref(executable),), name="jitflow-optimize",
                                       daemon=True)
        with _threads_lock:
            _threads[:] = [t for t in _threads if t.is_alive()] + [self.thread]
        self.thread.start()

    def wait(self, executable, timeout: float | None = None):
        """Blocks until the optimized code is installed (compiling it now if it never started)."""
        if self.thread is None or (not self.thread.is_alive() and not self.done.is_set()):
            self.start(executable)      # never started, or started in the parent of a forked process
        self.done.wait(timeout)

    def _run(self, executable_ref):
        try:
            with _slots:
                start = time.perf_counter()
                if callable(self.llvm_ir):
                    self.llvm_ir = self.llvm_ir()
                compiled = cpu.compile_llvm_ir(self.llvm_ir, self.imports, worker_only=True)
                executable = executable_ref()
                if executable is not None:
                    loaded = cpu.LoadedCode(compiled.object_code, {n: self.symbols[n] for n in self.imports})
                    executable.install_optimized(loaded, compiled.optimized_ir)
                del executable
                counters.bump("background_compiles")
                counters.bump("background_compile_seconds", time.perf_counter() - start)
                if self.disk is not None:
                    self.disk.store(self.key, compiled.object_code,
                                    {"parts": self.parts, "imports": list(self.imports),
                                     "compile_seconds": round(time.perf_counter() - start, 4),
                                     "kernels": self.kernels}, replace=True)
        except Exception as exc:   # noqa: BLE001 - the quick tier keeps running; say why it stays
            warnings.warn(f"jitflow: the optimized compile of an executable failed ({type(exc).__name__}: {exc}); "
                          f"it keeps running its quick-tier code", RuntimeWarning, stacklevel=2)
        finally:
            self.done.set()


def wait_for_background_compiles(timeout: float | None = None) -> bool:
    """Waits for the optimized compiles in progress; True when none is left running."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _threads_lock:
        threads = list(_threads)
    for thread in threads:
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


def _finish_at_exit():
    from jitflow.envvars import env_int
    wait_for_background_compiles(env_int("JITFLOW_TIERED_EXIT_WAIT", 60, minimum=0))


def _after_fork_in_child():
    """The parent's background threads do not exist here; neither may their hold on the semaphore."""
    global _slots, _threads_lock
    _slots, _threads_lock = threading.BoundedSemaphore(1), threading.Lock()
    _threads.clear()


atexit.register(_finish_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
