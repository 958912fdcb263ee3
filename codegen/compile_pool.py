"""Worker processes that run LLVM's optimizer (codegen/llvm_worker.py says why: llvmlite leaks
native memory on every optimization run, so the leak lives and dies in a recycled child).

`optimize(text, cpu, features)` -> (optimized IR, object code). Idle workers are kept (at most
one per CPU) and reused; a worker is replaced after JITFLOW_COMPILE_WORKER_RECYCLE compiles
(default 200); the first JITFLOW_COMPILE_IN_PROCESS_FIRST (16) compiles of a process run in it, so
short programs do not wait for a worker's start-up. JITFLOW_COMPILE_WORKER=0 compiles in-process (leaking as llvmlite does). When a
worker cannot be started at all the pool warns once and compiles in-process from then on; a
worker that dies while compiling (LLVM aborted) is reported as an error naming that, instead of
taking the user's process down with it.
"""
from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
import warnings

from . import llvm_worker

DEFAULT_RECYCLE = 200
_WORKER_PATH = os.path.abspath(llvm_worker.__file__)
_lock = threading.Lock()
_idle: list = []
_state = {"disabled": False, "spawned": 0}


def enabled() -> bool:
    return not _state["disabled"] and os.environ.get("JITFLOW_COMPILE_WORKER", "1") not in ("0", "false", "off")


def _recycle_after() -> int:
    from jitflow.envvars import env_int
    return env_int("JITFLOW_COMPILE_WORKER_RECYCLE", DEFAULT_RECYCLE)


class _Worker:
    def __init__(self):
        # run_path: the worker's directory is not put on sys.path (codegen's module names stay private)
        code = f"import runpy; runpy.run_path({_WORKER_PATH!r}, run_name='__main__')"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, close_fds=True)
        self.compiles = 0
        _state["spawned"] += 1

    def request(self, payload):
        try:
            llvm_worker.write_frame(self.proc.stdin, payload)
            return llvm_worker.read_frame(self.proc.stdout)
        except (OSError, ValueError, EOFError):
            return None

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except Exception:   # noqa: BLE001 - a stuck worker is killed
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _take():
    with _lock:
        if _idle:
            return _idle.pop()
    return _Worker()


def _give_back(worker):
    if worker.compiles >= _recycle_after():
        worker.close()
        return
    with _lock:
        if len(_idle) < (os.cpu_count() or 1):
            _idle.append(worker)
            return
    worker.close()


def _discard(worker) -> int:
    worker.proc.kill()
    code = worker.proc.wait()
    worker.close()
    return code


IN_PROCESS_FIRST = 16     # the first compiles of a process run in it: a bounded leak (~16 x 350 KB) that
                          # spares short programs the worker's start-up (~0.15 s before the first result)


def _in_process_turn() -> bool:
    """True for the first JITFLOW_COMPILE_IN_PROCESS_FIRST (default 16) compiles of this process."""
    from jitflow.envvars import env_int
    with _count_lock:
        _state["in_process"] = _state.get("in_process", 0) + 1
        return _state["in_process"] <= env_int("JITFLOW_COMPILE_IN_PROCESS_FIRST", IN_PROCESS_FIRST, minimum=0)


_count_lock = threading.Lock()


def optimize(text: str, cpu: str, features: str, worker_only: bool = False, quick: bool = False) -> tuple[str, bytes]:
    """`worker_only`: never in this process (a background compile: LLVM's context is not thread-safe, and
    the thread that asked must not wait for it). `quick`: a quick-tier module (llvm_worker.quick_objects)."""
    if not enabled() or (not worker_only and _in_process_turn()):
        return llvm_worker.optimize(text, cpu, features, quick)
    try:
        worker = _take()
    except OSError as exc:
        _state["disabled"] = True
        warnings.warn(f"jitflow: cannot start an LLVM compile worker ({exc}); compiling in this process "
                      f"from now on (llvmlite then leaks ~100-350 KB per compile)", RuntimeWarning, stacklevel=3)
        return llvm_worker.optimize(text, cpu, features, quick)
    reply = worker.request((text, cpu, features, quick))
    if reply is None and worker.compiles:      # it had served before: it may have died while idle
        _discard(worker)
        worker = _Worker()
        reply = worker.request((text, cpu, features, quick))
    if reply is None:
        code = _discard(worker)
        raise RuntimeError(f"jitflow: the LLVM compile worker died (exit status {code}) while optimizing a "
                           f"module; LLVM crashed on this program (JITFLOW_COMPILE_WORKER=0 compiles in-process)")
    worker.compiles += 1
    _give_back(worker)
    if not reply[0]:
        raise RuntimeError(reply[1])
    return reply[1], reply[2]


def shutdown():
    """Stops the idle workers (at exit; the next compile starts a fresh one)."""
    with _lock:
        workers, _idle[:] = list(_idle), []
    for worker in workers:
        worker.close()


def _forget_parent_workers():
    """In a forked child: the idle workers' pipes belong to the parent; start fresh ones when needed."""
    global _lock, _count_lock
    _lock, _count_lock = threading.Lock(), threading.Lock()
    _idle.clear()


atexit.register(shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent_workers)
