"""`tf.metrics` (TF 1.x streaming metrics): `mean` and `accuracy`. Each returns (value, update_op) and keeps
its running `total` and `count` in LOCAL variables (also in METRIC_VARIABLES) under the metric's scope,
so `tf.local_variables_initializer()` resets them."""
from __future__ import annotations

from .api import math_ops as m
from .api.array_ops import ones_like, size, squeeze, zeros
from .api.convert import convert_to_tensor
from .api.losses_impl import _div_no_nan
from .api.variable_scope import variable_scope
from .api.variables import Variable
from .framework.graph import GraphKeys, get_default_graph
from .ir.types import float32

__all__ = ["accuracy", "mean"]


def _metric_variable(shape, dtype, name):
    return Variable(lambda: zeros(shape, dtype), trainable=False,
                    collections=[GraphKeys.LOCAL_VARIABLES, GraphKeys.METRIC_VARIABLES], name=name)


def _add_to(collections, value):
    for key in collections or []:
        get_default_graph().add_to_collection(key, value)


def _squeeze_last(t, reference):
    """Drops a trailing size-1 dimension that makes t one rank above reference (TF's squeezable dims)."""
    td, rd = t.shape.dims, reference.shape.dims
    if td is not None and rd is not None and len(td) == len(rd) + 1 and td[-1] == 1:
        return squeeze(t, [-1])
    return t


def mean(values, weights=None, metrics_collections=None, updates_collections=None, name=None):
    """The (weighted) mean of every value seen so far: value = total / count."""
    with variable_scope(name, default_name="mean"):
        values = m.cast(convert_to_tensor(values), float32)
        total = _metric_variable((), float32, "total")
        count = _metric_variable((), float32, "count")
        if weights is None:
            num_values = m.cast(size(values), float32)
        else:
            weights = _squeeze_last(m.cast(convert_to_tensor(weights), float32), values)
            weights = m.multiply(weights, ones_like(values))   # broadcast to the values' shape
            values = m.multiply(values, weights)
            num_values = m.reduce_sum(weights)
        update_total = total.assign_add(m.reduce_sum(values))
        with get_default_graph().control_dependencies([values]):
            update_count = count.assign_add(num_values)
        value = _div_no_nan(total.value(), m.maximum(count.value(), 0.0), name="value")
        update_op = _div_no_nan(update_total, m.maximum(update_count, 0.0), name="update_op")
        _add_to(metrics_collections, value)
        _add_to(updates_collections, update_op)
        return value, update_op


def accuracy(labels, predictions, weights=None, metrics_collections=None, updates_collections=None, name=None):
    """How often predictions == labels: (accuracy, update_op)."""
    labels = convert_to_tensor(labels)
    predictions = convert_to_tensor(predictions)
    predictions = _squeeze_last(predictions, labels)
    labels = _squeeze_last(labels, predictions)
    pd, ld = predictions.shape.dims, labels.shape.dims
    if pd is not None and ld is not None and (len(pd) != len(ld) or any(
            a is not None and b is not None and a != b for a, b in zip(pd, ld))):
        raise ValueError(f"Shapes {predictions.shape} and {labels.shape} are incompatible")
    if labels.dtype != predictions.dtype:
        predictions = m.cast(predictions, labels.dtype)
    is_correct = m.cast(m.equal(predictions, labels), float32)
    return mean(is_correct, weights, metrics_collections, updates_collections, name or "accuracy")


from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.metrics")  # PEP 562: a missing name says so
