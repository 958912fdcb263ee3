"""Array ops of the TF 1.x API: constant, placeholder, reshape and friends,
transpose, slicing with Python `[]`, concat/stack, one_hot, fill/zeros/ones."""
from __future__ import annotations

import math

import numpy as np

from ..framework.graph import Tensor, get_default_graph
from ..ir.types import as_dtype, float32, int32
from .convert import convert_to_tensor, to_numpy
from .math_ops import _make
from .shape_args import is_tensor_shape, shape_tensor, static_shape_value


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
    """`input` unless fed; its static shape is `shape` (which may be less specific than input's, so
    feeds of other sizes are accepted)."""
    from ..framework.shapes import TensorShape
    value = convert_to_tensor(input)
    dims = TensorShape(shape).dims
    return _make("ensure_shape", [value], {"shape": dims, "relax": True, "what": "placeholder_with_default"},
                 name=name or "PlaceholderWithDefault")


def reshape(tensor, shape, name=None):
    tensor = convert_to_tensor(tensor)
    if is_tensor_shape(shape):
        target = shape_tensor(shape)
        static = static_shape_value(target)
        return _make("reshape_to", [tensor, target], {"static": static}, name=name or "Reshape")
    shape = tuple(-1 if d is None else int(d) for d in (shape if isinstance(shape, (list, tuple))
                                                           else np.atleast_1d(shape)))
    out = _make("reshape", [tensor], {"shape": shape}, name=name or "Reshape")
    if tensor.shape.dims is None and out.shape.dims is None:   # TF: the target's rank even for an unknown input
        out.set_shape([None if d == -1 else d for d in shape])
    return out


def expand_dims(input, axis=None, name=None, dim=None):  # noqa: A002
    x = convert_to_tensor(input)
    from .axis_check import axis_int, check_axis
    if axis is not None and dim is not None:
        raise ValueError("Cannot specify both 'axis' and 'dim'")
    axis = dim if axis is None else axis
    if axis is None:
        raise ValueError("expand_dims: `axis` must be given")
    axis = axis_int(axis, "expand_dims")
    if x.shape.dims is None:      # unknown rank: a new axis at a position counted from either end
        spec = [("slice", None, None, None)] * axis + [("new",), ("ellipsis",)] if axis >= 0 else \
            [("ellipsis",), ("new",)] + [("slice", None, None, None)] * (-axis - 1)
        return _make("slice_spec", [x], {"spec": tuple(spec), "axis_of": "ExpandDims", "axis": axis,
                                         "axis_inserts": 1}, name=name or "ExpandDims")
    dims = x.shape.dims
    rank = len(dims)
    axis = check_axis(axis, rank, "expand_dims", inserts=True)
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
    dims = x.shape.dims
    if dims is None or (axis is None and None in dims):     # which dims are 1 is known at run time
        axes = None if axis is None else tuple(int(a) for a in np.atleast_1d(axis))
        return _make("squeeze_dyn", [x], {"axes": axes}, name=name or "Squeeze")
    if axis is None:
        keep = [d for d in dims if d != 1]
    else:
        for a in np.atleast_1d(axis):
            if not -len(dims) <= int(a) < len(dims):
                raise ValueError(f"squeeze: axis {int(a)} is out of range for a tensor of rank {len(dims)}")
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
    if x.shape.dims is None:
        if perm is None:
            return _make("transpose_dyn", [x], name=name or "transpose")
        x = _make("ensure_shape", [x], {"shape": (None,) * len(perm)}, name="EnsureShape")
    rank = len(x.shape.dims)
    perm = tuple(range(rank))[::-1] if perm is None else tuple(int(p) for p in perm)
    return _make("transpose", [x], {"perm": perm}, name=name or "transpose")


def broadcast_to(input, shape, name=None):  # noqa: A002
    x = convert_to_tensor(input)
    if is_tensor_shape(shape):
        return _fill_dynamic(shape, x, name or "BroadcastTo")
    shape = tuple(int(d) for d in shape)
    check_static_dims(shape, name or "BroadcastTo")
    return _make("broadcast_to", [x], {"shape": shape}, name=name or "BroadcastTo")


def concat(values, axis, name="concat"):
    values = [convert_to_tensor(v) for v in values]
    if len(values) == 1:
        return _make("identity", values, name=name or "concat")
    axis = int(axis)
    ranks = {len(v.shape.dims) for v in values if v.shape.dims is not None}
    if not ranks:
        return _make("concat_dyn", values, {"axis": axis}, name=name or "concat")
    if len(ranks) > 1:
        raise ValueError(f"concat: inputs have different ranks {sorted(ranks)}")
    rank = ranks.pop()
    values = [v if v.shape.dims is not None else
              _make("ensure_shape", [v], {"shape": (None,) * rank}, name="EnsureShape") for v in values]
    if not -rank <= axis < rank:
        raise ValueError(f"concat: axis {axis} is out of range for tensors of rank {rank}")
    return _make("concat", values, {"axis": axis % rank}, name=name or "concat")


def stack(values, axis=0, name="stack"):
    values = [convert_to_tensor(v) for v in values]
    if not values:
        from .axis_check import where
        raise ValueError(f"tf.stack (op Pack) needs at least one tensor to stack, got an empty list{where()}")
    graph = values[0].graph
    with graph.name_scope(name or "stack"):
        known = [len(v.shape.dims) for v in values if v.shape.dims is not None]
        if known:       # TF: "Argument `axis` = 3 not in range [-3, 3)" for tensors of rank 2
            from .axis_check import axis_int, check_axis
            axis = check_axis(axis_int(axis, "stack"), known[0], "stack", inserts=True)
        expanded = [expand_dims(v, axis) for v in values]
    ranks = [len(e.shape.dims) for e in expanded if e.shape.dims is not None]
    return concat(expanded, axis % ranks[0] if ranks else axis, name=name or "stack")


def unstack(value, num=None, axis=0, name="unstack"):
    from .axis_check import axis_int, check_axis
    x = convert_to_tensor(value)
    if x.shape.dims is None:
        if num is None:
            raise ValueError(f"Cannot infer argument `num` from shape {x.shape}")
        axis = axis_int(axis, "unstack")
        pre = [("slice", None, None, None)] * axis if axis >= 0 else [("ellipsis",)]
        post = [("ellipsis",)] if axis >= 0 else [("slice", None, None, None)] * (-axis - 1)
        return [_make("slice_spec", [x], {"spec": tuple(pre + [("index", i)] + post), "axis_of": "Unpack",
                                          "axis": axis}, name=name or "unstack")
                for i in range(int(num))]
    dims = x.shape.dims
    axis = check_axis(axis_int(axis, "unstack"), len(dims), "unstack")
    if num is None:
        num = dims[axis]
    elif dims[axis] is not None and int(num) != dims[axis]:
        raise ValueError(f"unstack: num={num} does not match the size {dims[axis]} of axis {axis}")
    if num is None:
        raise ValueError(f"Cannot infer num from shape {x.shape}")
    if dims[axis] is None:       # checked at run time: every slice index must exist
        x = _make("ensure_shape", [x], {"shape": tuple(int(num) if k == axis else None
                                                      for k in range(len(dims)))}, name="EnsureShape")
    out = []
    for i in range(num):
        index = [slice(None)] * len(dims)
        index[axis] = i
        out.append(x[tuple(index)])
    return out


def fill(dims, value, name=None):
    value = convert_to_tensor(value)
    if is_tensor_shape(dims):
        return _fill_dynamic(dims, value, name or "Fill")
    dims = (int(dims),) if isinstance(dims, (int, np.integer)) else tuple(int(d) for d in dims)
    check_static_dims(dims, name or "Fill")
    return _make("broadcast_to", [value], {"shape": dims}, name=name or "Fill")


def check_static_dims(dims, fn):
    """TF's checks of a shape given as Python ints: no negative dim, and an element count that fits in int64
    (numpy would wrap it, or fail with "iterator is too large" far from the user's line)."""
    from .axis_check import where
    if any(d < 0 for d in dims):
        raise ValueError(f"{fn}: dimensions must be >= 0, got {list(dims)}{where()}")
    if math.prod(dims) > np.iinfo(np.int64).max:
        raise ValueError(f"{fn}: the shape {list(dims)} has {math.prod(dims)} elements, which overflows int64 "
                         f"(Encountered overflow when multiplying the dimensions){where()}")


def _fill_dynamic(dims, value, name):
    target = shape_tensor(dims)
    return _make("broadcast_to_shape", [value, target], {"static": static_shape_value(target)}, name=name)


def zeros(shape, dtype=float32, name=None):
    dtype = as_dtype(dtype)
    if not is_tensor_shape(shape):
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
    return fill(shape, constant(0, dtype), name=name or "zeros")


def ones(shape, dtype=float32, name=None):
    dtype = as_dtype(dtype)
    if not is_tensor_shape(shape):
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
    return fill(shape, constant(1, dtype), name=name or "ones")


def size(input, name=None, out_type=int32):  # noqa: A002
    """The number of elements of a tensor (a constant once the run is specialized)."""
    x = convert_to_tensor(input)
    dims = x.shape.dims
    if dims is not None and None not in dims:
        return constant(int(np.prod(dims, dtype=np.int64)), as_dtype(out_type), name=name or "Size")
    from .math_ops import reduce_prod
    return reduce_prod(shape(x, out_type=out_type), name=name or "Size")


def rank(input, name=None):  # noqa: A002
    """The number of dimensions of a tensor."""
    x = convert_to_tensor(input)
    if x.shape.dims is not None:
        return constant(len(x.shape.dims), int32, name=name or "Rank")
    return _make("rank_of", [x], name=name or "Rank")


def ensure_shape(x, shape, name=None):
    """x, with its static shape merged with `shape`; the fed shape is checked when the run is specialized
    (InvalidArgumentError when it does not match)."""
    from ..framework.shapes import TensorShape
    x = convert_to_tensor(x)
    dims = TensorShape(shape).dims
    return _make("ensure_shape", [x], {"shape": dims, "what": f"tensor {x.name}"}, name=name or "EnsureShape")


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
    from .axis_check import axis_int, where
    axis = -1 if axis is None else axis_int(axis, "one_hot")
    rank = None if indices.shape.dims is None else len(indices.shape.dims)
    if axis < -1 or (rank is not None and axis > rank):   # TF: -1 or in [0, rank]; never wrapped
        raise ValueError(f"one_hot: Expected axis to be -1 or between [0, {'rank' if rank is None else rank}]. "
                         f"But received: {axis}{where()}")
    if rank is None:
        if axis != -1:
            from ..errors import UnsupportedError
            raise UnsupportedError(f"one_hot: axis={axis} with indices of unknown rank is not supported by "
                                   f"jitflow (only axis=-1); give the indices a static rank (tf.ensure_shape)")
        return _one_hot_unknown_rank(indices, int(depth), on, off, name or "one_hot")
    axis = rank if axis == -1 else axis
    positions_shape = (int(depth),) + (1,) * (rank - axis)
    graph = indices.graph
    with graph.name_scope(name or "one_hot"):
        positions = graph.create_op("iota", [], {"shape": positions_shape, "axis": 0,
                                                 "dtype": indices.dtype}, name="positions").outputs[0]
        hit = _make("equal", [expand_dims(indices, axis), positions])
    return _make("select", [hit, on, off], name=name or "one_hot")


def _one_hot_unknown_rank(indices, depth, on, off, name):
    """one_hot along a new last axis of indices whose rank is known only at run time."""
    graph = indices.graph
    with graph.name_scope(name):
        positions = graph.create_op("iota", [], {"shape": (depth,), "axis": 0, "dtype": indices.dtype},
                                    name="positions").outputs[0]
        expanded = _make("slice_spec", [indices], {"spec": (("ellipsis",), ("new",))}, name="ExpandDims")
        hit = _make("equal", [expanded, positions])
    return _make("select", [hit, on, off], name=name)


def range_(start, limit=None, delta=1, dtype=None, name="range"):
    if limit is None:
        start, limit = 0, start
    if any(_tensor_index(v) for v in (start, limit, delta)):
        return _range_dynamic(start, limit, delta, dtype, name)
    if delta == 0:
        from .axis_check import where
        raise ValueError(f"tf.range (op Range): Requires delta != 0, got delta={delta!r}{where()}")
    values = np.arange(start, limit, delta)
    return constant(values, dtype=dtype or (int32 if values.dtype.kind in "iu" else float32), name=name)


def _range_dynamic(start, limit, delta, dtype, name):
    from .convert import convert_to_tensor as conv
    values = [conv(v) for v in (start, limit, delta)]
    if dtype is None:       # TF picks the widest of the arguments' dtypes
        order = ["int32", "int64", "float32", "float64"]
        dtype = max((v.dtype for v in values), key=lambda d: order.index(d.name) if d.name in order else 0)
    dtype = as_dtype(dtype)
    from .math_ops import cast
    values = [cast(v, dtype) for v in values]
    return _make("range_of", values, {"dtype": dtype}, name=name or "range")


def strided_slice(x: Tensor, index, name="strided_slice"):
    """Python `[]` on a tensor: ints, slices with steps, None (new axis), Ellipsis; tensors as indices
    and dimensions of unknown size are resolved when the run is specialized."""
    x = convert_to_tensor(x)
    if not isinstance(index, tuple):
        index = (index,)
    for i in index:
        if not _valid_index_item(i):
            from .axis_check import where
            raise TypeError(f"Only integers, slices (`:`), ellipsis (`...`), tf.newaxis (`None`) and scalar "
                            f"tf.int32/tf.int64 tensors are valid indices, got {i!r}{where()}")
    dims = x.shape.dims
    if dims is None or any(d is None for d in dims) or any(_tensor_index(i) for i in index):
        return _slice_spec(x, index, name)
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


def _valid_index_item(i) -> bool:
    """TF's _check_index: ints (bools count as ints, as in Python), None, Ellipsis, tensors (their dtype is
    checked later), 0-d integer numpy arrays, and slices of those; floats, strings, lists are TypeErrors."""
    from .shape_args import _is_tensorlike

    def scalar(v):
        if isinstance(v, (int, np.integer)) or _is_tensorlike(v):
            return True
        return isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iu"
    if i is None or i is Ellipsis:
        return True
    if isinstance(i, slice):
        return all(v is None or scalar(v) for v in (i.start, i.stop, i.step))
    return scalar(i)


def _tensor_index(i) -> bool:
    from .shape_args import _is_tensorlike
    if isinstance(i, slice):
        return any(_tensor_index(v) for v in (i.start, i.stop, i.step))
    return _is_tensorlike(i)


def _slice_spec(x, index, name):
    """The slice_spec op: the index as data, resolved against the fed shape at specialization."""
    from .math_ops import cast
    operands, spec = [x], []

    def arg(v):
        if v is None or not _tensor_index(v):
            return None if v is None else int(v)
        t = convert_to_tensor(v)
        if t.dtype.kind != "int" or (t.shape.dims is not None and len(t.shape.dims) != 0):
            raise TypeError(f"a tensor index must be an integer scalar, got {t}")
        operands.append(cast(t, int32) if t.dtype != int32 else t)
        return ["arg", len(operands) - 2]

    if sum(1 for i in index if i is Ellipsis) > 1:
        raise ValueError("an index can only have a single ellipsis ('...')")
    for i in index:
        if i is None:
            spec.append(["new"])
        elif i is Ellipsis:
            spec.append(["ellipsis"])
        elif isinstance(i, slice):
            spec.append(["slice", arg(i.start), arg(i.stop), arg(i.step)])
        else:
            spec.append(["index", arg(i)])
    spec = tuple(tuple(e) for e in spec)
    with x.graph.name_scope(name):
        return _make("slice_spec", operands, {"spec": spec}, name="slice")
