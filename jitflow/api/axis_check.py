"""Axis arguments checked against a rank known at graph building, with TF's errors.

An axis outside [-rank, rank) (or [-rank-1, rank] for ops that insert an axis, such as
expand_dims/stack) raises when the graph is built, naming the function, the allowed range and
the user's line; it never wraps around. Ops whose rank is known only at run time check the
same range when the run is specialized (jitflow/ops/*.py expand and infer rules), which
raises InvalidArgumentError naming the node.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..errors import InvalidArgumentError
from ..source_info import user_location


class AxisOutOfRangeError(InvalidArgumentError, ValueError):
    """TF raises InvalidArgumentError for some functions' axes at graph building (tf.nn.softmax's
    `dim`) and ValueError for others (shape inference); this one is both."""

    def __init__(self, message: str):
        super().__init__(None, None, message)


def where() -> str:
    loc = user_location()
    return f" (at {loc})" if loc else ""


def axis_int(axis, fn: str, arg: str = "axis") -> int:
    """A Python int from an int-like axis (int, numpy integer, 0-d integer array, a tf.constant); TypeError
    otherwise (an axis computed by the graph: UnsupportedError)."""
    from ..framework.graph import Tensor
    if isinstance(axis, Tensor):
        if axis.op._op != "const":
            from ..errors import UnsupportedError
            raise UnsupportedError(f"{fn}: an `{arg}` computed by the graph ({axis.name}) is not supported by "
                                   f"jitflow; pass a Python int or a tf.constant{where()}")
        axis = axis.op.attrs["value"]
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (numbers.Integral, np.ndarray)):
        raise TypeError(f"{fn}: `{arg}` must be an integer, got {axis!r}{where()}")
    array = np.asarray(axis)
    if array.ndim != 0 or array.dtype.kind not in "iu":
        raise TypeError(f"{fn}: `{arg}` must be a scalar integer, got {axis!r}{where()}")
    return int(array)


def check_axis(axis: int, rank: int, fn: str, arg: str = "axis", inserts: bool = False,
               error=ValueError) -> int:
    """The axis in [0, rank) (or [0, rank] when the op `inserts` a new axis); `error` when out of range."""
    axis = int(axis)
    hi = rank + 1 if inserts else rank
    if not -hi <= axis < hi:
        raise error(f"{fn}: {arg} {axis} is out of range for a tensor of rank {rank} (expected {arg} in "
                    f"[{-hi}, {hi})){where()}")
    return axis % hi
