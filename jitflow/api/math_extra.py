"""TF 1.x API of the ops in jitflow/ops/math_extra.py (tf.sin, tf.log1p, tf.nn.elu, ...) and the
composite reductions tf.reduce_logsumexp, tf.reduce_any, tf.reduce_all, tf.count_nonzero,
plus the TF 1.x spellings tf.arg_max / tf.arg_min."""
from __future__ import annotations

import numpy as np

from ..framework.graph import get_default_graph
from ..ir.types import as_dtype, bool_, int32, int64
from . import math_ops as m
from .array_ops import constant, zeros_like
from .convert import convert_to_tensor

sin = m._unary("sin", "Sin")
cos = m._unary("cos", "Cos")
tan = m._unary("tan", "Tan")
floor = m._unary("floor", "Floor")
ceil = m._unary("ceil", "Ceil")
round = m._unary("round", "Round")  # noqa: A001   (half to even, as TF)
rint = m._unary("rint", "Rint")
log1p = m._unary("log1p", "Log1p")
expm1 = m._unary("expm1", "Expm1")
erf = m._unary("erf", "Erf")
reciprocal = m._unary("reciprocal", "Reciprocal")
squared_difference = m._binary("squared_difference", "SquaredDifference")


def _activation(op_name, default_name):
    def fn(features, name=None):
        return m._make(op_name, [convert_to_tensor(features)], name=name or default_name)
    fn.__name__ = op_name
    fn.__doc__ = f"`tf.nn.{op_name}(features)` (TF op {default_name})."
    return fn


elu = _activation("elu", "Elu")
selu = _activation("selu", "Selu")          # scale * (x > 0 ? x : alpha * (exp(x) - 1))
relu6 = _activation("relu6", "Relu6")
softplus = _activation("softplus", "Softplus")
softsign = _activation("softsign", "Softsign")


def arg_max(input, dimension=None, output_type=int64, name=None, axis=None):  # noqa: A002
    """TF 1.x `tf.arg_max` (the older spelling of `tf.argmax`; `dimension` is the axis)."""
    return m.argmax(input, axis=axis if axis is not None else dimension, output_type=output_type,
                    name=name or "ArgMax")


def arg_min(input, dimension=None, output_type=int64, name=None, axis=None):  # noqa: A002
    """TF 1.x `tf.arg_min`."""
    return m.argmin(input, axis=axis if axis is not None else dimension, output_type=output_type,
                    name=name or "ArgMin")


def _axis_keep(axis, keepdims, reduction_indices, keep_dims):
    if axis is None:
        axis = reduction_indices
    return axis, bool(keepdims if keepdims is not None else (keep_dims or False))


def reduce_logsumexp(input_tensor, axis=None, keepdims=None, name=None, reduction_indices=None,
                     keep_dims=None):
    """log(sum(exp(x))) over `axis`, shifted by the (finite) max as TF does: no overflow for large
    inputs, -inf for all -inf, and the max's gradient stopped."""
    x = convert_to_tensor(input_tensor)
    axis, keep = _axis_keep(axis, keepdims, reduction_indices, keep_dims)
    with get_default_graph().name_scope(name or "ReduceLogSumExp"):
        raw_max = m.reduce_max(x, axis, keepdims=True)
        finite = m.less(m.abs(raw_max), constant(np.inf, x.dtype))
        shift = m.stop_gradient(m.where(finite, raw_max, zeros_like(raw_max)))
        total = m.reduce_sum(m.exp(m.subtract(x, shift)), axis, keepdims=keep)
        if not keep:
            shift = m.reduce_sum(shift, axis, keepdims=False)     # drops the size-1 reduced dims
        return m.add(m.log(total), shift)


def _bool_reduce(x, fn_name):
    x = convert_to_tensor(x)
    if x.dtype != bool_:
        raise TypeError(f"{fn_name}: input_tensor must be bool, got {x.dtype.name}")
    return m.cast(x, int32)


def reduce_any(input_tensor, axis=None, keepdims=None, name=None, reduction_indices=None, keep_dims=None):
    """Logical or over `axis` (False for an empty reduction)."""
    axis, keep = _axis_keep(axis, keepdims, reduction_indices, keep_dims)
    as_int = _bool_reduce(input_tensor, "reduce_any")
    largest = m.reduce_max(as_int, axis, keepdims=keep)
    return m.greater(largest, constant(0, int32), name=name or "Any")


def reduce_all(input_tensor, axis=None, keepdims=None, name=None, reduction_indices=None, keep_dims=None):
    """Logical and over `axis` (True for an empty reduction)."""
    axis, keep = _axis_keep(axis, keepdims, reduction_indices, keep_dims)
    as_int = _bool_reduce(input_tensor, "reduce_all")
    smallest = m.reduce_min(as_int, axis, keepdims=keep)
    return m.greater(smallest, constant(0, int32), name=name or "All")


def count_nonzero(input_tensor, axis=None, keepdims=None, dtype=int64, name=None, reduction_indices=None,
                  keep_dims=None):
    """The number of nonzero elements over `axis`, as `dtype` (int64 by default, as TF)."""
    x = convert_to_tensor(input_tensor)
    axis, keep = _axis_keep(axis, keepdims, reduction_indices, keep_dims)
    dtype = as_dtype(dtype)
    with get_default_graph().name_scope(name or "count_nonzero"):
        zero = constant(False if x.dtype == bool_ else 0, x.dtype)
        nonzero = m.not_equal(x, zero)
        return m.reduce_sum(m.cast(nonzero, dtype), axis, keepdims=keep)


__all__ = ["sin", "cos", "tan", "floor", "ceil", "round", "rint", "log1p", "expm1", "erf", "reciprocal",
           "squared_difference", "elu", "selu", "relu6", "softplus", "softsign", "arg_max", "arg_min",
           "reduce_logsumexp", "reduce_any", "reduce_all", "count_nonzero"]
