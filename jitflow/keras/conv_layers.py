"""Keras convolution, pooling and padding layers (tf.keras of TF 1.15, channels_last only): `Conv2D`
(`Convolution2D`), `Conv2DTranspose`, `MaxPooling2D` (`MaxPool2D`), `AveragePooling2D` (`AvgPool2D`),
`GlobalAveragePooling2D` (`GlobalAvgPool2D`), `GlobalMaxPooling2D` (`GlobalMaxPool2D`), `ZeroPadding2D`.

They build on the `tf.nn` ops (jitflow/api/nn_conv.py); argument checks and output sizes are shared with
the `tf.layers` forms (jitflow/api/conv_layers.py). Weights are `<layer>/kernel` [kh, kw, in, filters]
(Conv2DTranspose: [kh, kw, filters, in]) and `<layer>/bias`, saved and loaded by name like Dense's;
`get_config` holds every constructor argument so `load_model` rebuilds the layer.
`data_format='channels_first'` raises UnsupportedError.
"""
from __future__ import annotations

import numbers

from ..api import conv_layers as conv_utils
from ..api import math_ops as m
from ..api import nn_conv
from ..api.array_extra import pad
from ..api.array_ops import shape as shape_of, stack
from ..api.nn_ops import bias_add
from ..errors import UnsupportedError
from . import activations, initializers, regularizers
from .base_layer import Layer


def _no_extras(layer, **given):
    """Keras arguments jitflow does not implement: an error naming the argument unless it is None."""
    for arg, value in given.items():
        if value is not None:
            raise UnsupportedError(f"{layer}: the `{arg}` argument is not supported by jitflow.keras")


def _rank4(input_shape, layer, ndim=4):
    if len(input_shape) != ndim:
        raise ValueError(f"Input 0 of layer {layer} is incompatible with the layer: expected ndim={ndim}, found "
                         f"ndim={len(input_shape)}. Full shape received: {tuple(input_shape)}")


class Conv2D(Layer):
    """`activation(conv2d(inputs, kernel) + bias)`."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None, dilation_rate=(1, 1),
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        _no_extras(cls, activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                   bias_constraint=bias_constraint)
        self.filters = int(filters)
        if self.filters <= 0:
            raise ValueError(f"{cls}: filters must be a positive integer, got {filters!r}")
        self.kernel_size = conv_utils.normalize_tuple(kernel_size, 2, "kernel_size", cls)
        self.strides = conv_utils.normalize_tuple(strides, 2, "strides", cls)
        self.padding = conv_utils.normalize_padding(padding, cls)
        self.data_format = conv_utils.check_data_format(data_format, cls)
        self.dilation_rate = conv_utils.normalize_tuple(dilation_rate, 2, "dilation_rate", cls)
        if self.dilation_rate != (1, 1) and self.strides != (1, 1):
            raise ValueError(f"{cls}: strides > 1 not supported in conjunction with dilation_rate > 1")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def kernel_shape(self, channels):
        return self.kernel_size + (channels, self.filters)

    def build(self, input_shape):
        _rank4(input_shape, self.name)
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"The channel dimension of the inputs to {self.name} should be defined. Found `None`.")
        self.kernel = self.add_weight("kernel", self.kernel_shape(int(channels)), self.kernel_initializer,
                                      self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer, self.bias_regularizer) \
            if self.use_bias else None

    def convolve(self, inputs):
        return nn_conv.conv2d(inputs, self.kernel, strides=(1,) + self.strides + (1,), padding=self.padding,
                              dilations=(1,) + self.dilation_rate + (1,), name="Conv2D")

    def call(self, inputs, training=False):
        outputs = self.convolve(inputs)
        if self.bias is not None:
            outputs = bias_add(outputs, self.bias, data_format="NHWC")
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        _rank4(input_shape, self.name)
        rows, cols = (conv_utils.conv_output_length(input_shape[axis], k, self.padding, s, d) for axis, k, s, d in
                      zip((1, 2), self.kernel_size, self.strides, self.dilation_rate))
        return (input_shape[0], rows, cols, self.filters)

    def get_config(self):
        return dict(super().get_config(), filters=self.filters, kernel_size=list(self.kernel_size),
                    strides=list(self.strides), padding=self.padding, data_format=self.data_format,
                    dilation_rate=list(self.dilation_rate), activation=activations.serialize(self.activation),
                    use_bias=self.use_bias,
                    kernel_initializer=initializers.serialize(self.kernel_initializer) or "glorot_uniform",
                    bias_initializer=initializers.serialize(self.bias_initializer) or "zeros",
                    kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                    bias_regularizer=regularizers.serialize(self.bias_regularizer))


class Conv2DTranspose(Conv2D):
    """The transpose (input gradient) of Conv2D; spatial output `in * stride` ('same') or
    `in * stride + max(kernel - stride, 0)` ('valid')."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None, data_format=None,
                 dilation_rate=(1, 1), **kwargs):
        _no_extras(type(self).__name__, output_padding=output_padding)
        if conv_utils.normalize_tuple(dilation_rate, 2, "dilation_rate", type(self).__name__) != (1, 1):
            raise UnsupportedError(f"{type(self).__name__}: dilation_rate other than 1 is not supported by "
                                   f"jitflow.keras")
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format, **kwargs)

    def kernel_shape(self, channels):
        return self.kernel_size + (self.filters, channels)

    def convolve(self, inputs):
        dims, dynamic = inputs.shape.dims, shape_of(inputs)
        sizes = [dynamic[0]]
        for axis, (k, s) in enumerate(zip(self.kernel_size, self.strides), start=1):
            if dims[axis] is None:
                extra = 0 if self.padding == "same" else max(k - s, 0)
                sizes.append(m.add(m.multiply(dynamic[axis], s), extra))
            else:
                sizes.append(conv_utils.deconv_output_length(int(dims[axis]), k, self.padding, s))
        return nn_conv.conv2d_transpose(inputs, self.kernel, stack(sizes + [self.filters]),
                                        strides=(1,) + self.strides + (1,), padding=self.padding,
                                        name="conv2d_transpose")

    def compute_output_shape(self, input_shape):
        _rank4(input_shape, self.name)
        rows, cols = (conv_utils.deconv_output_length(input_shape[axis], k, self.padding, s)
                      for axis, k, s in zip((1, 2), self.kernel_size, self.strides))
        return (input_shape[0], rows, cols, self.filters)

    def get_config(self):
        config = super().get_config()
        config.pop("dilation_rate")
        return config


class _Pooling2D(Layer):
    _op = _op_name = None

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.pool_size = conv_utils.normalize_tuple(pool_size, 2, "pool_size", cls)
        self.strides = conv_utils.normalize_tuple(self.pool_size if strides is None else strides, 2, "strides", cls)
        self.padding = conv_utils.normalize_padding(padding, cls)
        self.data_format = conv_utils.check_data_format(data_format, cls)

    def build(self, input_shape):
        _rank4(input_shape, self.name)

    def call(self, inputs, training=False):
        return getattr(nn_conv, self._op)(inputs, ksize=(1,) + self.pool_size + (1,),
                                          strides=(1,) + self.strides + (1,), padding=self.padding,
                                          name=self._op_name)

    def compute_output_shape(self, input_shape):
        _rank4(input_shape, self.name)
        rows, cols = (conv_utils.conv_output_length(input_shape[axis], k, self.padding, s)
                      for axis, k, s in zip((1, 2), self.pool_size, self.strides))
        return (input_shape[0], rows, cols, input_shape[3])

    def get_config(self):
        return dict(super().get_config(), pool_size=list(self.pool_size), strides=list(self.strides),
                    padding=self.padding, data_format=self.data_format)


class MaxPooling2D(_Pooling2D):
    _op, _op_name = "max_pool", "MaxPool"


class AveragePooling2D(_Pooling2D):
    """Padded cells ('same') are not counted in a window's mean (as TF)."""

    _op, _op_name = "avg_pool", "AvgPool"


class _GlobalPooling2D(Layer):
    _reduce = None

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = conv_utils.check_data_format(data_format, type(self).__name__)

    def build(self, input_shape):
        _rank4(input_shape, self.name)

    def call(self, inputs, training=False):
        return getattr(m, self._reduce)(inputs, axis=[1, 2])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[3])

    def get_config(self):
        return dict(super().get_config(), data_format=self.data_format)


class GlobalAveragePooling2D(_GlobalPooling2D):
    _reduce = "reduce_mean"


class GlobalMaxPooling2D(_GlobalPooling2D):
    _reduce = "reduce_max"


def _padding_pairs(padding, layer):
    """ZeroPadding2D's `padding`: int, (rows, cols), or ((top, bottom), (left, right))."""
    if isinstance(padding, numbers.Integral):
        return ((int(padding),) * 2,) * 2
    if not hasattr(padding, "__len__") or len(padding) != 2:
        raise ValueError(f"{layer}: `padding` should have two elements. Found: {padding!r}")
    pairs = []
    for value in padding:
        pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value)
        if len(pair) != 2 or not all(isinstance(p, numbers.Integral) and p >= 0 for p in pair):
            raise ValueError(f"{layer}: `padding` should be an int, a tuple of 2 ints or a tuple of 2 tuples of "
                             f"2 non-negative ints. Found: {padding!r}")
        pairs.append(tuple(int(p) for p in pair))
    return tuple(pairs)


class ZeroPadding2D(Layer):
    """Adds rows and columns of zeros around each image."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _padding_pairs(padding, type(self).__name__)
        self.data_format = conv_utils.check_data_format(data_format, type(self).__name__)

    def build(self, input_shape):
        _rank4(input_shape, self.name)

    def call(self, inputs, training=False):
        return pad(inputs, [[0, 0], list(self.padding[0]), list(self.padding[1]), [0, 0]])

    def compute_output_shape(self, input_shape):
        rows, cols = (None if input_shape[axis] is None else input_shape[axis] + sum(pair)
                      for axis, pair in zip((1, 2), self.padding))
        return (input_shape[0], rows, cols, input_shape[3])

    def get_config(self):
        return dict(super().get_config(), padding=[list(p) for p in self.padding], data_format=self.data_format)


Convolution2D = Conv2D
Convolution2DTranspose = Conv2DTranspose
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D

LAYER_CLASSES = {cls.__name__: cls for cls in (Conv2D, Conv2DTranspose, MaxPooling2D, AveragePooling2D,
                                               GlobalAveragePooling2D, GlobalMaxPooling2D, ZeroPadding2D)}
