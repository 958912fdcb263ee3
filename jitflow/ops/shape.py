"""Layout ops: reshape, transpose, broadcast_to, strided slice, concat, iota.

A layout op's `index_map` turns an index of its result into an index of its
operand, so codegen fuses layout ops into loop nests as address arithmetic.
Reshapes that change more than size-1 dims have no such map: codegen reads their
operand as a contiguous buffer instead. Concat writes each operand into a slab of
its result.
"""
from __future__ import annotations

import numpy as np

from ..ir.symdim import SymDim, is_symbolic
from ..ir.types import TensorType, num_elements
from .broadcast import broadcast_shapes, fmt_shape, same_dtype
from .registry import ELEMENTWISE, LAYOUT, ShapeError, define_op


# ---- reshape ---------------------------------------------------------------------
def resolve_reshape(in_shape, target, op="reshape", copy_dims=None):
    """The result shape of reshaping `in_shape` to `target` (one -1 inferred). copy_dims (expand_dims
    of a tensor with unknown dims): for each result dim the input dim it copies, or -1; those dims are
    taken from the input once it is known, so an empty input still reshapes (a -1 cannot be inferred
    from 0 elements)."""
    target = tuple(-1 if d is None else d if isinstance(d, SymDim) else int(d) for d in target)
    if copy_dims:
        target = tuple(in_shape[c] if d == -1 and c >= 0 and in_shape[c] is not None else d
                       for d, c in zip(target, copy_dims))
        if any(d is None for d in in_shape):      # the copied dims stay unknown until the input's are
            return tuple(None if d == -1 else d for d in target)
    if sum(1 for d in target if d == -1) > 1:
        raise ShapeError(f"{op}: at most one dimension of the new shape may be -1, got {target}")
    known = [d for d in target if d != -1]
    if any(d < -1 for d in target):
        raise ShapeError(f"{op}: invalid shape {target}")
    if any(d is None for d in in_shape):
        return tuple(None if d == -1 else d for d in target)
    if is_symbolic(in_shape) or is_symbolic(known):    # a shape-polymorphic run (jitflow/ir/symdim.py)
        total, prod_known = num_elements(in_shape), num_elements(known)
    else:
        total = int(np.prod(in_shape, dtype=np.int64))
        prod_known = int(np.prod(known, dtype=np.int64))
    if -1 in target:
        if prod_known == 0 or total % prod_known:
            raise ShapeError(f"{op}: cannot reshape a tensor with {total} elements to shape "
                             f"{fmt_shape(tuple('?' if d == -1 else d for d in target))}")
        return tuple(total // prod_known if d == -1 else d for d in target)
    if prod_known != total:
        raise ShapeError(f"{op}: cannot reshape a tensor of shape {fmt_shape(in_shape)} "
                         f"({total} elements) to shape {fmt_shape(target)} ({prod_known} elements)")
    return target


def _reshape_infer(types, attrs, op="reshape"):
    (t,) = types
    return [TensorType(t.dtype, resolve_reshape(t.shape, attrs["shape"], op, attrs.get("copy_dims")))]


def _reshape_index_map(point, operand_shape, attrs, out_shape):
    """Index map when only size-1 dims are added or removed, else None."""
    kept_out = [k for k, d in enumerate(out_shape) if d != 1]
    kept_in = [k for k, d in enumerate(operand_shape) if d != 1]
    if [out_shape[k] for k in kept_out] != [operand_shape[k] for k in kept_in]:
        return None
    result = [0] * len(operand_shape)
    for k_in, k_out in zip(kept_in, kept_out):
        result[k_in] = point[k_out]
    return result


def _reshape_reference(x, shape, copy_dims=None):
    return x.reshape(resolve_reshape(x.shape, shape, "reshape", copy_dims))


reshape = define_op("reshape", LAYOUT, _reshape_infer, reference=_reshape_reference,
                    index_map=_reshape_index_map, tf_name="Reshape", extra={"reshape": True})


# ---- transpose -------------------------------------------------------------------
def _transpose_infer(types, attrs, op="transpose"):
    (t,) = types
    perm = tuple(attrs["perm"])
    if sorted(perm) != list(range(len(t.shape))):
        raise ShapeError(f"{op}: perm {perm} is not a permutation of the {len(t.shape)} axes "
                         f"of a tensor of shape {fmt_shape(t.shape)}")
    return [TensorType(t.dtype, tuple(t.shape[p] for p in perm))]


def _transpose_index_map(point, operand_shape, attrs, out_shape):
    result = [0] * len(point)
    for k, p in enumerate(attrs["perm"]):
        result[p] = point[k]
    return result


transpose = define_op("transpose", LAYOUT, _transpose_infer,
                      reference=lambda x, perm: np.transpose(x, perm),
                      index_map=_transpose_index_map, tf_name="Transpose", extra={"transpose": True})


# ---- broadcast_to ----------------------------------------------------------------
def _broadcast_infer(types, attrs, op="broadcast_to"):
    (t,) = types
    shape = tuple(attrs["shape"])
    if len(shape) < len(t.shape) or broadcast_shapes(t.shape, shape, op=op) != shape:
        raise ShapeError(f"{op}: cannot broadcast shape {fmt_shape(t.shape)} to {fmt_shape(shape)}")
    return [TensorType(t.dtype, shape)]


def broadcast_index(point, operand_shape, out_shape):
    """Index into an operand broadcast (right-aligned) to out_shape."""
    offset = len(out_shape) - len(operand_shape)
    return [0 if (d == 1 and out_shape[offset + k] != 1) else point[offset + k]
            for k, d in enumerate(operand_shape)]


broadcast_to = define_op("broadcast_to", LAYOUT, _broadcast_infer,
                         reference=lambda x, shape: np.broadcast_to(x, shape).copy(),
                         index_map=lambda point, shape, attrs, out_shape: broadcast_index(point, shape, out_shape),
                         tf_name="BroadcastTo", extra={"broadcast": True})


# ---- strided slice (normalized: begin, stride and size per dim) --------------------
def _slice_infer(types, attrs, op="strided_slice"):
    (t,) = types
    begin, stride, size = attrs["begin"], attrs["stride"], attrs["size"]
    if not len(begin) == len(stride) == len(size) == len(t.shape):
        raise ShapeError(f"{op}: slice rank does not match the tensor's rank {len(t.shape)}")
    for d, b, s, n in zip(t.shape, begin, stride, size):
        if d is not None and n > 0 and not (0 <= b < d and 0 <= b + s * (n - 1) < d):
            raise ShapeError(f"{op}: slice out of range for a tensor of shape {fmt_shape(t.shape)}")
    return [TensorType(t.dtype, tuple(size))]


def _slice_reference(x, begin, stride, size):
    index = tuple(b + s * np.arange(n) for b, s, n in zip(begin, stride, size))
    return x[np.ix_(*index)] if index else x.copy()


slice_ = define_op("strided_slice", LAYOUT, _slice_infer, reference=_slice_reference,
                   index_map=lambda point, shape, attrs, out_shape:
                   [p * s + b for p, b, s in zip(point, attrs["begin"], attrs["stride"])],
                   tf_name="StridedSlice")


# ---- concat ----------------------------------------------------------------------
def _concat_infer(types, attrs, op="concat"):
    dtype = same_dtype(types, op)
    rank = len(types[0].shape)
    axis = attrs["axis"]
    if not 0 <= axis < rank:
        raise ShapeError(f"{op}: axis {axis} is out of range for tensors of rank {rank}")
    out = list(types[0].shape)
    for t in types[1:]:
        if len(t.shape) != rank:
            raise ShapeError(f"{op}: ranks differ: {fmt_shape(types[0].shape)} vs {fmt_shape(t.shape)}")
        for k in range(rank):
            if k == axis:
                out[k] = None if out[k] is None or t.shape[k] is None else out[k] + t.shape[k]
            elif out[k] is not None and t.shape[k] is not None and out[k] != t.shape[k]:
                raise ShapeError(f"{op}: shapes {fmt_shape(types[0].shape)} and {fmt_shape(t.shape)} "
                                 f"differ outside axis {axis}")
            elif out[k] is None:
                out[k] = t.shape[k]
    return [TensorType(dtype, tuple(out))]


concat = define_op("concat", LAYOUT, _concat_infer,
                   reference=lambda *xs, axis: np.concatenate(xs, axis=axis),
                   tf_name="ConcatV2", extra={"writes_slabs": True, "kernel": "concat"})


# ---- iota: the index along one axis (one_hot, range-like ops) ------------------------
def _iota_infer(types, attrs, op="iota"):
    return [TensorType(attrs["dtype"], tuple(attrs["shape"]))]


def _iota_reference(shape, axis, dtype):
    index = np.arange(shape[axis]).reshape([-1 if k == axis else 1 for k in range(len(shape))])
    return np.broadcast_to(index, shape).astype(dtype.np)


iota = define_op("iota", ELEMENTWISE, _iota_infer, reference=_iota_reference,
                 scalar=lambda s, a: s.cast(s.index(a["axis"]), a["dtype"]),
                 tf_name="Range", differentiable=False, extra={"cheap": True})    # recomputed by each reader


# ---- gradient rules ----------------------------------------------------------------
def _inverse_perm(perm):
    inverse = [0] * len(perm)
    for k, p in enumerate(perm):
        inverse[p] = k
    return inverse


reshape.grad = lambda b, op, g: [b.reshape_like(g[0], op.inputs[0])]
transpose.grad = lambda b, op, g: [b.transpose(g[0], _inverse_perm(op.attrs["perm"]))]
broadcast_to.grad = lambda b, op, g: [b.sum_to(g[0], op.inputs[0])]
slice_.grad = lambda b, op, g: [b.op("slice_grad", [g[0], op.inputs[0]], dict(op.attrs))]


def _concat_grad(b, op, g):
    axis = op.attrs["axis"]
    known = all(x.shape.dims is not None and None not in x.shape.dims for x in op.inputs)
    if not known:      # sizes known only at specialization: a shape-dependent op finds each slab then
        return [b.op("concat_grad", [g[0], *op.inputs], {"axis": axis, "index": k})
                for k in range(len(op.inputs))]
    grads, offset = [], 0
    for x in op.inputs:
        shape = x.shape.dims
        begin = tuple(offset if k == axis else 0 for k in range(len(shape)))
        size = tuple(shape)
        grads.append(b.op("strided_slice", [g[0]], {"begin": begin, "stride": (1,) * len(shape), "size": size}))
        offset += shape[axis]
    return grads


concat.grad = _concat_grad
