"""Shape-polymorphic Session runs: one executable for every batch size.

A Session compiles each (fetches, fed shapes) signature to fully specialized code. When a run
misses that cache and the Session has ALREADY compiled the same fetches and fed tensors (the same
structure) for other values of dims that the placeholders leave unknown (`[None, 784]`), the
structure is lowered once more with those dims as symbols (jitflow/ir/symdim.py): every dim that
changed becomes a symbol, dims that changed to the same value share one. The symbolic lowering,
passes, scheduler and codegen either succeed, giving a PolyExecutable (runtime/poly_executable.py)
that later runs of the structure reuse whatever their batch size, or raise (NeedsConcreteShape
or any other error), and then this run compiles concretely as before and the structure is marked
as not polymorphic (`poly_fallbacks` counter), so the attempt is never repeated.

Single-shape programs keep their specialized code (the symbolic attempt starts at the second
shape), and exact signatures are always looked up first. Dims of value 0 or 1 always take the
concrete path. `JITFLOW_SHAPE_POLYMORPHIC=0` turns the feature off.
"""
from __future__ import annotations

from .envvars import env_int
from .ir.symdim import MIN_VALUE, SymDim
from .runtime import counters


def enabled() -> bool:
    return env_int("JITFLOW_SHAPE_POLYMORPHIC", 1, minimum=0) != 0


def _structure(targets, feeds) -> tuple:
    return tuple(map(id, targets)), tuple((id(t), a.ndim) for t, a in feeds.items())


class _Entry:
    __slots__ = ("shapes", "compiled", "pattern", "failed")

    def __init__(self, shapes):
        self.shapes = shapes        # fed shapes of the first concrete compile
        self.compiled = None        # the polymorphic _Compiled, once built
        self.pattern = None         # per feed: per dim, its int value or ('sym', index)
        self.failed = False         # the symbolic attempt failed: concrete compiles only


class PolyTable:
    """Per Session cache: structure -> its polymorphic executable (or the record that it has none)."""

    def __init__(self):
        self.entries: dict = {}

    def find(self, targets, feeds):
        """The polymorphic _Compiled serving these feeds, or None (cheap when there is none)."""
        if not self.entries:
            return None
        entry = self.entries.get(_structure(targets, feeds))
        if entry is None or entry.compiled is None:
            return None
        values: dict = {}
        for array, dims in zip(feeds.values(), entry.pattern):
            for n, d in zip(array.shape, dims):
                if type(d) is int:
                    if n != d:
                        return None
                elif n < MIN_VALUE or values.setdefault(d[1], n) != n:
                    return None
        return entry.compiled

    def compile(self, session, targets, feeds):
        """A new polymorphic _Compiled for this run, or None: compile concretely (the Session holds its lock)."""
        key = _structure(targets, feeds)
        entry = self.entries.get(key)
        shapes = tuple(a.shape for a in feeds.values())
        if entry is None:
            self.entries[key] = _Entry(shapes)      # the first shape: fully specialized code
            return None
        if entry.failed or entry.compiled is not None or not enabled():
            return None
        pattern, feed_shapes, symbol_of_value = [], {}, {}
        for (tensor, array), first in zip(feeds.items(), entry.shapes):
            static = tensor._type.shape
            dims = []
            for k, (n, n0) in enumerate(zip(array.shape, first)):
                unknown = static is None or static[k] is None
                if not unknown or n == n0:
                    dims.append(n)
                    continue
                if n < MIN_VALUE:
                    return None                     # 0 and 1 take the concrete path
                if n0 < MIN_VALUE:                  # first seen with 0 or 1: generalize from this shape on
                    entry.shapes = shapes
                    return None
                dims.append(("sym", symbol_of_value.setdefault(n, len(symbol_of_value))))
            pattern.append(tuple(dims))
            if any(type(d) is not int for d in dims):
                feed_shapes[id(tensor)] = tuple(d if type(d) is int else SymDim.symbol(d[1]) for d in dims)
        if not symbol_of_value:
            return None
        try:
            compiled = _build(session, targets, feeds, feed_shapes)
        except Exception:       # noqa: BLE001 - any failure of the symbolic attempt: concrete code instead
            entry.failed = True
            counters.bump("poly_fallbacks")
            return None
        if compiled is None:
            entry.failed = True
            counters.bump("poly_fallbacks")
            return None
        entry.pattern = tuple(pattern)     # before `compiled`: find() runs without the Session's lock
        entry.compiled = compiled
        counters.bump("poly_compiles")
        return compiled

    def executables(self) -> list:
        return [e.compiled.executable for e in self.entries.values() if e.compiled is not None]


def _build(session, targets, feeds, feed_shapes):
    from .framework.lowering import lower_run
    from .runtime.build import build_executable, gc_paused
    from .session import _Compiled
    if session._run_device(targets, feeds) != "cpu":
        return None             # the GPU path compiles concrete shapes only
    with gc_paused():
        lowered = lower_run(session.graph, targets, feeds, feed_shapes)
        executable = build_executable(lowered.function, device="cpu")
    if not getattr(executable, "symbolic", False):
        return None             # every symbol folded away (the dims were not used): nothing to share
    return _Compiled(executable, lowered)
