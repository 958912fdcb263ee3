"""Turning Python values, numpy arrays and Variables into graph Tensors, with
TF 1.x's dtype rules (Python float -> float32, int -> int32, numpy keeps its
dtype)."""
from __future__ import annotations

import numpy as np

from ..framework.graph import Tensor
from ..ir.types import DType, as_dtype, bool_, float32, int32, int64
from ..ir.types import string
from ..host_values import is_string_value, string_array


def to_numpy(value, dtype: DType | None = None) -> np.ndarray:
    """A numpy array for a constant, following TF 1.x's dtype defaults."""
    if isinstance(value, Tensor):
        raise TypeError("expected a Python or numpy value, got a Tensor")
    if dtype is string or (dtype is None and is_string_value(value)):
        return string_array(value)           # tf.string: a host value (jitflow/host_values.py)
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.kind in "US O":
            raise TypeError(f"cannot make a tensor of numpy dtype {array.dtype}")
        if dtype is not None:
            _check_lossless(array, dtype)
            return array.astype(dtype.np)
        return array.astype(as_dtype(array.dtype).np, copy=False)
    array = np.array(value)
    if array.dtype == object or array.dtype.kind in "US":
        raise TypeError(f"cannot convert {value!r} to a tensor")
    if dtype is None:
        if array.dtype.kind == "f":
            dtype = float32
        elif array.dtype.kind in "iu":
            fits = array.size == 0 or (int(array.min()) >= -2**31 and int(array.max()) < 2**31)
            dtype = int32 if fits else int64
            _check_range(array, dtype)          # a Python int past int64 (numpy made it uint64)
        elif array.dtype.kind == "b":
            dtype = bool_
        else:
            dtype = as_dtype(array.dtype)
    else:
        _check_lossless(array, dtype)
    return array.astype(dtype.np)


class ConversionRangeError(TypeError, ValueError):
    """A value that the requested integer dtype cannot hold (`tf.constant(2**40, tf.int32)`). TF refuses it
    (TypeError from eager conversion, ValueError/OverflowError from graph-mode make_tensor_proto); jitflow
    never wraps it around. Catchable as either TypeError or ValueError."""


def _check_lossless(array: np.ndarray, dtype: DType):
    if dtype.is_integer and array.dtype.kind == "f" and array.size:
        if not np.all(np.isfinite(array)) or np.any(array != np.trunc(array)):
            sample = array.flat[0]
            raise TypeError(f"Expected {dtype.name}, got {sample!r} of type '{type(sample).__name__}' instead.")
    if dtype.is_integer and array.dtype.kind in "iuf" and array.size:
        _check_range(array, dtype)
    if dtype.is_bool and array.dtype.kind != "b":
        raise TypeError(f"Expected bool, got values of dtype {array.dtype}.")


def _check_range(array: np.ndarray, dtype: DType):
    info = np.iinfo(dtype.np)
    lo, hi = int(array.min()), int(array.max())
    if lo < info.min or hi > info.max:
        bad = lo if lo < info.min else hi
        kind = "Python int" if array.ndim == 0 else f"{array.dtype} array value"
        raise ConversionRangeError(f"Can't convert {kind} {bad} to {dtype.name}: out of its range "
                                   f"[{info.min}, {info.max}]")


def convert_to_tensor(value, dtype=None, name=None, graph=None) -> Tensor:
    from .variables import Variable
    dtype = as_dtype(dtype) if dtype is not None else None
    if isinstance(value, Variable):
        value = value.value()
    if isinstance(value, Tensor):
        if dtype is not None and value.dtype != dtype:
            raise ValueError(f"Tensor conversion requested dtype {dtype.name} for Tensor with dtype "
                             f"{value.dtype.name}: {value}")
        return value
    if isinstance(value, (list, tuple)) and any(isinstance(v, (Tensor, Variable)) for v in _flatten(value)):
        from .array_ops import stack
        return stack([convert_to_tensor(v, dtype) for v in value], name=name)
    from .array_ops import constant
    return constant(value, dtype=dtype, name=name or "Const", graph=graph)


def _flatten(value):
    for v in value:
        if isinstance(v, (list, tuple)):
            yield from _flatten(v)
        else:
            yield v


def binary_operands(x, y):
    """Converts two operands, giving Python values the dtype of the tensor side."""
    from .variables import Variable
    x_is = isinstance(x, (Tensor, Variable))
    y_is = isinstance(y, (Tensor, Variable))
    if x_is and not y_is:
        x = convert_to_tensor(x)
        y = convert_to_tensor(y, dtype=x.dtype, graph=x.graph)
    elif y_is and not x_is:
        y = convert_to_tensor(y)
        x = convert_to_tensor(x, dtype=y.dtype, graph=y.graph)
    else:
        x, y = convert_to_tensor(x), convert_to_tensor(y)
    return x, y
