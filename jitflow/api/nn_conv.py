"""`tf.nn` convolution and pooling functions (NHWC): conv2d, depthwise_conv2d
(and _native), conv2d_transpose, conv2d_backprop_input / _filter, max_pool,
avg_pool, max_pool2d, avg_pool2d. The registry records are in
jitflow/ops/conv.py and jitflow/ops/pooling.py.

Arguments follow TF 1.x: strides / ksize / dilations as an int or a list of 1,
2 or 4 ints (4: the batch and channel entries must be 1), padding "SAME",
"VALID" or (conv2d family) an explicit [[0, 0], [top, bottom], [left, right],
[0, 0]] list. data_format "NCHW" raises UnsupportedError naming it.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir.types import int32
from ..ops.conv import sizes_hint
from .array_ops import constant
from .convert import convert_to_tensor
from .math_ops import _make
from .shape_args import is_tensor_shape, shape_tensor


def _data_format(data_format, fn):
    if data_format in (None, "NHWC"):
        return
    if data_format in ("NCHW", "NCW", "NCDHW"):
        raise UnsupportedError(f"{fn}: data_format={data_format!r} is not supported; jitflow convolutions and "
                               f"pooling run on NHWC tensors (transpose with tf.transpose(x, [0, 2, 3, 1]))")
    raise ValueError(f"{fn}: data_format must be 'NHWC' or 'NCHW', got {data_format!r}")


def _pair(value, arg, fn, default=None):
    """An int, or a list of 1, 2 or 4 ints (batch and channel entries 1) -> (rows, cols)."""
    if value is None:
        if default is None:
            raise ValueError(f"{fn}: `{arg}` is required")
        return default
    values = [int(v) for v in np.atleast_1d(np.asarray(value)).reshape(-1)]
    if len(values) == 1:
        values = values * 2
    elif len(values) == 4:
        if values[0] != 1 or values[3] != 1:
            raise UnsupportedError(f"{fn}: `{arg}` {values} has a batch or depth entry other than 1; TF does not "
                                   f"support {arg} in the batch and depth dimensions")
        values = values[1:3]
    elif len(values) != 2:
        raise ValueError(f"{fn}: `{arg}` must be an int or a list of 1, 2 or 4 ints, got {value!r}")
    if any(v < 1 for v in values):
        raise ValueError(f"{fn}: `{arg}` must be positive, got {value!r}")
    return tuple(values)


def _padding(padding, fn, explicit_ok=True):
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f"{fn}: padding must be 'SAME' or 'VALID', got {padding!r}")
        return padding.upper()
    if not explicit_ok:
        raise ValueError(f"{fn}: padding must be 'SAME' or 'VALID', got {padding!r}")
    pads = np.asarray(padding)
    if pads.shape != (4, 2) or pads.dtype.kind not in "iu":
        raise ValueError(f"{fn}: explicit padding must be a [4, 2] list of ints "
                         f"[[0, 0], [top, bottom], [left, right], [0, 0]], got {padding!r}")
    if pads[0].any() or pads[3].any():
        raise ValueError(f"{fn}: explicit padding in the batch and depth dimensions must be 0, got {padding!r}")
    if (pads < 0).any():
        raise ValueError(f"{fn}: explicit padding must be non-negative, got {padding!r}")
    return ((int(pads[1, 0]), int(pads[1, 1])), (int(pads[2, 0]), int(pads[2, 1])))


def _conv_attrs(strides, padding, dilations, fn):
    return {"strides": _pair(strides, "strides", fn), "padding": _padding(padding, fn),
            "dilations": _pair(dilations, "dilations", fn, default=(1, 1))}


def _sizes(value, fn, arg):
    """A shape argument as an int32 vector tensor (list, array, or tensor)."""
    if is_tensor_shape(value):
        return shape_tensor(value)
    values = np.asarray(value).reshape(-1)
    if values.size != 4:
        raise ValueError(f"{fn}: `{arg}` must have 4 elements, got {value!r}")
    return constant(values.astype(np.int32), int32)


def _pick(a, b, a_name, b_name, fn):
    if a is not None and b is not None:
        raise ValueError(f"{fn}: give `{a_name}` or `{b_name}`, not both")
    value = a if a is not None else b
    if value is None:
        raise ValueError(f"{fn}: `{a_name}` is required")
    return value


# ---- convolutions --------------------------------------------------------------------------------
def conv2d(input=None, filter=None, strides=None, padding=None, use_cudnn_on_gpu=True,  # noqa: A002
           data_format="NHWC", dilations=(1, 1, 1, 1), name=None, filters=None):
    """`use_cudnn_on_gpu` is a kernel-selection hint of TF's GPU build; it does not change results."""
    _data_format(data_format, "conv2d")
    x = convert_to_tensor(input)
    f = convert_to_tensor(_pick(filter, filters, "filter", "filters", "conv2d"), dtype=x.dtype)
    return _make("conv2d", [x, f], _conv_attrs(strides, padding, dilations, "conv2d"), name=name or "Conv2D")


def conv2d_backprop_input(input_sizes, filter=None, out_backprop=None, strides=None, padding=None,  # noqa: A002
                          use_cudnn_on_gpu=True, data_format="NHWC", dilations=(1, 1, 1, 1), name=None,
                          filters=None):
    _data_format(data_format, "conv2d_backprop_input")
    f = convert_to_tensor(_pick(filter, filters, "filter", "filters", "conv2d_backprop_input"))
    dy = convert_to_tensor(out_backprop, dtype=f.dtype)
    sizes = _sizes(input_sizes, "conv2d_backprop_input", "input_sizes")
    attrs = dict(_conv_attrs(strides, padding, dilations, "conv2d_backprop_input"), input_shape=sizes_hint(sizes))
    return _make("conv2d_backprop_input", [sizes, f, dy], attrs, name=name or "Conv2DBackpropInput")


def conv2d_backprop_filter(input, filter_sizes, out_backprop, strides, padding,  # noqa: A002
                           use_cudnn_on_gpu=True, data_format="NHWC", dilations=(1, 1, 1, 1), name=None):
    _data_format(data_format, "conv2d_backprop_filter")
    x = convert_to_tensor(input)
    dy = convert_to_tensor(out_backprop, dtype=x.dtype)
    sizes = _sizes(filter_sizes, "conv2d_backprop_filter", "filter_sizes")
    attrs = dict(_conv_attrs(strides, padding, dilations, "conv2d_backprop_filter"), filter_shape=sizes_hint(sizes))
    return _make("conv2d_backprop_filter", [x, sizes, dy], attrs, name=name or "Conv2DBackpropFilter")


def conv2d_transpose(value=None, filter=None, output_shape=None, strides=None, padding="SAME",  # noqa: A002
                     data_format="NHWC", name=None, input=None, filters=None, dilations=None):  # noqa: A002
    """The gradient of conv2d with respect to its input: `output_shape` is conv2d's input shape."""
    fn = "conv2d_transpose"
    _data_format(data_format, fn)
    value = _pick(value, input, "value", "input", fn)
    f = convert_to_tensor(_pick(filter, filters, "filter", "filters", fn))
    dy = convert_to_tensor(value, dtype=f.dtype)
    if output_shape is None:
        raise ValueError(f"{fn}: `output_shape` is required")
    sizes = _sizes(output_shape, fn, "output_shape")
    attrs = dict(_conv_attrs(strides, padding, dilations, fn), input_shape=sizes_hint(sizes))
    return _make("conv2d_backprop_input", [sizes, f, dy], attrs, name=name or "conv2d_transpose")


def depthwise_conv2d_native(input, filter, strides, padding, data_format="NHWC", dilations=(1, 1, 1, 1),  # noqa: A002
                            name=None):
    fn = "depthwise_conv2d_native"
    _data_format(data_format, fn)
    x = convert_to_tensor(input)
    f = convert_to_tensor(filter, dtype=x.dtype)
    return _make("depthwise_conv2d_native", [x, f], _conv_attrs(strides, padding, dilations, fn),
                 name=name or "DepthwiseConv2dNative")


def depthwise_conv2d(input, filter, strides, padding, rate=None, name=None, data_format=None,  # noqa: A002
                     dilations=None):
    """`rate` (TF 1.x) and `dilations` are the same thing; give one of them."""
    fn = "depthwise_conv2d"
    if rate is not None and dilations is not None:
        raise ValueError(f"{fn}: give `rate` or `dilations`, not both")
    rate = _pair(rate if rate is not None else dilations, "rate", fn, default=(1, 1))
    if rate != (1, 1) and _pair(strides, "strides", fn) != (1, 1):
        raise ValueError(f"{fn}: strides > 1 not supported in conjunction with rate > 1 (as TF)")
    _data_format(data_format, fn)
    x = convert_to_tensor(input)
    f = convert_to_tensor(filter, dtype=x.dtype)
    attrs = dict(_conv_attrs(strides, padding, rate, fn))
    return _make("depthwise_conv2d_native", [x, f], attrs, name=name or "depthwise")


# ---- pooling -------------------------------------------------------------------------------------
def _pool(op, default_name, fn, value, ksize, strides, padding, data_format, name):
    _data_format(data_format, fn)
    x = convert_to_tensor(value)
    attrs = {"ksize": _pair(ksize, "ksize", fn), "strides": _pair(strides, "strides", fn),
             "padding": _padding(padding, fn, explicit_ok=False)}
    return _make(op, [x], attrs, name=name or default_name)


def max_pool(value=None, ksize=None, strides=None, padding=None, data_format="NHWC", name=None,
             input=None):  # noqa: A002
    value = _pick(value, input, "value", "input", "max_pool")
    return _pool("max_pool", "MaxPool", "max_pool", value, ksize, strides, padding, data_format, name)


def avg_pool(value=None, ksize=None, strides=None, padding=None, data_format="NHWC", name=None,
             input=None):  # noqa: A002
    value = _pick(value, input, "value", "input", "avg_pool")
    return _pool("avg_pool", "AvgPool", "avg_pool", value, ksize, strides, padding, data_format, name)


def max_pool2d(input, ksize, strides, padding, data_format="NHWC", name=None):  # noqa: A002
    return _pool("max_pool", "MaxPool2d", "max_pool2d", input, ksize, strides, padding, data_format, name)


def avg_pool2d(input, ksize, strides, padding, data_format="NHWC", name=None):  # noqa: A002
    return _pool("avg_pool", "AvgPool2D", "avg_pool2d", input, ksize, strides, padding, data_format, name)


def _one(value, arg, fn):
    """conv1d's stride / dilation: an int, or a list of 1 or 3 ints (batch and channel entries 1)."""
    values = [value] if isinstance(value, int) else list(value)
    if len(values) == 3 and values[0] == values[2] == 1:
        values = values[1:2]
    if len(values) != 1 or not isinstance(values[0], (int, np.integer)) or values[0] < 1:
        raise ValueError(f"{fn}: {arg} must be a positive int or a list of 1 or 3 ints [1, s, 1], got {value!r}")
    return int(values[0])


def conv1d(value=None, filters=None, stride=None, padding=None, use_cudnn_on_gpu=None, data_format=None,  # noqa: ARG001
           name=None, input=None, dilations=None):  # noqa: A002
    """TF's conv1d: the NWC input gets a height of 1 and runs through conv2d (as TF builds it);
    `use_cudnn_on_gpu` is a kernel-selection hint of TF's GPU build and does not change results."""
    from ..framework.graph import get_default_graph
    from .array_ops import expand_dims, squeeze
    if data_format not in (None, "NWC", "NCW"):
        raise ValueError(f'conv1d: data_format must be "NWC" or "NCW", got {data_format!r}')
    if data_format == "NCW":
        _data_format("NCW", "conv1d")
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        raise ValueError(f"conv1d: padding must be 'SAME' or 'VALID', got {padding!r}")
    x = convert_to_tensor(_pick(value, input, "value", "input", "conv1d"))
    if filters is None:
        raise ValueError("conv1d: filters must be given")
    s, d = _one(stride, "stride", "conv1d"), _one(1 if dilations is None else dilations, "dilations", "conv1d")
    with get_default_graph().name_scope(name or "conv1d"):
        f = convert_to_tensor(filters, dtype=x.dtype)
        y = conv2d(expand_dims(x, -3), expand_dims(f, 0), [1, 1, s, 1], padding.upper(), dilations=[1, 1, d, 1])
        return squeeze(y, [-3])
