"""The cache-miss path: IR function -> passes -> schedule -> LLVM -> object
code -> loaded Executable. Two cache levels sit in front of codegen: a
process-wide dict (canonical IR -> Executable) and the disk cache of object
code (see kernel_cache.py), so a second process skips LLVM entirely."""
from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import threading
import time
import weakref
from collections import OrderedDict


from jitflow.codegen import cpu
from jitflow.envvars import env_int
from jitflow.ir.array_digest import LargeArrays, values_digest
from jitflow.ir.printer import print_function
from jitflow.passes import run_pipeline
from jitflow.passes.fusion import schedule_function
from jitflow.version import __version__

from . import counters, thread_budget, tiered_build
from .blas import blas_symbols, schedule_uses_gemm, warn_gemm_fallback
from .executable import Executable, check_memory
from .poly_executable import executable_class   # symbolic dims: one executable for many shapes
from .kernel_cache import compiler_fingerprint, disk_cache, make_key

# The process-wide memory cache. Every executable still in use (held by a Session or a jit
# signature) is found through `_memory_cache`, which holds it weakly; `_recent` keeps the most
# recently built or reused ones alive after their users are gone, bounded by entries
# (JITFLOW_MEMORY_CACHE_ENTRIES, default 256) and by the bytes of constants they own
# (JITFLOW_MEMORY_CACHE_BYTES, default 256 MiB). An executable in neither is freed, and with it
# its machine code (LoadedCode's resource tracker unloads it from the JIT).
_memory_cache: "weakref.WeakValueDictionary[str, Executable]" = weakref.WeakValueDictionary()
_recent: OrderedDict = OrderedDict()
_recent_bytes = [0]
_lock = threading.Lock()
_key_locks: dict[str, threading.Lock] = {}


def _cache_limits() -> tuple[int, int]:
    return (env_int("JITFLOW_MEMORY_CACHE_ENTRIES", 256, minimum=0),
            env_int("JITFLOW_MEMORY_CACHE_BYTES", 256 << 20, minimum=0))


def _remember(key: str, executable):
    """Records a use of `executable` (caller holds _lock): most recent in the bounded LRU."""
    _memory_cache[key] = executable
    if key in _recent:
        _recent.move_to_end(key)
        return
    _recent[key] = executable
    _recent_bytes[0] += getattr(executable, "resident_bytes", 0)
    max_entries, max_bytes = _cache_limits()
    while _recent and (len(_recent) > max_entries or _recent_bytes[0] > max_bytes):
        _, old = _recent.popitem(last=False)
        _recent_bytes[0] -= getattr(old, "resident_bytes", 0)


def release(executable):
    """Stops the recently-used LRU from keeping `executable` alive (a Session evicted it): it stays
    findable while someone still uses it and is freed, with its machine code, when nobody does."""
    key = getattr(executable, "memory_key", None)
    with _lock:
        if key is not None and _recent.get(key) is executable:
            del _recent[key]
            _recent_bytes[0] -= getattr(executable, "resident_bytes", 0)


def clear_memory_cache():
    """Forgets the recently used executables (those still in use stay cached)."""
    with _lock:
        _recent.clear()
        _recent_bytes[0] = 0


def key_parts(canonical_ir: str, gpu_arch: str | None = None) -> dict:
    """The cache key's parts; `gpu_arch` (e.g. 'sm_90') keys PTX for that GPU instead of CPU code."""
    if gpu_arch is not None:
        from jitflow.codegen import ptx
        target, blas = ptx.target_fingerprint(gpu_arch), False
    else:
        target, blas = cpu.target_fingerprint(), bool(blas_symbols())
    return {"ir": hashlib.sha256(canonical_ir.encode()).hexdigest(),
            "target": target,
            "jitflow": __version__,
            "compiler": compiler_fingerprint(),
            "blas": blas}


_gc_pauses = [0]
_gc_lock = threading.Lock()


@contextlib.contextmanager
def gc_paused():
    """The cyclic garbage collector off while a graph is lowered and compiled: compiling allocates
    many small objects, and each generation-2 collection walks the whole heap (the user's graph
    included), which made compile time quadratic in graph size (10,000-op chain: 4 of 5 s in the
    collector). Objects are still freed by reference counting; cycles are collected afterwards.
    Nested and concurrent pauses are counted; the collector's prior state is restored."""
    with _gc_lock:
        _gc_pauses[0] += 1
        if _gc_pauses[0] == 1:
            _gc_pauses.append(gc.isenabled())
            gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses[0] -= 1
            if _gc_pauses[0] == 0 and _gc_pauses.pop():
                gc.enable()


def build_executable(fn, verify: bool = False, device: str = "cpu") -> Executable:
    with gc_paused():
        return _build_executable(fn, verify, device)


def _build_executable(fn, verify: bool = False, device: str = "cpu") -> Executable:
    """Compiles a lowered function (consumed: passes rewrite it in place). The IR verifier
    runs after every pass when `verify` or JITFLOW_VERIFY=1 (the test suite sets it).
    `device='gpu'` builds PTX for the present GPU and returns a GpuExecutable (gpu_build.py)."""
    gpu_arch = None
    if device == "gpu":
        from .gpu_build import present_arch
        gpu_arch = present_arch()
    fn = run_pipeline(fn, verify=verify or os.environ.get("JITFLOW_VERIFY") == "1")
    arrays = LargeArrays()      # the constants' values stay out of the text: not hashed (array_digest.py)
    parts = key_parts(print_function(fn, locations=False, canonical=arrays), gpu_arch)
    key = make_key(parts)       # the disk cache's key: the code does not depend on those values
    while True:
        memory_key = _memory_key(key, arrays)
        with _lock:
            cached = _memory_cache.get(memory_key)
            if cached is not None:
                _remember(memory_key, cached)
            else:
                key_lock = _key_locks.setdefault(memory_key, threading.Lock())
        if cached is not None:
            if memory_key.endswith(_UNHASHED):     # appeared meanwhile: compare values after all
                continue
            counters.bump("memory_cache_hits")
            return cached
        try:
            with key_lock:      # one build per key when threads race to it
                with _lock:
                    cached = _memory_cache.get(memory_key)
                    if cached is not None:
                        _remember(memory_key, cached)
                if cached is not None:
                    if memory_key.endswith(_UNHASHED):
                        continue
                    counters.bump("memory_cache_hits")
                    return cached
                if gpu_arch is not None:
                    from .gpu_build import build_gpu
                    executable = build_gpu(fn, key, parts, gpu_arch)
                else:
                    executable = _build(fn, key, parts)
                executable.cache_key = key      # the disk entry's key
                executable.memory_key, executable.key_arrays = memory_key, arrays
                with _lock:
                    _remember(memory_key, executable)
        finally:
            with _lock:
                _key_locks.pop(memory_key, None)
        return executable


_UNHASHED = "/unhashed"
_hashed_structures: set = set()     # disk keys whose executables in memory are told apart by values


def _memory_key(key: str, arrays) -> str:
    """The memory cache's key: the disk key, and for a function with large constants the digest of
    their values (the executable owns them). That digest is computed only when needed: while no
    other executable of the same structure is in memory, the key is `key + _UNHASHED`; when a second
    one comes, the first is hashed and moved to its full key, and so is every later one."""
    if not arrays:
        return key
    unhashed = key + _UNHASHED
    with _lock:
        other = _memory_cache.get(unhashed)
        hashed = key in _hashed_structures
    if other is not None:
        other_key = key + "/" + values_digest(other.key_arrays)
        with _lock:
            if _memory_cache.get(unhashed) is other:
                _forget(unhashed)
                other.memory_key = other_key
                _remember(other_key, other)
            _hashed_structures.add(key)
        hashed = True
    return key + "/" + values_digest(arrays) if hashed else unhashed


def _forget(key: str):
    """Drops `key` from both memory-cache levels (caller holds _lock)."""
    _memory_cache.pop(key, None)
    old = _recent.pop(key, None)
    if old is not None:
        _recent_bytes[0] -= getattr(old, "resident_bytes", 0)


def _build(fn, key: str, parts: dict) -> Executable:
    start = time.perf_counter()
    n_results = sum(1 for v in fn.results if v.is_tensor)
    schedule = schedule_function(fn)
    check_memory(schedule)          # a run too big for this machine fails here, before codegen
    symbols = blas_symbols()
    thread_budget.apply_blas_budget()     # one thread budget: BLAS on one thread, once
    thread_budget.cache_pool_object()     # the pool's object code through the disk cache, once
    warn_gemm_fallback(not symbols and schedule_uses_gemm(schedule))
    disk = disk_cache()
    stored = disk.load(key) if disk is not None else None
    llvm_ir = optimized_ir = upgrade = None
    if stored is not None and not all(name in symbols for name in stored[1].get("imports", ())):
        disk.discard(key, "it imports symbols this process does not provide")
        stored = None
    if stored is not None and stored[1].get("tier") == tiered_build.QUICK and not tiered_build.enabled():
        stored = None               # a quick-tier entry, and this process compiles fully before running
    if stored is not None:
        object_code, meta = stored
        imports = tuple(meta.get("imports", ()))
        counters.bump("disk_hits")
        if meta.get("tier") == tiered_build.QUICK:     # its optimized compile never finished: do it here
            def text(schedule=schedule, blas=bool(symbols)):    # only if it starts (the 2nd call), off this thread
                return cpu.generate_llvm_ir(schedule, blas=blas)[0]
            upgrade = tiered_build.Upgrade(text, imports, key, parts, disk, symbols, len(schedule.kernels))
    else:
        llvm_ir, imports = cpu.generate_llvm_ir(schedule, blas=bool(symbols))
        quick = tiered_build.compile_quick(llvm_ir, imports) if tiered_build.enabled() else None
        tier = {}
        if quick is not None:       # quick-tier code now, optimized code from a background compile
            upgrade = tiered_build.Upgrade(llvm_ir, imports, key, parts, disk, symbols, len(schedule.kernels))
            object_code, tier = quick.object_code, {"tier": tiered_build.QUICK}
            counters.bump("quick_tier_compiles")
        else:
            compiled = cpu.compile_llvm_ir(llvm_ir, imports)
            object_code, optimized_ir = compiled.object_code, compiled.optimized_ir
        counters.bump("compiles")
        counters.bump("compile_seconds", time.perf_counter() - start)
        if disk is not None:
            counters.bump("disk_misses")
            disk.store(key, object_code, {"parts": parts, "imports": list(imports), **tier,
                                          "compile_seconds": round(time.perf_counter() - start, 4),
                                          "kernels": len(schedule.kernels)})
    loaded = cpu.LoadedCode(object_code, {name: symbols[name] for name in imports})
    executable = executable_class(schedule)(schedule, loaded, n_results, llvm_ir, optimized_ir, blas=bool(symbols))
    executable.upgrade = upgrade
    executable.function = fn            # printed on demand (inspection), not on the hot path
    executable.cache_key = key
    counters.bump("executables")
    counters.bump("load_seconds", time.perf_counter() - start)
    return executable

