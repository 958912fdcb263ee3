"""2-D pooling (NHWC): max_pool and avg_pool, and their gradients as ops of their
own (TF's MaxPoolGrad, MaxPoolGradGrad, AvgPoolGrad), so second derivatives work.

Attributes: `ksize` (kh, kw), `strides` (sh, sw), `padding` "SAME" | "VALID"
(the split of jitflow/ops/conv.py: the odd cell at the bottom / right).
TF's definitions, matched exactly:
- max_pool never picks a padded cell; its gradient goes to the FIRST maximum of
  each window in scan order (rows, then columns), and accumulates where windows
  overlap. max_pool_grad_grad(x, g) picks g at that same position per window.
- avg_pool divides by the number of real (unpadded) cells of each window.
avg_pool_grad takes the input's size as a shape tensor (TF's orig_input_shape),
resolved by `expand` at specialization. LIBRARY ops: CPU kernels in
codegen/pool_kernels.py, picked by `extra["kernel"]`.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import FLOATS, TensorType
from .broadcast import check_dtype, fmt_shape, same_dtype
from .conv import geometry, rank4
from .dynamic_shape import constant_value
from .registry import LIBRARY, ShapeError, define_op


def _pool_attrs(attrs, op):
    if attrs["padding"] not in ("SAME", "VALID"):
        raise ShapeError(f"{op}: padding must be 'SAME' or 'VALID', got {attrs['padding']!r}")
    for key in ("ksize", "strides"):
        if len(attrs[key]) != 2 or any(int(v) < 1 for v in attrs[key]):
            raise ShapeError(f"{op}: {key} must be two positive ints (rows, columns), got {attrs[key]!r}")


def _pool_shape(x, attrs, op):
    _pool_attrs(attrs, op)
    if x.shape is None or len(x.shape) != 4:
        raise ShapeError(f"{op}: input must be 4-D, got shape {fmt_shape(x.shape or ())}")
    (oh, ow), _ = geometry(x.shape[1:3], attrs["ksize"], attrs, op)
    return (x.shape[0], oh, ow, x.shape[3])


def _pool_infer(types, attrs, op):
    types = rank4(types)
    (x,) = types
    check_dtype(x, FLOATS, op)
    return [TensorType(x.dtype, _pool_shape(x, attrs, op))]


def _with_input_infer(types, attrs, op, result_like_input):
    """max_pool_grad (x, dy) -> like x; max_pool_grad_grad (x, g) -> like the pooled output."""
    types = rank4(types)
    x, other = types
    same_dtype(types, op)
    check_dtype(x, FLOATS, op)
    pooled = _pool_shape(x, attrs, op)
    want = pooled if result_like_input else x.shape
    if len(other.shape) != 4 or not all(a is None or b is None or a == b for a, b in zip(want, other.shape)):
        raise ShapeError(f"{op}: the second operand has shape {fmt_shape(other.shape)}, expected {fmt_shape(want)}")
    return [TensorType(x.dtype, tuple(x.shape) if result_like_input else pooled)]


def _avg_grad_infer(types, attrs, op):
    """operands (orig_input_shape, dy) at graph building; (dy,) once specialized."""
    types = rank4(types)
    dy = types[-1]
    check_dtype(dy, FLOATS, op)
    _pool_attrs(attrs, op)
    shape = tuple(attrs.get("input_shape") or (None,) * 4)
    if len(shape) != 4 or len(dy.shape) != 4:
        raise ShapeError(f"{op}: orig_input_shape and the gradient must describe 4-D tensors")
    shape = (dy.shape[0] if shape[0] is None else shape[0], shape[1], shape[2],
             dy.shape[3] if shape[3] is None else shape[3])
    if len(types) == 1 and None in shape:
        raise ShapeError(f"{op}: orig_input_shape must be known once the run is specialized, got {list(shape)}")
    want = _pool_shape(TensorType(dy.dtype, shape), attrs, op)
    if not all(a is None or b is None or a == b for a, b in zip(want, dy.shape)):
        raise ShapeError(f"{op}: the gradient has shape {fmt_shape(dy.shape)}, but pooling an input "
                         f"{fmt_shape(shape)} gives {fmt_shape(want)}")
    return [TensorType(dy.dtype, shape)]


# ---- numpy references (tests only) ----------------------------------------------------------------
def _windows(shape, ksize, strides, padding):
    """Per output (i, j): the in-range input rows and columns of its window."""
    (oh, ow), (pt, pl) = geometry(shape[1:3], ksize, {"strides": strides, "padding": padding})
    rows = [range(max(0, i * strides[0] - pt), min(shape[1], i * strides[0] - pt + ksize[0])) for i in range(oh)]
    cols = [range(max(0, j * strides[1] - pl), min(shape[2], j * strides[1] - pl + ksize[1])) for j in range(ow)]
    return rows, cols


def _first_argmax(x, rows, cols):
    """[n, c] flat (row, col) of the first maximum of x's window in scan order."""
    window = x[:, rows.start:rows.stop, cols.start:cols.stop, :]
    n, h, w, c = window.shape
    k = np.argmax(window.reshape(n, h * w, c), axis=1)        # argmax keeps the first of ties
    return rows.start + k // w, cols.start + k % w


def max_pool_reference(x, ksize, strides, padding):
    rows, cols = _windows(x.shape, ksize, strides, padding)
    out = np.zeros((x.shape[0], len(rows), len(cols), x.shape[3]), x.dtype)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            out[:, i, j, :] = x[:, r.start:r.stop, c.start:c.stop, :].max(axis=(1, 2))
    return out


def avg_pool_reference(x, ksize, strides, padding):
    rows, cols = _windows(x.shape, ksize, strides, padding)
    out = np.zeros((x.shape[0], len(rows), len(cols), x.shape[3]), x.dtype)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            out[:, i, j, :] = x[:, r.start:r.stop, c.start:c.stop, :].sum(axis=(1, 2)) / (len(r) * len(c))
    return out


def max_pool_grad_reference(x, dy, ksize, strides, padding):
    rows, cols = _windows(x.shape, ksize, strides, padding)
    dx = np.zeros_like(x)
    n_idx, c_idx = np.meshgrid(np.arange(x.shape[0]), np.arange(x.shape[3]), indexing="ij")
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ri, ci = _first_argmax(x, r, c)
            np.add.at(dx, (n_idx, ri, ci, c_idx), dy[:, i, j, :])
    return dx


def max_pool_grad_grad_reference(x, g, ksize, strides, padding):
    rows, cols = _windows(x.shape, ksize, strides, padding)
    out = np.zeros((x.shape[0], len(rows), len(cols), x.shape[3]), x.dtype)
    n_idx, c_idx = np.meshgrid(np.arange(x.shape[0]), np.arange(x.shape[3]), indexing="ij")
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ri, ci = _first_argmax(x, r, c)
            out[:, i, j, :] = g[n_idx, ri, ci, c_idx]
    return out


def avg_pool_grad_reference(dy, input_shape, ksize, strides, padding):
    rows, cols = _windows(input_shape, ksize, strides, padding)
    dx = np.zeros(input_shape, dy.dtype)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            dx[:, r.start:r.stop, c.start:c.stop, :] += (dy[:, i, j, :] / (len(r) * len(c)))[:, None, None, :]
    return dx


# ---- records -------------------------------------------------------------------------------------
def _resolve_input_shape(emit, operands, attrs):
    value = constant_value(operands[0], "orig_input_shape", "avg_pool_grad")
    return [emit("avg_pool_grad", operands[1:], dict(attrs, input_shape=tuple(int(d) for d in np.atleast_1d(value))))]


def _kernel(name):
    """The kernel table entry (codegen/pool_kernels.py); the infer rules handle unknown ranks themselves."""
    return {"kernel": name, "infers_unknown_rank": True}


def _avg_grad_any_form(*arrays, input_shape=None, ksize, strides, padding):
    """avg_pool_grad's reference for the graph op (orig_input_shape, dy), the specialized node (dy)
    and (dy, input_shape) as avg_pool_grad_reference takes them."""
    dy = arrays[0]
    if len(arrays) == 2 and np.asarray(arrays[1]).dtype.kind == "f":
        input_shape, dy = arrays
    elif len(arrays) == 2:
        input_shape = arrays[1]
    shape = tuple(int(v) for v in np.asarray(input_shape).reshape(-1))
    return avg_pool_grad_reference(dy, shape, ksize, strides, padding)


max_pool = define_op("max_pool", LIBRARY, lambda t, a, op="max_pool": _pool_infer(t, a, op),
                     reference=max_pool_reference, tf_name="MaxPool",
                     extra=dict(_kernel("max_pool"), max_window=True))   # jitflow/passes/pool_commute.py
avg_pool = define_op("avg_pool", LIBRARY, lambda t, a, op="avg_pool": _pool_infer(t, a, op),
                     reference=avg_pool_reference, tf_name="AvgPool", extra=dict(_kernel("avg_pool"), bounds="linear"))
max_pool_grad = define_op("max_pool_grad", LIBRARY,
                          lambda t, a, op="max_pool_grad": _with_input_infer(t, a, op, True),
                          reference=max_pool_grad_reference, tf_name="MaxPoolGrad", extra=_kernel("max_pool_grad"))
max_pool_grad_grad = define_op("max_pool_grad_grad", LIBRARY,
                               lambda t, a, op="max_pool_grad_grad": _with_input_infer(t, a, op, False),
                               reference=max_pool_grad_grad_reference, tf_name="MaxPoolGradGrad",
                               extra=_kernel("max_pool_grad_grad"))
avg_pool_grad = define_op("avg_pool_grad", LIBRARY, lambda t, a, op="avg_pool_grad": _avg_grad_infer(t, a, op),
                          reference=_avg_grad_any_form, expand=_resolve_input_shape, tf_name="AvgPoolGrad",
                          extra=dict(_kernel("avg_pool_grad"), bounds="linear", shape_operand=(0, "input_shape")))


def _pool_attrs_of(op):
    return {k: op.attrs[k] for k in ("ksize", "strides", "padding")}


def _avg_grad_op(b, x_shape, dy, attrs):
    from .conv import sizes_hint
    return b.op("avg_pool_grad", [x_shape, dy], dict(attrs, input_shape=sizes_hint(x_shape)))


# the max's choice of cell is piecewise constant: no gradient flows to x through it
max_pool.grad = lambda b, op, g: [b.op("max_pool_grad", [op.inputs[0], g[0]], _pool_attrs_of(op))]
max_pool_grad.grad = lambda b, op, g: [None, b.op("max_pool_grad_grad", [op.inputs[0], g[0]], _pool_attrs_of(op))]
max_pool_grad_grad.grad = lambda b, op, g: [None, b.op("max_pool_grad", [op.inputs[0], g[0]], _pool_attrs_of(op))]
avg_pool.grad = lambda b, op, g: [_avg_grad_op(b, b.op("shape_of", [op.inputs[0]]), g[0], _pool_attrs_of(op))]
avg_pool_grad.grad = lambda b, op, g: [None, b.op("avg_pool", [g[0]], _pool_attrs_of(op))]
