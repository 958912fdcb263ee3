"""`tf.math`: the math functions under their TF 1.x `tf.math.*` names (re-exports only)."""
from .api.math_extra import (ceil, cos, count_nonzero, erf, expm1, floor, log1p, reciprocal,  # noqa: F401
                             reduce_all, reduce_any, reduce_logsumexp, rint, round, sin, softplus,
                             softsign, squared_difference, tan)
from .api.math_ops import (abs, add, add_n, argmax, argmin, divide, equal, exp, floordiv, floormod,  # noqa: F401
                           greater, greater_equal, less, less_equal, log, logical_and, logical_not,
                           logical_or, maximum, minimum, multiply, negative, not_equal, pow, reduce_max,
                           reduce_mean, reduce_min, reduce_prod, reduce_sum, rsqrt, sigmoid, sign, sqrt,
                           square, subtract, tanh, truediv)
from .api.math_ops import floormod as mod  # noqa: F401


from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.math")  # PEP 562: a missing name says so
