"""`tf.contrib.layers` (TF 1.x): fully_connected, batch_norm, dropout, flatten, the l1/l2 regularizers,
apply_regularization, and the contrib initializers (xavier, contrib-style variance scaling).

Layers open `variable_scope(scope, default_name)` ("fully_connected", "BatchNorm", ...) and make their
variables with get_variable, so names are `fully_connected/weights`, `fully_connected/biases`, as in TF.
"""
from __future__ import annotations

import math
import numbers

from ..api import math_ops as m
from ..api import random_ops
from ..api.convert import convert_to_tensor
from ..api.init_ops import Initializer, ones_initializer, xavier_initializer, zeros_initializer
from ..api.core_layers import _training_flag, batch_norm_core
from ..api.core_layers import dropout as _core_dropout
from ..api.core_layers import flatten as _core_flatten
from ..api.nn_ops import l2_loss
from ..api.variable_scope import get_variable, variable_scope
from ..errors import UnsupportedError
from ..framework.graph import GraphKeys, get_default_graph
from ..ir.types import as_dtype, float32

__all__ = ["fully_connected", "batch_norm", "dropout", "flatten", "l1_regularizer", "l2_regularizer",
           "l1_l2_regularizer", "sum_regularizer", "apply_regularization", "xavier_initializer",
           "xavier_initializer_conv2d", "variance_scaling_initializer"]

xavier_initializer_conv2d = xavier_initializer


class _ContribVarianceScaling(Initializer):
    """contrib's variance_scaling_initializer: factor / n with n from FAN_IN, FAN_OUT or FAN_AVG; a
    truncated normal of stddev sqrt(1.3 * factor / n), or uniform in +-sqrt(3 * factor / n)."""

    def __init__(self, factor=2.0, mode="FAN_IN", uniform=False, seed=None, dtype=float32):
        if mode not in ("FAN_IN", "FAN_OUT", "FAN_AVG"):
            raise TypeError(f"Unknown mode {mode} [FAN_IN, FAN_OUT, FAN_AVG]")
        dtype = as_dtype(dtype)
        if not dtype.is_floating:
            raise TypeError("Cannot create initializer for non-floating point type.")
        self.factor, self.mode, self.uniform, self.seed, self.dtype = factor, mode, uniform, seed, dtype

    def __call__(self, shape, dtype=None, partition_info=None):
        dtype = as_dtype(dtype or self.dtype)
        shape = tuple(int(d) for d in shape)
        if shape:
            fan_in = float(shape[-2]) if len(shape) > 1 else float(shape[-1])
            fan_out = float(shape[-1])
            receptive = float(math.prod(shape[:-2])) if len(shape) > 2 else 1.0
            fan_in, fan_out = fan_in * receptive, fan_out * receptive
        else:
            fan_in = fan_out = 1.0
        n = {"FAN_IN": fan_in, "FAN_OUT": fan_out, "FAN_AVG": (fan_in + fan_out) / 2.0}[self.mode]
        if self.uniform:
            limit = math.sqrt(3.0 * self.factor / n)
            return random_ops.random_uniform(shape, -limit, limit, dtype, seed=self.seed)
        return random_ops.truncated_normal(shape, 0.0, math.sqrt(1.3 * self.factor / n), dtype, seed=self.seed)


def variance_scaling_initializer(factor=2.0, mode="FAN_IN", uniform=False, seed=None, dtype=float32):
    return _ContribVarianceScaling(factor, mode, uniform, seed, dtype)


# --- regularizers

def _check_scale(scale):
    if isinstance(scale, numbers.Integral):
        raise ValueError(f"scale cannot be an integer: {scale}")
    if isinstance(scale, numbers.Real):
        if scale < 0.0:
            raise ValueError(f"Setting a scale less than 0 on a regularizer: {scale:g}")
        return scale == 0.0
    return False


def l1_regularizer(scale, scope=None):
    """fn(weights) = scale * sum(|weights|)."""
    if _check_scale(scale):
        return lambda _: None

    def l1(weights):
        with get_default_graph().name_scope(scope or "l1_regularizer") as name:
            weights = convert_to_tensor(weights)
            my_scale = convert_to_tensor(scale, dtype=weights.dtype, name="scale")
            return m.multiply(my_scale, m.reduce_sum(m.abs(weights)), name=name)
    return l1


def l2_regularizer(scale, scope=None):
    """fn(weights) = scale * tf.nn.l2_loss(weights) = scale * sum(weights**2) / 2."""
    if _check_scale(scale):
        return lambda _: None

    def l2(weights):
        with get_default_graph().name_scope(scope or "l2_regularizer") as name:
            weights = convert_to_tensor(weights)
            my_scale = convert_to_tensor(scale, dtype=weights.dtype, name="scale")
            return m.multiply(my_scale, l2_loss(weights), name=name)
    return l2


def sum_regularizer(regularizer_list, scope=None):
    regularizer_list = [r for r in regularizer_list if r]
    if not regularizer_list:
        return None

    def total(weights):
        with get_default_graph().name_scope(scope or "sum_regularizer"):
            penalties = [p for p in (r(weights) for r in regularizer_list) if p is not None]
            return m.add_n(penalties) if penalties else None
    return total


def l1_l2_regularizer(scale_l1=1.0, scale_l2=1.0, scope=None):
    """scale_l1 * sum(|w|) + scale_l2 * sum(w**2) / 2."""
    if isinstance(scale_l1, numbers.Real) and isinstance(scale_l2, numbers.Real) \
            and scale_l1 == 0.0 and scale_l2 == 0.0:
        return lambda _: None
    return sum_regularizer([l1_regularizer(scale_l1), l2_regularizer(scale_l2)], scope=scope or "l1_l2_regularizer")


def apply_regularization(regularizer, weights_list=None):
    """Sums regularizer(w) over weights_list (default: the WEIGHTS collection) and adds the sum to
    REGULARIZATION_LOSSES."""
    graph = get_default_graph()
    if not weights_list:
        weights_list = graph.get_collection("weights")
    if not weights_list:
        raise ValueError("No weights to regularize.")
    with graph.name_scope("get_regularization_penalty") as scope:
        penalties = [regularizer(w) for w in weights_list]
        penalties = [p if p is not None else convert_to_tensor(0.0) for p in penalties]
        summed = m.add_n(penalties, name=scope)
    graph.add_to_collection(GraphKeys.REGULARIZATION_LOSSES, summed)
    return summed


# --- layers

def _add_to_collections(value, collections):
    if collections:
        for key in ([collections] if isinstance(collections, str) else collections):
            get_default_graph().add_to_collection(key, value)


def _variable_collections(variables_collections, key):
    if isinstance(variables_collections, dict):
        return variables_collections.get(key)
    return variables_collections


def _model_variable(name, shape, dtype, initializer, regularizer, trainable, collections):
    v = get_variable(name, shape=shape, dtype=dtype, initializer=initializer, regularizer=regularizer,
                     trainable=trainable)
    graph = get_default_graph()
    if all(x is not v for x in graph.get_collection(GraphKeys.MODEL_VARIABLES)):
        graph.add_to_collection(GraphKeys.MODEL_VARIABLES, v)
        _add_to_collections(v, collections)
    return v


def fully_connected(inputs, num_outputs, activation_fn=m.relu, normalizer_fn=None, normalizer_params=None,
                    weights_initializer=None, weights_regularizer=None, biases_initializer=zeros_initializer(),
                    biases_regularizer=None, reuse=None, variables_collections=None, outputs_collections=None,
                    trainable=True, scope=None):
    """activation_fn(normalizer_fn(inputs @ weights) or inputs @ weights + biases)."""
    if not isinstance(num_outputs, numbers.Integral):
        raise ValueError(f"num_outputs type should be one of (int, long), got {type(num_outputs)}.")
    weights_initializer = weights_initializer if weights_initializer is not None else xavier_initializer()
    with variable_scope(scope, default_name="fully_connected", reuse=reuse):
        x = convert_to_tensor(inputs)
        dims = x.shape.dims
        if dims is None or dims[-1] is None:
            raise ValueError("fully_connected: the last dimension of the inputs must be known")
        if len(dims) != 2:
            raise UnsupportedError("tf.contrib.layers.fully_connected on inputs of rank != 2 is not supported "
                                   "by jitflow (flatten them first)")
        weights = _model_variable("weights", (int(dims[-1]), int(num_outputs)), x.dtype, weights_initializer,
                                  weights_regularizer, trainable,
                                  _variable_collections(variables_collections, "weights"))
        outputs = m.matmul(x, weights, name="MatMul")
        if normalizer_fn is not None:
            outputs = normalizer_fn(outputs, **(normalizer_params or {}))
        elif biases_initializer is not None:
            biases = _model_variable("biases", (int(num_outputs),), x.dtype, biases_initializer,
                                     biases_regularizer, trainable,
                                     _variable_collections(variables_collections, "biases"))
            outputs = m.add(outputs, biases, name="BiasAdd")
        if activation_fn is not None:
            outputs = activation_fn(outputs)
        _add_to_collections(outputs, outputs_collections)
        return outputs


def batch_norm(inputs, decay=0.999, center=True, scale=False, epsilon=0.001, activation_fn=None,
               param_initializers=None, param_regularizers=None, updates_collections=GraphKeys.UPDATE_OPS,
               is_training=True, reuse=None, variables_collections=None, outputs_collections=None,
               trainable=True, batch_weights=None, fused=None, data_format="NHWC", zero_debias_moving_mean=False,
               scope=None, renorm=False, renorm_clipping=None, renorm_decay=0.99, adjustment=None):
    """contrib batch norm: `BatchNorm/beta`, `BatchNorm/gamma` (if scale), `BatchNorm/moving_mean`,
    `BatchNorm/moving_variance`; moving averages `moving -= (moving - batch) * (1 - decay)` go to
    updates_collections, or (updates_collections=None) run before the output is produced. `fused` is a
    performance hint only."""
    for arg, value in (("batch_weights", batch_weights), ("renorm_clipping", renorm_clipping),
                       ("adjustment", adjustment)):
        if value is not None:
            raise UnsupportedError(f"tf.contrib.layers.batch_norm argument `{arg}` is not supported by jitflow")
    if renorm:
        raise UnsupportedError("tf.contrib.layers.batch_norm(renorm=True) is not supported by jitflow")
    if zero_debias_moving_mean:
        raise UnsupportedError("tf.contrib.layers.batch_norm(zero_debias_moving_mean=True) is not supported "
                               "by jitflow")
    if fused not in (None, True, False):
        raise ValueError(f"batch_norm: `fused` must be None, True or False, got {fused!r}")
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f"data_format has to be either NCHW or NHWC, got {data_format!r}")
    initializers = dict(param_initializers or {})
    regularizers = dict(param_regularizers or {})
    unknown = sorted((set(initializers) | set(regularizers)) - {"beta", "gamma", "moving_mean", "moving_variance"})
    if unknown:
        raise ValueError(f"batch_norm: unknown parameter name {unknown[0]!r} in param_initializers/regularizers")
    with variable_scope(scope, default_name="BatchNorm", reuse=reuse):
        x = convert_to_tensor(inputs)
        dims = x.shape.dims
        if dims is None:
            raise ValueError(f"Inputs {x.name} has undefined rank.")
        rank = len(dims)
        axis = 1 if data_format == "NCHW" and rank > 2 else rank - 1
        if dims[axis] is None:
            raise ValueError(f"Inputs {x.name} has undefined channels dimension {x.shape}.")
        size = (int(dims[axis]),)

        def make(name, default_init, trainable_param):
            return _model_variable(name, size, x.dtype, initializers.get(name, default_init),
                                   regularizers.get(name), trainable_param,
                                   _variable_collections(variables_collections, name))

        beta = make("beta", zeros_initializer(), trainable) if center else None
        gamma = make("gamma", ones_initializer(), trainable) if scale else None
        moving_mean = make("moving_mean", zeros_initializer(), False)
        moving_variance = make("moving_variance", ones_initializer(), False)
        flag = _training_flag(is_training, "is_training")
        outputs, updates = batch_norm_core(x, axis, moving_mean, moving_variance, gamma, beta, decay, epsilon,
                                           flag)
        if updates:
            if updates_collections is None:   # force the updates before the output is produced
                graph = get_default_graph()
                with graph.control_dependencies(updates):
                    outputs = m.identity(outputs)
            else:
                _add_to_collections_all(updates, updates_collections)
        if activation_fn is not None:
            outputs = activation_fn(outputs)
        _add_to_collections(outputs, outputs_collections)
        return outputs


def _add_to_collections_all(values, collections):
    for v in values:
        _add_to_collections(v, collections)


def dropout(inputs, keep_prob=0.5, noise_shape=None, is_training=True, outputs_collections=None, scope=None,
            seed=None):
    """Keeps each element with probability keep_prob (scaled by 1/keep_prob) when is_training."""
    with get_default_graph().name_scope(scope or "Dropout"):
        rate = (1.0 - keep_prob) if isinstance(keep_prob, numbers.Real) else m.subtract(1.0, keep_prob)
        outputs = _core_dropout(inputs, rate=rate, noise_shape=noise_shape, seed=seed, training=is_training)
        _add_to_collections(outputs, outputs_collections)
        return outputs


def flatten(inputs, outputs_collections=None, scope=None):
    """Reshapes to (batch, -1)."""
    with get_default_graph().name_scope(scope or "Flatten"):
        outputs = _core_flatten(inputs)
        _add_to_collections(outputs, outputs_collections)
        return outputs


from .framework import add_arg_scope  # noqa: E402  (tf.contrib.framework.arg_scope defaults)

fully_connected, batch_norm, dropout, flatten = (add_arg_scope(f) for f in (fully_connected, batch_norm, dropout,
                                                                             flatten))


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.contrib.layers")  # PEP 562: a missing name says so
