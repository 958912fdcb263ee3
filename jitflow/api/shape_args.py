"""Shape arguments given as tensors (`tf.zeros(tf.shape(x))`, `tf.reshape(x, [tf.shape(x)[0], -1])`).

`is_tensor_shape` tells the API functions which path to take; `shape_tensor` turns a list of ints and
scalar tensors (or a shape tensor) into one int32 vector; `static_shape_value` is TF's
`constant_value_as_shape`: what graph building already knows of its value (ints, None where only the
run will tell), so the result's static shape stays as precise as TF's. The value itself becomes a
constant when `Session.run` specializes the graph (see jitflow/ops/dynamic_shape.py).
"""
from __future__ import annotations

import numpy as np

from ..framework.graph import Tensor
from ..ir.types import int32, int64

_MAX_DEPTH = 32      # shape expressions are shallow; deeper ones are simply "unknown" statically


def _is_tensorlike(value) -> bool:
    from .variables import Variable
    return isinstance(value, (Tensor, Variable))


def is_tensor_shape(shape) -> bool:
    """True when a shape argument is a tensor or a list holding tensors."""
    if _is_tensorlike(shape):
        return True
    return isinstance(shape, (list, tuple)) and any(_is_tensorlike(d) for d in shape)


def shape_tensor(shape) -> Tensor:
    """An int32 (or int64) vector tensor holding the shape."""
    from . import math_ops as m
    from .array_ops import constant, stack
    from .convert import convert_to_tensor
    if _is_tensorlike(shape):
        t = convert_to_tensor(shape)
        if t.dtype not in (int32, int64):
            raise TypeError(f"a shape tensor must be int32 or int64, got {t.dtype.name}: {t}")
        if t.shape.dims is not None and len(t.shape.dims) == 0:
            from .array_ops import reshape
            t = reshape(t, [1])
        return t
    parts = []
    for d in shape:
        if _is_tensorlike(d):
            t = convert_to_tensor(d)
            parts.append(m.cast(t, int32) if t.dtype != int32 else t)
        else:
            parts.append(constant(-1 if d is None else int(d), int32))
    return stack(parts)


def static_shape_value(t: Tensor):
    """The graph-time value of a 1-D shape tensor: a tuple of ints and None, or None when even
    its length is unknown."""
    value = _partial(t, 0)
    if value is not None:
        return tuple(value)
    dims = t.shape.dims
    if dims is not None and len(dims) == 1 and dims[0] is not None:
        return (None,) * dims[0]
    return None


def _wrap(value, t: Tensor):
    """`value` wrapped to t's integer width, as the compiled arithmetic computes it (and so that a
    deep `s = s * s` stays a machine-sized int instead of a number with 2**depth digits)."""
    if value is None:
        return None
    bits = 64 if t.dtype == int64 else 32
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _partial(t: Tensor, depth: int, memo: dict | None = None):
    """The flat list of t's element values (int or None), or None when unknown (never mutate it).

    Memoized per (tensor, depth): a shape expression with fan-out (`s = s * s` ...) costs one visit
    per node and level instead of one per path (2**depth); the depth stays bounded by _MAX_DEPTH."""
    if memo is None:
        memo = {}
    key = (id(t), depth)
    if key not in memo:
        memo[key] = _partial_uncached(t, depth, memo)
    return memo[key]


def _partial_uncached(t: Tensor, depth: int, memo: dict):
    if depth > _MAX_DEPTH:
        return None
    op = t.op
    kind = op._op
    if kind == "const":
        value = np.asarray(op.attrs["value"])
        if value.dtype.kind not in "iu":
            return None
        return [int(v) for v in value.ravel()]
    if kind == "shape_of":
        dims = op.inputs[0].shape.dims
        return None if dims is None else list(dims)
    if kind in ("reshape", "identity", "cast", "ensure_shape"):
        return _partial(op.inputs[0], depth + 1, memo)
    if kind == "concat" and all(x.shape.dims is not None and len(x.shape.dims) <= 1 for x in op.inputs):
        out = []
        for x in op.inputs:
            part = _partial(x, depth + 1, memo)
            if part is None:
                n = x.shape.dims[0] if x.shape.dims else 1
                if n is None:
                    return None
                part = [None] * n
            out.extend(part)
        return out
    if kind == "strided_slice" and len(op.attrs["begin"]) == 1:
        whole = _partial(op.inputs[0], depth + 1, memo)
        if whole is None:
            return None
        (b,), (s,), (n,) = op.attrs["begin"], op.attrs["stride"], op.attrs["size"]
        return [whole[b + s * i] for i in range(n)]
    if kind in ("mul", "add", "sub", "floordiv"):
        a, b = (_partial(x, depth + 1, memo) for x in op.inputs)
        if a is None or b is None or (len(a) != len(b) and 1 not in (len(a), len(b))):
            return None
        n = max(len(a), len(b))
        a, b = (a * n if len(a) == 1 else a), (b * n if len(b) == 1 else b)
        fn = {"mul": lambda x, y: x * y, "add": lambda x, y: x + y, "sub": lambda x, y: x - y,
              "floordiv": lambda x, y: x // y if y else None}[kind]
        return [None if x is None or y is None else _wrap(fn(x, y), t) for x, y in zip(a, b)]
    if kind == "reduce_prod":
        whole = _partial(op.inputs[0], depth + 1, memo)
        if whole is None or None in whole:
            return None
        return [int(np.prod(whole, dtype=np.int64))]
    dims = t.shape.dims
    if dims is not None and None not in dims:
        return [None] * int(np.prod(dims, dtype=np.int64))
    return None
