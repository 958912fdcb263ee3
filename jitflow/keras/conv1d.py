"""Keras `Conv1D` (`Convolution1D`): `activation(conv1d(inputs, kernel) + bias)` on [batch, steps, channels]
inputs, kernel [kernel_size, in, filters]. Keras' Conv2D (jitflow/keras/conv_layers.py) with a height of 1:
the same arguments, weights, checks and config, running `tf.nn.conv1d`; saved and loaded like the others."""
from __future__ import annotations

from ..api import conv_layers as conv_utils
from ..api import nn_conv
from .conv_layers import Conv2D, _rank4


class Conv1D(Conv2D):
    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        if isinstance(padding, str) and padding.lower() == "causal":
            from ..errors import UnsupportedError
            raise UnsupportedError("Conv1D: padding='causal' is not supported by jitflow.keras")
        one = [conv_utils.normalize_tuple(v, 1, arg, "Conv1D")[0] for v, arg in
               ((kernel_size, "kernel_size"), (strides, "strides"), (dilation_rate, "dilation_rate"))]
        super().__init__(filters, (1, one[0]), strides=(1, one[1]), padding=padding, data_format=data_format,
                         dilation_rate=(1, one[2]), activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint, **kwargs)
        self.kernel_size, self.strides, self.dilation_rate = (one[0],), (one[1],), (one[2],)

    def build(self, input_shape):
        _rank4(input_shape, self.name, ndim=3)
        super().build((input_shape[0], 1) + tuple(input_shape[1:]))

    def convolve(self, inputs):
        return nn_conv.conv1d(inputs, self.kernel, self.strides[0], self.padding.upper(),
                              dilations=self.dilation_rate[0], name="conv1d")

    def compute_output_shape(self, input_shape):
        _rank4(input_shape, self.name, ndim=3)
        steps = conv_utils.conv_output_length(input_shape[1], self.kernel_size[0], self.padding, self.strides[0],
                                              self.dilation_rate[0])
        return (input_shape[0], steps, self.filters)


Convolution1D = Conv1D
LAYER_CLASSES = {"Conv1D": Conv1D}
