"""2-D convolutions (NHWC): conv2d and depthwise_conv2d_native, and their input
and filter gradients, which are ops of their own (TF's Conv2DBackpropInput /
Conv2DBackpropFilter and the depthwise pair), so second derivatives work.

Attributes shared by the family: `strides` (sh, sw), `dilations` (dh, dw) and
`padding`: "SAME" | "VALID" | ((top, bottom), (left, right)). SAME splits the
padding as TF does (the odd cell goes to the bottom / right).

The gradient ops take the size of what they produce as a shape tensor, as TF
does (`input_sizes` / `filter_sizes`); at graph building that operand is
partial, and the `expand` rule resolves it once the run is specialized into the
2-operand IR node codegen sees (its `input_shape` / `filter_shape` attribute is
then concrete). All six are LIBRARY ops: their CPU kernels live in
codegen/conv_kernels.py (picked by `extra["kernel"]`); `extra["scratch"]` gives
the workspace temp a kernel needs (the transposed filter of a backprop-input).
"""
from __future__ import annotations

import numpy as np

from ..ir.types import FLOATS, TensorType
from .broadcast import check_dtype, fmt_shape, same_dtype
from .dynamic_shape import constant_value
from .registry import LIBRARY, ShapeError, define_op


# ---- geometry ----------------------------------------------------------------------------------
def _ceil_div(a, b):
    return -(-a // b)


def out_size(n, k, stride, dilation, padding, axis, op="conv2d"):
    """(output size, pad before) along one spatial axis (n may be None: size None, pad None)."""
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        if n is None:
            return None, None
        out = _ceil_div(n, stride)
        total = max((out - 1) * stride + eff - n, 0)
        return out, total // 2
    before, after = (0, 0) if padding == "VALID" else padding[axis]
    if n is None:
        return None, before
    span = n + before + after - eff
    if span < 0:
        raise ShapeError(f"{op}: computed output size would be negative: input size {n} with padding "
                         f"{before}+{after} is smaller than the (dilated) window {eff}")
    return span // stride + 1, before


def geometry(in_hw, k_hw, attrs, op="conv2d"):
    """((oh, ow), (pad_top, pad_left)) of a convolution or pooling window."""
    sizes, pads = [], []
    for axis in range(2):
        o, p = out_size(in_hw[axis], k_hw[axis], attrs["strides"][axis], attrs.get("dilations", (1, 1))[axis],
                        attrs["padding"], axis, op)
        sizes.append(o)
        pads.append(p)
    return tuple(sizes), tuple(pads)


def check_padding(padding, op):
    if padding in ("SAME", "VALID"):
        return
    ok = isinstance(padding, tuple) and len(padding) == 2 and all(
        isinstance(p, tuple) and len(p) == 2 and all(isinstance(v, int) and v >= 0 for v in p) for p in padding)
    if not ok:
        raise ShapeError(f"{op}: padding must be 'SAME', 'VALID' or ((top, bottom), (left, right)), got {padding!r}")


def rank4(types):
    """Unknown-rank operands as 4-D of unknown dims (the rules take any rank; graph building passes them)."""
    return [TensorType(t.dtype, (None,) * 4) if isinstance(t, TensorType) and t.shape is None else t for t in types]


def _check4(t, what, op):
    if t.shape is None or len(t.shape) != 4:
        raise ShapeError(f"{op}: {what} must be 4-D, got shape {fmt_shape(t.shape or ())}")


def _eq(a, b):
    return a is None or b is None or a == b


def _known(shape):
    return shape is not None and None not in shape


# ---- conv2d / depthwise: infer -------------------------------------------------------------------
def _forward_infer(types, attrs, op, depthwise):
    types = rank4(types)
    x, f = types[0], types[1]
    same_dtype([x, f], op)
    check_dtype(x, FLOATS, op)
    _check4(x, "input", op)
    _check4(f, "filter", op)
    check_padding(attrs["padding"], op)
    if not _eq(x.shape[3], f.shape[2]):
        raise ShapeError(f"{op}: input depth {x.shape[3]} must match the filter's in_channels {f.shape[2]} "
                         f"(input {fmt_shape(x.shape)}, filter {fmt_shape(f.shape)})")
    (oh, ow), _ = geometry(x.shape[1:3], f.shape[0:2], attrs, op) if None not in f.shape[0:2] else ((None, None), 0)
    if depthwise:
        channels = None if f.shape[2] is None or f.shape[3] is None else f.shape[2] * f.shape[3]
    else:
        channels = f.shape[3]
    return TensorType(x.dtype, (x.shape[0], oh, ow, channels))


def _backprop_input_infer(types, attrs, op, depthwise):
    types = rank4(types)
    """operands (input_sizes, filter, dy) at graph building; (filter, dy) once specialized."""
    f, dy = types[-2], types[-1]
    same_dtype([f, dy], op)
    check_dtype(f, FLOATS, op)
    _check4(f, "filter", op)
    _check4(dy, "out_backprop", op)
    shape = tuple(attrs.get("input_shape") or (None,) * 4)
    if len(shape) != 4:
        raise ShapeError(f"{op}: input_sizes must have 4 elements, got {list(shape)}")
    shape = (shape[0] if shape[0] is not None else dy.shape[0], shape[1], shape[2],
             shape[3] if shape[3] is not None else f.shape[2])
    if len(types) == 2 and not _known(shape):
        raise ShapeError(f"{op}: input_sizes must be known once the run is specialized, got {list(shape)}")
    _check_against_forward(TensorType(f.dtype, shape), f, dy, attrs, op, depthwise)
    return TensorType(f.dtype, shape)


def _backprop_filter_infer(types, attrs, op, depthwise):
    types = rank4(types)
    """operands (input, filter_sizes, dy) at graph building; (input, dy) once specialized."""
    x, dy = types[0], types[-1]
    same_dtype([x, dy], op)
    check_dtype(x, FLOATS, op)
    _check4(x, "input", op)
    _check4(dy, "out_backprop", op)
    shape = tuple(attrs.get("filter_shape") or (None,) * 4)
    if len(shape) != 4:
        raise ShapeError(f"{op}: filter_sizes must have 4 elements, got {list(shape)}")
    if len(types) == 2 and not _known(shape):
        raise ShapeError(f"{op}: filter_sizes must be known once the run is specialized, got {list(shape)}")
    _check_against_forward(x, TensorType(x.dtype, shape), dy, attrs, op, depthwise)
    return TensorType(x.dtype, shape)


def _check_against_forward(x, f, dy, attrs, op, depthwise):
    """dy must have the shape the forward convolution of x with f gives."""
    check_padding(attrs["padding"], op)
    if not _eq(x.shape[3], f.shape[2]):
        raise ShapeError(f"{op}: input depth {x.shape[3]} must match the filter's in_channels {f.shape[2]}")
    want = _forward_infer([x, f], attrs, op, depthwise).shape
    if not all(_eq(a, b) for a, b in zip(want, dy.shape)):
        raise ShapeError(f"{op}: out_backprop has shape {fmt_shape(dy.shape)}, but the convolution of an input "
                         f"{fmt_shape(x.shape)} with a filter {fmt_shape(f.shape)} gives {fmt_shape(want)}")


# ---- numpy references (tests only) ----------------------------------------------------------------
def _taps(x_shape, f_shape, strides, dilations, padding):
    """Yields (kh, kw, row slice, col slice) into the padded input, and the padded input's pads."""
    (oh, ow), (pt, pl) = geometry(x_shape[1:3], f_shape[0:2], {"strides": strides, "dilations": dilations,
                                                                "padding": padding})
    sh, sw = strides
    dh, dw = dilations
    pads = ((pt, max(0, (oh - 1) * sh + (f_shape[0] - 1) * dh + 1 - x_shape[1] - pt)),
            (pl, max(0, (ow - 1) * sw + (f_shape[1] - 1) * dw + 1 - x_shape[2] - pl)))
    taps = [(kh, kw, slice(kh * dh, kh * dh + (oh - 1) * sh + 1, sh), slice(kw * dw, kw * dw + (ow - 1) * sw + 1, sw))
            for kh in range(f_shape[0]) for kw in range(f_shape[1])]
    return taps, pads, (oh, ow)


def _padded(x, pads):
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def _apply(xw, fk, depthwise):
    """One tap: xw [n, oh, ow, c] times the filter slice fk [c, o] (or [c, m] depthwise)."""
    if depthwise:
        return (xw[..., :, None] * fk).reshape(xw.shape[:3] + (fk.shape[0] * fk.shape[1],))
    return np.einsum("nhwc,co->nhwo", xw, fk)


def conv_reference(x, f, strides, dilations, padding, depthwise=False):
    taps, pads, (oh, ow) = _taps(x.shape, f.shape, strides, dilations, padding)
    xp = _padded(x, pads)
    channels = f.shape[2] * f.shape[3] if depthwise else f.shape[3]
    out = np.zeros((x.shape[0], oh, ow, channels), x.dtype)
    for kh, kw, rows, cols in taps:
        if oh and ow:
            out += _apply(xp[:, rows, cols, :], f[kh, kw], depthwise)
    return out


def backprop_input_reference(f, dy, input_shape, strides, dilations, padding, depthwise=False):
    taps, pads, (oh, ow) = _taps(input_shape, f.shape, strides, dilations, padding)
    n, h, w, c = input_shape
    dxp = np.zeros((n, h + sum(pads[0]), w + sum(pads[1]), c), dy.dtype)
    for kh, kw, rows, cols in taps:
        if not (oh and ow):
            continue
        if depthwise:
            m = f.shape[3]
            dxp[:, rows, cols, :] += (dy.reshape(dy.shape[:3] + (c, m)) * f[kh, kw]).sum(-1)
        else:
            dxp[:, rows, cols, :] += np.einsum("nhwo,co->nhwc", dy, f[kh, kw])
    return dxp[:, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + w, :].copy()


def backprop_filter_reference(x, dy, filter_shape, strides, dilations, padding, depthwise=False):
    taps, pads, (oh, ow) = _taps(x.shape, filter_shape, strides, dilations, padding)
    xp = _padded(x, pads)
    df = np.zeros(filter_shape, x.dtype)
    for kh, kw, rows, cols in taps:
        if not (oh and ow):
            continue
        xw = xp[:, rows, cols, :]
        if depthwise:
            df[kh, kw] = np.einsum("nhwc,nhwcm->cm", xw, dy.reshape(dy.shape[:3] + filter_shape[2:]))
        else:
            df[kh, kw] = np.einsum("nhwc,nhwo->co", xw, dy)
    return df


# ---- records -------------------------------------------------------------------------------------
def _sizes_to_attr(emit, operands, attrs, key, op):
    value = constant_value(operands[0] if key == "input_shape" else operands[1], key.replace("shape", "sizes"), op)
    shape = tuple(int(d) for d in np.atleast_1d(value))
    if len(shape) != 4:
        raise ShapeError(f"{op}: {key.replace('shape', 'sizes')} must have 4 elements, got {list(shape)}")
    return dict(attrs, **{key: shape})


FOLD_MAX_CHANNELS = 8    # inputs with fewer channels than this are convolved from a padded copy (below)


def folded_input(x_shape, f_shape, attrs):
    """The zero-padded copy of the input that conv2d and its filter gradient read when the input has
    few channels: then a kernel row's taps (kw, c) are contiguous, so the kernel runs KH taps of
    KW*C channels with no bounds checks, instead of KH*KW taps of a handful of channels each.
    Its shape [n, rows, cols, c] (the rows and columns the windows cover), or None (not used)."""
    n, h, w, c = x_shape
    kh, kw = f_shape[0], f_shape[1]
    if c >= FOLD_MAX_CHANNELS or attrs["dilations"][1] != 1 or not (n and h and w and c):
        return None
    (oh, ow), _ = geometry((h, w), (kh, kw), attrs)
    if not (oh and ow):
        return None
    return (n, (oh - 1) * attrs["strides"][0] + (kh - 1) * attrs["dilations"][0] + 1,
            (ow - 1) * attrs["strides"][1] + kw, c)


GEMM_FILTER_BYTES = 1 << 20     # a conv2d filter larger than this (past L2) runs as im2col chunks + GEMM
IM2COL_CHUNK_BYTES = 1 << 19    # the patch rows one GEMM of those chunks takes


def strategy(op, x_shape, f_shape, attrs, itemsize):
    """How the CPU computes a conv2d-family op ('conv2d', 'input' or 'filter' for the two gradients):
    - 'gemm': 1x1 windows, stride 1, no padding: the convolution IS a matrix product ([pixels, C] by
      [C, O]), one BLAS GEMM on the buffers as they are;
    - 'im2col' (forward): a filter too large for the cache: chunks of patch rows are copied to a
      workspace and each is one GEMM with the filter;
    - 'folded' (forward, filter gradient): few input channels: a padded copy (`folded_input`);
    - 'direct': the register-blocked kernels of codegen/conv_kernels.py.
    Codegen runs 'direct' instead of the GEMM strategies when the process has no BLAS."""
    kh, kw, c, o = f_shape
    pads = geometry(x_shape[1:3], (kh, kw), attrs)[1]
    explicit = attrs["padding"] if isinstance(attrs["padding"], tuple) else ((0, 0), (0, 0))
    if (kh, kw) == (1, 1) and tuple(attrs["strides"]) == (1, 1) and pads == (0, 0) and explicit == ((0, 0), (0, 0)):
        return "gemm"
    if op == "conv2d" and kh * kw * c * o * itemsize > GEMM_FILTER_BYTES:
        return "im2col"
    if op in ("conv2d", "filter") and folded_input(x_shape, f_shape, attrs) is not None:
        return "folded"
    return "direct"


IM2COL_SLOTS = 8     # chunk workspaces of the im2col kernel: as many threads fill and multiply chunks at once


def im2col_rows(x_shape, f_shape, attrs, itemsize):
    """Patch rows per chunk of the im2col strategy (each row holds kh*kw*c values)."""
    (oh, ow), _ = geometry(x_shape[1:3], f_shape[0:2], attrs)
    k = f_shape[0] * f_shape[1] * f_shape[2]
    return max(1, min(x_shape[0] * oh * ow, IM2COL_CHUNK_BYTES // max(1, k * itemsize)))


def im2col_workspace_rows(rows, k, itemsize):
    """Rows of the im2col workspace: IM2COL_SLOTS chunks, then the slots' int32 busy flags."""
    return IM2COL_SLOTS * rows + _ceil_div(4 * IM2COL_SLOTS, max(1, k * itemsize))


def _scratch(node):
    """The workspace temp of a conv2d-family kernel (its op record's `scratch`), or None."""
    op = {"conv2d": "conv2d", "conv2d_backprop_input": "input", "conv2d_backprop_filter": "filter"}[node.op]
    x = node.result.type if op == "input" else node.operands[0].type
    f = node.result.type if op == "filter" else node.operands[1 if op == "conv2d" else 0].type
    if not all(type(d) is int for d in tuple(x.shape) + tuple(f.shape)):
        return None     # shape-polymorphic: the CPU kernels refuse it (codegen/conv_kernels.py says so)
    kind = strategy(op, x.shape, f.shape, node.attrs, x.dtype.itemsize)
    if kind == "im2col":
        rows, k = im2col_rows(x.shape, f.shape, node.attrs, x.dtype.itemsize), f.shape[0] * f.shape[1] * f.shape[2]
        return TensorType(x.dtype, (im2col_workspace_rows(rows, k, x.dtype.itemsize), k))
    if kind == "folded":
        return TensorType(x.dtype, folded_input(x.shape, f.shape, node.attrs))
    if op == "input":     # the direct kernel's filter, transposed to [kh, kw, out, in] (tiny next to a GEMM's work)
        kh, kw, c, o = f.shape
        return TensorType(f.dtype, (kh, kw, o, c))
    return None


def _conv_only(attrs):
    return {k: attrs[k] for k in ("strides", "dilations", "padding")}


def _graph_form(arrays, attrs, key, position):
    """A gradient op's reference arguments: (the two arrays..., attrs) in either form, the graph op's
    (its sizes operand at `position`, its value the shape) or the specialized node's."""
    arrays = list(arrays)
    shape = attrs.get(key)
    if len(arrays) == 3:
        shape = tuple(int(v) for v in np.asarray(arrays.pop(position)).reshape(-1))
    return arrays + [tuple(shape)] + [attrs[k] for k in ("strides", "dilations", "padding")]


def _define_family(prefix, tf_prefix, depthwise):
    names = (prefix, prefix + "_backprop_input", prefix + "_backprop_filter")
    fwd = define_op(names[0], LIBRARY, lambda types, attrs, op=names[0]: [_forward_infer(types, attrs, op, depthwise)],
                    reference=lambda x, f, **a: conv_reference(x, f, **_conv_only(a), depthwise=depthwise),
                    tf_name=tf_prefix, test_domain=(-1.0, 1.0),
                    extra={"kernel": names[0], "infers_unknown_rank": True, "bounds": "bilinear",
                           "scratch": None if depthwise else _scratch})
    bi = define_op(names[1], LIBRARY,
                   lambda types, attrs, op=names[1]: [_backprop_input_infer(types, attrs, op, depthwise)],
                   reference=lambda *arrays, **a: backprop_input_reference(
                       *_graph_form(arrays, a, "input_shape", 0), depthwise=depthwise),
                   expand=lambda emit, ops, attrs: [emit(names[1], ops[1:], _sizes_to_attr(
                       emit, ops, attrs, "input_shape", names[1]))],
                   tf_name=tf_prefix + "BackpropInput", test_domain=(-1.0, 1.0),
                   extra={"kernel": names[1], "scratch": None if depthwise else _scratch, "bounds": "bilinear",
                          "infers_unknown_rank": True, "shape_operand": (0, "input_shape")})
    bf = define_op(names[2], LIBRARY,
                   lambda types, attrs, op=names[2]: [_backprop_filter_infer(types, attrs, op, depthwise)],
                   reference=lambda *arrays, **a: backprop_filter_reference(
                       *_graph_form(arrays, a, "filter_shape", 1), depthwise=depthwise),
                   expand=lambda emit, ops, attrs: [emit(names[2], [ops[0], ops[2]], _sizes_to_attr(
                       emit, ops, attrs, "filter_shape", names[2]))],
                   tf_name=tf_prefix + "BackpropFilter", test_domain=(-1.0, 1.0),
                   extra={"kernel": names[2], "infers_unknown_rank": True, "bounds": "bilinear",
                          "scratch": None if depthwise else _scratch, "shape_operand": (1, "filter_shape")})

    def conv_attrs(attrs):
        return {k: attrs[k] for k in ("strides", "dilations", "padding")}

    def shape_of(b, t):
        return b.op("shape_of", [t])

    def bi_op(b, sizes, f, dy, attrs):
        return b.op(names[1], [sizes, f, dy], dict(conv_attrs(attrs), input_shape=sizes_hint(sizes)))

    def bf_op(b, x, sizes, dy, attrs):
        return b.op(names[2], [x, sizes, dy], dict(conv_attrs(attrs), filter_shape=sizes_hint(sizes)))

    # <dy, conv(x, f)> is linear in each of x, f, dy: each of the three ops is the derivative of that
    # form by one argument, so the gradient of each is the other two
    fwd.grad = lambda b, op, g: [bi_op(b, shape_of(b, op.inputs[0]), op.inputs[1], g[0], op.attrs),
                                 bf_op(b, op.inputs[0], shape_of(b, op.inputs[1]), g[0], op.attrs)]
    bi.grad = lambda b, op, g: [None, bf_op(b, g[0], shape_of(b, op.inputs[1]), op.inputs[2], op.attrs),
                                b.op(names[0], [g[0], op.inputs[1]], conv_attrs(op.attrs))]
    bf.grad = lambda b, op, g: [bi_op(b, shape_of(b, op.inputs[0]), g[0], op.inputs[2], op.attrs), None,
                                b.op(names[0], [op.inputs[0], g[0]], conv_attrs(op.attrs))]
    return fwd, bi, bf


def sizes_hint(sizes):
    """What graph building knows of a shape tensor's value (a tuple with None), or None."""
    from ..api.shape_args import static_shape_value
    if not hasattr(sizes, "op"):     # an IR value (gradients built on the IR): the expand rule resolves it
        return None
    value = static_shape_value(sizes)
    return None if value is None else tuple(value)


conv2d, conv2d_backprop_input, conv2d_backprop_filter = _define_family("conv2d", "Conv2D", False)


# ---- conv2d followed by a max_pool with windows that do not overlap, as one op --------------------
# Made by jitflow/passes/conv_pool_fusion.py from a conv2d whose only reader is such a max_pool (an
# inference graph: a training graph keeps the convolution's result for the gradients), after the
# gradients are built, so it has no gradient rule. The kernel (codegen/conv_pool_kernels.py) max-reduces
# each block of convolution results into the pooled map while they are in registers: the full-size
# map is never written. Attributes: conv2d's, and the pool's as pool_ksize / pool_strides / pool_padding;
# `activation` (None | "relu") and an optional third operand, a bias [out_channels], are applied to the
# pooled map (max commutes with both: jitflow/passes/pool_commute.py).
def pool_attrs(attrs):
    return {"ksize": attrs["pool_ksize"], "strides": attrs["pool_strides"], "padding": attrs["pool_padding"]}


def _conv_pool_infer(types, attrs, op="conv2d_max_pool"):
    conv = _forward_infer(types[:2], attrs, "conv2d_max_pool", False)
    if len(types) == 3 and (types[2].dtype != conv.dtype or tuple(types[2].shape or ()) != (conv.shape[3],)):
        raise ShapeError(f"conv2d_max_pool: the bias must be [{conv.shape[3]}] of {conv.dtype.name}, got {types[2]}")
    if attrs.get("activation") not in (None, "relu"):
        raise ShapeError(f"conv2d_max_pool: activation must be None or 'relu', got {attrs.get('activation')!r}")
    if conv.shape[1] is None or conv.shape[2] is None:
        return [TensorType(conv.dtype, (conv.shape[0], None, None, conv.shape[3]))]
    (ph, pw), _ = geometry(conv.shape[1:3], attrs["pool_ksize"], pool_attrs(attrs), "conv2d_max_pool")
    return [TensorType(conv.dtype, (conv.shape[0], ph, pw, conv.shape[3]))]


def conv_pool_reference(x, f, bias=None, **attrs):
    from .pooling import max_pool_reference
    out = max_pool_reference(conv_reference(x, f, **_conv_only(attrs)), **pool_attrs(attrs))
    out = out if bias is None else out + bias
    return np.maximum(out, np.zeros((), out.dtype)) if attrs.get("activation") == "relu" else out


def _conv_pool_scratch(node):
    x, f = node.operands[0].type, node.operands[1].type
    if not all(type(d) is int for d in tuple(x.shape) + tuple(f.shape)):
        return None
    if strategy("conv2d", x.shape, f.shape, node.attrs, x.dtype.itemsize) == "folded":
        return TensorType(x.dtype, folded_input(x.shape, f.shape, node.attrs))
    return None


def fusable_with_max_pool(conv_node, pool_attrs_):
    """Whether codegen's fused kernel computes max_pool(conv2d): pool windows that do not overlap
    (strides == ksize), float32/64, concrete shapes, and a convolution the direct kernels run."""
    x, f = conv_node.operands[0].type, conv_node.operands[1].type
    shapes = tuple(x.shape or ()) + tuple(f.shape or ())
    if len(shapes) != 8 or not all(type(d) is int for d in shapes) or x.dtype.name not in ("float32", "float64"):
        return False
    if tuple(pool_attrs_["strides"]) != tuple(pool_attrs_["ksize"]):
        return False
    return strategy("conv2d", x.shape, f.shape, conv_node.attrs, x.dtype.itemsize) in ("direct", "folded")


conv2d_max_pool = define_op("conv2d_max_pool", LIBRARY, _conv_pool_infer, reference=conv_pool_reference,
                            differentiable=False, test_domain=(-1.0, 1.0),
                            extra={"kernel": "conv2d_max_pool", "scratch": _conv_pool_scratch})
conv2d.extra["fused_max_pool"] = "conv2d_max_pool"      # the op jitflow/passes/conv_pool_fusion.py makes
depthwise_conv2d, depthwise_backprop_input, depthwise_backprop_filter = _define_family(
    "depthwise_conv2d_native", "DepthwiseConv2dNative", True)
