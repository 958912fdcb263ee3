"""`tf.random` (TF 1.x): the random ops under their `tf.random.*` names."""
from .api.core_gap import categorical, multinomial, random_shuffle as shuffle  # noqa: F401
from .api.random_ops import (random_normal as normal, random_uniform as uniform,  # noqa: F401
                             set_random_seed, truncated_normal)

from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.random")  # PEP 562: a missing name says so
