"""jitflow: TF 1.x-style graphs, Sessions and Variables, compiled to native code.

`import jitflow as tf` gives the TF 1.x names at the package root. Nothing here
has logic: it re-exports the user API.
"""
from . import contrib, dtypes, errors, initializers, layers, losses, nn, train  # noqa: F401
from .api import operators as _operators
from .api.array_ops import (broadcast_to, concat, constant, expand_dims, fill, one_hot, ones,  # noqa: F401
                            ones_like, placeholder, placeholder_with_default, reshape, shape, squeeze, stack,
                            transpose, unstack, zeros, zeros_like)
from .api.array_ops import range_ as range  # noqa: F401,A001
from .api.array_extra import (boolean_mask, clip_by_norm, cumprod, cumsum, einsum, eye, gather,  # noqa: F401,A004
                                lin_space, linspace, norm, pad, reverse, reverse_v2, slice, split, tensordot,
                                tile, unsorted_segment_sum)
from .api.array_ops import ensure_shape, rank, size, strided_slice as _strided_slice  # noqa: F401
from .api.gather_api import gather_nd, reverse_sequence, scatter_nd, sequence_mask  # noqa: F401
from .api.math_ops import (abs, add, add_n, argmax, argmin, cast, div, divide, equal, exp, floordiv,  # noqa: F401
                           floormod, greater, greater_equal, identity, less, less_equal, log, logical_and,
                           logical_not, logical_or, matmul, matrix_inverse, maximum, minimum, mod, multiply,
                           negative, not_equal, pow, realdiv, reduce_max, reduce_mean, reduce_min,
                           reduce_prod, reduce_sum, relu, rsqrt, sigmoid, sign, sqrt, square, stop_gradient,
                           subtract, tanh, to_float, to_int32, to_int64, truediv, where, where_v2)
from .api.math_extra import (arg_max, arg_min, ceil, cos, count_nonzero, erf, expm1, floor, log1p,  # noqa: F401
                             reciprocal, reduce_all, reduce_any, reduce_logsumexp, rint, round, sin,
                             squared_difference, tan)
from . import math  # noqa: F401,E402
from . import gfile, io, random, tf_logging as logging  # noqa: F401,E402  (tf.gfile, tf.io.gfile, tf.random, tf.logging)
from .api.core_gap import (logical_xor, multinomial, random_shuffle, strided_slice,  # noqa: F401,E402,A004
                           tuple)
from .autodiff import gradients  # noqa: F401
from .api.control_flow import case, cond, while_loop  # noqa: F401
from .api.functional_ops import foldl, foldr, map_fn, scan  # noqa: F401
from .api.tensor_array import TensorArray  # noqa: F401
from .api.variable_scope import (AUTO_REUSE, VariableScope, get_variable, get_variable_scope,  # noqa: F401
                                 variable_scope)
from .jit import JitFunction, jit  # noqa: F401
from .placement import devices  # noqa: F401
from .transforms import grad, jvp, value_and_grad  # noqa: F401
from .api.clip_ops import clip_by_global_norm, clip_by_value, global_norm  # noqa: F401
from .api.init_ops import (constant_initializer, glorot_normal_initializer,  # noqa: F401
                           glorot_uniform_initializer, ones_initializer, random_normal_initializer,
                           random_uniform_initializer, truncated_normal_initializer,
                           variance_scaling_initializer, zeros_initializer)
from .api.random_ops import random_normal, random_uniform, set_random_seed, truncated_normal  # noqa: F401
from .api.variables import (Variable, assign, assign_add, assign_sub, global_variables,  # noqa: F401
                            global_variables_initializer, group, initialize_all_variables,
                            local_variables, local_variables_initializer, no_op, trainable_variables,
                            variables_initializer)
from .train.moving_averages import moving_average_variables  # noqa: F401
from .framework.graph import (Graph, GraphKeys, Operation, Tensor, get_default_graph,  # noqa: F401
                              reset_default_graph)
from .framework.shapes import Dimension, TensorShape  # noqa: F401
from .ir.types import DType, as_dtype, bool_ as bool, float32, float64, int32, int64  # noqa: F401,A001
from .ir.types import float16, int8, int16, uint8  # noqa: F401,E402
from .session import InteractiveSession, Session, get_default_session  # noqa: F401
from . import summary  # noqa: F401
from . import debugging  # noqa: F401,E402
from .debugging import add_check_numerics_ops, check_numerics  # noqa: F401,E402
from . import datasets, distribute, keras  # noqa: F401,E402
from . import metrics  # noqa: F401,E402
from . import image  # noqa: F401,E402  (tf.image: jitflow/image.py)
from .image import random_crop  # noqa: F401,E402  (TF 1.x root alias of tf.image.random_crop)
from . import data  # noqa: F401,E402
from . import app, flags  # noqa: F401,E402  (tf.app.run, tf.app.flags / tf.flags)
from .framework.dot import graph_to_dot  # noqa: F401

from .version import __version__  # noqa: F401,E402

_operators.install(Tensor)
_operators.install(Variable)
sub = subtract
mul = multiply
neg = negative
double = float64
half = float16


def name_scope(name, default_name=None, values=None):
    """`with tf.name_scope("loss") as scope:` groups op names under `loss/`."""
    return get_default_graph().name_scope(name if name is not None else default_name)


def control_dependencies(control_inputs):
    return get_default_graph().control_dependencies(control_inputs)


def device(name):
    return get_default_graph().device(name)


def add_to_collection(name, value):
    get_default_graph().add_to_collection(name, value)


def get_collection(key, scope=None):
    return get_default_graph().get_collection(key, scope)


def convert_to_tensor(value, dtype=None, name=None):
    from .api.convert import convert_to_tensor as _convert
    return _convert(value, dtype=dtype, name=name)


from .ir.types import string  # noqa: E402,F401  (tf.string: host-side values, jitflow/host_values.py)
import sys as _sys  # noqa: E402

from .missing_names import install_namespaces as _install_missing_names  # noqa: E402
from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf")  # PEP 562: a missing name says so
_install_missing_names(_sys.modules[__name__])   # tf.math, tf.contrib.layers, ... too

from .runtime import warmup as _warmup  # noqa: E402
_warmup.start()     # LLVM's JIT, the BLAS library, the fingerprint: prepared while the first graph is built
