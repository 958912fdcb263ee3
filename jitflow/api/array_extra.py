"""TF 1.x array functions beyond the basics: tf.tile, tf.pad, tf.slice, tf.split,
tf.eye, tf.linspace, tf.reverse, tf.cumsum/cumprod, tf.nn.top_k, tf.nn.in_top_k,
tf.norm, tf.clip_by_norm, tf.nn.l2_normalize, and
tf.boolean_mask (refused: its output size depends on the data).

Arguments that fix a static shape (multiples, paddings, begin/size, split sizes, k,
num) must be known when the graph is built: Python ints, lists, numpy arrays or
`tf.constant` tensors; another tensor raises UnsupportedError naming the argument.
The registry records live in jitflow/ops/array_extra.py; tf.einsum and tf.tensordot
in jitflow/api/einsum.py, tf.gather and its family in jitflow/api/gather_api.py (re-exported here).
"""
from __future__ import annotations

import collections

import numpy as np

from ..errors import UnsupportedError
from ..framework.graph import Tensor, get_default_graph
from ..ir.types import as_dtype, float32, int32, int64
from . import math_ops as m
from .array_ops import ensure_shape, expand_dims
from .convert import convert_to_tensor
from .math_ops import _make
from .shape_args import is_tensor_shape, shape_tensor, static_shape_value
from .static_args import known_dims as _dims, name_scope as _scope, static_axis as _axis
from .static_args import static_value  # noqa: F401  (static_value is re-exported)

TopKV2 = collections.namedtuple("TopKV2", ["values", "indices"])


# ---- tile, pad, slice, split, reverse ----------------------------------------------------------------
def tile(input, multiples, name=None):  # noqa: A002
    x = convert_to_tensor(input)
    if is_tensor_shape(multiples) and not (isinstance(multiples, Tensor) and multiples.op._op == "const"):
        target = shape_tensor(multiples)          # known when the run is specialized
        return _make("tile_dyn", [x, target], {"static": static_shape_value(target)}, name=name or "Tile")
    multiples = tuple(int(v) for v in static_value(multiples, "multiples", "tile").reshape(-1))
    rank = len(_dims(x, "tile"))
    if len(multiples) != rank:
        raise ValueError(f"tile: multiples {list(multiples)} must have length {rank} (the input's rank)")
    return _make("tile", [x], {"multiples": multiples}, name=name or "Tile")


def pad(tensor, paddings, mode="CONSTANT", name=None, constant_values=0):
    x = convert_to_tensor(tensor)
    mode = str(mode).upper()
    if mode not in ("CONSTANT", "REFLECT", "SYMMETRIC"):
        raise ValueError(f"pad: unknown padding mode {mode!r}; use CONSTANT, REFLECT or SYMMETRIC")
    rank = len(_dims(x, "pad"))
    pads = static_value(paddings, "paddings", "pad")
    if pads.shape != (rank, 2):
        raise ValueError(f"pad: paddings must have shape [{rank}, 2], got {pads.tolist()}")
    if mode != "CONSTANT" and not (isinstance(constant_values, (int, float)) and constant_values == 0):
        raise ValueError(f"pad: constant_values is only used in CONSTANT mode, got mode {mode}")
    value = convert_to_tensor(constant_values, dtype=x.dtype)
    if value.shape.dims is None or len(value.shape.dims) != 0:
        raise ValueError(f"pad: constant_values must be a scalar, got {value}")
    return _make("pad", [x, value], {"paddings": tuple(tuple(int(v) for v in p) for p in pads), "mode": mode},
                 name=name or "Pad")


def slice(input_, begin, size, name=None):  # noqa: A001
    x = convert_to_tensor(input_)
    rank = len(_dims(x, "slice"))
    begin = tuple(int(v) for v in static_value(begin, "begin", "slice").reshape(-1))
    size = tuple(int(v) for v in static_value(size, "size", "slice").reshape(-1))
    if len(begin) != rank or len(size) != rank:
        raise ValueError(f"slice: begin {list(begin)} and size {list(size)} must have length {rank} "
                         f"(the input's rank)")
    return _make("slice", [x], {"begin": begin, "size": size}, name=name or "Slice")


def split(value, num_or_size_splits, axis=0, num=None, name="split"):
    x = convert_to_tensor(value)
    dims = _dims(x, "split")
    rank = len(dims)
    axis = _axis(axis, rank, "split")
    d = dims[axis]
    sizes = static_value(num_or_size_splits, "num_or_size_splits", "split")
    if sizes.ndim == 0:
        count = int(sizes)
        if count <= 0:
            raise ValueError(f"split: num_or_size_splits must be positive, got {count}")
        if d is None:
            raise UnsupportedError(f"split: an integer num_or_size_splits ({count}) along axis {axis} of unknown "
                                   f"size is not supported; give the sizes as a list")
        if d % count:
            raise ValueError(f"split: the size {d} of axis {axis} is not divisible by num_or_size_splits={count}")
        sizes = [d // count] * count
    else:
        sizes = [int(s) for s in sizes.reshape(-1)]
        if num is not None and int(num) != len(sizes):
            raise ValueError(f"split: num={num} does not match the {len(sizes)} sizes given")
        if sum(1 for s in sizes if s == -1) > 1 or any(s < -1 for s in sizes):
            raise ValueError(f"split: at most one size may be -1 and none may be below it, got {sizes}")
        if d is not None:
            known = sum(s for s in sizes if s != -1)
            if -1 in sizes:
                if known > d:
                    raise ValueError(f"split: sizes {sizes} add up to more than the size {d} of axis {axis}")
                sizes = [d - known if s == -1 else s for s in sizes]
            elif known != d:
                raise ValueError(f"split: sizes {sizes} do not add up to the size {d} of axis {axis}")
        elif -1 in sizes[:-1]:
            raise UnsupportedError(f"split: a -1 size before the last one along axis {axis} of unknown size "
                                   f"is not supported")
    outputs, offset = [], 0
    with _scope(name or "split"):
        for s in sizes:
            begin = tuple(offset if k == axis else 0 for k in range(rank))
            size = tuple(s if k == axis else -1 for k in range(rank))
            outputs.append(_make("slice", [x], {"begin": begin, "size": size}, name="Slice"))
            offset += max(s, 0)
    return outputs


def reverse(tensor, axis, name=None):
    x = convert_to_tensor(tensor)
    rank = len(_dims(x, "reverse"))
    axes = [int(a) for a in static_value(axis, "axis", "reverse").reshape(-1)]
    for a in axes:
        if not -rank <= a < rank:
            raise ValueError(f"reverse: axis {a} is out of range for a tensor of rank {rank}")
    normalized = [a % rank for a in axes]
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"reverse: axis {axes} names a dimension more than once")
    return _make("reverse", [x], {"axes": tuple(sorted(normalized))}, name=name or "ReverseV2")


reverse_v2 = reverse


def boolean_mask(tensor, mask, name="boolean_mask", axis=None):
    raise UnsupportedError("tf.boolean_mask is not supported by jitflow: its output size depends on the mask's "
                           "values, and compiled kernels need every shape when a run is specialized; multiply by "
                           "tf.cast(mask, dtype) or use tf.where(mask, x, y) instead")


# ---- eye, linspace --------------------------------------------------------------------------------------
def _iota(shape, axis, dtype):
    return get_default_graph().create_op("iota", [], {"shape": tuple(shape), "axis": axis, "dtype": dtype},
                                         name="iota").outputs[0]


def eye(num_rows, num_columns=None, batch_shape=None, dtype=float32, name=None):
    dtype = as_dtype(dtype)
    rows = int(static_value(num_rows, "num_rows", "eye").reshape(()))
    cols = rows if num_columns is None else int(static_value(num_columns, "num_columns", "eye").reshape(()))
    batch = () if batch_shape is None else tuple(int(v) for v in static_value(batch_shape, "batch_shape",
                                                                              "eye").reshape(-1))
    if rows < 0 or cols < 0 or any(b < 0 for b in batch):
        raise ValueError(f"eye: sizes must be non-negative, got {rows}, {cols}, batch {list(batch)}")
    from .array_ops import constant
    with _scope(name or "eye"):
        hit = m.equal(_iota((rows, 1), 0, int32), _iota((1, cols), 1, int32))
        out = _make("select", [hit, constant(1, dtype), constant(0, dtype)])
        if batch:
            out = _make("broadcast_to", [out], {"shape": batch + (rows, cols)})
    return out


def linspace(start, stop, num, name=None):
    start = convert_to_tensor(start)
    stop = convert_to_tensor(stop, dtype=start.dtype)
    if not start.dtype.is_floating:
        raise TypeError(f"linspace: start must be float32 or float64, got {start.dtype.name}")
    if start.shape.dims is None or stop.shape.dims is None or len(start.shape.dims) or len(stop.shape.dims):
        raise ValueError("linspace: start and stop must be scalars")
    count = int(static_value(num, "num", "linspace").reshape(()))
    if count <= 0:
        raise ValueError(f"linspace: num must be positive, got {count}")
    with _scope(name or "LinSpace"):
        if count == 1:
            return _make("broadcast_to", [start], {"shape": (1,)})
        index = _iota((count,), 0, start.dtype)
        step = m.truediv(m.subtract(stop, start), float(count - 1))
        values = m.add(start, m.multiply(index, step))
        last = m.equal(index, float(count - 1))
        return _make("select", [last, stop, values])     # the last value is exactly `stop`, as TF


lin_space = linspace


# ---- cumsum / cumprod -----------------------------------------------------------------------------------
def _scan(kind, default):
    def fn(x, axis=0, exclusive=False, reverse=False, name=None):
        x = convert_to_tensor(x)
        rank = len(_dims(x, default))
        if rank == 0:
            raise ValueError(f"{default}: input must be at least rank 1")
        ax = _axis(axis, rank, default)
        return _make("scan", [x], {"axis": ax, "exclusive": bool(exclusive), "reverse": bool(reverse),
                                   "kind": kind}, name=name or default)
    fn.__name__ = default.lower()
    fn.__doc__ = f"tf.{default.lower()}: cumulative {kind} along axis (exclusive, reverse as TF)."
    return fn


cumsum = _scan("sum", "Cumsum")
cumprod = _scan("prod", "Cumprod")


# ---- top_k / in_top_k ------------------------------------------------------------------------------------
def top_k(input, k=1, sorted=True, name=None):  # noqa: A002
    """(values, int32 indices) of the k largest entries of each last-axis row, largest first; equal
    values keep the lower index first. With sorted=False TF may return any order: this one is sorted."""
    x = convert_to_tensor(input)
    k = int(static_value(k, "k", "top_k").reshape(()))
    _dims(x, "top_k")
    graph = x.graph
    with graph.name_scope(name or "TopKV2"):
        values = graph.create_op("top_k", [x], {"k": k, "output": 0}, name="values").outputs[0]
        indices = graph.create_op("top_k", [x], {"k": k, "output": 1}, name="indices").outputs[0]
    return TopKV2(values, indices)


def in_top_k(predictions, targets, k, name=None):
    """True where targets[i]'s prediction is among the k largest of row i (ties count as in, TF);
    False for a row holding a non-finite prediction and for an out-of-range target."""
    p = convert_to_tensor(predictions)
    t = convert_to_tensor(targets)
    if not p.dtype.is_floating:
        raise TypeError(f"in_top_k: predictions must be float32 or float64, got {p.dtype.name}")
    if t.dtype not in (int32, int64):
        raise TypeError(f"in_top_k: targets must be int32 or int64, got {t.dtype.name}")
    dims = _dims(p, "in_top_k")
    if t.shape.dims is None:              # `tf.placeholder(tf.int32, shape=(None))`: checked at run time
        t = ensure_shape(t, [dims[0]] if len(dims) == 2 else [None])
    if len(dims) != 2 or len(_dims(t, "in_top_k")) != 1:
        raise ValueError(f"in_top_k: predictions must be [batch, classes] and targets [batch], got {p.shape} "
                         f"and {t.shape}")
    if dims[1] is None:
        raise UnsupportedError("in_top_k: predictions with an unknown number of classes are not supported")
    k = convert_to_tensor(k) if isinstance(k, Tensor) else int(k)
    with _scope(name or "in_top_k"):
        hit = m.equal(expand_dims(t, 1), _iota((1, dims[1]), 1, t.dtype))
        zero = convert_to_tensor(0, dtype=p.dtype)
        target = m.reduce_sum(_make("select", [hit, p, zero]), axis=1, keepdims=True)
        found = m.greater(m.reduce_max(m.cast(hit, int32), axis=1), 0)
        finite = m.equal(m.subtract(p, p), zero)             # x - x is NaN exactly for inf and NaN
        row_finite = m.equal(m.reduce_min(m.cast(finite, int32), axis=1), 1)
        above = m.reduce_sum(m.cast(m.greater(p, target), int32), axis=1)
        k_value = m.cast(k, int32) if isinstance(k, Tensor) else convert_to_tensor(k, dtype=int32)
        return m.logical_and(m.less(above, k_value), m.logical_and(found, row_finite))


# ---- norms ------------------------------------------------------------------------------------------------
def _norm_axes(x, axis, fn):
    rank = len(_dims(x, fn))
    if axis is None:
        return None
    axes = [int(a) for a in static_value(axis, "axis", fn).reshape(-1)]
    for a in axes:
        if not -rank <= a < rank:
            raise ValueError(f"{fn}: axis {a} is out of range for a tensor of rank {rank}")
    return [a % rank for a in axes]


def norm(tensor, ord="euclidean", axis=None, keepdims=None, name=None, keep_dims=None):  # noqa: A002
    x = convert_to_tensor(tensor)
    keep = bool(keepdims if keepdims is not None else (keep_dims or False))
    if isinstance(axis, (list, tuple)) and len(axis) == 2 or (isinstance(axis, np.ndarray) and axis.size == 2):
        matrix = True
        axes = _norm_axes(x, axis, "norm")
        if axes[0] == axes[1]:
            raise ValueError(f"norm: axis {list(axis)} must name two different dimensions")
        if ord not in ("euclidean", "fro", 1, np.inf, 2):
            raise ValueError(f"'ord' must be a supported matrix norm in ['euclidean', 'fro', 1, 2, inf], got {ord}")
        if ord == 2:
            raise UnsupportedError("norm: the matrix 2-norm (ord=2 with two axes) needs an SVD, which jitflow "
                                   "does not have")
    else:
        matrix = False
        axes = _norm_axes(x, axis, "norm")
        if axes is not None and len(axes) != 1:
            raise ValueError(f"norm: axis must be None, an int or a pair of ints, got {axis}")
        if ord == "fro" or not (ord == "euclidean" or (isinstance(ord, (int, float, np.number))
                                                        and not isinstance(ord, bool) and ord > 0)):
            raise ValueError(f"'ord' must be a supported vector norm, got {ord}")
    with _scope(name or "norm"):
        all_axes = list(range(len(x.shape.dims))) if axes is None else axes
        if ord in ("euclidean", "fro") or (ord == 2 and not matrix):
            result = m.sqrt(m.reduce_sum(m.square(x), axis=all_axes, keepdims=True))
        elif matrix and ord == 1:       # the largest column sum
            result = m.reduce_max(m.reduce_sum(m.abs(x), axis=axes[0], keepdims=True), axis=axes[1], keepdims=True)
        elif matrix:                    # np.inf: the largest row sum
            result = m.reduce_max(m.reduce_sum(m.abs(x), axis=axes[1], keepdims=True), axis=axes[0], keepdims=True)
        elif ord == 1:
            result = m.reduce_sum(m.abs(x), axis=all_axes, keepdims=True)
        elif ord == np.inf:
            result = m.reduce_max(m.abs(x), axis=all_axes, keepdims=True)
        else:
            p = convert_to_tensor(float(ord), dtype=x.dtype)
            total = m.reduce_sum(m.pow(m.abs(x), p), axis=all_axes, keepdims=True)
            result = m.pow(total, m.truediv(convert_to_tensor(1.0, dtype=x.dtype), p))
        if not keep:
            from .array_ops import squeeze
            result = squeeze(result, axis=all_axes) if all_axes else result
        return result


def l2_normalize(x, axis=None, epsilon=1e-12, name=None, dim=None):
    """x * rsqrt(max(sum(x**2, axis), epsilon)) (TF 1.x)."""
    x = convert_to_tensor(x)
    axis = dim if axis is None else axis
    axes = _norm_axes(x, axis, "l2_normalize")
    with _scope(name or "l2_normalize"):
        axes = list(range(len(x.shape.dims))) if axes is None else axes
        square_sum = m.reduce_sum(m.square(x), axis=axes, keepdims=True)
        inv = m.rsqrt(m.maximum(square_sum, convert_to_tensor(epsilon, dtype=x.dtype)))
        return m.multiply(x, inv)


def clip_by_norm(t, clip_norm, axes=None, name=None):
    """t * clip_norm / max(l2norm(t, axes), clip_norm), with TF 1.x's safe square root at 0."""
    t = convert_to_tensor(t)
    axes_list = _norm_axes(t, axes, "clip_by_norm")
    with _scope(name or "clip_by_norm"):
        axes_list = list(range(len(t.shape.dims))) if axes_list is None else axes_list
        clip = convert_to_tensor(clip_norm, dtype=t.dtype)
        l2sum = m.reduce_sum(m.square(t), axis=axes_list, keepdims=True)
        zero, one = convert_to_tensor(0, dtype=t.dtype), convert_to_tensor(1, dtype=t.dtype)
        positive = m.greater(l2sum, zero)
        safe = _make("select", [positive, l2sum, _make("fill_like", [l2sum], {"value": 1, "dtype": t.dtype})])
        l2norm = _make("select", [positive, m.sqrt(safe), l2sum])
        del one
        return m.truediv(m.multiply(t, clip), m.maximum(l2norm, clip))


from .einsum import einsum, tensordot  # noqa: E402,F401  (tf.einsum, tf.tensordot)
from .gather_api import embedding_lookup, gather, unsorted_segment_sum  # noqa: E402,F401  (jitflow/api/gather_api.py)
