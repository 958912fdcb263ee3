"""Keras metrics as graph functions: accuracy (binary / categorical / sparse
categorical, picked for `'accuracy'` or `'acc'` from the loss as Keras does),
mse and mae, plus user functions `(y_true, y_pred)`.

A metric's batch value is the mean of its per-sample values, computed inside
the same executable as the training (or evaluation) step; `Model.fit` then
averages batch values weighted by batch size, which gives the exact epoch
mean because every sample counts once.
"""
from __future__ import annotations

from ..api import math_ops as m
from ..api.array_ops import reshape
from ..api.convert import convert_to_tensor
from ..ir.types import float32, int64
from . import losses as losses_mod


def _float(x):
    return m.cast(x, float32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    y_pred = convert_to_tensor(y_pred)
    y_true = m.cast(convert_to_tensor(y_true), y_pred.dtype)
    predicted = m.cast(m.greater(y_pred, threshold), y_pred.dtype)
    return m.reduce_mean(_float(m.equal(y_true, predicted)), axis=-1)


def categorical_accuracy(y_true, y_pred):
    return _float(m.equal(m.argmax(y_true, axis=-1), m.argmax(y_pred, axis=-1)))


def sparse_categorical_accuracy(y_true, y_pred):
    y_true, y_pred = convert_to_tensor(y_true), convert_to_tensor(y_pred)
    if len(y_true.shape.dims) == len(y_pred.shape.dims):
        y_true = reshape(y_true, [-1])
    predicted = m.argmax(y_pred, axis=-1, output_type=int64)
    return _float(m.equal(m.cast(y_true, int64), predicted))


def mean_squared_error(y_true, y_pred):
    return losses_mod.mean_squared_error(y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    return losses_mod.mean_absolute_error(y_true, y_pred)


mse = mean_squared_error
mae = mean_absolute_error


class Metric:
    """A named per-sample function; `batch_value` builds the batch mean in the current graph."""

    def __init__(self, fn, name):
        self.fn, self.name = fn, name

    def batch_value(self, y_true, y_pred):
        return m.reduce_mean(self.fn(y_true, y_pred))

    def __repr__(self):
        return f"<keras metric {self.name}>"


class MeanMetricWrapper(Metric):
    """Keras' class form (`keras.metrics.SparseCategoricalAccuracy()`)."""

    fn_default = None
    name_default = None

    def __init__(self, name=None):
        super().__init__(type(self).fn_default, name or type(self).name_default)


class BinaryAccuracy(MeanMetricWrapper):
    name_default = "binary_accuracy"

    def __init__(self, name=None, threshold=0.5):
        Metric.__init__(self, lambda t, p: binary_accuracy(t, p, threshold), name or self.name_default)


class CategoricalAccuracy(MeanMetricWrapper):
    fn_default, name_default = staticmethod(categorical_accuracy), "categorical_accuracy"


class SparseCategoricalAccuracy(MeanMetricWrapper):
    fn_default, name_default = staticmethod(sparse_categorical_accuracy), "sparse_categorical_accuracy"


class MeanSquaredError(MeanMetricWrapper):
    fn_default, name_default = staticmethod(mean_squared_error), "mean_squared_error"


class MeanAbsoluteError(MeanMetricWrapper):
    fn_default, name_default = staticmethod(mean_absolute_error), "mean_absolute_error"


_FUNCTIONS = {"binary_accuracy": binary_accuracy, "categorical_accuracy": categorical_accuracy,
              "sparse_categorical_accuracy": sparse_categorical_accuracy,
              "mse": mean_squared_error, "mean_squared_error": mean_squared_error,
              "mae": mean_absolute_error, "mean_absolute_error": mean_absolute_error}


def accuracy_for(loss, output_shape):
    """The accuracy function Keras picks for 'accuracy': by the loss, else by the output's last dim."""
    kind = getattr(loss, "kind", "regression")
    if kind == "binary":
        threshold = 0.0 if getattr(loss, "from_logits", False) else 0.5
        return lambda t, p: binary_accuracy(t, p, threshold)
    if kind == "sparse":
        return sparse_categorical_accuracy
    if kind == "categorical":
        return categorical_accuracy
    last = output_shape[-1] if output_shape else None
    return binary_accuracy if last == 1 else categorical_accuracy


def get(identifier, loss=None, output_shape=None, custom_objects=None) -> Metric:
    """A name, a Metric object or a function -> a Metric whose name is the history key."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ("accuracy", "acc"):
            return Metric(accuracy_for(loss, output_shape), identifier)
        if key in _FUNCTIONS:
            return Metric(_FUNCTIONS[key], identifier)
        if custom_objects and identifier in custom_objects:
            return Metric(custom_objects[identifier], identifier)
        raise ValueError(f"Unknown metric: '{identifier}'. Known: accuracy, acc, {', '.join(sorted(_FUNCTIONS))}, "
                         f"or pass a function (y_true, y_pred) -> per-sample values.")
    if callable(identifier):
        return Metric(identifier, getattr(identifier, "__name__", "metric"))
    raise TypeError(f"Could not interpret metric identifier: {identifier!r}")


def serialize(identifier):
    """Metrics are saved as their names (objects as their name; functions need custom_objects)."""
    if isinstance(identifier, str):
        return identifier
    if isinstance(identifier, MeanMetricWrapper):
        return identifier.name if identifier.name in _FUNCTIONS else type(identifier).name_default
    return getattr(identifier, "name", None) or getattr(identifier, "__name__", "metric")


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.keras.metrics")  # PEP 562: a missing name says so
