"""`tf.layers.MaxPooling1D` / `AveragePooling1D` (and `max_pooling1d` / `average_pooling1d`): the 2-D
pooling ops on [batch, 1, steps, channels], as TF 1.x itself computes them."""
from __future__ import annotations

from . import nn_conv
from .array_ops import expand_dims, squeeze
from .conv_layers import _rank4, check_data_format, normalize_padding, normalize_tuple
from .core_layers import Layer, _layer_kwargs


class _Pooling1D(Layer):
    _op = None

    def __init__(self, pool_size, strides, padding="valid", data_format="channels_last", name=None, **kwargs):
        super().__init__(name=name, **_layer_kwargs(kwargs))
        layer = type(self).__name__
        self.pool_size = normalize_tuple(pool_size, 1, "pool_size", layer)
        self.strides = normalize_tuple(self.pool_size if strides is None else strides, 1, "strides", layer)
        self.padding = normalize_padding(padding, layer)
        self.data_format = check_data_format(data_format, layer)

    def call(self, inputs):
        _rank4(inputs.shape, type(self).__name__, ndim=3)
        pool = getattr(nn_conv, self._op)
        pooled = pool(expand_dims(inputs, 1), ksize=(1, 1) + self.pool_size + (1,),
                      strides=(1, 1) + self.strides + (1,), padding=self.padding, name=self._op_name)
        return squeeze(pooled, [1])


class MaxPooling1D(_Pooling1D):
    """Max over `pool_size` steps every `strides` steps of [batch, steps, channels]."""

    _base_name, _op, _op_name = "max_pooling1d", "max_pool", "MaxPool"


class AveragePooling1D(_Pooling1D):
    """Mean over `pool_size` steps every `strides` steps; with 'same' padding, padded steps are not counted."""

    _base_name, _op, _op_name = "average_pooling1d", "avg_pool", "AvgPool"


MaxPool1D = MaxPooling1D
AvgPool1D = AveragePooling1D


def max_pooling1d(inputs, pool_size, strides, padding="valid", data_format="channels_last", name=None):
    return MaxPooling1D(pool_size, strides, padding=padding, data_format=data_format, name=name)(inputs)


def average_pooling1d(inputs, pool_size, strides, padding="valid", data_format="channels_last", name=None):
    return AveragePooling1D(pool_size, strides, padding=padding, data_format=data_format, name=name)(inputs)
