"""Reductions: reduce_sum/mean/max/min/prod over axes (keepdims), argmax/argmin.

Codegen reads `reduce` (the combine rule) and the normalized `axes` attr; the
input's elementwise producers fuse into the reduction loop.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import NUMERIC, TensorType, int32, int64
from .broadcast import check_dtype, normalize_axes
from .registry import REDUCE, ShapeError, define_op


def reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if k in axes else d for k, d in enumerate(shape))
    return tuple(d for k, d in enumerate(shape) if k not in axes)


def _reduce_infer(types, attrs, op="reduce"):
    (t,) = types
    check_dtype(t, NUMERIC, op)
    axes = normalize_axes(attrs.get("axes"), len(t.shape), op)
    return [TensorType(t.dtype, reduced_shape(t.shape, axes, attrs.get("keepdims", False)))]


def _np_reduce(fn):
    def reference(x, axes=None, keepdims=False):
        axes = normalize_axes(axes, x.ndim, "reference") if axes is not None else None
        if fn is np.mean and np.issubdtype(x.dtype, np.integer):
            # as TF: the sum wraps in the input dtype (like reduce_sum), then divides rounding toward zero
            total = np.asarray(np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)).astype(np.int64)
            count = int(np.prod([x.shape[a] for a in axes])) if axes is not None else x.size
            if not count:
                return np.zeros_like(total, x.dtype)
            quotient = total // count
            quotient += (total - quotient * count != 0) & (total < 0)
            return quotient.astype(x.dtype)
        if fn in (np.max, np.min) and x.size == 0:
            init = (np.finfo(x.dtype).min if fn is np.max else np.finfo(x.dtype).max) \
                if np.issubdtype(x.dtype, np.floating) else \
                (np.iinfo(x.dtype).min if fn is np.max else np.iinfo(x.dtype).max)
            if np.issubdtype(x.dtype, np.floating):
                init = -np.inf if fn is np.max else np.inf
            shape = reduced_shape(x.shape, axes if axes is not None else tuple(range(x.ndim)), keepdims)
            return np.full(shape, init, x.dtype)
        with np.errstate(all="ignore"):
            return np.asarray(fn(x, axis=axes, keepdims=keepdims)).astype(x.dtype)
    return reference


for _name, _fn, _tf in (("reduce_sum", np.sum, "Sum"), ("reduce_mean", np.mean, "Mean"),
                        ("reduce_max", np.max, "Max"), ("reduce_min", np.min, "Min"),
                        ("reduce_prod", np.prod, "Prod")):
    define_op(_name, REDUCE, _reduce_infer, reference=_np_reduce(_fn), reduce=_name[7:], tf_name=_tf,
              test_domain=(0.5, 1.5) if _name == "reduce_prod" else (-3.0, 3.0))


def _arg_infer(types, attrs, op="argmax"):
    (t,) = types
    check_dtype(t, NUMERIC, op)
    rank = len(t.shape)
    axis = attrs["axis"]
    if not -rank <= axis < rank:
        raise ShapeError(f"{op}: axis {axis} is out of range for a tensor of rank {rank}")
    if t.shape[axis % rank] == 0:
        raise ShapeError(f"{op}: cannot reduce over an axis of size 0")
    out_dtype = attrs.get("output_type", int64)
    if out_dtype not in (int32, int64):
        raise TypeError(f"{op}: output_type must be int32 or int64")
    return [TensorType(out_dtype, tuple(d for k, d in enumerate(t.shape) if k != axis % rank))]


for _name, _fn, _tf in (("argmax", np.argmax, "ArgMax"), ("argmin", np.argmin, "ArgMin")):
    define_op(_name, REDUCE, _arg_infer, reduce=_name, tf_name=_tf, differentiable=False,
              reference=(lambda fn: lambda x, axis, output_type=int64:
                         fn(x, axis=axis).astype(output_type.np))(_fn))


# ---- gradient rules ----------------------------------------------------------------
def _sum_grad(mean):
    def rule(b, op, g):
        return [b.broadcast_grad(g[0], op.inputs[0], op.attrs["axes"], mean=mean)]
    return rule


def _extremum_grad(b, op, g):
    """Gradient flows to every element equal to the extremum, split evenly among ties."""
    x = op.inputs[0]
    axes = op.attrs["axes"]
    y = b.broadcast_grad(op.outputs[0], x, axes)
    hit = b.cast(b.cmp("equal", x, y), x.dtype)
    count = b.broadcast_grad(b.reduce_sum(hit, axes, op.attrs.get("keepdims", False)), x, axes)
    return [b.div(b.mul(b.broadcast_grad(g[0], x, axes), hit), count)]


def _prod_grad(b, op, g):
    """d prod / d x_i = product of the other elements (as TF 1.x, also where some x are 0):
    with p = product of the nonzero elements and z = the number of zeros in the reduced slice,
    it is p / x_i where z == 0, p at the zero where z == 1, and 0 everywhere else."""
    x = op.inputs[0]
    axes, keep = op.attrs["axes"], op.attrs.get("keepdims", False)
    zero, one = b.zeros_like(x), b.ones_like(x)
    is_zero = b.cmp("equal", x, zero)
    nonzero = b.select(is_zero, one, x)
    prod_nonzero = b.broadcast_grad(b.op("reduce_prod", [nonzero], {"axes": None if axes is None else tuple(axes),
                                                                 "keepdims": keep}),
                                    x, axes)
    zeros = b.broadcast_grad(b.reduce_sum(b.cast(is_zero, x.dtype), axes, keep), x, axes)
    others = b.select(is_zero,
                      b.select(b.cmp("equal", zeros, one), prod_nonzero, zero),
                      b.select(b.cmp("equal", zeros, zero), b.div(prod_nonzero, nonzero), zero))
    return [b.mul(b.broadcast_grad(g[0], x, axes), others)]


from .registry import get_op as _get_op  # noqa: E402

_get_op("reduce_sum").grad = _sum_grad(False)
_get_op("reduce_mean").grad = _sum_grad(True)
_get_op("reduce_max").grad = _extremum_grad
_get_op("reduce_min").grad = _extremum_grad
_get_op("reduce_prod").grad = _prod_grad
