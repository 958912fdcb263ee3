"""Keras activations by name (`'relu'`, `'softmax'`, ...) as graph functions.

`softmax` and `sigmoid` remember their input on the output tensor
(`_keras_logits`), so the cross-entropy losses can use the numerically stable
logits formula when they see such an output, as tf.keras does.
"""
from __future__ import annotations

from ..api import math_ops as m
from ..api import math_extra, nn_ops


def linear(x):
    return x


def relu(x):
    return m.relu(x)


def sigmoid(x):
    out = m.sigmoid(x)
    out._keras_logits = ("sigmoid", x)
    return out


def softmax(x):
    out = nn_ops.softmax(x)
    out._keras_logits = ("softmax", x)
    return out


def tanh(x):
    return m.tanh(x)


def softplus(x):
    return math_extra.softplus(x)


def elu(x):
    return math_extra.elu(x)


def selu(x):
    return math_extra.selu(x)


def swish(x):
    return m.multiply(x, m.sigmoid(x))


def leaky_relu(x, alpha=0.2):
    return nn_ops.leaky_relu(x, alpha)


_BY_NAME = {"linear": linear, "relu": relu, "sigmoid": sigmoid, "softmax": softmax, "tanh": tanh,
            "softplus": softplus, "elu": elu, "selu": selu, "swish": swish, "silu": swish,
            "leaky_relu": leaky_relu}
from .recurrent_math import hard_sigmoid  # noqa: E402  (TF 1.15 LSTM/GRU recurrent_activation default)
_BY_NAME["hard_sigmoid"] = hard_sigmoid


def get(identifier):
    """A name, None (linear) or a callable -> a callable on graph tensors."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        try:
            return _BY_NAME[identifier.lower()]
        except KeyError:
            raise ValueError(f"Unknown activation function: '{identifier}'. Known: "
                             f"{', '.join(sorted(_BY_NAME))}, or pass a callable.") from None
    if callable(identifier):
        return identifier
    raise TypeError(f"Could not interpret activation function identifier: {identifier!r}")


def serialize(fn):
    """The name of a known activation; a custom callable serializes as its __name__."""
    for name, known in _BY_NAME.items():
        if fn is known:
            return name
    return getattr(fn, "__name__", repr(fn))


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.keras.activations")  # PEP 562: a missing name says so
