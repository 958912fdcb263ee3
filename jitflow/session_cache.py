"""The per-Session executable cache: signature (fetches, fed shapes) -> compiled run, bounded.

A Session compiles one executable per distinct feed signature; a program feeding many batch
sizes used to keep every one of them (and its native code) for the Session's lifetime. This
cache is an LRU of `JITFLOW_SESSION_CACHE_SIZE` entries (default 128; `Session(config=
{"session_cache_size": n})` overrides it per Session). An evicted executable is also released
from the runtime's process-wide LRU (runtime/build.py `release`), so nothing pins it: its
machine code is unloaded as soon as no other Session or jit signature uses it. Behind the exact
signatures sits the table of shape-polymorphic executables (`poly`, jitflow/shape_poly.py): a
signature missing here may still run compiled code shared by every batch size.

The Session warns once (RuntimeWarning) when it has compiled more than
`JITFLOW_SESSION_RETRACE_WARNING` (default 64) signatures: each costs a compile. On close,
a Session that had to evict (it churned through shapes) releases all its executables from the
process-wide LRU; one that did not leaves them there, so a new Session on the same graph (the
private sessions of tf.data, a re-opened `with tf.Session()`) finds them again without a rebuild.
"""
from __future__ import annotations

import threading
import warnings
from collections import OrderedDict

from .envvars import env_int
from .runtime import build
from .shape_poly import PolyTable

DEFAULT_SIZE = 128
DEFAULT_RETRACE_WARNING = 64


def configured_size(config) -> int:
    """The cache bound: config['session_cache_size'] (a dict config), else the environment."""
    value = config.get("session_cache_size") if isinstance(config, dict) else None
    if value is None:
        return env_int("JITFLOW_SESSION_CACHE_SIZE", DEFAULT_SIZE)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"session_cache_size must be a positive integer, got {value!r}")
    return value


class SessionCache(OrderedDict):
    """OrderedDict in recency order (least recent first); inserts evict beyond `size`."""

    def __init__(self, size: int = DEFAULT_SIZE):
        super().__init__()
        self.size = size
        self.compiles = 0
        self.evictions = 0
        self.retrace_warning = env_int("JITFLOW_SESSION_RETRACE_WARNING", DEFAULT_RETRACE_WARNING)
        self._warned = False
        self._lock = threading.Lock()
        self.poly = PolyTable()     # structure -> shape-polymorphic executable (jitflow/shape_poly.py)

    def find(self, key, targets, feeds):
        """The exact signature's entry first, then a shape-polymorphic one serving these feeds."""
        compiled = self.lookup(key)
        return compiled if compiled is not None else self.poly.find(targets, feeds)

    def lookup(self, key):
        compiled = self.get(key)
        if compiled is not None:
            try:
                self.move_to_end(key)
            except KeyError:    # evicted by another thread meanwhile: still valid for this run
                pass
        return compiled

    def insert(self, key, compiled):
        """Adds a freshly compiled entry (the Session holds its lock), evicting the least recent."""
        self[key] = compiled
        self.compiles += 1
        evicted = []
        with self._lock:
            while len(self) > self.size:
                evicted.append(self.popitem(last=False)[1])
        self.evictions += len(evicted)
        for old in evicted:
            build.release(old.executable)
        if self.compiles > self.retrace_warning and not self._warned:
            self._warned = True
            warnings.warn(
                f"This Session has compiled {self.compiles} executables, one per distinct set of fetches "
                f"and fed shapes; each new one costs a compile (at most {self.size} are kept: "
                f"JITFLOW_SESSION_CACHE_SIZE). Feed a few fixed shapes (pad the last batch) to avoid it "
                f"(JITFLOW_SESSION_RETRACE_WARNING={self.retrace_warning} sets when this warns)",
                RuntimeWarning, stacklevel=3)

    def release(self):
        """Empties the cache at Session close (see the module docstring for what is released)."""
        entries = list(self.values())
        self.clear()
        if self.evictions:
            for compiled in entries:
                build.release(compiled.executable)
            for executable in self.poly.executables():
                build.release(executable)
        self.poly = PolyTable()
