"""`tf.layers.Conv1D` / `Convolution1D` and `tf.layers.conv1d` as in TF 1.x: a 1-D convolution over NWC
inputs, `activation(conv1d(inputs, kernel) + bias)`, with TF's variable names (`conv1d/kernel`
[kernel_size, in_channels, filters], `conv1d/bias`) and initializers. It shares Conv2D's arguments,
weights and checks (jitflow/api/conv_layers.py `_Conv`, with a height of 1) and runs `tf.nn.conv1d`."""
from __future__ import annotations

from . import nn_conv
from .conv_layers import _Conv, _rank4, normalize_tuple
from .init_ops import zeros_initializer


class Conv1D(_Conv):
    _base_name = "conv1d"

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format="channels_last",
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer=zeros_initializer(), kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, trainable=True,
                 name=None, **kwargs):
        one = [normalize_tuple(v, 1, arg, "Conv1D")[0] for v, arg in
               ((kernel_size, "kernel_size"), (strides, "strides"), (dilation_rate, "dilation_rate"))]
        super().__init__(filters, (1, one[0]), strides=(1, one[1]), padding=padding, data_format=data_format,
                         dilation_rate=(1, one[2]), activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint, trainable=trainable, name=name, **kwargs)
        self.kernel_size, self.strides, self.dilation_rate = (one[0],), (one[1],), (one[2],)

    def kernel_shape(self, channels):
        return self.kernel_size + (channels, self.filters)

    def build(self, input_shape):
        _rank4(input_shape, self.name, ndim=3)
        padded = type(input_shape)([input_shape.dims[0], 1] + list(input_shape.dims[1:]))
        super().build(padded)

    def call(self, inputs):
        dims = _rank4(inputs.shape, self.name, ndim=3)
        if int(dims[-1]) != self.input_channels:
            raise ValueError(f"Conv1D {self.name}: inputs have {dims[-1]} channels, the kernel expects "
                             f"{self.input_channels}")
        outputs = nn_conv.conv1d(inputs, self.kernel, self.strides[0], self.padding.upper(),
                                 dilations=self.dilation_rate[0], name="conv1d")
        return self.finish(outputs)


Convolution1D = Conv1D


def conv1d(inputs, filters, kernel_size, strides=1, padding="valid", data_format="channels_last", dilation_rate=1,
           activation=None, use_bias=True, kernel_initializer=None, bias_initializer=zeros_initializer(),
           kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
           bias_constraint=None, trainable=True, name=None, reuse=None):
    layer = Conv1D(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                   dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                   kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                   kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                   activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                   bias_constraint=bias_constraint, trainable=trainable, name=name, _reuse=reuse)
    return layer(inputs)
