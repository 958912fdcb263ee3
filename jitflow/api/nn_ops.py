"""`tf.nn`: activations, softmax family, numerically stable cross-entropies,
dropout, l2_loss, moments, batch_normalization, bias_add. Composite ops are
built from registry ops under the composite's name scope, so their gradients
come from the primitives' rules and dumps still say `softmax/...`."""
from __future__ import annotations

from ..framework.graph import get_default_graph
from . import math_ops as m
from .array_ops import constant, ensure_shape, one_hot, squeeze, zeros_like
from .convert import convert_to_tensor
from .random_ops import get_seed
from .run_checks import checked_labels

relu = m.relu
sigmoid = m.sigmoid
tanh = m.tanh


def _scope(name):
    return get_default_graph().name_scope(name)


def _axis(x, axis, fn="softmax"):
    """The softmax axis in [0, rank) when the rank is known; out of range raises (TF: InvalidArgumentError
    at graph building, "`dim` must be in the range [-rank, rank)"); an unknown rank keeps it as given and the
    reductions check it when the run is specialized."""
    from .axis_check import AxisOutOfRangeError, axis_int, check_axis
    axis = -1 if axis is None else axis_int(axis, fn, "dim")
    if x.shape.dims is None:
        return axis
    return check_axis(axis, len(x.shape.dims), fn, "dim", error=AxisOutOfRangeError)


def _shifted(logits, axis):
    """logits - max(logits) along axis (the max is a constant for gradients)."""
    peak = m.stop_gradient(m.reduce_max(logits, axis=axis, keepdims=True))
    return m.subtract(logits, peak)


def softmax(logits, axis=-1, name=None, dim=None):
    logits = convert_to_tensor(logits)
    axis = _axis(logits, dim if dim is not None else axis, "softmax")
    with _scope(name or "Softmax"):
        e = m.exp(_shifted(logits, axis))
        return m.truediv(e, m.reduce_sum(e, axis=axis, keepdims=True))


def log_softmax(logits, axis=-1, name=None, dim=None):
    logits = convert_to_tensor(logits)
    axis = _axis(logits, dim if dim is not None else axis, "log_softmax")
    with _scope(name or "LogSoftmax"):
        shifted = _shifted(logits, axis)
        return m.subtract(shifted, m.log(m.reduce_sum(m.exp(shifted), axis=axis, keepdims=True)))


def softmax_cross_entropy_with_logits_v2(labels=None, logits=None, axis=-1, name=None, dim=None):
    logits = convert_to_tensor(logits)
    labels = convert_to_tensor(labels)
    if labels.dtype != logits.dtype:            # as TF: "labels and logits must be of the same type" -> cast
        labels = m.cast(labels, logits.dtype)
    axis = _axis(logits, dim if dim is not None else axis, "softmax_cross_entropy_with_logits")
    with _scope(name or "softmax_cross_entropy_with_logits"):
        return m.negative(m.reduce_sum(m.multiply(labels, log_softmax(logits, axis)), axis=axis))


def softmax_cross_entropy_with_logits(labels=None, logits=None, dim=-1, name=None, axis=None):
    labels = m.stop_gradient(convert_to_tensor(labels))
    return softmax_cross_entropy_with_logits_v2(labels, logits, axis=dim if axis is None else axis, name=name)


def sparse_softmax_cross_entropy_with_logits(labels=None, logits=None, name=None):
    logits = convert_to_tensor(logits)
    labels = convert_to_tensor(labels)
    depth = logits.shape.dims[-1] if logits.shape.dims is not None else None
    if depth is None:
        raise ValueError("sparse_softmax_cross_entropy_with_logits needs the number of classes (last dim of "
                         "logits) to be known")
    if labels.dtype.kind != "int":
        raise TypeError(f"sparse_softmax_cross_entropy_with_logits: labels must be int32 or int64, got "
                        f"{labels.dtype.name}")
    logits_dims = logits.shape.dims
    with _scope(name or "SparseSoftmaxCrossEntropyWithLogits"):
        # TF: labels have the shape of logits without its last axis (checked here, or when the run is
        # specialized when either rank is known only then)
        if logits_dims is not None:
            expected = logits_dims[:-1]
            if labels.shape.dims is not None and (len(labels.shape.dims) != len(expected) or any(
                    a is not None and b is not None and a != b for a, b in zip(labels.shape.dims, expected))):
                raise ValueError(f"Shape mismatch: The shape of labels (received {labels.shape}) should equal "
                                 f"the shape of logits except for the last dimension (received {logits.shape}).")
        # TF raises on a label outside [0, classes) (a 1-based label set would otherwise train on zeros):
        # checked in the compiled run, node '<scope>/labels' (jitflow/ops/checks.py)
        labels = checked_labels(labels, depth)
        if logits_dims is not None:
            if labels.shape.dims is None or None in labels.shape.dims:
                labels = ensure_shape(labels, expected, name="labels")
        mask = one_hot(labels, depth, dtype=logits.dtype)
        return m.negative(m.reduce_sum(m.multiply(mask, log_softmax(logits)), axis=-1))


def sigmoid_cross_entropy_with_logits(labels=None, logits=None, name=None):
    """max(x, 0) - x * z + log(1 + exp(-|x|)): stable for large |x|. Written with selects as
    TF 1.x does, so the gradient at x == 0 is sigmoid(0) - z (abs'(0) = 0 would lose the 1/2)."""
    logits = convert_to_tensor(logits)
    labels = convert_to_tensor(labels, dtype=logits.dtype)
    with _scope(name or "logistic_loss"):
        zeros = zeros_like(logits)
        cond = m.greater_equal(logits, zeros)
        relu_logits = m.where(cond, logits, zeros)
        neg_abs_logits = m.where(cond, m.negative(logits), logits)
        softplus = m.log(m.add(m.exp(neg_abs_logits), 1.0))
        return m.add(m.subtract(relu_logits, m.multiply(logits, labels)), softplus)


def l2_loss(t, name=None):
    t = convert_to_tensor(t)
    with _scope(name or "L2Loss"):
        return m.multiply(m.reduce_sum(m.square(t)), 0.5)


def bias_add(value, bias, data_format=None, name=None):
    """value + bias along the channel axis: the last (NHWC, the default) or axis 1 ("NCHW" / "NC..")."""
    value, bias = convert_to_tensor(value), convert_to_tensor(bias)
    bias = convert_to_tensor(bias, dtype=value.dtype) if bias.dtype != value.dtype else bias
    if bias.shape.dims is not None and len(bias.shape.dims) != 1:
        raise ValueError(f"bias_add: bias must be 1-D, got shape {bias.shape}")
    rank = None if value.shape.dims is None else len(value.shape.dims)
    if rank is not None and rank < 2:
        raise ValueError(f"bias_add: value must be at least 2-D, got shape {value.shape}")
    if data_format is None or (isinstance(data_format, str) and data_format.startswith("N")
                               and data_format.endswith("C")):
        return m.add(value, bias, name=name or "BiasAdd")
    if not (isinstance(data_format, str) and data_format.startswith("NC")):
        raise ValueError(f"bias_add: data_format must be 'N...C' or 'NC...', got {data_format!r}")
    if rank is None:
        raise ValueError(f"bias_add: data_format={data_format!r} needs a value of known rank")
    from .array_ops import reshape
    return m.add(value, reshape(bias, [-1] + [1] * (rank - 2)), name=name or "BiasAdd")


def leaky_relu(features, alpha=0.2, name=None):
    features = convert_to_tensor(features)
    # alpha * x first: maximum sends a tie's gradient to its first operand, so the gradient at 0 is alpha (TF 1.x)
    return m.maximum(m.multiply(features, alpha), features, name=name or "LeakyRelu")


def moments(x, axes, shift=None, name=None, keep_dims=None, keepdims=None):
    x = convert_to_tensor(x)
    keep = bool(keepdims if keepdims is not None else keep_dims)
    with _scope(name or "moments"):
        mean = m.reduce_mean(x, axis=axes, keepdims=True, name="mean")
        variance = m.reduce_mean(m.square(m.subtract(x, m.stop_gradient(mean))), axis=axes, keepdims=True,
                                 name="variance")
        if not keep:
            mean, variance = squeeze(mean, axes), squeeze(variance, axes)
        return mean, variance


def batch_normalization(x, mean, variance, offset, scale, variance_epsilon, name=None):
    x = convert_to_tensor(x)
    with _scope(name or "batchnorm"):
        inv = m.rsqrt(m.add(variance, variance_epsilon))
        if scale is not None:
            inv = m.multiply(inv, scale)
        shift = m.negative(m.multiply(mean, inv)) if offset is None else m.subtract(offset, m.multiply(mean, inv))
        return m.add(m.multiply(x, inv), shift)


def _noise_shape(x, noise_shape):
    """Static noise shape; a None entry takes x's (known) size there, as TF 1.x does."""
    dims = x.shape.dims
    noise_shape = list(noise_shape)
    if dims is None or len(dims) != len(noise_shape):
        raise ValueError(f"dropout: noise_shape {noise_shape} must have the rank of x {x.shape}")
    result = []
    for d, n in zip(dims, noise_shape):
        n = d if n is None else int(n)
        if n is None:
            raise ValueError("dropout: a None entry of noise_shape needs that dimension of x to be known in jitflow")
        result.append(n)
    return tuple(result)


def _check_dropout_args(x, keep_prob, rate):
    """TF 1.x's checks: one of rate/keep_prob; a Python/numpy rate in [0, 1) (keep_prob in (0, 1]); a tensor
    rate must be a scalar (its value is the program's business, as in TF); x must be floating point."""
    import numpy as np
    from ..framework.graph import Tensor
    from .variables import Variable
    if rate is not None and keep_prob is not None:
        raise ValueError("Cannot specify both 'rate' and 'keep_prob'")
    if rate is None and keep_prob is None:
        raise ValueError("You must provide a rate to dropout.")
    if not x.dtype.is_floating:
        raise ValueError(f"x has to be a floating point tensor since it's going to be scaled. Got a "
                         f"{x.dtype.name} tensor instead.")
    arg, value = ("rate", rate) if rate is not None else ("keep_prob", keep_prob)
    if isinstance(value, (Tensor, Variable)):
        dims = value.shape.dims
        if dims is not None and len(dims) != 0:
            raise ValueError(f"dropout: {arg} must be a scalar tensor, got shape {value.shape}")
        return
    array = np.asarray(value)
    if array.ndim != 0 or array.dtype.kind not in "iuf":
        raise ValueError(f"dropout: {arg} must be a scalar tensor or a float, got {value!r}")
    rate_value = float(array) if rate is not None else 1.0 - float(array)
    if not 0.0 <= rate_value < 1.0:         # also NaN
        what = f"rate={value!r}" if rate is not None else f"keep_prob={value!r} (rate {rate_value:g})"
        raise ValueError(f"rate must be a scalar tensor or a float in the range [0, 1), got {what}")


def dropout(x, keep_prob=None, noise_shape=None, seed=None, name=None, rate=None):
    """Zeroes elements with probability `rate` (or 1 - keep_prob), scales the rest by 1/keep."""
    x = convert_to_tensor(x)
    _check_dropout_args(x, keep_prob, rate)
    graph = get_default_graph()
    with graph.name_scope(name or "dropout"):
        keep = m.subtract(constant(1.0, x.dtype), rate) if rate is not None else convert_to_tensor(
            keep_prob, dtype=x.dtype)
        seed1, seed2 = get_seed(seed)
        attrs = {"shape": None, "dtype": x.dtype, "seed": seed1, "seed2": seed2}
        if noise_shape is None:
            uniform = graph.create_op("random_uniform", [x], attrs, name="random_uniform").outputs[0]
        else:   # one draw per element of noise_shape, broadcast over x (shared masks)
            attrs["shape"] = _noise_shape(x, noise_shape)
            uniform = graph.create_op("random_uniform", [], attrs, name="random_uniform").outputs[0]
        mask = m.cast(m.less(uniform, keep), x.dtype)
        out = m.multiply(m.truediv(x, keep), mask)
        out.set_shape(x.shape)          # a keep_prob placeholder of unknown shape must not blur x's shape (TF)
        return out
