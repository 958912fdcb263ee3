"""`tf.losses`."""
from .api.clip_ops import absolute_difference, mean_squared_error  # noqa: F401
from .api.nn_ops import sigmoid_cross_entropy_with_logits as _sigmoid_xent
from .api.nn_ops import softmax_cross_entropy_with_logits_v2 as _softmax_xent
from .api.nn_ops import sparse_softmax_cross_entropy_with_logits as _sparse_xent
from .api.math_ops import reduce_mean as _mean


def softmax_cross_entropy(onehot_labels, logits, weights=1.0, scope=None):
    return _mean(_softmax_xent(labels=onehot_labels, logits=logits))


def sparse_softmax_cross_entropy(labels, logits, weights=1.0, scope=None):
    return _mean(_sparse_xent(labels=labels, logits=logits))


def sigmoid_cross_entropy(multi_class_labels, logits, weights=1.0, scope=None):
    return _mean(_sigmoid_xent(labels=multi_class_labels, logits=logits))
