"""Keras layers: `InputLayer`/`Input`, `Dense`, `Flatten`, `Dropout`,
`BatchNormalization`, `Activation`, `Reshape`.

Each `call(inputs, training)` adds graph ops to the owning model's graph;
the model calls every layer twice (training=True for the training step,
training=False for evaluation and prediction) on the same Variables, so
Dropout is active and BatchNormalization uses batch statistics only in the
training executable.
"""
from __future__ import annotations

import numpy as np

from ..api import math_ops as m
from ..api import nn_ops
from ..api.array_ops import reshape
from . import activations, initializers, regularizers
from .base_layer import Layer, _shape_tuple


class InputLayer(Layer):
    """The model's input description; `keras.Input(shape=(8, 8))` makes one."""

    def __init__(self, input_shape=None, batch_size=None, name=None, batch_input_shape=None, dtype=None,
                 **kwargs):
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (batch_size,) + _shape_tuple(input_shape)
        super().__init__(name=name, batch_input_shape=batch_input_shape, dtype=dtype, **kwargs)

    @property
    def shape(self):
        return self._batch_input_shape


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None):  # noqa: N802 (Keras' name)
    """`keras.Input(shape=(8, 8))`: put it first in `Sequential([...])` to give the input shape."""
    if shape is None and batch_shape is None:
        raise ValueError("keras.Input needs shape=(...) (without the batch dimension)")
    return InputLayer(input_shape=shape, batch_size=batch_size, name=name, dtype=dtype,
                      batch_input_shape=batch_shape)


class Dense(Layer):
    """`activation(inputs @ kernel + bias)`; on inputs of rank > 2 it acts on the last axis."""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        if self.units <= 0:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        last = input_shape[-1]
        if last is None:
            raise ValueError(f"Dense layer {self.name}: the last dimension of its inputs must be known, got "
                             f"shape {input_shape}")
        self.kernel = self.add_weight("kernel", (last, self.units), self.kernel_initializer,
                                      self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer) \
            if self.use_bias else None

    def call(self, inputs, training=False):
        dims = inputs.shape.dims
        if len(dims) == 2:
            outputs = m.matmul(inputs, self.kernel)
        else:
            flat = m.matmul(reshape(inputs, [-1, dims[-1]]), self.kernel)
            outputs = reshape(flat, [-1] + list(dims[1:-1]) + [self.units])
        if self.bias is not None:
            outputs = m.add(outputs, self.bias, name="BiasAdd")
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return dict(super().get_config(), units=self.units, activation=activations.serialize(self.activation),
                    use_bias=self.use_bias,
                    kernel_initializer=initializers.serialize(self.kernel_initializer) or "glorot_uniform",
                    bias_initializer=initializers.serialize(self.bias_initializer) or "zeros",
                    kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                    bias_regularizer=regularizers.serialize(self.bias_regularizer))


class Flatten(Layer):
    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)

    def call(self, inputs, training=False):
        return reshape(inputs, [-1, self._size(inputs.shape.dims)])

    def _size(self, dims):
        if any(d is None for d in dims[1:]):
            raise ValueError(f"Flatten layer {self.name}: all non-batch dimensions must be known, got {dims}")
        return int(np.prod(dims[1:], dtype=np.int64))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._size(input_shape))


class Activation(Layer):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs, training=False):
        return self.activation(inputs)

    def get_config(self):
        return dict(super().get_config(), activation=activations.serialize(self.activation))


class Reshape(Layer):
    """Reshapes each sample to `target_shape` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def call(self, inputs, training=False):
        return reshape(inputs, [-1] + list(self.compute_output_shape(tuple(inputs.shape.dims))[1:]))

    def compute_output_shape(self, input_shape):
        target = list(self.target_shape)
        if -1 in target:
            known = int(np.prod([d for d in target if d != -1], dtype=np.int64))
            size = int(np.prod(input_shape[1:], dtype=np.int64))
            if known == 0 or size % known:
                raise ValueError(f"Reshape layer {self.name}: cannot reshape {input_shape[1:]} to {self.target_shape}")
            target[target.index(-1)] = size // known
        elif int(np.prod(target, dtype=np.int64)) != int(np.prod(input_shape[1:], dtype=np.int64)):
            raise ValueError(f"Reshape layer {self.name}: total size of {input_shape[1:]} differs from "
                             f"target_shape {self.target_shape}")
        return (input_shape[0],) + tuple(target)

    def get_config(self):
        return dict(super().get_config(), target_shape=list(self.target_shape))


class Dropout(Layer):
    """Zeroes a `rate` fraction of the inputs and scales the rest by 1/(1-rate), in training only."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        self.noise_shape, self.seed = noise_shape, seed

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        return nn_ops.dropout(inputs, rate=self.rate, noise_shape=self.noise_shape, seed=self.seed)

    def get_config(self):
        return dict(super().get_config(), rate=self.rate, noise_shape=self.noise_shape, seed=self.seed)


class BatchNormalization(Layer):
    """Training: normalizes with the batch mean and (biased) variance and updates
    `moving = moving * momentum + batch * (1 - momentum)` in the same executable;
    inference: normalizes with the moving statistics."""

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None, gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.initializer_names = {"beta": beta_initializer, "gamma": gamma_initializer,
                                  "moving_mean": moving_mean_initializer,
                                  "moving_variance": moving_variance_initializer}
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def build(self, input_shape):
        if not -len(input_shape) <= self.axis < len(input_shape):      # tf.keras: never wrapped
            raise ValueError(f"Invalid axis: {self.axis} (BatchNormalization {self.name} on inputs of rank "
                             f"{len(input_shape)})")
        axis = self.axis % len(input_shape)
        channels = input_shape[axis]
        if channels is None:
            raise ValueError(f"BatchNormalization {self.name}: axis {self.axis} of its inputs must be known")
        init = self.initializer_names
        self.gamma = self.add_weight("gamma", (channels,), init["gamma"], self.gamma_regularizer) \
            if self.scale else None
        self.beta = self.add_weight("beta", (channels,), init["beta"], self.beta_regularizer) if self.center else None
        self.moving_mean = self.add_weight("moving_mean", (channels,), init["moving_mean"], trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (channels,), init["moving_variance"],
                                               trainable=False)

    def call(self, inputs, training=False):
        rank = len(inputs.shape.dims)
        axis = self.axis % rank
        reduce_axes = [a for a in range(rank) if a != axis]
        broadcast = [1] * rank
        broadcast[axis] = inputs.shape.dims[axis]

        def shaped(t):
            return t if t is None or axis == rank - 1 else reshape(t, broadcast)
        gamma = shaped(self.gamma.value()) if self.gamma is not None else None
        beta = shaped(self.beta.value()) if self.beta is not None else None
        if training:
            mean, variance = nn_ops.moments(inputs, reduce_axes)
            keep = 1.0 - self.momentum
            self.updates = [
                self.moving_mean.assign(m.add(m.multiply(self.moving_mean.value(), self.momentum),
                                              m.multiply(mean, keep))).op,
                self.moving_variance.assign(m.add(m.multiply(self.moving_variance.value(), self.momentum),
                                                  m.multiply(variance, keep))).op]
        else:
            mean, variance = self.moving_mean.value(), self.moving_variance.value()
        return nn_ops.batch_normalization(inputs, shaped(mean), shaped(variance), beta, gamma, self.epsilon)

    def get_config(self):
        init = {f"{k}_initializer": v if isinstance(v, str) else (initializers.serialize(v) or None)
                for k, v in self.initializer_names.items()}
        init = {k: v for k, v in init.items() if v is not None}
        return dict(super().get_config(), axis=self.axis, momentum=self.momentum, epsilon=self.epsilon,
                    center=self.center, scale=self.scale,
                    beta_regularizer=regularizers.serialize(self.beta_regularizer),
                    gamma_regularizer=regularizers.serialize(self.gamma_regularizer), **init)


LAYER_CLASSES = {cls.__name__: cls for cls in (InputLayer, Dense, Flatten, Activation, Reshape, Dropout,
                                               BatchNormalization)}
from .recurrent import GRU, LSTM, SimpleRNN  # noqa: E402,F401  (jitflow/keras/recurrent.py)
from .recurrent_wrappers import Bidirectional, Embedding, TimeDistributed  # noqa: E402,F401
from . import recurrent as _recurrent, recurrent_wrappers as _recurrent_wrappers  # noqa: E402
LAYER_CLASSES.update(_recurrent.LAYER_CLASSES, **_recurrent_wrappers.LAYER_CLASSES)
from .conv_layers import (AveragePooling2D, AvgPool2D, Conv2D, Conv2DTranspose, Convolution2D,  # noqa: E402,F401
                          Convolution2DTranspose, GlobalAveragePooling2D, GlobalAvgPool2D, GlobalMaxPool2D,
                          GlobalMaxPooling2D, MaxPool2D, MaxPooling2D, ZeroPadding2D)
from . import conv_layers as _conv_layers  # noqa: E402  (jitflow/keras/conv_layers.py)
LAYER_CLASSES.update(_conv_layers.LAYER_CLASSES)
from .conv1d import Conv1D, Convolution1D  # noqa: E402,F401  (jitflow/keras/conv1d.py)
from . import conv1d as _conv1d  # noqa: E402
LAYER_CLASSES.update(_conv1d.LAYER_CLASSES)
from .repeat_vector import RepeatVector  # noqa: E402,F401  (jitflow/keras/repeat_vector.py)
from . import repeat_vector as _repeat_vector  # noqa: E402
LAYER_CLASSES.update(_repeat_vector.LAYER_CLASSES)
from .activation_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax, ThresholdedReLU  # noqa: E402,F401
from .layers_1d import (AveragePooling1D, Cropping1D, GlobalAveragePooling1D, GlobalMaxPooling1D,  # noqa: E402,F401
                        MaxPooling1D, SpatialDropout1D, UpSampling1D)
from .lambda_layer import Lambda  # noqa: E402,F401
from . import activation_layers as _activation_layers, layers_1d as _layers_1d  # noqa: E402
from . import lambda_layer as _lambda_layer  # noqa: E402
LAYER_CLASSES.update(_activation_layers.LAYER_CLASSES, **_layers_1d.LAYER_CLASSES, **_lambda_layer.LAYER_CLASSES)
MaxPool1D, AvgPool1D, GlobalAvgPool1D, GlobalMaxPool1D = (MaxPooling1D, AveragePooling1D,  # noqa: E402 (aliases)
                                                          GlobalAveragePooling1D, GlobalMaxPooling1D)
from .merge import (Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add, average,  # noqa: E402,F401
                    concatenate, maximum, minimum, multiply, subtract)


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.keras.layers")  # PEP 562: a missing name says so
