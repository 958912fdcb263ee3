"""`tf.losses` as in TF 1.x: the per-element loss functions, `compute_weighted_loss` with its `weights`
and `Reduction`s, the loss collections (`add_loss`, `get_losses`, `get_total_loss`) and the regularization
sums (`get_regularization_loss(es)`). Every loss is built from registry ops; the reduced loss is added
to `loss_collection` (default `GraphKeys.LOSSES`)."""
from __future__ import annotations

from ..framework.graph import GraphKeys, get_default_graph
from . import math_ops as m
from .array_ops import constant, ones_like, squeeze, zeros_like
from .convert import convert_to_tensor


class Reduction:
    """Types of loss reduction (TF 1.x `tf.losses.Reduction`)."""
    NONE = "none"
    SUM = "weighted_sum"
    SUM_OVER_BATCH_SIZE = "weighted_sum_over_batch_size"
    MEAN = "weighted_mean"
    SUM_BY_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights"
    SUM_OVER_NONZERO_WEIGHTS = SUM_BY_NONZERO_WEIGHTS

    @classmethod
    def all(cls):
        return (cls.NONE, cls.SUM, cls.MEAN, cls.SUM_OVER_BATCH_SIZE, cls.SUM_OVER_NONZERO_WEIGHTS,
                cls.SUM_BY_NONZERO_WEIGHTS)

    @classmethod
    def validate(cls, key):
        if key not in cls.all():
            raise ValueError(f"Invalid Reduction Key {key}.")


def _scope(scope, default):
    return get_default_graph().name_scope(scope or default)


def _div_no_nan(numerator, denominator, name=None):
    """numerator / denominator, 0 where denominator == 0 (TF's div_no_nan)."""
    zero = m.equal(denominator, 0.0)
    safe = m.where(zero, ones_like(denominator), denominator)
    return m.where(zero, zeros_like(numerator), m.truediv(numerator, safe), name=name)


def _is_python_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _num_elements(losses):
    from .array_ops import size
    return m.cast(size(losses), losses.dtype)


def _num_present(losses, weights):
    """How many elements of losses have a nonzero (broadcast) weight."""
    if _is_python_number(weights) and weights != 0.0:
        return _num_elements(losses)
    with get_default_graph().name_scope("num_present"):
        weights = convert_to_tensor(weights, dtype=losses.dtype) if _is_python_number(weights) \
            else m.cast(convert_to_tensor(weights), losses.dtype)
        present = m.where(m.equal(weights, 0.0), zeros_like(weights), ones_like(weights))
        present = m.multiply(present, ones_like(losses))   # broadcast to the losses' shape
        return m.reduce_sum(present)


def _check_weights(losses, weights):
    """TF's assert_broadcastable at graph-building time: weights is a scalar, or has the rank of losses
    with each (known) dimension 1 or equal to the losses' dimension."""
    if _is_python_number(weights):
        return
    w, l_dims = convert_to_tensor(weights).shape.dims, losses.shape.dims
    if w is None or l_dims is None or len(w) == 0:
        return
    bad = len(w) != len(l_dims) or any(a is not None and b is not None and a not in (1, b)
                                       for a, b in zip(w, l_dims))
    if bad:
        raise ValueError(f"weights can not be broadcast to values. values.rank={len(l_dims)}. "
                         f"weights.rank={len(w)}. values.shape={losses.shape}. weights.shape={tuple(w)}.")


def compute_weighted_loss(losses, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                          reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """weights * losses reduced as `reduction` says; added to loss_collection."""
    Reduction.validate(reduction)
    with _scope(scope, "weighted_loss"):
        losses = convert_to_tensor(losses)
        if not losses.dtype.is_floating:
            raise TypeError(f"losses must be floating point, got {losses.dtype.name}")
        _check_weights(losses, weights)
        w = convert_to_tensor(weights, dtype=losses.dtype) if _is_python_number(weights) \
            else m.cast(convert_to_tensor(weights), losses.dtype)
        weighted = m.multiply(losses, w)
        if reduction == Reduction.NONE:
            loss = weighted
        else:
            total = m.reduce_sum(weighted)
            if reduction == Reduction.SUM:
                loss = m.identity(total, name="value")
            elif reduction == Reduction.MEAN:
                loss = _div_no_nan(total, m.reduce_sum(m.multiply(ones_like(losses), w)), name="value")
            elif reduction == Reduction.SUM_OVER_BATCH_SIZE:
                loss = _div_no_nan(total, _num_elements(losses), name="value")
            else:   # SUM_BY_NONZERO_WEIGHTS
                loss = _div_no_nan(total, _num_present(losses, weights), name="value")
        add_loss(loss, loss_collection)
        return loss


def _same_shape(labels, predictions):
    a, b = labels.shape, predictions.shape
    if a.dims is not None and b.dims is not None:
        if len(a.dims) != len(b.dims) or any(x is not None and y is not None and x != y
                                             for x, y in zip(a.dims, b.dims)):
            raise ValueError(f"Shapes {b} and {a} are incompatible")


def _pair(labels, predictions, predictions_name="predictions"):
    if labels is None:
        raise ValueError("labels must not be None.")
    if predictions is None:
        raise ValueError(f"{predictions_name} must not be None.")
    predictions = convert_to_tensor(predictions)
    labels = m.cast(convert_to_tensor(labels), predictions.dtype)
    _same_shape(labels, predictions)
    return labels, predictions


def absolute_difference(labels, predictions, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                        reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    with _scope(scope, "absolute_difference") as sc:
        labels, predictions = _pair(labels, predictions)
        losses = m.abs(m.subtract(predictions, labels))
        return compute_weighted_loss(losses, weights, sc, loss_collection, reduction)


def mean_squared_error(labels, predictions, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                       reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    with _scope(scope, "mean_squared_error") as sc:
        labels, predictions = _pair(labels, predictions)
        losses = m.square(m.subtract(predictions, labels))
        return compute_weighted_loss(losses, weights, sc, loss_collection, reduction)


def log_loss(labels, predictions, weights=1.0, epsilon=1e-7, scope=None, loss_collection=GraphKeys.LOSSES,
             reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """-labels * log(p + eps) - (1 - labels) * log(1 - p + eps)."""
    with _scope(scope, "log_loss") as sc:
        labels, predictions = _pair(labels, predictions)
        losses = m.subtract(m.negative(m.multiply(labels, m.log(m.add(predictions, epsilon)))),
                            m.multiply(m.subtract(1.0, labels), m.log(m.add(m.subtract(1.0, predictions),
                                                                          epsilon))))
        return compute_weighted_loss(losses, weights, sc, loss_collection, reduction)


def hinge_loss(labels, logits, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
               reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """relu(1 - logits * (2 * labels - 1)), labels in {0, 1}."""
    with _scope(scope, "hinge_loss") as sc:
        labels, logits = _pair(labels, logits, "logits")
        signs = m.subtract(m.multiply(labels, 2.0), 1.0)
        losses = m.relu(m.subtract(1.0, m.multiply(logits, signs)))
        return compute_weighted_loss(losses, weights, sc, loss_collection, reduction)


def huber_loss(labels, predictions, weights=1.0, delta=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
               reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """0.5 * min(|e|, delta)^2 + delta * (|e| - min(|e|, delta))."""
    with _scope(scope, "huber_loss") as sc:
        labels, predictions = _pair(labels, predictions)
        abs_error = m.abs(m.subtract(predictions, labels))
        quadratic = m.minimum(abs_error, delta)
        linear = m.subtract(abs_error, quadratic)
        losses = m.add(m.multiply(m.square(quadratic), 0.5), m.multiply(linear, delta))
        return compute_weighted_loss(losses, weights, sc, loss_collection, reduction)


def cosine_distance(labels, predictions, axis=None, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                    reduction=Reduction.SUM_BY_NONZERO_WEIGHTS, dim=None):
    """1 - sum(labels * predictions, axis) (inputs assumed unit-normalized), keeping the axis."""
    if dim is not None:
        if axis is not None:
            raise ValueError("Cannot specify both 'axis' and 'dim'")
        axis = dim
    if axis is None:
        raise ValueError("You must specify 'axis'.")
    with _scope(scope, "cosine_distance_loss") as sc:
        labels, predictions = _pair(labels, predictions)
        radial = m.multiply(predictions, labels)
        losses = m.subtract(1.0, m.reduce_sum(radial, axis=[axis], keepdims=True))
        return compute_weighted_loss(losses, weights, sc, loss_collection, reduction)


def sigmoid_cross_entropy(multi_class_labels, logits, weights=1.0, label_smoothing=0, scope=None,
                          loss_collection=GraphKeys.LOSSES, reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    from .nn_ops import sigmoid_cross_entropy_with_logits
    with _scope(scope, "sigmoid_cross_entropy_loss") as sc:
        labels, logits = _pair(multi_class_labels, logits, "logits")
        if label_smoothing > 0:
            labels = m.add(m.multiply(labels, 1.0 - label_smoothing), 0.5 * label_smoothing)
        losses = sigmoid_cross_entropy_with_logits(labels=labels, logits=logits, name="xentropy")
        return compute_weighted_loss(losses, weights, sc, loss_collection, reduction)


def softmax_cross_entropy(onehot_labels, logits, weights=1.0, label_smoothing=0, scope=None,
                          loss_collection=GraphKeys.LOSSES, reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    from .nn_ops import softmax_cross_entropy_with_logits_v2
    with _scope(scope, "softmax_cross_entropy_loss") as sc:
        labels, logits = _pair(onehot_labels, logits, "logits")
        if label_smoothing > 0:
            classes = labels.shape.dims[-1] if labels.shape.dims else None
            if classes is None:
                raise ValueError("softmax_cross_entropy label_smoothing needs the number of classes to be known")
            labels = m.add(m.multiply(labels, 1.0 - label_smoothing), label_smoothing / classes)
        losses = softmax_cross_entropy_with_logits_v2(labels=m.stop_gradient(labels), logits=logits,
                                                      name="xentropy")
        return compute_weighted_loss(losses, weights, sc, loss_collection, reduction)


def sparse_softmax_cross_entropy(labels, logits, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                                 reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    from .nn_ops import sparse_softmax_cross_entropy_with_logits
    with _scope(scope, "sparse_softmax_cross_entropy_loss") as sc:
        if labels is None:
            raise ValueError("labels must not be None.")
        logits = convert_to_tensor(logits)
        labels = convert_to_tensor(labels)
        if labels.dtype.is_floating:
            raise TypeError(f"sparse_softmax_cross_entropy: labels must be integers, got {labels.dtype.name}")
        ld, gd = labels.shape.dims, logits.shape.dims
        if ld is not None and gd is not None and len(ld) == len(gd) and ld[-1] == 1:
            labels = squeeze(labels, [-1])   # TF removes a squeezable [batch, 1] label dimension
        losses = sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits, name="xentropy")
        if not _is_python_number(weights):
            w = convert_to_tensor(weights)
            wd, lossd = w.shape.dims, losses.shape.dims
            if wd is not None and lossd is not None and len(wd) == len(lossd) + 1 and wd[-1] == 1:
                weights = squeeze(w, [-1])
        return compute_weighted_loss(losses, weights, sc, loss_collection, reduction)


# --- collections

def add_loss(loss, loss_collection=GraphKeys.LOSSES):
    if loss_collection:
        get_default_graph().add_to_collection(loss_collection, loss)


def get_losses(scope=None, loss_collection=GraphKeys.LOSSES):
    return get_default_graph().get_collection(loss_collection, scope)


def get_regularization_losses(scope=None):
    return get_default_graph().get_collection(GraphKeys.REGULARIZATION_LOSSES, scope)


def get_regularization_loss(scope=None, name="total_regularization_loss"):
    losses = get_regularization_losses(scope)
    if losses:
        return m.add_n(losses, name=name)
    return constant(0.0)


def get_total_loss(add_regularization_losses=True, name="total_loss", scope=None):
    losses = get_losses(scope=scope)
    if add_regularization_losses:
        losses = losses + get_regularization_losses(scope=scope)
    if not losses:
        raise ValueError("No losses found: get_total_loss needs at least one loss in the LOSSES "
                         "(or REGULARIZATION_LOSSES) collection")
    return m.add_n(losses, name=name)
