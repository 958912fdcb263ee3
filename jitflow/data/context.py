"""The host-side state one pass of an input pipeline reads: the values of the
graph tensors the datasets were built from (evaluated once, with compiled code,
when an iterator is initialized), per-dataset reshuffle counters (kept per
Session, so re-initializing an iterator or repeating a dataset reshuffles while
a new Session repeats the same orders) and `cache()` contents."""
from __future__ import annotations

import os
import weakref

import numpy as np


class Context:
    def __init__(self, values: dict, seed_counters):
        self.values = values                      # id(tensor) -> numpy array
        self.seed_counters = seed_counters        # dataset -> iterations started (reshuffle)
        self.caches: dict = {}                    # id(cache dataset) -> list of elements

    def value(self, tensor) -> np.ndarray:
        return self.values[id(tensor)]

    def next_seed_index(self, dataset, advance: bool) -> int:
        index = self.seed_counters.get(dataset, 0)
        if advance:
            self.seed_counters[dataset] = index + 1
        return index

    @staticmethod
    def fresh_seed() -> int:
        return int.from_bytes(os.urandom(8), "little")


def source_tensors(dataset) -> list:
    """The graph tensors a pipeline reads, each once, in a fixed order."""
    seen, out, stack = set(), [], [dataset]
    while stack:
        ds = stack.pop()
        for tensor in ds._tensors():
            if id(tensor) not in seen:
                seen.add(id(tensor))
                out.append(tensor)
        stack.extend(reversed(ds._inputs()))
    return out


def session_seed_counters(session):
    return session.__dict__.setdefault("_data_seed_counters", weakref.WeakKeyDictionary())


def make_context(dataset, session=None, feeds=None, seed_counters=None) -> Context:
    """A Context for one pass of `dataset`: its source tensors evaluated in `session` with `feeds`
    (compiled code, as any run); without a session, in a private Session of their graph."""
    tensors = source_tensors(dataset)
    values = {}
    if tensors:
        if session is None:
            from ..session import Session
            with Session(graph=tensors[0].graph) as private:
                arrays = private.run(tensors)
        else:
            arrays = session.run(tensors, feed_dict=feeds or None)
        values = {id(t): np.asarray(a) for t, a in zip(tensors, arrays)}
    if seed_counters is None:
        seed_counters = session_seed_counters(session) if session is not None else weakref.WeakKeyDictionary()
    return Context(values, seed_counters)
