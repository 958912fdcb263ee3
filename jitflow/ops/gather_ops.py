"""Index ops of TF 1.x's gather family beyond plain `gather` (jitflow/ops/array_extra.py):

| op                 | kind   | what                                                              |
| ------------------ | ------ | ----------------------------------------------------------------- |
| `check_index`      | CHECK  | passes indices through; the run fails (InvalidArgumentError, the  |
|                    |        | op and the bad index named) when one is outside [lo, hi)          |
| `checked_indices`  | SOURCE | `check_index` against `params.shape[axis]`, known once the run is |
|                    |        | specialized (tf.gather of params whose size is unknown at build)  |
| `gather_nd`        | SOURCE | params[indices[..., :K]] (TF GatherNd)                            |
| `scatter_nd`       | SOURCE | zeros(shape) with updates added at indices (duplicates add up)    |
| `gather_nd_grad`   | SOURCE | scatter_nd into the shape of params (gather_nd's gradient)        |
| `reverse_sequence` | SOURCE | reverses the first lengths[b] steps of each batch row (TF)        |
| `batch_index_tuples` | SOURCE | indices prefixed by their batch position (gathers' batch_dims)  |

The SOURCE ops expand at specialization (shapes known) into existing ops: each column of the
indices is checked against its dimension, combined into a row number of the flattened params,
then `gather` (forward) or `segment_sum` (scatter / gradient: duplicate indices accumulate).
"""
from __future__ import annotations

import numpy as np

from ..ir.types import INTS, TensorType, bool_, int64, num_elements
from .broadcast import check_dtype, fmt_shape
from .checks import CHECKED_DTYPES, range_predicate
from .registry import CHECK, SOURCE, ShapeError, define_op


# ---- check_index ----------------------------------------------------------------------------------
def _check_infer(types, attrs, op="check_index"):
    """(x) or (x, active): `active`, a bool scalar, turns the check off (an untaken tf.cond branch)."""
    t = types[0]
    check_dtype(t, CHECKED_DTYPES, op)
    if len(types) > 2 or (len(types) == 2 and types[1].dtype != bool_):
        raise TypeError(f"{op}: takes the checked indices and an optional bool scalar (whether the check is on)")
    return [TensorType(t.dtype, t.shape)]


def _index_message(attrs, value) -> str:
    what = attrs.get("what", "indices")
    where = f" (column {attrs['column']} of the index tuples)" if attrs.get("column") is not None else ""
    if attrs.get("lo") is None:
        return f"{what}[...] = {value} is out of range [0, {attrs['hi']}){where}"
    if attrs.get("inclusive"):
        return f"{what}[...] = {value} is not in [{attrs['lo']}, {attrs['hi'] - 1}]{where}"
    return f"{what}[...] = {value} is not in [{attrs['lo']}, {attrs['hi']}){where}: index out of range"


def _index_reference(x, active=True, **attrs):
    from .checks import CheckFailed
    lo, hi = attrs.get("lo"), attrs["hi"]
    bad = ((x >= hi) | ((x < lo) if lo is not None else False)) & np.asarray(active, bool)
    if np.any(bad):
        raise CheckFailed(_index_message(attrs, x.reshape(-1)[np.argmax(np.reshape(bad, -1))]))
    return x


def _check_scalar(s, attrs, x, active=None):
    ok = range_predicate(s, attrs, x)
    if active is not None:
        ok = s.or_(ok, s.not_(active))
    return s.check(ok, x)


# attrs: hi (int), lo (int or None: negatives pass, as TF's segment ids), what ("indices"), op_type ("GatherV2"),
# column (optional: which component of gather_nd's index tuples), inclusive (message says [lo, hi - 1])
check_index = define_op("check_index", CHECK, _check_infer, reference=_index_reference, scalar=_check_scalar,
                        grad=lambda b, op, g: [g[0]] + [None] * (len(op.inputs) - 1), differentiable=False,
                        tf_name="CheckIndex",
                        extra={"predicate": range_predicate, "message": _index_message})


def _const(emit, value, dtype):
    return emit("const", [], {"value": np.array(value, dtype.np), "dtype": dtype})


def checked(emit, indices, hi, active=None, **attrs):
    return emit("check_index", [indices] + ([active] if active is not None else []),
                dict(attrs, hi=int(hi), lo=attrs.get("lo", 0)))


def _expand_checked_indices(emit, operands, attrs):
    indices, params, *active = operands     # active: see check_index
    return [checked(emit, indices, params.shape[attrs["axis"]], *active, what="indices", op_type=attrs["op_type"])]


# operands: indices, params (only its shape), optional active; attrs: axis, op_type
checked_indices = define_op("checked_indices", SOURCE, lambda types, attrs, op="checked_indices": [types[0]],
                            expand=_expand_checked_indices, differentiable=False, tf_name="CheckIndex",
                            grad=lambda b, op, g: [None] * len(op.inputs))


# ---- gather_nd / scatter_nd ----------------------------------------------------------------------
def _nd_infer_parts(indices, op):
    check_dtype(indices, INTS, op)
    if indices.shape is None or len(indices.shape) < 1:
        raise ShapeError(f"{op}: indices must be at least rank 1, got shape {fmt_shape(indices.shape)}")
    k = indices.shape[-1]
    if k is None:
        raise ShapeError(f"{op}: the last dimension of indices must be known, got {fmt_shape(indices.shape)}")
    return k


def _gather_nd_infer(types, attrs, op="gather_nd"):
    params, indices = types
    k = _nd_infer_parts(indices, op)
    if k > len(params.shape):
        raise ShapeError(f"{op}: index innermost dimension length must be <= params rank; saw: {k} vs. "
                         f"{len(params.shape)}")
    return [TensorType(params.dtype, tuple(indices.shape[:-1]) + tuple(params.shape[k:]))]


def _scatter_infer(types, attrs, op="scatter_nd"):
    indices, updates = types[:2]
    shape = tuple(types[2].shape) if len(types) == 3 else tuple(attrs["shape"])
    k = _nd_infer_parts(indices, op)
    if k > len(shape):
        raise ShapeError(f"{op}: the index depth {k} is larger than the rank of the output shape {list(shape)}")
    want = tuple(indices.shape[:-1]) + tuple(shape[k:])
    if len(want) != len(updates.shape) or any(a is not None and b is not None and a != b
                                               for a, b in zip(want, updates.shape)):
        raise ShapeError(f"{op}: updates must have shape indices.shape[:-1] + shape[{k}:] = {fmt_shape(want)}, "
                         f"got {fmt_shape(updates.shape)}")
    return [TensorType(updates.dtype, shape)]


def _rows(emit, indices, dims, op_type):
    """Checked index tuples [..., K] -> row numbers [M] (int64) of params flattened to [prod(dims), ...]."""
    k = len(dims)
    m = num_elements(tuple(indices.shape[:-1]))
    flat = emit("reshape", [indices], {"shape": (m, k)})
    row = None
    stride = 1
    for col in reversed(range(k)):
        part = emit("slice", [flat], {"begin": (0, col), "size": (m, 1)})
        part = checked(emit, part, dims[col], what="indices", op_type=op_type, column=col if k > 1 else None)
        part = emit("cast", [part], {"dtype": int64}) if part.type.dtype != int64 else part
        term = part if stride == 1 else emit("mul", [part, _const(emit, stride, int64)], {})
        row = term if row is None else emit("add", [row, term], {})
        stride *= dims[col]
    if row is None:
        return emit("broadcast_to", [_const(emit, 0, int64)], {"shape": (m,)})     # K = 0: whole params
    return emit("reshape", [row], {"shape": (m,)})


def _expand_gather_nd(emit, operands, attrs):
    params, indices = operands
    k = indices.shape[-1]
    dims, inner = tuple(params.shape[:k]), tuple(params.shape[k:])
    rows = _rows(emit, indices, dims, "GatherNd")
    table = emit("reshape", [params], {"shape": (num_elements(dims),) + inner})
    out = emit("gather", [table, rows], {"axis": 0})
    return [emit("reshape", [out], {"shape": tuple(indices.shape[:-1]) + inner})]


def _scatter(emit, indices, updates, shape, op_type):
    k = indices.shape[-1]
    dims, inner = tuple(shape[:k]), tuple(shape[k:])
    rows = _rows(emit, indices, dims, op_type)
    m = num_elements(tuple(indices.shape[:-1]))
    flat = emit("reshape", [updates], {"shape": (m,) + inner})
    total = emit("segment_sum", [flat, rows], {"axis": 0, "num_segments": num_elements(dims)})
    return emit("reshape", [total], {"shape": tuple(shape)})


gather_nd = define_op("gather_nd", SOURCE, _gather_nd_infer, expand=_expand_gather_nd, tf_name="GatherNd")
scatter_nd = define_op("scatter_nd", SOURCE, _scatter_infer, tf_name="ScatterNd",
                       expand=lambda emit, ops, attrs: [_scatter(emit, ops[0], ops[1], attrs["shape"], "ScatterNd")])
# operands: g (like the gather_nd result), indices, params (only its shape)
gather_nd_grad = define_op("gather_nd_grad", SOURCE,
                           lambda types, attrs, op="gather_nd_grad": [TensorType(types[0].dtype, types[2].shape)],
                           expand=lambda emit, ops, attrs: [_scatter(emit, ops[1], ops[0], ops[2].shape,
                                                                     "GatherNd")],
                           tf_name="GatherNdGrad")
gather_nd.grad = lambda b, op, g: [b.op("gather_nd_grad", [g[0], op.inputs[1], op.inputs[0]]), None]
scatter_nd.grad = lambda b, op, g: [None, b.op("gather_nd", [g[0], op.inputs[0]])]
gather_nd_grad.grad = lambda b, op, g: [b.op("gather_nd", [g[0], op.inputs[1]]), None, None]


# ---- reverse_sequence ----------------------------------------------------------------------------
def _reverse_sequence_infer(types, attrs, op="reverse_sequence"):
    x, lengths = types
    check_dtype(lengths, INTS, op)
    rank = len(x.shape)
    seq, batch = attrs["seq_axis"], attrs["batch_axis"]
    if not (0 <= seq < rank and 0 <= batch < rank) or seq == batch:
        raise ShapeError(f"{op}: seq_axis {seq} and batch_axis {batch} must be two different dimensions of "
                         f"the input of rank {rank}")
    if len(lengths.shape) != 1:
        raise ShapeError(f"{op}: seq_lengths must be a vector, got shape {fmt_shape(lengths.shape)}")
    if None not in (lengths.shape[0], x.shape[batch]) and lengths.shape[0] != x.shape[batch]:
        raise ShapeError(f"{op}: len(seq_lengths) != input.dims({batch}), ({lengths.shape[0]} vs. "
                         f"{x.shape[batch]})")
    return [TensorType(x.dtype, x.shape)]


def _reverse_sequence_reference(x, lengths, seq_axis, batch_axis):
    out = np.array(x, copy=True)
    for b, n in enumerate(lengths):
        src = [slice(None)] * x.ndim
        src[batch_axis], src[seq_axis] = b, slice(0, int(n))
        out[tuple(src)] = np.flip(x[tuple(src)], axis=seq_axis - (seq_axis > batch_axis))
    return out


def _expand_reverse_sequence(emit, operands, attrs):
    x, lengths = operands
    seq, batch = attrs["seq_axis"], attrs["batch_axis"]
    shape = tuple(x.shape)
    steps, rows = shape[seq], shape[batch]
    lengths = checked(emit, lengths, steps + 1, what="seq_lengths", op_type="ReverseSequence", inclusive=True)
    lengths = emit("cast", [lengths], {"dtype": int64}) if lengths.type.dtype != int64 else lengths
    rest = [a for a in range(len(shape)) if a not in (batch, seq)]
    perm = (batch, seq) + tuple(rest)
    inner = num_elements(tuple(shape[a] for a in rest))
    moved = emit("transpose", [x], {"perm": perm}) if perm != tuple(range(len(shape))) else x
    table = emit("reshape", [moved], {"shape": (rows * steps, inner)})
    j = emit("iota", [], {"shape": (1, steps), "axis": 1, "dtype": int64})
    b = emit("iota", [], {"shape": (rows, 1), "axis": 0, "dtype": int64})
    n = emit("reshape", [lengths], {"shape": (rows, 1)})
    flipped = emit("sub", [emit("sub", [n, _const(emit, 1, int64)], {}), j], {})
    src = emit("select", [emit("less", [j, n], {}), flipped, emit("broadcast_to", [j], {"shape": (rows, steps)})],
               {})
    src = emit("add", [src, emit("mul", [b, _const(emit, steps, int64)], {})], {})
    out = emit("gather", [table, emit("reshape", [src], {"shape": (rows * steps,)})], {"axis": 0})
    out = emit("reshape", [out], {"shape": tuple(shape[a] for a in perm)})
    if perm == tuple(range(len(shape))):
        return [out]
    inverse = tuple(int(v) for v in np.argsort(perm))
    return [emit("transpose", [out], {"perm": inverse})]


reverse_sequence = define_op("reverse_sequence", SOURCE, _reverse_sequence_infer, expand=_expand_reverse_sequence,
                             reference=_reverse_sequence_reference, tf_name="ReverseSequence")
reverse_sequence.grad = lambda b, op, g: [b.op("reverse_sequence", [g[0], op.inputs[1]], dict(op.attrs)), None]


# ---- batch index tuples (tf.gather with batch_dims) -----------------------------------------------
def _batch_tuples_infer(types, attrs, op="batch_index_tuples"):
    (indices,) = types
    check_dtype(indices, INTS, op)
    b, tuples = attrs["batch_dims"], attrs.get("tuples", False)
    if indices.shape is None or len(indices.shape) < b + tuples:
        raise ShapeError(f"{op}: indices of shape {fmt_shape(indices.shape)} have too few dims for batch_dims={b}")
    if tuples:
        k = indices.shape[-1]
        return [TensorType(indices.dtype, tuple(indices.shape[:-1]) + (None if k is None else b + k,))]
    return [TensorType(indices.dtype, tuple(indices.shape) + (b + 1,))]


def _expand_batch_tuples(emit, operands, attrs):
    """indices [B1..Bb, I...] (or index tuples [B1..Bb, I..., K] when `tuples`) -> [B1..Bb, I..., b+1]
    (or b+K): each index prefixed by its batch position."""
    (indices,) = operands
    tuples = attrs.get("tuples", False)
    shape = tuple(indices.shape[:-1]) if tuples else tuple(indices.shape)
    column = shape + (1,)
    parts = [emit("reshape", [emit("iota", [], {"shape": shape, "axis": k, "dtype": indices.type.dtype})],
                  {"shape": column}) for k in range(attrs["batch_dims"])]
    parts.append(indices if tuples else emit("reshape", [indices], {"shape": column}))
    return [parts[0] if len(parts) == 1 else emit("concat", parts, {"axis": len(shape)})]


# attrs: batch_dims, tuples (the indices already end in an axis of index tuples: gather_nd)
batch_index_tuples = define_op("batch_index_tuples", SOURCE, _batch_tuples_infer, expand=_expand_batch_tuples,
                               differentiable=False, grad=lambda b, op, g: [None], tf_name="BatchIndexTuples")
