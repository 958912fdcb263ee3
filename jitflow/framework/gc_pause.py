"""`gc_paused()`: pauses CPython's cyclic garbage collector while a whole-graph stage runs.

Graph stages (tf.gradients, lowering a run, importing a meta graph, parsing IR text) allocate
hundreds of thousands of objects that live on (ops, tensors, IR nodes and values point at each other,
so they are all GC-tracked). Each automatic full collection walks the whole heap, which made these
stages grow faster than the graph; measured on a 100k-op chain the collector was over half of
graph building. The stages make little cyclic garbage, so pausing the collector for their duration
and letting it resume afterwards is safe. Nesting and threads are counted: the collector is
re-enabled only when the last pause that disabled it ends.
"""
from __future__ import annotations

import contextlib
import gc
import threading

_lock = threading.Lock()
_depth = 0
_we_disabled = False


@contextlib.contextmanager
def gc_paused():
    global _depth, _we_disabled
    with _lock:
        if _depth == 0:
            _we_disabled = gc.isenabled()
            if _we_disabled:
                gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _we_disabled:
                _we_disabled = False
                gc.enable()
