"""Arguments that must be known when the graph is built (axes, shape-like lists, ranks), read the
same way by every array op module (array_extra.py, gather_api.py)."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..framework.graph import Tensor, get_default_graph


def static_value(value, arg: str, fn: str) -> np.ndarray:
    """The graph-time value of a shape-like argument (ints, lists, arrays, tf.constant tensors)."""
    from .variables import Variable
    if isinstance(value, Variable) or (isinstance(value, Tensor) and value.op._op != "const"):
        name = value.name if isinstance(value, (Tensor, Variable)) else value
        raise UnsupportedError(f"{fn}: `{arg}` must be known when the graph is built (Python ints, a list, a "
                               f"numpy array or a tf.constant); the tensor {name} is not supported yet")
    if isinstance(value, Tensor):
        value = value.op.attrs["value"]
    if isinstance(value, (list, tuple)) and any(isinstance(v, (Tensor, Variable)) for v in value):
        return np.array([static_value(v, arg, fn) for v in value])
    array = np.asarray(value)
    if array.dtype.kind not in "iub" and not (array.dtype.kind == "f" and np.all(array == np.round(array))):
        raise TypeError(f"{fn}: `{arg}` must hold integers, got {value!r}")
    return array.astype(np.int64)


def known_dims(x, fn):
    """x's static dims; ValueError naming `fn` when its rank is unknown."""
    if x.shape.dims is None:
        raise ValueError(f"{fn} needs a tensor of known rank, got {x}")
    return list(x.shape.dims)


def static_axis(axis, rank, fn, arg="axis"):
    """A graph-time axis in [0, rank) (negative axes count from the end); ValueError when out of range."""
    axis = int(static_value(axis, arg, fn).reshape(()))
    if not -rank <= axis < rank:
        raise ValueError(f"{fn}: {arg} {axis} is out of range for a tensor of rank {rank}")
    return axis % rank


def name_scope(name):
    return get_default_graph().name_scope(name)
