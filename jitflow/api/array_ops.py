"""Array ops of the TF 1.x API: constant, placeholder, reshape and friends,
transpose, slicing with Python `[]`, concat/stack, one_hot, fill/zeros/ones."""
from __future__ import annotations

import numpy as np

from ..framework.graph import Tensor, get_default_graph
from ..ir.types import as_dtype, float32, int32
from .convert import convert_to_tensor, to_numpy
from .math_ops import _make


def constant(value, dtype=None, shape=None, name="Const", verify_shape=False, graph=None):
    dtype = as_dtype(dtype) if dtype is not None else None
    array = to_numpy(value, dtype)
    if shape is not None:
        shape = tuple(int(d) for d in (shape if isinstance(shape, (list, tuple)) else [shape]))
        if array.size == 1 and int(np.prod(shape)) != 1:
            array = np.full(shape, array.reshape(()), array.dtype)
        elif array.size == int(np.prod(shape, dtype=np.int64)):
            array = array.reshape(shape)
        else:
            raise TypeError(f"Expected Tensor's shape: {shape}, got {array.shape}.")
    array = np.array(array, order="C", copy=True)
    array.setflags(write=False)
    graph = graph or get_default_graph()
    return graph.create_op("const", [], {"value": array, "dtype": as_dtype(array.dtype)},
                           name=name or "Const").outputs[0]


def placeholder(dtype, shape=None, name=None):
    dtype = as_dtype(dtype)
    if shape is not None:
        if isinstance(shape, int):
            shape = (shape,)
        shape = tuple(None if d is None or (hasattr(d, "value") and d.value is None) or d == -1
                      else int(d) for d in shape)
    return get_default_graph().create_op("placeholder", [], {"dtype": dtype, "shape": shape},
                                         name=name or "Placeholder").outputs[0]


def placeholder_with_default(input, shape, name=None):  # noqa: A002
    value = convert_to_tensor(input)
    return _make("identity", [value], name=name or "PlaceholderWithDefault")


def reshape(tensor, shape, name=None):
    tensor = convert_to_tensor(tensor)
    if isinstance(shape, Tensor):
        raise TypeError("reshape: the new shape must be a Python list or tuple, not a Tensor")
    shape = tuple(-1 if d is None else int(d) for d in (shape if isinstance(shape, (list, tuple))
                                                           else np.atleast_1d(shape)))
    return _make("reshape", [tensor], {"shape": shape}, name=name or "Reshape")


def expand_dims(input, axis=None, name=None, dim=None):  # noqa: A002
    x = convert_to_tensor(input)
    axis = dim if axis is None else axis
    dims = _known_rank(x, "expand_dims")
    rank = len(dims)
    axis = int(axis)
    if not -rank - 1 <= axis <= rank:
        raise ValueError(f"expand_dims: axis {axis} is out of range for a tensor of rank {rank}")
    axis = axis % (rank + 1)
    new = [-1 if d is None else d for d in dims]
    new.insert(axis, 1)
    if None not in dims:
        return _reshape_unknown_ok(x, new, name or "ExpandDims")
    copy_dims = list(range(rank))
    copy_dims.insert(axis, -1)        # unknown dims are copied from the input (works for empty inputs too)
    return _make("reshape", [x], {"shape": tuple(new), "copy_dims": tuple(copy_dims)}, name=name or "ExpandDims")


def squeeze(input, axis=None, name=None, squeeze_dims=None):  # noqa: A002
    x = convert_to_tensor(input)
    axis = squeeze_dims if axis is None else axis
    dims = _known_rank(x, "squeeze")
    if axis is None:
        if any(d is None for d in dims):
            raise ValueError("squeeze without axis needs a fully known shape")
        keep = [d for d in dims if d != 1]
    else:
        axes = {int(a) % len(dims) for a in np.atleast_1d(axis)}
        for a in axes:
            if dims[a] not in (1, None):
                raise ValueError(f"Can not squeeze dim[{a}], expected a dimension of 1, got {dims[a]}")
        keep = [d for k, d in enumerate(dims) if k not in axes]
    return _reshape_unknown_ok(x, [-1 if d is None else d for d in keep], name or "Squeeze")


def _reshape_unknown_ok(x, new_shape, name):
    if sum(1 for d in new_shape if d == -1) > 1:
        raise ValueError(f"{name}: more than one unknown dimension; feed a tensor with a known shape")
    return _make("reshape", [x], {"shape": tuple(new_shape)}, name=name)


def _known_rank(x, what):
    if x.shape.dims is None:
        raise ValueError(f"{what} needs a tensor of known rank, got {x}")
    return x.shape.dims


def transpose(a, perm=None, name="transpose", conjugate=False):
    x = convert_to_tensor(a)
    rank = len(_known_rank(x, "transpose"))
    perm = tuple(range(rank))[::-1] if perm is None else tuple(int(p) for p in perm)
    return _make("transpose", [x], {"perm": perm}, name=name or "transpose")


def broadcast_to(input, shape, name=None):  # noqa: A002
    x = convert_to_tensor(input)
    return _make("broadcast_to", [x], {"shape": tuple(int(d) for d in shape)}, name=name or "BroadcastTo")


def concat(values, axis, name="concat"):
    values = [convert_to_tensor(v) for v in values]
    if len(values) == 1:
        return _make("identity", values, name=name or "concat")
    rank = len(_known_rank(values[0], "concat"))
    axis = int(axis)
    if not -rank <= axis < rank:
        raise ValueError(f"concat: axis {axis} is out of range for tensors of rank {rank}")
    return _make("concat", values, {"axis": axis % rank}, name=name or "concat")


def stack(values, axis=0, name="stack"):
    values = [convert_to_tensor(v) for v in values]
    graph = values[0].graph
    with graph.name_scope(name or "stack"):
        expanded = [expand_dims(v, axis) for v in values]
    rank = len(expanded[0].shape.dims)
    return concat(expanded, axis % rank, name=name or "stack")


def unstack(value, num=None, axis=0, name="unstack"):
    x = convert_to_tensor(value)
    dims = _known_rank(x, "unstack")
    axis = axis % len(dims)
    num = dims[axis] if num is None else num
    if num is None:
        raise ValueError("unstack needs a known size along axis")
    out = []
    for i in range(num):
        index = [slice(None)] * len(dims)
        index[axis] = i
        out.append(x[tuple(index)])
    return out


def fill(dims, value, name=None):
    value = convert_to_tensor(value)
    return _make("broadcast_to", [value], {"shape": tuple(int(d) for d in dims)}, name=name or "Fill")


def zeros(shape, dtype=float32, name=None):
    dtype = as_dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(int(d) for d in shape)
    return fill(shape, constant(0, dtype), name=name or "zeros")


def ones(shape, dtype=float32, name=None):
    dtype = as_dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(int(d) for d in shape)
    return fill(shape, constant(1, dtype), name=name or "ones")


def _like(tensor, value, dtype, name):
    x = convert_to_tensor(tensor)
    dtype = as_dtype(dtype) if dtype is not None else x.dtype
    return _make("fill_like", [x], {"value": value, "dtype": dtype}, name=name)


def shape(input, name=None, out_type=int32):  # noqa: A002
    """The shape of a tensor as a 1-D int tensor (known when the run is specialized)."""
    x = convert_to_tensor(input)
    return _make("shape_of", [x], {"out_type": as_dtype(out_type)}, name=name or "Shape")


def zeros_like(tensor, dtype=None, name=None, optimize=True):
    return _like(tensor, 0, dtype, name or "zeros_like")


def ones_like(tensor, dtype=None, name=None, optimize=True):
    return _like(tensor, 1, dtype, name or "ones_like")


def one_hot(indices, depth, on_value=None, off_value=None, axis=None, dtype=None, name=None):
    indices = convert_to_tensor(indices)
    dtype = as_dtype(dtype) if dtype is not None else float32
    on = constant(1 if on_value is None else on_value, dtype)
    off = constant(0 if off_value is None else off_value, dtype)
    rank = len(_known_rank(indices, "one_hot"))
    axis = rank if axis is None or axis == -1 else int(axis)
    positions_shape = (int(depth),) + (1,) * (rank - axis)
    graph = indices.graph
    with graph.name_scope(name or "one_hot"):
        positions = graph.create_op("iota", [], {"shape": positions_shape, "axis": 0,
                                                 "dtype": indices.dtype}, name="positions").outputs[0]
        hit = _make("equal", [expand_dims(indices, axis), positions])
    return _make("select", [hit, on, off], name=name or "one_hot")


def range_(start, limit=None, delta=1, dtype=None, name="range"):
    if limit is None:
        start, limit = 0, start
    values = np.arange(start, limit, delta)
    return constant(values, dtype=dtype or (int32 if values.dtype.kind in "iu" else float32), name=name)


def strided_slice(x: Tensor, index, name="strided_slice"):
    """Python `[]` on a tensor: ints, slices with steps, None (new axis), Ellipsis."""
    x = convert_to_tensor(x)
    dims = _known_rank(x, "slicing")
    if not isinstance(index, tuple):
        index = (index,)
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise ValueError("an index can only have a single ellipsis ('...')")
    n_real = sum(1 for i in index if i is not None and i is not Ellipsis)
    if n_real > len(dims):
        raise ValueError(f"too many indices for a tensor of rank {len(dims)}")
    expanded = []
    for i in index:
        if i is Ellipsis:
            expanded.extend([slice(None)] * (len(dims) - n_real))
        else:
            expanded.append(i)
    n_real_after = sum(1 for i in expanded if i is not None)
    expanded.extend([slice(None)] * (len(dims) - n_real_after))
    begin, stride, size, out_shape = [], [], [], []
    k = 0
    for i in expanded:
        if i is None:
            out_shape.append(1)
            continue
        d = dims[k]
        if d is None:
            raise ValueError("slicing needs a known size for every sliced dimension in jitflow")
        if isinstance(i, Tensor):
            raise TypeError("slicing with a Tensor index is not supported; use Python ints")
        if isinstance(i, slice):
            start, stop, step = i.indices(d)
            n = len(range(start, stop, step))
            begin.append(start if n else 0)
            stride.append(step)
            size.append(n)
            out_shape.append(n)
        else:
            j = int(i)
            if not -d <= j < d:
                raise ValueError(f"index {j} is out of bounds for dimension {k} with size {d}")
            begin.append(j % d)
            stride.append(1)
            size.append(1)
        k += 1
    graph = x.graph
    with graph.name_scope(name):
        sliced = _make("strided_slice", [x], {"begin": tuple(begin), "stride": tuple(stride),
                                              "size": tuple(size)}, name="slice")
    if tuple(out_shape) == tuple(size):
        return sliced
    return _make("reshape", [sliced], {"shape": tuple(out_shape)}, name=name)
