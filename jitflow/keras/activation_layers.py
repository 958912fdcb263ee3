"""Keras advanced activation layers: `LeakyReLU` (alpha=0.3), `PReLU`, `ELU`, `ReLU` (max_value,
negative_slope, threshold), `Softmax` (axis) and `ThresholdedReLU` (theta), with TF 1.x Keras defaults,
argument checks and configs; each one is a few existing graph ops (saved and loaded like other layers)."""
from __future__ import annotations

from ..api import math_extra
from ..api import math_ops as m
from ..api import nn_ops
from ..errors import UnsupportedError
from . import initializers, regularizers
from .base_layer import Layer


class LeakyReLU(Layer):
    """`x` for x > 0, `alpha * x` otherwise (Keras' default alpha is 0.3, tf.nn.leaky_relu's 0.2)."""

    def __init__(self, alpha=0.3, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs, training=False):
        # TF's LeakyRelu kernel: x > 0 ? x : alpha * x (its gradient at 0 is alpha)
        return m.where(m.greater(inputs, 0.0), inputs, m.multiply(inputs, self.alpha), name="LeakyRelu")

    def get_config(self):
        return dict(super().get_config(), alpha=self.alpha)


class ELU(Layer):
    """`x` for x > 0, `alpha * (exp(x) - 1)` otherwise."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs, training=False):
        out = math_extra.elu(inputs)
        if self.alpha == 1.0:
            return out
        return m.where(m.greater(inputs, 0.0), out, m.multiply(out, self.alpha))

    def get_config(self):
        return dict(super().get_config(), alpha=self.alpha)


class ReLU(Layer):
    """max_value if x >= max_value; x if threshold <= x < max_value; negative_slope * (x - threshold) otherwise."""

    def __init__(self, max_value=None, negative_slope=0, threshold=0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0.0:
            raise ValueError(f"max_value of Relu layer cannot be negative value: {max_value}")
        if negative_slope < 0.0:
            raise ValueError(f"negative_slope of Relu layer cannot be negative value: {negative_slope}")
        if threshold is None:
            raise ValueError("threshold of Relu layer cannot be None. Required a float")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = float(negative_slope)
        self.threshold = float(threshold)

    def call(self, inputs, training=False):
        # Keras' backend.relu, step by step (so a negative threshold behaves as in TF too)
        if self.threshold != 0.0:
            out = m.multiply(inputs, m.cast(m.greater(inputs, self.threshold), inputs.dtype))
        else:
            out = m.relu(inputs)
        if self.max_value is not None:
            out = m.minimum(m.maximum(out, 0.0), self.max_value)
        if self.negative_slope != 0.0:
            below = m.relu(m.negative(m.subtract(inputs, self.threshold)))     # relu(threshold - x)
            out = m.subtract(out, m.multiply(below, self.negative_slope))
        return out

    def get_config(self):
        return dict(super().get_config(), max_value=self.max_value, negative_slope=self.negative_slope,
                    threshold=self.threshold)


class Softmax(Layer):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs, training=False):
        out = nn_ops.softmax(inputs, axis=self.axis)
        if self.axis == -1 or self.axis == len(inputs.shape.dims) - 1:
            out._keras_logits = ("softmax", inputs)   # the stable cross-entropy path (keras/activations.py)
        return out

    def get_config(self):
        return dict(super().get_config(), axis=self.axis)


class ThresholdedReLU(Layer):
    """`x` for x > theta, 0 otherwise."""

    def __init__(self, theta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.theta = float(theta)

    def call(self, inputs, training=False):
        return m.multiply(inputs, m.cast(m.greater(inputs, self.theta), inputs.dtype))

    def get_config(self):
        return dict(super().get_config(), theta=self.theta)


class PReLU(Layer):
    """`x` for x >= 0, `alpha * x` otherwise, with a learned `alpha` per input element (shared along
    `shared_axes`, 1-based over the non-batch axes as in Keras)."""

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        if alpha_constraint is not None:
            raise UnsupportedError("PReLU: the `alpha_constraint` argument is not supported by jitflow.keras")
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        if shared_axes is None:
            self.shared_axes = None
        elif isinstance(shared_axes, (list, tuple)):
            self.shared_axes = [int(a) for a in shared_axes]
        else:
            self.shared_axes = [int(shared_axes)]

    def build(self, input_shape):
        param_shape = list(input_shape[1:])
        for axis in self.shared_axes or []:
            if not 1 <= axis < len(input_shape):
                raise ValueError(f"PReLU layer {self.name}: shared axis {axis} is out of range for inputs of "
                                 f"shape {tuple(input_shape)}")
            param_shape[axis - 1] = 1
        if any(d is None for d in param_shape):
            raise ValueError(f"PReLU layer {self.name}: the non-shared dimensions of its inputs must be known, "
                             f"got shape {tuple(input_shape)}")
        self.alpha = self.add_weight("alpha", param_shape, self.alpha_initializer, self.alpha_regularizer)

    def call(self, inputs, training=False):
        positive = m.relu(inputs)
        negative = m.multiply(self.alpha, m.subtract(inputs, m.abs(inputs)))
        return m.add(positive, m.multiply(negative, 0.5))

    def get_config(self):
        return dict(super().get_config(), alpha_initializer=initializers.serialize(self.alpha_initializer),
                    alpha_regularizer=regularizers.serialize(self.alpha_regularizer), alpha_constraint=None,
                    shared_axes=self.shared_axes)


LAYER_CLASSES = {cls.__name__: cls for cls in (LeakyReLU, ELU, ReLU, Softmax, ThresholdedReLU, PReLU)}
