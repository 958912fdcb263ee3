"""`tf.initializers`."""
from .api.init_ops import (Constant as constant, Ones as ones, RandomNormal as random_normal,  # noqa: F401
                           RandomUniform as random_uniform, TruncatedNormal as truncated_normal,
                           VarianceScaling as variance_scaling, Zeros as zeros)
from .api.init_ops import glorot_normal_initializer as glorot_normal  # noqa: F401
from .api.init_ops import glorot_uniform_initializer as glorot_uniform  # noqa: F401
from .api.init_ops import he_normal, he_uniform  # noqa: F401


from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.initializers")  # PEP 562: a missing name says so
