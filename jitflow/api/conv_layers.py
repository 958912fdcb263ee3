"""`tf.layers` convolution and pooling layers as in TF 1.x: the classes `Conv2D`, `Conv2DTranspose`,
`MaxPooling2D`, `AveragePooling2D` (aliases `Convolution2D`, `Convolution2DTranspose`, `Deconvolution2D`,
`MaxPool2D`, `AvgPool2D`) and their functional forms `conv2d`, `conv2d_transpose`, `max_pooling2d`,
`average_pooling2d`.

Built on the `tf.nn` ops (jitflow/api/nn_conv.py) and the `tf.layers.Layer` base of jitflow/api/core_layers.py,
so variables are named as TF's (`conv2d/kernel` [kh, kw, in, filters], `conv2d/bias`, the next layer
`conv2d_1/...`; a transposed convolution's kernel is [kh, kw, filters, in]) with TF 1.x's default
initializers (glorot_uniform kernel through get_variable, zeros bias). `padding` is 'valid' or 'same'
in any case; `data_format='channels_first'` raises UnsupportedError (jitflow runs NHWC only).
"""
from __future__ import annotations

import numbers

from ..errors import UnsupportedError
from . import math_ops as m
from . import nn_conv
from .array_ops import shape as shape_of, stack
from .init_ops import zeros_initializer
from .core_layers import Layer, _activation, _layer_kwargs
from .nn_ops import bias_add


def normalize_tuple(value, n, arg, layer):
    """An int or a sequence of `n` ints -> a tuple of `n` positive ints (Keras' conv_utils.normalize_tuple)."""
    if isinstance(value, numbers.Integral):
        values = (int(value),) * n
    else:
        try:
            values = tuple(int(v) for v in value)
        except TypeError:
            raise ValueError(f"{layer}: the `{arg}` argument must be a tuple of {n} integers. Received: {value!r}") \
                from None
        if len(values) != n:
            raise ValueError(f"{layer}: the `{arg}` argument must be a tuple of {n} integers. Received: {value!r}")
    if any(v < 1 for v in values):
        raise ValueError(f"{layer}: the `{arg}` argument must be positive integers. Received: {value!r}")
    return values


def normalize_padding(padding, layer):
    """'valid' / 'same' in any case -> 'valid' / 'same' (as Keras' conv_utils; the tf.nn ops take either case)."""
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"{layer}: the `padding` argument must be one of 'valid', 'same'. Received: {padding!r}")
    return padding.lower()


def check_data_format(data_format, layer):
    """channels_last (NHWC) only; channels_first raises UnsupportedError naming it."""
    value = "channels_last" if data_format is None else str(data_format).lower()
    if value == "channels_first":
        raise UnsupportedError(f"{layer}: data_format='channels_first' (NCHW) is not supported by jitflow; its "
                               f"convolutions and pooling run on channels_last (NHWC) tensors")
    if value != "channels_last":
        raise ValueError(f"{layer}: the `data_format` argument must be one of 'channels_first', 'channels_last'. "
                         f"Received: {data_format!r}")
    return value


def conv_output_length(length, kernel, padding, stride, dilation=1):
    """Spatial output size of a convolution or pooling (None stays None)."""
    if length is None:
        return None
    kernel = kernel + (kernel - 1) * (dilation - 1)
    out = length if padding.lower() == "same" else length - kernel + 1
    return (out + stride - 1) // stride


def deconv_output_length(length, kernel, padding, stride):
    """Spatial output size of a transposed convolution (Keras' conv_utils.deconv_output_length)."""
    if length is None:
        return None
    return length * stride if padding.lower() == "same" else length * stride + max(kernel - stride, 0)


def _rank4(input_shape, layer, ndim=4):
    """The dims of a rank-`ndim` shape (4; Conv1D: 3) with a known channel dimension."""
    dims = input_shape.dims
    if dims is None or len(dims) != ndim:
        raise ValueError(f"Input 0 of layer {layer} is incompatible with the layer: expected ndim={ndim}, found "
                         f"ndim={'unknown' if dims is None else len(dims)}. Full shape received: {input_shape}")
    if dims[-1] is None:
        raise ValueError(f"The channel dimension of the inputs to {layer} should be defined. Found `None`.")
    return dims


class _Conv(Layer):
    """What Conv2D and Conv2DTranspose share: arguments, weights, bias and activation."""

    _base_name = "conv2d"

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format="channels_last",
                 dilation_rate=(1, 1), activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer=zeros_initializer(), kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, trainable=True,
                 name=None, **kwargs):
        super().__init__(trainable=trainable, name=name, activity_regularizer=activity_regularizer,
                         **_layer_kwargs(kwargs))
        layer = type(self).__name__
        self.filters = int(filters)
        if self.filters <= 0:
            raise ValueError(f"{layer}: `filters` must be a positive integer, got {filters!r}")
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size", layer)
        self.strides = normalize_tuple(strides, 2, "strides", layer)
        self.padding = normalize_padding(padding, layer)
        self.data_format = check_data_format(data_format, layer)
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate", layer)
        if self.dilation_rate != (1, 1) and self.strides != (1, 1):
            raise ValueError(f"{layer}: strides > 1 not supported in conjunction with dilation_rate > 1")
        self.activation = _activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.kernel_constraint, self.bias_constraint = kernel_constraint, bias_constraint
        self.kernel = self.bias = None

    def kernel_shape(self, channels):
        return self.kernel_size + (channels, self.filters)

    def build(self, input_shape):
        dims = _rank4(input_shape, type(self).__name__)
        self.input_channels = int(dims[-1])
        self.kernel = self.add_weight("kernel", self.kernel_shape(self.input_channels),
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    def finish(self, outputs):
        if self.use_bias:
            outputs = bias_add(outputs, self.bias, data_format="NHWC")
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def _check_channels(self, inputs):
        dims = _rank4(inputs.shape, type(self).__name__)
        if int(dims[-1]) != self.input_channels:
            raise ValueError(f"{type(self).__name__} {self.name}: inputs have {dims[-1]} channels, the kernel "
                             f"expects {self.input_channels}")
        return dims


class Conv2D(_Conv):
    """outputs = activation(conv2d(inputs, kernel) + bias); kernel [kh, kw, in_channels, filters]."""

    def call(self, inputs):
        self._check_channels(inputs)
        outputs = nn_conv.conv2d(inputs, self.kernel, strides=(1,) + self.strides + (1,), padding=self.padding,
                                 dilations=(1,) + self.dilation_rate + (1,), name="Conv2D")
        return self.finish(outputs)


class Conv2DTranspose(_Conv):
    """The transpose (gradient) of Conv2D: kernel [kh, kw, filters, in_channels]; the output's spatial size is
    `in * stride` ('same') or `in * stride + max(kernel - stride, 0)` ('valid')."""

    _base_name = "conv2d_transpose"

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format="channels_last",
                 activation=None, use_bias=True, kernel_initializer=None, bias_initializer=zeros_initializer(),
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, trainable=True, name=None, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         trainable=trainable, name=name, **kwargs)

    def kernel_shape(self, channels):
        return self.kernel_size + (self.filters, channels)

    def call(self, inputs):
        dims = self._check_channels(inputs)
        dynamic = shape_of(inputs)
        sizes = [dynamic[0]]
        for axis, (kernel, stride) in enumerate(zip(self.kernel_size, self.strides), start=1):
            length = dims[axis]
            if length is None:
                length = dynamic[axis]
                extra = 0 if self.padding == "same" else max(kernel - stride, 0)
                sizes.append(m.add(m.multiply(length, stride), extra))
            else:
                sizes.append(deconv_output_length(int(length), kernel, self.padding, stride))
        sizes.append(self.filters)
        outputs = nn_conv.conv2d_transpose(inputs, self.kernel, stack(sizes), strides=(1,) + self.strides + (1,),
                                           padding=self.padding, name="conv2d_transpose")
        return self.finish(outputs)


class _Pooling2D(Layer):
    _op = None

    def __init__(self, pool_size, strides, padding="valid", data_format="channels_last", name=None, **kwargs):
        super().__init__(name=name, **_layer_kwargs(kwargs))
        layer = type(self).__name__
        self.pool_size = normalize_tuple(pool_size, 2, "pool_size", layer)
        self.strides = normalize_tuple(self.pool_size if strides is None else strides, 2, "strides", layer)
        self.padding = normalize_padding(padding, layer)
        self.data_format = check_data_format(data_format, layer)

    def call(self, inputs):
        _rank4(inputs.shape, type(self).__name__)
        pool = getattr(nn_conv, self._op)
        return pool(inputs, ksize=(1,) + self.pool_size + (1,), strides=(1,) + self.strides + (1,),
                    padding=self.padding, name=self._op_name)


class MaxPooling2D(_Pooling2D):
    """Max over `pool_size` windows every `strides` (TF: the first maximum of a window wins its gradient)."""

    _base_name, _op, _op_name = "max_pooling2d", "max_pool", "MaxPool"


class AveragePooling2D(_Pooling2D):
    """Mean over `pool_size` windows every `strides`; with 'same' padding, padded cells are not counted."""

    _base_name, _op, _op_name = "average_pooling2d", "avg_pool", "AvgPool"


Convolution2D = Conv2D
Convolution2DTranspose = Deconvolution2D = Deconv2D = Conv2DTranspose
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D


# --- functional forms

def conv2d(inputs, filters, kernel_size, strides=(1, 1), padding="valid", data_format="channels_last",
           dilation_rate=(1, 1), activation=None, use_bias=True, kernel_initializer=None,
           bias_initializer=zeros_initializer(), kernel_regularizer=None, bias_regularizer=None,
           activity_regularizer=None, kernel_constraint=None, bias_constraint=None, trainable=True, name=None,
           reuse=None):
    layer = Conv2D(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                   dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                   kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                   kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                   activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                   bias_constraint=bias_constraint, trainable=trainable, name=name, _reuse=reuse)
    return layer(inputs)


def conv2d_transpose(inputs, filters, kernel_size, strides=(1, 1), padding="valid", data_format="channels_last",
                     activation=None, use_bias=True, kernel_initializer=None, bias_initializer=zeros_initializer(),
                     kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                     kernel_constraint=None, bias_constraint=None, trainable=True, name=None, reuse=None):
    layer = Conv2DTranspose(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                            activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                            bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                            bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                            kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                            trainable=trainable, name=name, _reuse=reuse)
    return layer(inputs)


def max_pooling2d(inputs, pool_size, strides, padding="valid", data_format="channels_last", name=None):
    return MaxPooling2D(pool_size, strides, padding=padding, data_format=data_format, name=name)(inputs)


def average_pooling2d(inputs, pool_size, strides, padding="valid", data_format="channels_last", name=None):
    return AveragePooling2D(pool_size, strides, padding=padding, data_format=data_format, name=name)(inputs)
