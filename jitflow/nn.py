"""`tf.nn`."""
from .api.nn_ops import (batch_normalization, bias_add, dropout, l2_loss, leaky_relu, log_softmax,  # noqa: F401
                         moments, relu, sigmoid, sigmoid_cross_entropy_with_logits, softmax,
                         softmax_cross_entropy_with_logits, softmax_cross_entropy_with_logits_v2,
                         sparse_softmax_cross_entropy_with_logits, tanh)
