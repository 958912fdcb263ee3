"""Keras layers on [batch, steps, channels] sequences: `MaxPooling1D`/`AveragePooling1D` (2-D pooling with a
height of 1), `GlobalAveragePooling1D`/`GlobalMaxPooling1D`, `SpatialDropout1D` (drops whole channels of a
sample in training), `Cropping1D` and `UpSampling1D`; channels_last only (as the other jitflow.keras layers)."""
from __future__ import annotations

from ..api import conv_layers as conv_utils
from ..api import math_ops as m
from ..api import nn_conv
from ..api.array_extra import tile
from ..api.array_ops import expand_dims, reshape, squeeze
from ..api.random_ops import get_seed
from .base_layer import Layer
from .conv_layers import _rank4


def _one(value, arg, cls):
    return conv_utils.normalize_tuple(value, 1, arg, cls)[0]


class _Pooling1D(Layer):
    _op = _op_name = None

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.pool_size = _one(pool_size, "pool_size", cls)
        self.strides = _one(self.pool_size if strides is None else strides, "strides", cls)
        self.padding = conv_utils.normalize_padding(padding, cls)
        self.data_format = conv_utils.check_data_format(data_format, cls)

    def build(self, input_shape):
        _rank4(input_shape, self.name, ndim=3)

    def call(self, inputs, training=False):
        pooled = getattr(nn_conv, self._op)(expand_dims(inputs, 1), ksize=(1, 1, self.pool_size, 1),
                                            strides=(1, 1, self.strides, 1), padding=self.padding.upper(),
                                            name=self._op_name)
        return squeeze(pooled, [1])

    def compute_output_shape(self, input_shape):
        _rank4(input_shape, self.name, ndim=3)
        steps = conv_utils.conv_output_length(input_shape[1], self.pool_size, self.padding, self.strides)
        return (input_shape[0], steps, input_shape[2])

    def get_config(self):
        return dict(super().get_config(), pool_size=[self.pool_size], strides=[self.strides], padding=self.padding,
                    data_format=self.data_format)


class MaxPooling1D(_Pooling1D):
    _op, _op_name = "max_pool", "MaxPool"


class AveragePooling1D(_Pooling1D):
    """Padded steps ('same') are not counted in a window's mean (as TF)."""

    _op, _op_name = "avg_pool", "AvgPool"


class _GlobalPooling1D(Layer):
    _reduce = None

    def __init__(self, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.data_format = conv_utils.check_data_format(data_format, type(self).__name__)

    def build(self, input_shape):
        _rank4(input_shape, self.name, ndim=3)

    def call(self, inputs, training=False):
        return getattr(m, self._reduce)(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return dict(super().get_config(), data_format=self.data_format)


class GlobalAveragePooling1D(_GlobalPooling1D):
    _reduce = "reduce_mean"


class GlobalMaxPooling1D(_GlobalPooling1D):
    _reduce = "reduce_max"


class SpatialDropout1D(Layer):
    """Dropout of whole channels: one keep/drop draw per (sample, channel), shared by all steps; the kept
    values are scaled by 1/(1-rate). Inference passes the inputs through."""

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"SpatialDropout1D: rate must be in [0, 1), got {rate!r}")

    def build(self, input_shape):
        _rank4(input_shape, self.name, ndim=3)

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        graph = inputs.graph
        with graph.name_scope("spatial_dropout"):
            seed1, seed2 = get_seed(None)
            first_step = inputs[:, :1, :]              # [batch, 1, channels]: the noise shape (batch is dynamic)
            uniform = graph.create_op("random_uniform", [first_step],
                                      {"shape": None, "dtype": inputs.dtype, "seed": seed1, "seed2": seed2},
                                      name="random_uniform").outputs[0]
            keep = 1.0 - self.rate
            mask = m.cast(m.less(uniform, keep), inputs.dtype)
            out = m.multiply(m.multiply(inputs, 1.0 / keep), mask)
        out.set_shape(inputs.shape)
        return out

    def get_config(self):
        return dict(super().get_config(), rate=self.rate)


class Cropping1D(Layer):
    """Removes `cropping` = (start, end) steps (an int crops both ends)."""

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        if isinstance(cropping, int):
            cropping = (cropping, cropping)
        cropping = tuple(int(c) for c in cropping)
        if len(cropping) != 2 or min(cropping) < 0:
            raise ValueError(f"`cropping` should be a tuple of 2 non-negative ints, found: {cropping}")
        self.cropping = cropping

    def build(self, input_shape):
        _rank4(input_shape, self.name, ndim=3)
        if input_shape[1] is not None and sum(self.cropping) >= input_shape[1]:
            raise ValueError(f"Cropping1D layer {self.name}: cropping {self.cropping} leaves no steps of "
                             f"inputs of shape {tuple(input_shape)}")

    def call(self, inputs, training=False):
        start, end = self.cropping
        return inputs[:, start:-end, :] if end else inputs[:, start:, :]

    def compute_output_shape(self, input_shape):
        steps = None if input_shape[1] is None else input_shape[1] - sum(self.cropping)
        return (input_shape[0], steps, input_shape[2])

    def get_config(self):
        return dict(super().get_config(), cropping=list(self.cropping))


class UpSampling1D(Layer):
    """Repeats each step `size` times along the steps axis."""

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def build(self, input_shape):
        _rank4(input_shape, self.name, ndim=3)
        if input_shape[1] is None or input_shape[2] is None:
            raise ValueError(f"UpSampling1D layer {self.name}: jitflow needs the steps and channels of its inputs "
                             f"to be known, got shape {tuple(input_shape)}")

    def call(self, inputs, training=False):
        _, steps, channels = inputs.shape.dims
        repeated = tile(expand_dims(inputs, 2), [1, 1, self.size, 1])
        return reshape(repeated, [-1, steps * self.size, channels])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None if input_shape[1] is None else input_shape[1] * self.size, input_shape[2])

    def get_config(self):
        return dict(super().get_config(), size=self.size)


LAYER_CLASSES = {cls.__name__: cls for cls in (MaxPooling1D, AveragePooling1D, GlobalAveragePooling1D,
                                               GlobalMaxPooling1D, SpatialDropout1D, Cropping1D, UpSampling1D)}
