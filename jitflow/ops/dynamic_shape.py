"""Ops whose shapes come from values known only when a run is specialized.

TF 1.x programs compute shapes from other tensors' shapes: `tf.reshape(x,
[tf.shape(x)[0], -1])`, `tf.zeros(tf.shape(x))`, `tf.random_normal(tf.shape(z))`,
`x[:, 1:3]` with an unknown batch size, `tf.range(tf.shape(x)[0])`. At graph
building these shapes are partial; at specialization `shape_of` is a constant,
lowering folds the small integer arithmetic on it (see
`jitflow.framework.lowering`), and each op here reads its shape operand with
`constant_value` and expands into ordinary layout ops of known shape. So
compiled code never sees these names, and each distinct fed shape compiles once.

| op                   | operands                 | expands to                       |
| -------------------- | ------------------------ | -------------------------------- |
| `ensure_shape`       | x                        | x, after checking its shape      |
|                      |                          | (also placeholder_with_default)  |
| `reshape_to`         | x, shape                 | reshape                          |
| `broadcast_to_shape` | value, shape             | broadcast_to                     |
| `slice_spec`         | x, index tensors...      | strided_slice + reshape          |
| `slice_spec_grad`    | g, x, index tensors...   | reshape + scatter_slice          |
| `range_of`           | start, limit, delta      | iota * delta + start             |
| `rank_of`            | x                        | const                            |
| `squeeze_dyn`        | x                        | reshape                          |
| `transpose_dyn`      | x                        | transpose (reversed axes)        |
| `concat_dyn`         | values...                | concat (axis resolved)           |
| `tile_dyn`           | x, multiples             | tile (jitflow/ops/array_extra.py)|
"""
from __future__ import annotations

import numpy as np

from ..ir.symdim import NeedsConcreteShape, SymDim, provably_le
from ..ir.types import INTS, NUMERIC, TensorType, int32
from .broadcast import check_dtype, fmt_shape
from .registry import SOURCE, ShapeError, define_op as _define_op


def define_op(name, kind, infer, **fields):
    """These rules handle operands of unknown rank themselves (graph building passes them through)."""
    return _define_op(name, kind, infer, extra={"infers_unknown_rank": True}, **fields)


def constant_value(value, what: str, op: str):
    """The numpy value of an IR value that specialization made constant; a ShapeError naming
    `what` when it depends on data (fed values or variables) rather than on shapes."""
    node = getattr(value, "node", None)
    if node is None or node.op != "const":
        raise ShapeError(f"{op}: {what} must be computable from tensor shapes when the run is specialized "
                         f"(from tf.shape/tf.size/constants); here it depends on fed or variable values")
    return np.asarray(node.attrs["value"])


def _shape_from(value, op):
    shape = constant_value(value, "the shape argument", op)
    if shape.ndim > 1:
        raise ShapeError(f"{op}: the shape must be a vector, got a tensor of shape {shape.shape}")
    return tuple(int(d) for d in np.atleast_1d(shape))


def _static_length(t: TensorType):
    return None if t.shape is None or len(t.shape) != 1 else t.shape[0]


# ---- ensure_shape: merge a known static shape, checked at specialization ------------
def compatible(shape, expected) -> bool:
    if expected is None or shape is None:
        return True
    return len(shape) == len(expected) and all(e is None or d is None or d == e for d, e in zip(shape, expected))


def _ensure_infer(types, attrs, op="ensure_shape"):
    (t,) = types
    expected = attrs["shape"]
    if expected is None:
        return [t]
    if not compatible(t.shape, expected):
        raise ShapeError(f"{op}: shape {fmt_shape(t.shape)} is not compatible with the expected shape "
                         f"{fmt_shape(expected)}")
    if attrs.get("relax"):       # placeholder_with_default: exactly the declared static shape
        return [TensorType(t.dtype, tuple(expected))]
    dims = tuple(e if e is not None else d for d, e in zip(t.shape, expected)) if t.shape is not None \
        else tuple(expected)
    return [TensorType(t.dtype, dims)]


def _expand_ensure(emit, operands, attrs):
    (x,) = operands
    expected = attrs["shape"]
    if not compatible(tuple(x.shape), expected):
        what = attrs.get("what") or "the tensor"
        raise ShapeError(f"{what} has shape {fmt_shape(tuple(x.shape))}, which is not compatible with the "
                         f"expected shape {fmt_shape(tuple(expected))}")
    return [x]


ensure_shape = define_op("ensure_shape", SOURCE, _ensure_infer, expand=_expand_ensure, tf_name="EnsureShape")
ensure_shape.grad = lambda b, op, g: [g[0]]


# ---- reshape_to / broadcast_to_shape: a shape given as a tensor -----------------------
def _partial_dims(types, attrs, op):
    """Static result dims: the graph-time partial value of the shape operand (attrs['static'])."""
    length = _static_length(types[1])
    static = attrs.get("static")
    if static is not None:
        return tuple(static)
    return None if length is None else (None,) * length


def _reshape_to_infer(types, attrs, op="reshape_to"):
    check_dtype(types[1], INTS, op)
    dims = _partial_dims(types, attrs, op)
    if dims is not None:
        dims = tuple(None if d is None or d < 0 else d for d in dims)
    return [TensorType(types[0].dtype, dims)]


def _expand_reshape_to(emit, operands, attrs):
    x, shape = operands
    return [emit("reshape", [x], {"shape": _shape_from(shape, "Reshape")})]


reshape_to = define_op("reshape_to", SOURCE, _reshape_to_infer, expand=_expand_reshape_to, tf_name="Reshape")
reshape_to.grad = lambda b, op, g: [b.reshape_like(g[0], op.inputs[0]), None]


def _broadcast_shape_infer(types, attrs, op="broadcast_to_shape"):
    check_dtype(types[1], INTS, op)
    return [TensorType(types[0].dtype, _partial_dims(types, attrs, op))]


def _expand_broadcast_shape(emit, operands, attrs):
    value, shape = operands
    dims = _shape_from(shape, "Fill")
    if any(d < 0 for d in dims):
        raise ShapeError(f"Fill: dims must be non-negative, got {list(dims)}")
    if tuple(value.shape) == dims:
        return [value]
    return [emit("broadcast_to", [value], {"shape": dims})]


broadcast_to_shape = define_op("broadcast_to_shape", SOURCE, _broadcast_shape_infer,
                               expand=_expand_broadcast_shape, tf_name="Fill")
broadcast_to_shape.grad = lambda b, op, g: [b.sum_to(g[0], op.inputs[0]), None]


# ---- slice_spec: Python indexing resolved against the specialized shape --------------
# spec: one entry per index item: ["new"], ["ellipsis"], ["index", i], ["slice", start, stop, step]
# where i/start/stop/step is an int, None, or ["arg", k] (operand k + 1 holds a scalar int).
def _arg(item, operands):
    if isinstance(item, (list, tuple)):
        return int(constant_value(operands[item[1] + 1], "a tensor index", "strided_slice"))
    return item


def _entries(spec, rank, op):
    """The spec with its ellipsis (or the implicit trailing one) spelled out as full slices."""
    n_real = sum(1 for e in spec if e[0] in ("index", "slice"))
    if n_real > rank:
        raise ShapeError(f"{op}: too many indices ({n_real}) for a tensor of rank {rank}")
    full = [["slice", None, None, None]] * (rank - n_real)
    entries = []
    for e in spec:
        entries.extend(full if e[0] == "ellipsis" else [e])
    if not any(e[0] == "ellipsis" for e in spec):
        entries.extend(full)
    return entries


def resolve_spec(spec, shape, operands=None, op="strided_slice"):
    """(begin, stride, size, out_shape) of a slice spec on a tensor of this (known) shape."""
    entries = _entries(spec, len(shape), op)
    begin, stride, size, out_shape = [], [], [], []
    k = 0
    for e in entries:
        if e[0] == "new":
            out_shape.append(1)
            continue
        d = shape[k]
        if e[0] == "slice":
            start, stop, step = (_arg(v, operands) if v is not None else None for v in e[1:])
            if step == 0:
                raise ShapeError(f"{op}: slice step cannot be zero")
            start, stop, step = slice(start, stop, step).indices(d) if not isinstance(d, SymDim) else \
                _symbolic_slice(start, stop, step, d)
            n = stop - start if isinstance(d, SymDim) else len(range(start, stop, step))
            begin.append(start if n else 0)
            stride.append(step)
            size.append(n)
            out_shape.append(n)
        else:
            j = _arg(e[1], operands)
            if isinstance(d, SymDim) and not (provably_le(0, j) and provably_le(j + 1, d) or
                                              provably_le(-j, d) and j < 0):
                raise NeedsConcreteShape(f"{op}: index {j} of a dimension of size {d.text}")
            if not -d <= j < d:
                raise ShapeError(f"{op}: index {j} is out of bounds for dimension {k} with size {d}")
            begin.append(j % d)
            stride.append(1)
            size.append(1)
        k += 1
    return tuple(begin), tuple(stride), tuple(size), tuple(out_shape)


def _symbolic_slice(start, stop, step, d):
    """slice(start, stop, step).indices(d) for a symbolic d (shape-polymorphic runs), when the answer
    is the same for every value of d; else NeedsConcreteShape."""
    if step not in (None, 1):
        raise NeedsConcreteShape(f"a slice with step {step} of a dimension of size {d.text}")
    bounds = []
    for value, default in ((start, 0), (stop, d)):
        value = default if value is None else (value + d if value < 0 else value)
        if not (provably_le(0, value) and provably_le(value, d)):
            raise NeedsConcreteShape(f"a slice bound of a dimension of size {d.text}")
        bounds.append(value)
    if not provably_le(bounds[0], bounds[1]):
        raise NeedsConcreteShape(f"a slice of a dimension of size {d.text}")
    return bounds[0], bounds[1], 1


def static_spec_shape(spec, dims):
    """The partial static result shape of a slice spec (None for sizes known only at run time)."""
    if dims is None:        # the result's rank depends on the input's (implicit trailing dims): unknown, as in TF
        return None
    entries = _entries(spec, len(dims), "strided_slice")
    out, k = [], 0
    for e in entries:
        if e[0] == "new":
            out.append(1)
            continue
        d = dims[k]
        k += 1
        if e[0] == "index":
            if d is not None and isinstance(e[1], int) and not -d <= e[1] < d:
                raise ShapeError(f"strided_slice: index {e[1]} is out of bounds for dimension {k - 1} "
                                 f"with size {d}")
            continue
        bounds = e[1:]
        if any(isinstance(v, (list, tuple)) for v in bounds):
            out.append(None)
        elif d is not None:
            out.append(len(range(*slice(*bounds).indices(d))))
        else:
            out.append(None)
    return tuple(out)


def _slice_spec_infer(types, attrs, op="strided_slice"):
    x = types[0]
    for t in types[1:]:
        check_dtype(t, INTS, op)
    return [TensorType(x.dtype, static_spec_shape(attrs["spec"], x.shape))]


def _check_axis_attr(attrs, rank):
    """expand_dims/stack/unstack of an operand of unknown rank record the user's axis: checked by name here."""
    fn = attrs.get("axis_of")
    if fn is not None:
        axis, hi = attrs["axis"], rank + attrs.get("axis_inserts", 0)
        if not -hi <= axis < hi:
            raise ShapeError(f"{fn}: axis {axis} is out of range for a tensor of rank {rank} "
                             f"(expected axis in [{-hi}, {hi}))")


def _expand_slice_spec(emit, operands, attrs):
    x = operands[0]
    _check_axis_attr(attrs, len(x.shape))
    begin, stride, size, out_shape = resolve_spec(attrs["spec"], tuple(x.shape), operands)
    value = emit("strided_slice", [x], {"begin": begin, "stride": stride, "size": size})
    if tuple(out_shape) != tuple(size):
        value = emit("reshape", [value], {"shape": out_shape})
    return [value]


slice_spec = define_op("slice_spec", SOURCE, _slice_spec_infer, expand=_expand_slice_spec,
                       tf_name="StridedSlice")
slice_spec.grad = lambda b, op, g: [b.op("slice_spec_grad", [g[0], *op.inputs], dict(op.attrs))] + \
    [None] * (len(op.inputs) - 1)


def _expand_slice_spec_grad(emit, operands, attrs):
    g, x = operands[0], operands[1]
    begin, stride, size, _ = resolve_spec(attrs["spec"], tuple(x.shape), operands[1:])
    if tuple(g.shape) != size:
        g = emit("reshape", [g], {"shape": size})
    if size == tuple(x.shape) and all(s == 1 for s in stride) and not any(begin):
        return [g]         # the whole operand (expand_dims of an unknown-rank tensor): no scatter
    return [emit("scatter_slice", [g], {"begin": begin, "stride": stride, "shape": tuple(x.shape)})]


slice_spec_grad = define_op("slice_spec_grad", SOURCE,
                            lambda types, attrs, op="slice_spec_grad": [TensorType(types[0].dtype, types[1].shape)],
                            expand=_expand_slice_spec_grad, tf_name="StridedSliceGrad")
slice_spec_grad.grad = lambda b, op, g: [b.op("slice_spec", [g[0], *op.inputs[2:]], dict(op.attrs))] + \
    [None] * (len(op.inputs) - 1)


# ---- range_of / rank_of ------------------------------------------------------------
def _range_infer(types, attrs, op="range"):
    for t in types:
        check_dtype(t, NUMERIC, op)
        if t.shape is not None and len(t.shape) != 0:
            raise ShapeError(f"{op}: start, limit and delta must be scalars, got shape {fmt_shape(t.shape)}")
    return [TensorType(attrs["dtype"], (None,))]


def _expand_range(emit, operands, attrs):
    start, limit, delta = (constant_value(v, "start, limit and delta", "Range").item() for v in operands)
    if delta == 0:
        raise ShapeError("Range: delta must not be zero")
    dtype = attrs["dtype"]
    n = max(0, int(np.ceil((limit - start) / delta)))
    iota = emit("iota", [], {"shape": (n,), "axis": 0, "dtype": dtype})
    if start == 0 and delta == 1:
        return [iota]
    scale = emit("const", [], {"value": np.array(delta, dtype.np), "dtype": dtype})
    offset = emit("const", [], {"value": np.array(start, dtype.np), "dtype": dtype})
    return [emit("add", [emit("mul", [iota, scale], {}), offset], {})]


range_of = define_op("range_of", SOURCE, _range_infer, expand=_expand_range, tf_name="Range", differentiable=False)

rank_of = define_op("rank_of", SOURCE, lambda types, attrs, op="rank_of": [TensorType(int32, ())],
                    expand=lambda emit, ops, attrs: [emit("const", [], {"value": np.array(len(ops[0].shape), np.int32),
                                                                        "dtype": int32})],
                    tf_name="Rank", differentiable=False)


# ---- layout ops on operands of unknown rank: resolved once the rank is known ------------
def _squeeze_infer(types, attrs, op="squeeze"):
    (t,) = types
    axes = attrs.get("axes")
    if t.shape is None or axes is None and None in t.shape:
        return [TensorType(t.dtype, None)]
    rank = len(t.shape)
    drop = _squeezed_axes(t.shape, axes, op)
    return [TensorType(t.dtype, tuple(d for k, d in enumerate(t.shape) if k not in drop))]


def _squeezed_axes(shape, axes, op):
    rank = len(shape)
    if axes is None:
        return {k for k, d in enumerate(shape) if d == 1}
    drop = set()
    for a in axes:
        if not -rank <= a < rank:
            raise ShapeError(f"{op}: axis {a} is out of range for a tensor of rank {rank}")
        if shape[a % rank] not in (1, None):
            raise ShapeError(f"Can not squeeze dim[{a % rank}], expected a dimension of 1, got {shape[a % rank]}")
        drop.add(a % rank)
    return drop


def _expand_squeeze(emit, operands, attrs):
    (x,) = operands
    drop = _squeezed_axes(tuple(x.shape), attrs.get("axes"), "Squeeze")
    return [emit("reshape", [x], {"shape": tuple(d for k, d in enumerate(x.shape) if k not in drop)})]


squeeze_dyn = define_op("squeeze_dyn", SOURCE, _squeeze_infer, expand=_expand_squeeze, tf_name="Squeeze")
squeeze_dyn.grad = lambda b, op, g: [b.reshape_like(g[0], op.inputs[0])]


def _transpose_dyn_infer(types, attrs, op="transpose"):
    (t,) = types
    if t.shape is None:
        return [TensorType(t.dtype, None)]
    return [TensorType(t.dtype, tuple(reversed(t.shape)))]


def _expand_transpose_dyn(emit, operands, attrs):
    (x,) = operands
    perm = tuple(range(len(x.shape)))[::-1]
    return [emit("transpose", [x], {"perm": perm})]


transpose_dyn = define_op("transpose_dyn", SOURCE, _transpose_dyn_infer, expand=_expand_transpose_dyn,
                          tf_name="Transpose")
transpose_dyn.grad = lambda b, op, g: [b.op("transpose_dyn", [g[0]], {})]


def _concat_dyn_infer(types, attrs, op="concat"):
    dtypes = {t.dtype for t in types}
    if len(dtypes) > 1:
        raise TypeError(f"{op}: all inputs must have the same dtype, got {sorted(d.name for d in dtypes)}")
    ranks = {len(t.shape) for t in types if t.shape is not None}
    if len(ranks) > 1:
        raise ShapeError(f"{op}: inputs have different ranks {sorted(ranks)}")
    if not ranks:
        return [TensorType(types[0].dtype, None)]
    return [TensorType(types[0].dtype, (None,) * ranks.pop())]


def _expand_concat_dyn(emit, operands, attrs):
    rank = len(operands[0].shape)
    axis = attrs["axis"]
    if not -rank <= axis < rank:
        raise ShapeError(f"ConcatV2: axis {axis} is out of range for tensors of rank {rank}")
    return [emit("concat", list(operands), {"axis": axis % rank})]


concat_dyn = define_op("concat_dyn", SOURCE, _concat_dyn_infer, expand=_expand_concat_dyn, tf_name="ConcatV2")
concat_dyn.grad = lambda b, op, g: [b.op("concat_grad", [g[0], *op.inputs], {"axis": op.attrs["axis"], "index": k})
                                    for k in range(len(op.inputs))]


# ---- tile with multiples given as a tensor (`tf.tile(x, [tf.shape(y)[0], 1])`) ---------------
def _tile_dyn_infer(types, attrs, op="tile"):
    x, multiples = types
    check_dtype(multiples, INTS, op)
    static = attrs.get("static")
    if x.shape is None:
        return [TensorType(x.dtype, None if static is None else (None,) * len(static))]
    if static is None:
        return [TensorType(x.dtype, (None,) * len(x.shape))]
    if len(static) != len(x.shape):
        raise ShapeError(f"{op}: multiples must have one entry per dimension of the input, got {len(static)} "
                         f"for a tensor of rank {len(x.shape)}")
    return [TensorType(x.dtype, tuple(None if d is None or m is None else d * m for d, m in zip(x.shape, static)))]


def _late_multiples(operand):
    return {"multiples": _shape_from(operand, "Tile")}


def _expand_tile_dyn(emit, operands, attrs):
    from .array_extra import tile
    return tile.expand(emit, operands[:1], _late_multiples(operands[1]))


def _expand_tile_grad_dyn(emit, operands, attrs):
    from .array_extra import tile_grad
    return tile_grad.expand(emit, operands[:2], _late_multiples(operands[2]))


tile_dyn = define_op("tile_dyn", SOURCE, _tile_dyn_infer, expand=_expand_tile_dyn, tf_name="Tile")
tile_grad_dyn = define_op("tile_grad_dyn", SOURCE,
                          lambda types, attrs, op="tile_grad": [TensorType(types[0].dtype, types[1].shape)],
                          expand=_expand_tile_grad_dyn, tf_name="TileGrad")
tile_dyn.grad = lambda b, op, g: [b.op("tile_grad_dyn", [g[0], *op.inputs]), None]
tile_grad_dyn.grad = lambda b, op, g: [b.op("tile_dyn", [g[0], op.inputs[2]], {}), None, None]
