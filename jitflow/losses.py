"""`tf.losses`: the TF 1.x loss functions, reductions and loss collections (see api/losses_impl.py)."""
from .api.losses_impl import (Reduction, absolute_difference, add_loss, compute_weighted_loss,  # noqa: F401
                              cosine_distance, get_losses, get_regularization_loss, get_regularization_losses,
                              get_total_loss, hinge_loss, huber_loss, log_loss, mean_squared_error,
                              sigmoid_cross_entropy, softmax_cross_entropy, sparse_softmax_cross_entropy)


from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.losses")  # PEP 562: a missing name says so
