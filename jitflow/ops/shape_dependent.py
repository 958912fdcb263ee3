"""Ops whose work depends on shapes known only when a run is specialized:
`sum_to_shape` (reduce a broadcast gradient back to an operand's shape),
`broadcast_grad` (spread a reduction's gradient back over its input),
`reshape_like`, `fill_like` (zeros_like/ones_like), `shape_of` (tf.shape),
`slice_grad` (scatter a slice's gradient into zeros) and `concat_grad` (one
operand's slab of a concat's gradient, when the operands' shapes are unknown).

Each has an `expand` rule that lowering calls with concrete types: it emits
ordinary ops, so codegen never sees these names (except `scatter_slice`, a
LAYOUT op with a kernel of its own). Their `like` operand contributes only its
shape, so dead-code elimination drops its computation.
"""
from __future__ import annotations

import numpy as np

from ..ir.symdim import is_symbolic
from ..ir.types import NUMERIC, TensorType, int32, num_elements
from .broadcast import check_dtype, normalize_axes
from .registry import LAYOUT, SOURCE, define_op


def _like_infer(types, attrs, op="like"):
    g, like = types[0], types[1]
    return [TensorType(g.dtype, like.shape)]


def _expand_sum_to_shape(emit, operands, attrs):
    g, like = operands
    rank_g, rank_like = len(g.shape), len(like.shape)
    axes = []
    for k in range(rank_g):
        j = k - (rank_g - rank_like)
        if j < 0 or (like.shape[j] == 1 and g.shape[k] != 1):
            axes.append(k)
    value = g
    if axes:
        value = emit("reduce_sum", [g], {"axes": tuple(axes), "keepdims": False})
    if tuple(value.shape) != tuple(like.shape):
        value = emit("reshape", [value], {"shape": tuple(like.shape)})
    return [value]


sum_to_shape = define_op("sum_to_shape", SOURCE, _like_infer, expand=_expand_sum_to_shape,
                         tf_name="SumToShape")


def _expand_broadcast_grad(emit, operands, attrs):
    g, like = operands
    axes = normalize_axes(attrs["axes"], len(like.shape), "broadcast_grad")   # None (all) or negative: rank unknown
    kept = tuple(1 if k in axes else d for k, d in enumerate(like.shape))
    value = g if tuple(g.shape) == kept else emit("reshape", [g], {"shape": kept})
    if kept != tuple(like.shape):
        value = emit("broadcast_to", [value], {"shape": tuple(like.shape)})
    if attrs.get("mean"):
        count = num_elements([like.shape[a] for a in axes])
        if is_symbolic(count):     # a shape-polymorphic run: divide by the count at run time (ops/symbolic.py)
            return [emit("div", [value, emit("dim_value", [], {"dim": count, "dtype": g.dtype})], {})]
        scale = emit("const", [], {"value": np.array(1.0 / max(count, 1), g.dtype.np), "dtype": g.dtype})
        value = emit("mul", [value, scale], {})
    return [value]


broadcast_grad = define_op("broadcast_grad", SOURCE, _like_infer, expand=_expand_broadcast_grad,
                           tf_name="BroadcastGrad")
reshape_like = define_op("reshape_like", SOURCE, _like_infer,
                         expand=lambda emit, ops, attrs: [emit("reshape", [ops[0]], {"shape": tuple(ops[1].shape)})],
                         tf_name="ReshapeLike")


def _fill_like_infer(types, attrs, op="fill_like"):
    return [TensorType(attrs["dtype"], types[0].shape)]


def _expand_fill_like(emit, operands, attrs):
    (like,) = operands
    dtype = attrs["dtype"]
    scalar = emit("const", [], {"value": np.array(attrs["value"], dtype.np), "dtype": dtype})
    if not like.shape:
        return [scalar]
    return [emit("broadcast_to", [scalar], {"shape": tuple(like.shape)})]


fill_like = define_op("fill_like", SOURCE, _fill_like_infer, expand=_expand_fill_like, tf_name="Fill",
                      differentiable=False)


def _shape_infer(types, attrs, op="shape_of"):
    rank = None if types[0].shape is None else len(types[0].shape)
    return [TensorType(attrs.get("out_type", int32), (rank,))]


def _expand_shape_of(emit, ops, attrs):
    dtype, shape = attrs.get("out_type", int32), ops[0].shape
    if is_symbolic(shape):      # a shape-polymorphic run: the dims as run-time values (ops/symbolic.py)
        dims = [emit("reshape", [emit("dim_value", [], {"dim": d, "dtype": dtype})], {"shape": (1,)}) for d in shape]
        return [emit("concat", dims, {"axis": 0})]
    return [emit("const", [], {"value": np.array(shape, dtype.np), "dtype": dtype})]


shape_of = define_op("shape_of", SOURCE, _shape_infer, tf_name="Shape", differentiable=False, expand=_expand_shape_of)


def _expand_slice_grad(emit, operands, attrs):
    g, like = operands
    return [emit("scatter_slice", [g], {"begin": attrs["begin"], "stride": attrs["stride"],
                                        "shape": tuple(like.shape)})]


slice_grad = define_op("slice_grad", SOURCE, _like_infer, expand=_expand_slice_grad, tf_name="StridedSliceGrad")


def _concat_grad_infer(types, attrs, op="concat_grad"):
    g, like = types[0], types[1 + attrs["index"]]
    return [TensorType(g.dtype, like.shape)]


def _expand_concat_grad(emit, operands, attrs):
    """The slab of g that operand `index` of the concat filled: its offset along the axis is the sum of
    the earlier operands' sizes there, known once the run is specialized."""
    g, likes = operands[0], operands[1:]
    axis, index = attrs["axis"], attrs["index"]
    like = likes[index]
    axis %= max(len(like.shape), 1)       # a concat of operands of unknown rank keeps the axis as given
    offset = sum(other.shape[axis] for other in likes[:index])
    begin = tuple(offset if k == axis else 0 for k in range(len(like.shape)))
    return [emit("strided_slice", [g], {"begin": begin, "stride": (1,) * len(like.shape),
                                        "size": tuple(like.shape)})]


concat_grad = define_op("concat_grad", SOURCE, _concat_grad_infer, expand=_expand_concat_grad,
                        tf_name="ConcatGrad")


def _scatter_infer(types, attrs, op="scatter_slice"):
    check_dtype(types[0], NUMERIC, op)
    return [TensorType(types[0].dtype, tuple(attrs["shape"]))]


def _scatter_reference(g, begin, stride, shape):
    out = np.zeros(shape, g.dtype)
    index = tuple(b + s * np.arange(n) for b, s, n in zip(begin, stride, g.shape))
    if index:
        out[np.ix_(*index)] = g
    else:
        out[...] = g
    return out


scatter_slice = define_op("scatter_slice", LAYOUT, _scatter_infer, reference=_scatter_reference,
                          tf_name="ScatterSlice", extra={"writes_slabs": True, "kernel": "scatter_slice"})


# ---- gradient rules (so gradients of gradients work) ---------------------------------
sum_to_shape.grad = lambda b, op, g: [b.op("broadcast_to_like", [g[0], op.inputs[0]]), None]
broadcast_grad.grad = lambda b, op, g: [
    b.op("reduce_to_like", [g[0], op.inputs[1], op.inputs[0]], {"axes": op.attrs["axes"],
                                                                "mean": op.attrs.get("mean", False)}), None]
reshape_like.grad = lambda b, op, g: [b.reshape_like(g[0], op.inputs[0]), None]
scatter_slice.grad = lambda b, op, g: [b.op("strided_slice", [g[0]], {   # the IR form of slice_grad
    "begin": op.attrs["begin"], "stride": op.attrs["stride"], "size": tuple(op.inputs[0]._type.shape)})]
slice_grad.grad = lambda b, op, g: [b.op("strided_slice", [g[0]], {k: op.attrs[k] for k in ("begin", "stride", "size")}),
                                    None]


def _concat_grad_grad(b, op, g):
    """concat_grad slices g; its gradient puts g back in its slab, zeros in the others' (a concat)."""
    likes, index = op.inputs[1:], op.attrs["index"]
    parts = [g[0] if k == index else b.op("fill_like", [like], {"dtype": like.dtype, "value": 0})
             for k, like in enumerate(likes)]
    return [b.op("concat", parts, {"axis": op.attrs["axis"]})] + [None] * len(likes)


concat_grad.grad = _concat_grad_grad


def _expand_broadcast_to_like(emit, operands, attrs):
    g, like = operands
    if tuple(g.shape) == tuple(like.shape):
        return [g]
    return [emit("broadcast_to", [g], {"shape": tuple(like.shape)})]


broadcast_to_like = define_op("broadcast_to_like", SOURCE, _like_infer, expand=_expand_broadcast_to_like,
                              tf_name="BroadcastToLike")
broadcast_to_like.grad = lambda b, op, g: [b.sum_to(g[0], op.inputs[0]), None]


def _reduce_to_like_infer(types, attrs, op="reduce_to_like"):
    return [TensorType(types[0].dtype, types[2].shape)]


def _expand_reduce_to_like(emit, operands, attrs):
    g, x, out = operands
    axes = normalize_axes(attrs["axes"], len(x.shape), "reduce_to_like")
    value = emit("reduce_mean" if attrs.get("mean") else "reduce_sum", [g], {"axes": axes, "keepdims": False})
    if tuple(value.shape) != tuple(out.shape):
        value = emit("reshape", [value], {"shape": tuple(out.shape)})
    return [value]


reduce_to_like = define_op("reduce_to_like", SOURCE, _reduce_to_like_infer, expand=_expand_reduce_to_like,
                           tf_name="ReduceToLike")
reduce_to_like.grad = lambda b, op, g: [b.broadcast_grad(g[0], op.inputs[1], op.attrs["axes"],
                                                          mean=op.attrs.get("mean", False)), None, None]
