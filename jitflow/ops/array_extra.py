"""Array ops of TF 1.x beyond the basic layout family: slice (begin/size, -1 = to
the end), reverse, tile, pad (CONSTANT / REFLECT / SYMMETRIC), gather and its
gradient (a segment sum: duplicates accumulate), cumulative sum/product (scan)
and top_k.

- `slice` and `reverse` are LAYOUT ops (affine `index_map`), so they fuse into
  loop nests and keep unknown dims until a run is specialized.
- `tile`, `pad` and the gradients that need concrete shapes (`tile_grad`,
  `pad_grad`, `tf_slice_grad`, `gather_grad`, `top_k_grad`) are SOURCE ops with
  an `expand` rule: lowering rewrites them into ordinary ops once shapes are known.
- `gather`, `segment_sum`, `scan` and `top_k` are LIBRARY ops; their CPU kernels
  live in codegen/array_kernels.py and GPU kernels in codegen/ptx_array.py.
  `gather` clamps an out-of-range index (never reads outside the buffer) and
  returns status STATUS_BAD_INDEX, which the runtime raises as InvalidArgumentError.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import INTS, NUMERIC, TensorType, int32, num_elements
from .broadcast import check_dtype, fmt_shape
from .registry import LAYOUT, LIBRARY, SOURCE, ShapeError, define_op

STATUS_BAD_INDEX = 2     # a gather index outside [0, n): kernels clamp it and report this status


def _known(shape):
    return shape is not None and all(d is not None for d in shape)


# ---- slice: begin + size (-1 = everything from begin) -------------------------------------------
def slice_size(shape, begin, size):
    """The result dims of tf.slice (None where the input dim is unknown and size is -1)."""
    out = []
    for d, b, n in zip(shape, begin, size):
        out.append((None if d is None else d - b) if n == -1 else n)
    return tuple(out)


def _slice_infer(types, attrs, op="slice"):
    (t,) = types
    begin, size = tuple(attrs["begin"]), tuple(attrs["size"])
    if not len(begin) == len(size) == len(t.shape):
        raise ShapeError(f"{op}: begin {list(begin)} and size {list(size)} must both have one entry per "
                         f"dimension of the input of shape {fmt_shape(t.shape)}")
    for k, (d, b, n) in enumerate(zip(t.shape, begin, size)):
        if b < 0 or n < -1:
            raise ShapeError(f"{op}: begin must be >= 0 and size >= -1 in dimension {k}, got begin {b} size {n}")
        if d is not None and (b > d or (n != -1 and b + n > d)):
            raise ShapeError(f"{op}: expected begin[{k}] + size[{k}] <= {d} (the input's size there), "
                             f"got begin {b} and size {n}")
    return [TensorType(t.dtype, slice_size(t.shape, begin, size))]


def _slice_reference(x, begin, size):
    dims = slice_size(x.shape, begin, size)
    return x[tuple(slice(b, b + n) for b, n in zip(begin, dims))].copy()


slice_op = define_op("slice", LAYOUT, _slice_infer, reference=_slice_reference,
                     index_map=lambda point, shape, attrs, out_shape: [p + b for p, b in zip(point, attrs["begin"])],
                     tf_name="Slice")


def _expand_slice_grad(emit, operands, attrs):
    g, like = operands
    rank = len(like.shape)
    return [emit("scatter_slice", [g], {"begin": tuple(attrs["begin"]), "stride": (1,) * rank,
                                        "shape": tuple(like.shape)})]


tf_slice_grad = define_op("tf_slice_grad", SOURCE, lambda types, attrs, op="tf_slice_grad":
                          [TensorType(types[0].dtype, types[1].shape)],
                          expand=_expand_slice_grad, tf_name="SliceGrad")
slice_op.grad = lambda b, op, g: [b.op("tf_slice_grad", [g[0], op.inputs[0]], {"begin": op.attrs["begin"]})]
tf_slice_grad.grad = lambda b, op, g: [b.op("slice", [g[0]], {"begin": op.attrs["begin"],
                                                               "size": tuple(-1 if d is None else d
                                                                             for d in op.inputs[0].shape.dims)}),
                                       None]


# ---- reverse -------------------------------------------------------------------------------------
def _reverse_infer(types, attrs, op="reverse"):
    (t,) = types
    for a in attrs["axes"]:
        if not 0 <= a < len(t.shape):
            raise ShapeError(f"{op}: axis {a} is out of range for a tensor of rank {len(t.shape)}")
    return [TensorType(t.dtype, t.shape)]


def _reverse_index_map(point, shape, attrs, out_shape):
    axes = set(attrs["axes"])
    return [p * -1 + (shape[k] - 1) if k in axes else p for k, p in enumerate(point)]


reverse = define_op("reverse", LAYOUT, _reverse_infer, index_map=_reverse_index_map,
                    reference=lambda x, axes: np.flip(x, tuple(axes)).copy() if axes else x.copy(),
                    tf_name="ReverseV2")
reverse.grad = lambda b, op, g: [b.op("reverse", [g[0]], {"axes": op.attrs["axes"]})]


# ---- tile ----------------------------------------------------------------------------------------
def _tile_infer(types, attrs, op="tile"):
    (t,) = types
    multiples = tuple(attrs["multiples"])
    if len(multiples) != len(t.shape):
        raise ShapeError(f"{op}: multiples {list(multiples)} must have one entry per dimension of the input "
                         f"of shape {fmt_shape(t.shape)}")
    if any(m < 0 for m in multiples):
        raise ShapeError(f"{op}: multiples must be non-negative, got {list(multiples)}")
    return [TensorType(t.dtype, tuple(None if d is None else d * m for d, m in zip(t.shape, multiples)))]


def _expand_tile(emit, operands, attrs):
    """x [d0, d1] -> reshape [1, d0, 1, d1] -> broadcast [m0, d0, m1, d1] -> reshape [m0*d0, m1*d1]
    (only the tiled dims get a broadcast axis)."""
    (x,) = operands
    shape, multiples = tuple(x.shape), tuple(attrs["multiples"])
    if all(m == 1 for m in multiples):
        return [x]
    split, wide = [], []
    for d, m in zip(shape, multiples):
        if m != 1:
            split.append(1)
            wide.append(m)
        split.append(d)
        wide.append(d)
    value = emit("reshape", [x], {"shape": tuple(split)})
    value = emit("broadcast_to", [value], {"shape": tuple(wide)})
    return [emit("reshape", [value], {"shape": tuple(d * m for d, m in zip(shape, multiples))})]


tile = define_op("tile", SOURCE, _tile_infer, expand=_expand_tile, tf_name="Tile")


def _expand_tile_grad(emit, operands, attrs):
    """The sum of the tiles: g reshaped to [m0, d0, m1, d1], summed over the m axes."""
    g, like = operands
    shape, multiples = tuple(like.shape), tuple(attrs["multiples"])
    if all(m == 1 for m in multiples):
        return [g]
    split, axes = [], []
    for d, m in zip(shape, multiples):
        if m != 1:
            axes.append(len(split))
            split.append(m)
        split.append(d)
    value = emit("reshape", [g], {"shape": tuple(split)})
    return [emit("reduce_sum", [value], {"axes": tuple(axes), "keepdims": False})]


tile_grad = define_op("tile_grad", SOURCE, lambda types, attrs, op="tile_grad":
                      [TensorType(types[0].dtype, types[1].shape)], expand=_expand_tile_grad, tf_name="TileGrad")
tile.grad = lambda b, op, g: [b.op("tile_grad", [g[0], op.inputs[0]], {"multiples": op.attrs["multiples"]})]
tile_grad.grad = lambda b, op, g: [b.op("tile", [g[0]], {"multiples": op.attrs["multiples"]}), None]


# ---- pad -----------------------------------------------------------------------------------------
PAD_MODES = ("CONSTANT", "REFLECT", "SYMMETRIC")


def _pad_infer(types, attrs, op="pad"):
    t, c = types
    paddings, mode = tuple(tuple(p) for p in attrs["paddings"]), attrs["mode"]
    if mode not in PAD_MODES:
        raise ShapeError(f"{op}: mode must be one of {', '.join(PAD_MODES)}, got {mode!r}")
    if len(paddings) != len(t.shape) or any(len(p) != 2 for p in paddings):
        raise ShapeError(f"{op}: paddings must have shape [{len(t.shape)}, 2] for an input of shape "
                         f"{fmt_shape(t.shape)}, got {[list(p) for p in paddings]}")
    if c.dtype != t.dtype or c.shape != ():
        raise ShapeError(f"{op}: constant_values must be a scalar of the input's dtype {t.dtype.name}")
    for k, ((lo, hi), d) in enumerate(zip(paddings, t.shape)):
        if lo < 0 or hi < 0:
            raise ShapeError(f"{op}: paddings must be non-negative, got {[list(p) for p in paddings]}")
        limit = None if d is None else (d - 1 if mode == "REFLECT" else d if mode == "SYMMETRIC" else None)
        if limit is not None and (lo > limit or hi > limit):
            raise ShapeError(f"{op}: paddings must be no greater than the dimension size{' - 1' * (mode == 'REFLECT')}"
                             f" in {mode} mode: {lo}, {hi} greater than {limit} in dimension {k}")
    return [TensorType(t.dtype, tuple(None if d is None else d + lo + hi for d, (lo, hi) in zip(t.shape, paddings)))]


def _pad_reference(x, c, paddings, mode):
    kw = {"constant_values": c} if mode == "CONSTANT" else {}
    return np.pad(x, [tuple(p) for p in paddings], mode={"CONSTANT": "constant", "REFLECT": "reflect",
                                                          "SYMMETRIC": "symmetric"}[mode], **kw)


def _axis_slice(emit, x, axis, begin, stride, size):
    rank = len(x.shape)
    return emit("strided_slice", [x], {"begin": tuple(begin if k == axis else 0 for k in range(rank)),
                                       "stride": tuple(stride if k == axis else 1 for k in range(rank)),
                                       "size": tuple(size if k == axis else d for k, d in enumerate(x.shape))})


def _expand_pad(emit, operands, attrs):
    """Axis by axis, a concat of [before, x, after]: constant blocks, or mirrored slices of x."""
    value, c = operands
    mode = attrs["mode"]
    for axis, (lo, hi) in enumerate(attrs["paddings"]):
        if not lo and not hi:
            continue
        n = value.shape[axis]
        parts = []
        for count, before in ((lo, True), (hi, False)):
            if not count:
                parts.append(None)
            elif mode == "CONSTANT":
                shape = tuple(count if k == axis else d for k, d in enumerate(value.shape))
                parts.append(emit("broadcast_to", [c], {"shape": shape}))
            else:
                shift = 1 if mode == "REFLECT" else 0
                start = count - 1 + shift if before else n - 1 - shift
                parts.append(_axis_slice(emit, value, axis, start, -1, count))
        pieces = [p for p in (parts[0], value, parts[1]) if p is not None]
        value = emit("concat", pieces, {"axis": axis})
    return [value]


pad = define_op("pad", SOURCE, _pad_infer, expand=_expand_pad, reference=_pad_reference, tf_name="PadV2")


def _expand_pad_grad(emit, operands, attrs):
    """The adjoint of pad: the center of g, plus (REFLECT / SYMMETRIC) the mirrored borders
    scattered back onto the input positions they copied."""
    g, like = operands
    mode = attrs["mode"]
    value = g
    for axis, (lo, hi) in enumerate(attrs["paddings"]):
        if not lo and not hi:
            continue
        n = like.shape[axis]
        center = _axis_slice(emit, value, axis, lo, 1, n)
        if mode != "CONSTANT":
            shift = 1 if mode == "REFLECT" else 0
            shape = tuple(center.shape)
            for count, begin, dest in ((lo, 0, lo - 1 + shift), (hi, lo + n, n - 1 - shift)):
                if not count:
                    continue
                border = _axis_slice(emit, value, axis, begin, 1, count)
                rank = len(shape)
                placed = emit("scatter_slice", [border], {
                    "begin": tuple(dest if k == axis else 0 for k in range(rank)),
                    "stride": tuple(-1 if k == axis else 1 for k in range(rank)), "shape": shape})
                center = emit("add", [center, placed], {})
        value = center
    return [value]


pad_grad = define_op("pad_grad", SOURCE, lambda types, attrs, op="pad_grad":
                     [TensorType(types[0].dtype, types[1].shape)], expand=_expand_pad_grad, tf_name="PadGrad")
pad.grad = lambda b, op, g: [b.op("pad_grad", [g[0], op.inputs[0]], {"paddings": op.attrs["paddings"],
                                                                      "mode": op.attrs["mode"]}), None]


def _pad_grad_grad(b, op, g):
    zero = b.const(0, g[0])
    return [b.op("pad", [g[0], zero], {"paddings": op.attrs["paddings"], "mode": op.attrs["mode"]}), None]


pad_grad.grad = _pad_grad_grad


# ---- gather and its gradient ---------------------------------------------------------------------
def _gather_infer(types, attrs, op="gather"):
    params, indices = types
    check_dtype(indices, INTS, op)
    axis = attrs["axis"]
    if not 0 <= axis < len(params.shape):
        raise ShapeError(f"{op}: axis {axis} is out of range for params of rank {len(params.shape)}")
    shape = tuple(params.shape[:axis]) + tuple(indices.shape) + tuple(params.shape[axis + 1:])
    return [TensorType(params.dtype, shape)]


def _gather_reference(params, indices, axis):
    return np.take(params, indices, axis=axis)


gather = define_op("gather", LIBRARY, _gather_infer, reference=_gather_reference, tf_name="GatherV2",
                   extra={"kernel": "gather"})


def _segment_sum_infer(types, attrs, op="segment_sum"):
    data, indices = types
    check_dtype(data, NUMERIC, op)
    check_dtype(indices, INTS, op)
    axis, rank_i = attrs["axis"], len(indices.shape)
    if len(data.shape) < axis + rank_i:
        raise ShapeError(f"{op}: data of shape {fmt_shape(data.shape)} does not hold indices of rank {rank_i} "
                         f"at axis {axis}")
    for k, d in enumerate(indices.shape):
        dd = data.shape[axis + k]
        if d is not None and dd is not None and d != dd:
            raise ShapeError(f"{op}: data shape {fmt_shape(data.shape)} does not match indices shape "
                             f"{fmt_shape(indices.shape)} at axis {axis}")
    shape = tuple(data.shape[:axis]) + (int(attrs["num_segments"]),) + tuple(data.shape[axis + rank_i:])
    return [TensorType(data.dtype, shape)]


def _segment_sum_reference(data, indices, axis, num_segments):
    rank_i = indices.ndim
    outer, inner = data.shape[:axis], data.shape[axis + rank_i:]
    flat = data.reshape(int(np.prod(outer, dtype=np.int64)), indices.size, int(np.prod(inner, dtype=np.int64)))
    out = np.zeros((flat.shape[0], num_segments, flat.shape[2]), data.dtype)
    for m, i in enumerate(indices.reshape(-1)):
        if 0 <= i < num_segments:
            out[:, i, :] += flat[:, m, :]
    return out.reshape(outer + (num_segments,) + inner)


segment_sum = define_op("segment_sum", LIBRARY, _segment_sum_infer, reference=_segment_sum_reference,
                        tf_name="UnsortedSegmentSum", extra={"kernel": "segment_sum"})


def _expand_gather_grad(emit, operands, attrs):
    g, indices, like = operands
    return [emit("segment_sum", [g, indices], {"axis": attrs["axis"], "num_segments": like.shape[attrs["axis"]]})]


gather_grad = define_op("gather_grad", SOURCE, lambda types, attrs, op="gather_grad":
                        [TensorType(types[0].dtype, types[2].shape)], expand=_expand_gather_grad,
                        tf_name="GatherGrad")
gather.grad = lambda b, op, g: [b.op("gather_grad", [g[0], op.inputs[1], op.inputs[0]], {"axis": op.attrs["axis"]}),
                                None]
gather_grad.grad = lambda b, op, g: [b.op("gather", [g[0], op.inputs[1]], {"axis": op.attrs["axis"]}), None, None]
segment_sum.grad = lambda b, op, g: [b.op("gather", [g[0], op.inputs[1]], {"axis": op.attrs["axis"]}), None]


# ---- cumulative sum / product ---------------------------------------------------------------------
def _scan_infer(types, attrs, op="scan"):
    (t,) = types
    check_dtype(t, NUMERIC, op)
    if not 0 <= attrs["axis"] < len(t.shape):
        raise ShapeError(f"{op}: axis {attrs['axis']} is out of range for a tensor of rank {len(t.shape)}")
    if attrs["kind"] not in ("sum", "prod"):
        raise ShapeError(f"{op}: kind must be 'sum' or 'prod'")
    return [TensorType(t.dtype, t.shape)]


def _scan_reference(x, axis, exclusive, reverse, kind):
    fn = np.cumsum if kind == "sum" else np.cumprod
    if reverse:
        x = np.flip(x, axis)
    if exclusive:
        ident = np.zeros_like if kind == "sum" else np.ones_like
        first = ident(np.take(x, [0], axis=axis)) if x.shape[axis] else np.take(x, [], axis=axis)
        x = np.concatenate([first, np.take(x, np.arange(x.shape[axis] - 1), axis=axis)], axis=axis)
    out = fn(x, axis=axis, dtype=x.dtype)
    return np.flip(out, axis).copy() if reverse else out


scan = define_op("scan", LIBRARY, _scan_infer, reference=_scan_reference, tf_name="Cumsum",
                 extra={"kernel": "scan"})


def _scan_grad(b, op, g):
    attrs = dict(op.attrs)
    flipped = dict(attrs, reverse=not attrs["reverse"], kind="sum")
    if attrs["kind"] == "sum":
        return [b.op("scan", [g[0]], flipped)]
    x = op.inputs[0]    # TF 1.x: cumsum(cumprod(x) * g, reverse flipped) / x
    return [b.div(b.op("scan", [b.mul(op.outputs[0], g[0])], flipped), x)]


scan.grad = _scan_grad


# ---- top_k ---------------------------------------------------------------------------------------
def _top_k_infer(types, attrs, op="top_k"):
    (t,) = types
    check_dtype(t, NUMERIC, op)
    k = attrs["k"]
    if len(t.shape) < 1:
        raise ShapeError(f"{op}: input must be at least rank 1, got shape {fmt_shape(t.shape)}")
    if k < 0:
        raise ShapeError(f"{op}: k must be non-negative, got {k}")
    if t.shape[-1] is not None and t.shape[-1] < k:
        raise ShapeError(f"{op}: input must have at least k={k} columns, got {t.shape[-1]}")
    return [TensorType(int32 if attrs["output"] == 1 else t.dtype, tuple(t.shape[:-1]) + (k,))]


def _top_k_reference(x, k, output):
    order = np.argsort(-x, axis=-1, kind="stable")[..., :k] if x.dtype.kind == "f" else \
        np.argsort(-x.astype(np.float64), axis=-1, kind="stable")[..., :k]
    if output == 1:
        return order.astype(np.int32)
    return np.take_along_axis(x, order, axis=-1)


top_k = define_op("top_k", LIBRARY, _top_k_infer, reference=_top_k_reference, tf_name="TopKV2",
                  extra={"kernel": "top_k"})


def _expand_top_k_grad(emit, operands, attrs):
    """d x[..., c] = sum_j g[..., j] * (indices[..., j] == c): one fused reduction over j."""
    g, indices, like = operands
    n, k = like.shape[-1], g.shape[-1]
    rows = num_elements(like.shape[:-1])
    g3 = emit("reshape", [g], {"shape": (rows, k, 1)})
    i3 = emit("reshape", [indices], {"shape": (rows, k, 1)})
    positions = emit("iota", [], {"shape": (1, 1, n), "axis": 2, "dtype": indices.dtype})
    hit = emit("equal", [i3, positions], {})
    zero = emit("const", [], {"value": np.array(0, g.dtype.np), "dtype": g.dtype})
    picked = emit("select", [hit, g3, zero], {})
    total = emit("reduce_sum", [picked], {"axes": (1,), "keepdims": False})
    return [emit("reshape", [total], {"shape": tuple(like.shape)})]


top_k_grad = define_op("top_k_grad", SOURCE, lambda types, attrs, op="top_k_grad":
                       [TensorType(types[0].dtype, types[2].shape)], expand=_expand_top_k_grad,
                       tf_name="TopKGrad")


def _top_k_grad(b, op, g):
    if op.attrs["output"] == 1:
        return [None]
    indices = b.op("top_k", [op.inputs[0]], dict(op.attrs, output=1))
    return [b.op("top_k_grad", [g[0], indices, op.inputs[0]])]


top_k.grad = _top_k_grad
