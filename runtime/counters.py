"""Process-wide counters: compiles (LLVM runs), compile seconds, memory and disk
cache hits, executables loaded, native launches. `jitflow.runtime.stats()` returns a snapshot."""
from __future__ import annotations

import threading

_lock = threading.Lock()
_counters = {"compiles": 0, "compile_seconds": 0.0, "cache_hits": 0, "memory_cache_hits": 0,
             "disk_hits": 0, "disk_misses": 0, "launches": 0, "executables": 0, "load_seconds": 0.0}


def bump(name: str, amount=1):
    with _lock:
        _counters[name] = _counters.get(name, 0) + amount


def launched():
    """Counts one native launch (hot path: no lock; the GIL makes the increment safe enough)."""
    _counters["launches"] += 1


def stats() -> dict:
    with _lock:
        return dict(_counters)


def reset_stats():
    with _lock:
        for key in _counters:
            _counters[key] = 0.0 if isinstance(_counters[key], float) else 0
