"""Host hooks: graph ops whose work happens on the host inside `Session.run`,
before the compiled executable runs (tf.data iterator initializers and
`get_next`; see jitflow/data/iterator.py).

A hook is registered for one op of a graph. When a run's pruned subgraph needs
that op (and its outputs are not fed), `Session.run` calls the hook once per
run; a hook may return arrays for the op's outputs, which become feeds of the
compiled executable. Hooks run by `stage` (lower first), then in graph order.
"""
from __future__ import annotations

import numpy as np

from ..runtime.native_arrays import native_array
from .lowering import needed_ops


class HostHook:
    """Base of host hooks: `stage` orders them, `__call__(session, feeds)` returns None or output arrays."""

    stage = 0

    def __call__(self, session, feeds):
        raise TypeError(f"{type(self).__name__} must implement __call__ (a HostHook subclass)")


def register(op, hook: HostHook):
    """Makes `hook` run whenever a Session.run needs `op`."""
    op.graph.__dict__.setdefault("_host_hooks", {})[op._id] = hook


def run_hooks(session, targets, feeds: dict) -> dict:
    """The feeds of this run with the outputs of the host hooks it needs added (a new dict when any ran)."""
    hooks = session.graph.__dict__.get("_host_hooks")
    if not hooks:
        return feeds
    cache = session.__dict__.setdefault("_host_hook_cache", {})
    key = (tuple(map(id, targets)), tuple(map(id, feeds)))
    found = cache.get(key)
    if found is None:
        fed = {id(t) for t in feeds}
        ops = needed_ops(targets, fed)
        used = {id(t) for op in ops for t in op.inputs} | {id(t) for t in targets}
        # an op with outputs runs when one of its unfed outputs is used; one without (an initializer) when needed
        found, idle = [], []
        for op in ops:
            if op._id not in hooks or (op.outputs and all(id(t) in fed for t in op.outputs)):
                continue
            if not op.outputs or any(id(t) in used and id(t) not in fed for t in op.outputs):
                found.append((hooks[op._id], op))
            else:      # only its fed outputs are used: it does not run (its other outputs get unused fillers)
                idle.extend(t for t in op.outputs if id(t) not in fed)
        found.sort(key=lambda pair: pair[0].stage)
        cache[key] = found, idle
    else:
        found, idle = found
    if not found and not idle:
        return feeds
    feeds = dict(feeds)
    for tensor in idle:      # never read: lowering makes parameters of used feeds only
        shape = tensor.shape.dims
        feeds[tensor] = np.zeros(() if shape is None else tuple(d or 0 for d in shape), tensor.dtype.np)
    for hook, op in found:
        values = hook(session, feeds)
        if values is None:
            continue
        for tensor, value in zip(op.outputs, values):
            if tensor not in feeds:
                feeds[tensor] = native_array(value, tensor.dtype.np)   # C order, native byte order, aligned
    return feeds
