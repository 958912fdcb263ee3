"""Keras losses as graph functions: mean squared/absolute error and the three
cross-entropies, by name (`'sparse_categorical_crossentropy'`) or as objects
(`SparseCategoricalCrossentropy(from_logits=True)`).

The functions (`mean_squared_error(y_true, y_pred)`, ...) return one value per
sample; a `Loss` object returns their batch mean. With probabilities
(`from_logits=False`) the predictions are clipped to [1e-7, 1 - 1e-7] as in
Keras; when the predictions come straight out of a softmax/sigmoid activation
the losses use that activation's logits instead (the stable formula, as
tf.keras does).
"""
from __future__ import annotations

from ..api import math_ops as m
from ..api import nn_ops
from ..api.array_ops import one_hot, reshape
from ..api.clip_ops import clip_by_value
from ..api.convert import convert_to_tensor
from ..api.run_checks import checked_labels
from ..ir.types import int32

EPSILON = 1e-7


def _pair(y_true, y_pred):
    y_pred = convert_to_tensor(y_pred)
    y_true = convert_to_tensor(y_true)
    if y_true.dtype != y_pred.dtype:
        y_true = m.cast(y_true, y_pred.dtype)
    return y_true, y_pred


def _logits(y_pred, kind):
    marked = getattr(y_pred, "_keras_logits", None)
    return marked[1] if marked is not None and marked[0] == kind else None


def mean_squared_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return m.reduce_mean(m.square(m.subtract(y_pred, y_true)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return m.reduce_mean(m.abs(m.subtract(y_pred, y_true)), axis=-1)


def binary_crossentropy(y_true, y_pred, from_logits=False):
    y_true, y_pred = _pair(y_true, y_pred)
    logits = y_pred if from_logits else _logits(y_pred, "sigmoid")
    if logits is not None:
        return m.reduce_mean(nn_ops.sigmoid_cross_entropy_with_logits(labels=y_true, logits=logits), axis=-1)
    p = clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)
    ll = m.add(m.multiply(y_true, m.log(p)), m.multiply(m.subtract(1.0, y_true), m.log(m.subtract(1.0, p))))
    return m.negative(m.reduce_mean(ll, axis=-1))


def _normalized_log(y_pred):
    p = m.truediv(y_pred, m.reduce_sum(y_pred, axis=-1, keepdims=True))
    return m.log(clip_by_value(p, EPSILON, 1.0 - EPSILON))


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    y_true, y_pred = _pair(y_true, y_pred)
    logits = y_pred if from_logits else _logits(y_pred, "softmax")
    if logits is not None:
        return nn_ops.softmax_cross_entropy_with_logits_v2(labels=y_true, logits=logits)
    return m.negative(m.reduce_sum(m.multiply(y_true, _normalized_log(y_pred)), axis=-1))


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    y_pred = convert_to_tensor(y_pred)
    y_true = convert_to_tensor(y_true)
    if y_true.shape.dims is not None and len(y_true.shape.dims) == len(y_pred.shape.dims):
        y_true = reshape(y_true, [-1])           # (batch, 1) labels, as Keras accepts
    if not y_true.dtype.is_integer:
        y_true = m.cast(y_true, int32)
    logits = y_pred if from_logits else _logits(y_pred, "softmax")
    if logits is not None:
        return nn_ops.sparse_softmax_cross_entropy_with_logits(labels=y_true, logits=logits)
    depth = y_pred.shape.dims[-1]
    # a label outside [0, classes) raises when the run executes, as in tf.keras (jitflow/ops/checks.py)
    mask = one_hot(checked_labels(y_true, depth), depth, dtype=y_pred.dtype)
    return m.negative(m.reduce_sum(m.multiply(mask, _normalized_log(y_pred)), axis=-1))


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error


class Loss:
    """`loss(y_true, y_pred)` -> the batch mean of `call`'s per-sample values."""

    kind = "regression"          # decides the 'accuracy' metric and the label placeholder

    def __init__(self, name=None, from_logits=False):
        self.name = name or _snake(type(self).__name__)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        raise TypeError(f"{type(self).__name__} must implement this method")

    def __call__(self, y_true, y_pred):
        return m.reduce_mean(self.call(y_true, y_pred))

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class MeanSquaredError(Loss):
    def __init__(self, name="mean_squared_error"):
        super().__init__(name)

    def call(self, y_true, y_pred):
        return mean_squared_error(y_true, y_pred)

    def get_config(self):
        return {"name": self.name}


class MeanAbsoluteError(MeanSquaredError):
    def __init__(self, name="mean_absolute_error"):
        Loss.__init__(self, name)

    def call(self, y_true, y_pred):
        return mean_absolute_error(y_true, y_pred)


class BinaryCrossentropy(Loss):
    kind = "binary"

    def __init__(self, from_logits=False, name="binary_crossentropy"):
        super().__init__(name, from_logits)

    def call(self, y_true, y_pred):
        return binary_crossentropy(y_true, y_pred, self.from_logits)


class CategoricalCrossentropy(Loss):
    kind = "categorical"

    def __init__(self, from_logits=False, name="categorical_crossentropy"):
        super().__init__(name, from_logits)

    def call(self, y_true, y_pred):
        return categorical_crossentropy(y_true, y_pred, self.from_logits)


class SparseCategoricalCrossentropy(Loss):
    kind = "sparse"

    def __init__(self, from_logits=False, name="sparse_categorical_crossentropy"):
        super().__init__(name, from_logits)

    def call(self, y_true, y_pred):
        return sparse_categorical_crossentropy(y_true, y_pred, self.from_logits)


class LossFunctionWrapper(Loss):
    """A user's `fn(y_true, y_pred)` returning per-sample (or any) values; the loss is their mean."""

    def __init__(self, fn, name=None):
        super().__init__(name or getattr(fn, "__name__", "loss"))
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


_BY_NAME = {"mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
            "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
            "binary_crossentropy": BinaryCrossentropy, "categorical_crossentropy": CategoricalCrossentropy,
            "sparse_categorical_crossentropy": SparseCategoricalCrossentropy}
_CLASSES = {cls.__name__: cls for cls in (MeanSquaredError, MeanAbsoluteError, BinaryCrossentropy,
                                          CategoricalCrossentropy, SparseCategoricalCrossentropy)}
_FUNCTIONS = {mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
              binary_crossentropy: BinaryCrossentropy, categorical_crossentropy: CategoricalCrossentropy,
              sparse_categorical_crossentropy: SparseCategoricalCrossentropy}


def _snake(name):
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


def get(identifier, custom_objects=None) -> Loss:
    """A name, a config dict, a Loss object or a function `(y_true, y_pred)` -> a Loss object."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if custom_objects and identifier in custom_objects:
            return get(custom_objects[identifier])
        try:
            return _BY_NAME[identifier.lower()]()
        except KeyError:
            raise ValueError(f"Unknown loss function: '{identifier}'. Known: {', '.join(sorted(_BY_NAME))}, "
                             f"or pass a function (y_true, y_pred) -> per-sample loss.") from None
    if isinstance(identifier, dict):
        return deserialize(identifier, custom_objects)
    if callable(identifier) and identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise TypeError(f"Could not interpret loss identifier: {identifier!r}")


def serialize(loss: Loss):
    if isinstance(loss, LossFunctionWrapper):
        return loss.name          # a custom function: load_model needs custom_objects={name: fn}
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config, custom_objects=None):
    classes = dict(_CLASSES, **(custom_objects or {}))
    try:
        cls = classes[config["class_name"]]
    except KeyError:
        raise ValueError(f"Unknown loss class {config.get('class_name')!r}: pass it in custom_objects") from None
    return cls(**config.get("config", {}))


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.keras.losses")  # PEP 562: a missing name says so
