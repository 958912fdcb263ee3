"""The cache-miss path: IR function -> passes -> schedule -> LLVM -> object
code -> loaded Executable, with a process-wide in-memory cache keyed by the
canonical IR text and the target."""
from __future__ import annotations

import hashlib
import threading
import time

from jitflow.codegen import cpu
from jitflow.ir.printer import print_function
from jitflow.passes import run_pipeline
from jitflow.passes.schedule import schedule_function

from . import counters as _stats
from .blas import blas_symbols
from .executable import Executable

_memory_cache: dict[str, Executable] = {}
_lock = threading.Lock()


def cache_key(fn) -> str:
    blas = "blas" if blas_symbols() else "noblas"
    text = print_function(fn, locations=False, canonical=True)
    return hashlib.sha256(f"{text}\n{cpu.target_fingerprint()}\n{blas}".encode()).hexdigest()


def build_executable(fn, verify: bool = False) -> Executable:
    """Compiles a lowered function (consumed: passes rewrite it in place)."""
    fn = run_pipeline(fn, verify=verify)
    key = cache_key(fn)
    with _lock:
        cached = _memory_cache.get(key)
    if cached is not None:
        _stats.bump("memory_cache_hits")
        return cached
    start = time.perf_counter()
    n_results = sum(1 for v in fn.results if v.is_tensor)
    schedule = schedule_function(fn)
    symbols = blas_symbols()
    text, imports = cpu.generate_llvm_ir(schedule, blas=bool(symbols))
    compiled = cpu.compile_llvm_ir(text, imports)
    loaded = cpu.LoadedCode(compiled.object_code, {name: symbols[name] for name in imports})
    executable = Executable(schedule, loaded, n_results, text, compiled.optimized_ir)
    executable.ir_text = print_function(fn)
    _stats.bump("compiles")
    _stats.bump("compile_seconds", time.perf_counter() - start)
    with _lock:
        _memory_cache[key] = executable
    return executable
