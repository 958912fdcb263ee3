"""`tf.contrib.seq2seq`: `sequence_loss`, the weighted per-timestep softmax cross-entropy the TF 1.x
character-RNN lectures train with (TF 1.15 semantics), composed from registry ops."""
from __future__ import annotations

from ..api import math_ops as m
from ..api.array_ops import ones_like, reshape, shape as shape_of, stack, zeros_like
from ..api.convert import convert_to_tensor
from ..framework.graph import get_default_graph


def _div_no_nan(x, y):
    """x / y, 0 where y == 0 (finite gradients too: the division never sees a zero)."""
    zero = m.equal(y, m.cast(0, y.dtype))
    safe = m.where(zero, ones_like(y), y)
    return m.where(zero, zeros_like(x), m.truediv(x, safe))


def sequence_loss(logits, targets, weights, average_across_timesteps=True, average_across_batch=True,
                  sum_over_timesteps=False, sum_over_batch=False, softmax_loss_function=None, name=None):
    """Cross-entropy of `logits` [batch, time, classes] against int `targets` [batch, time], weighted by
    `weights` [batch, time]; averaged (sum / sum of weights) or summed (sum / count of nonzero weights)
    over the requested axes, as `tf.contrib.seq2seq.sequence_loss` in TF 1.15."""
    logits, targets, weights = (convert_to_tensor(v) for v in (logits, targets, weights))
    for value, rank, what in ((logits, 3, "Logits"), (targets, 2, "Targets"), (weights, 2, "Weights")):
        if value.shape.dims is not None and len(value.shape.dims) != rank:
            raise ValueError(f"{what} must be a [batch_size x sequence_length"
                             f"{' x num_classes' if rank == 3 else ''}] tensor")
    if average_across_timesteps and sum_over_timesteps:
        raise ValueError("average_across_timesteps and sum_over_timesteps cannot be set to True at same time.")
    if average_across_batch and sum_over_batch:
        raise ValueError("average_across_batch and sum_over_batch cannot be set to True at same time.")
    from ..api.nn_ops import sparse_softmax_cross_entropy_with_logits
    with get_default_graph().name_scope(name or "sequence_loss"):
        dims = logits.shape.dims
        num_classes = dims[2] if dims is not None and dims[2] is not None else shape_of(logits)[2]
        flat_logits = reshape(logits, [-1, num_classes] if isinstance(num_classes, int)
                              else stack([m.cast(-1, num_classes.dtype), num_classes]))
        flat_targets = reshape(targets, [-1])
        if softmax_loss_function is None:
            crossent = sparse_softmax_cross_entropy_with_logits(labels=flat_targets, logits=flat_logits)
        else:
            crossent = softmax_loss_function(labels=flat_targets, logits=flat_logits)
        crossent = m.multiply(crossent, reshape(weights, [-1]))
        weights = m.cast(weights, crossent.dtype)
        if average_across_timesteps and average_across_batch:
            return _div_no_nan(m.reduce_sum(crossent), m.reduce_sum(weights))
        if sum_over_timesteps and sum_over_batch:
            count = m.reduce_sum(m.cast(m.not_equal(weights, m.cast(0, weights.dtype)), crossent.dtype))
            return _div_no_nan(m.reduce_sum(crossent), count)
        crossent = reshape(crossent, shape_of(logits)[:2])
        if average_across_timesteps or average_across_batch:
            axis = [0] if average_across_batch else [1]
            return _div_no_nan(m.reduce_sum(crossent, axis=axis), m.reduce_sum(weights, axis=axis))
        if sum_over_timesteps or sum_over_batch:
            axis = [0] if sum_over_batch else [1]
            count = m.reduce_sum(m.cast(m.not_equal(weights, m.cast(0, weights.dtype)), crossent.dtype), axis=axis)
            return _div_no_nan(m.reduce_sum(crossent, axis=axis), count)
        return crossent


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.contrib.seq2seq")  # PEP 562: a missing name says so
