"""`tf.nn`."""
from .api.nn_ops import (batch_normalization, bias_add, dropout, l2_loss, leaky_relu, log_softmax,  # noqa: F401
                         moments, relu, sigmoid, sigmoid_cross_entropy_with_logits, softmax,
                         softmax_cross_entropy_with_logits, softmax_cross_entropy_with_logits_v2,
                         sparse_softmax_cross_entropy_with_logits, tanh)
from .api.array_extra import embedding_lookup, in_top_k, l2_normalize, top_k  # noqa: F401
from .api.math_extra import elu, relu6, selu, softplus, softsign  # noqa: F401,E402
from .api.nn_conv import (avg_pool, avg_pool2d, conv1d, conv2d, conv2d_backprop_filter,  # noqa: F401,E402
                           conv2d_backprop_input, conv2d_transpose, depthwise_conv2d, depthwise_conv2d_native,
                           max_pool, max_pool2d)
from .api.nn_lrn import local_response_normalization, lrn  # noqa: F401,E402
from .api.candidate_sampling import (log_uniform_candidate_sampler, nce_loss,  # noqa: F401,E402
                                      sampled_softmax_loss, uniform_candidate_sampler)
from .api.rnn import bidirectional_dynamic_rnn, dynamic_rnn, static_bidirectional_rnn, static_rnn  # noqa: F401,E402
from .api.rnn_cells import namespace as _rnn_cell_namespace  # noqa: E402
rnn_cell = _rnn_cell_namespace("tf.nn.rnn_cell")
from .api.core_gap import weighted_cross_entropy_with_logits, xw_plus_b, zero_fraction  # noqa: F401,E402


from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.nn")  # PEP 562: a missing name says so
