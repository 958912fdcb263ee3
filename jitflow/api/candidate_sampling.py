"""tf.nn candidate sampling: `log_uniform_candidate_sampler`, `uniform_candidate_sampler`, and the sampled
losses built on them, `nce_loss` and `sampled_softmax_loss` (TF 1.x `_compute_sampled_logits` semantics).

Everything is a composite of compiled registry ops: sampling draws `random_uniform` values (Philox) and
maps them through the inverse CDF (with replacement) or takes a Gumbel-top-k (`top_k` of
log(u) / p over all classes: unique samples distributed exactly as TF's sequential rejection sampling,
in that order). TF's expected counts for unique sampling need the number of draws the rejection loop
made (`num_tries`); given the unique sequence, the rejected draws before the j-th new class are
Geometric(1 - sum of the probabilities already taken), so num_tries is sampled from exactly that law.
Expected counts follow TF's range_sampler.cc: p * num_sampled when num_tries == num_sampled, else
-expm1(num_tries * log1p(-p)).

The sampled losses gather the true and sampled rows of `weights`/`biases` (gather's gradient is a
scatter-add, so weights, biases and inputs all get gradients), subtract log(expected count), mask
accidental hits with -FLT_MAX when asked, and apply sigmoid (NCE) or softmax cross-entropy.
"""
from __future__ import annotations

import collections

import numpy as np

from ..errors import InvalidArgumentError, UnsupportedError
from ..framework.graph import Tensor, get_default_graph
from ..ir.types import float32, float64, int64
from . import math_ops as m
from .array_extra import cumsum, gather, top_k
from .array_ops import concat, constant, expand_dims, ones_like, reshape, zeros_like
from .convert import convert_to_tensor
from .math_extra import expm1, floor, log1p, reduce_any
from .nn_ops import sigmoid_cross_entropy_with_logits, softmax_cross_entropy_with_logits_v2
from .random_ops import get_seed

__all__ = ["log_uniform_candidate_sampler", "uniform_candidate_sampler", "nce_loss", "sampled_softmax_loss"]

CandidateSamples = collections.namedtuple("CandidateSamples",
                                          ["sampled_candidates", "true_expected_count", "sampled_expected_count"])

_FLT_LOWEST = float(np.finfo(np.float32).min)     # TF's accidental-hit weight: -FLT_MAX
_MASK32 = 0xFFFFFFFF


# ---- random streams ---------------------------------------------------------------------------------------
def _uniform64(shape, seeds, stream, name):
    """float64 uniform [0, 1) of a static shape, from an independent Philox stream of (seed, seed2)."""
    seed1, seed2 = seeds
    seed2 = (seed2 + stream * 0x9E3779B9) & _MASK32
    return get_default_graph().create_op("random_uniform", [], {"shape": tuple(shape), "dtype": float64,
                                                                "seed": seed1, "seed2": seed2}, name=name).outputs[0]


# ---- distributions ----------------------------------------------------------------------------------------
class _LogUniform:
    """P(c) = log((c + 2) / (c + 1)) / log(range_max + 1), c in [0, range_max) (Zipfian)."""

    def __init__(self, range_max):
        self.range_max = range_max
        self.log_range = float(np.log1p(range_max))

    def prob(self, classes):                      # classes: float64 tensor
        return m.truediv(log1p(m.truediv(1.0, m.add(classes, 1.0))), self.log_range)

    def draw(self, u):                            # u: float64 uniform [0, 1); TF: exp(u*log_range) - 1 mod range
        value = m.cast(m.subtract(floor(m.exp(m.multiply(u, self.log_range))), 1.0), int64)
        return m.floormod(value, convert_to_tensor(self.range_max, dtype=int64))


class _Uniform:
    """P(c) = 1 / range_max."""

    def __init__(self, range_max):
        self.range_max = range_max

    def prob(self, classes):
        return m.add(m.multiply(classes, 0.0), 1.0 / self.range_max)

    def draw(self, u):
        value = m.cast(floor(m.multiply(u, float(self.range_max))), int64)
        return m.minimum(value, convert_to_tensor(self.range_max - 1, dtype=int64))


def _class_ids(range_max):
    """[0, 1, ..., range_max - 1] as float64 (a constant)."""
    return constant(np.arange(range_max, dtype=np.float64))


def _unique_sample(dist, num_sampled, seeds):
    """Sequential sampling without replacement (Gumbel-top-k) and the matching rejection-loop num_tries."""
    keys_u = _uniform64([dist.range_max], seeds, 0, "keys_uniform")
    p_all = dist.prob(_class_ids(dist.range_max))
    keys = m.truediv(m.log(keys_u), p_all)        # order of -log(-log u) + log p: Gumbel-max keys
    picked = m.cast(top_k(keys, k=num_sampled).indices, int64)
    p_picked = dist.prob(m.cast(picked, float64))
    taken = m.minimum(cumsum(p_picked, exclusive=True), 1.0 - 2.0 ** -52)
    v = m.subtract(1.0, _uniform64([num_sampled], seeds, 1, "tries_uniform"))          # (0, 1]
    rejected = floor(m.truediv(m.log(v), m.log(taken)))                                # Geometric(1 - taken)
    num_tries = m.add(m.reduce_sum(rejected), float(num_sampled))
    return picked, num_tries


def _expected_count(p, num_tries, num_sampled):
    if num_tries is None:
        return m.cast(m.multiply(p, float(num_sampled)), float32)
    exact = m.equal(num_tries, float(num_sampled))
    general = m.negative(expm1(m.multiply(num_tries, log1p(m.negative(p)))))
    return m.cast(m.where(exact, m.multiply(p, float(num_sampled)), general), float32)


def _static_int(value, arg, fn, minimum):
    if isinstance(value, Tensor):
        raise UnsupportedError(f"{fn}: `{arg}` must be a Python int, not the tensor {value.name}")
    if isinstance(value, bool) or int(value) != value:
        raise TypeError(f"{fn}: `{arg}` must be an int, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{fn}: `{arg}` must be at least {minimum}, got {value}")
    return value


def _candidate_sampler(dist_cls, fn, op_name, true_classes, num_true, num_sampled, unique, range_max, seed,
                       name):
    num_true = _static_int(num_true, "num_true", fn, 1)
    num_sampled = _static_int(num_sampled, "num_sampled", fn, 1)
    range_max = _static_int(range_max, "range_max", fn, 1)
    if isinstance(unique, Tensor):
        raise UnsupportedError(f"{fn}: `unique` must be a Python bool, not the tensor {unique.name}")
    true_classes = convert_to_tensor(true_classes, dtype=None if isinstance(true_classes, Tensor) else int64)
    if true_classes.dtype != int64:
        raise TypeError(f"Input 'true_classes' of '{op_name}' Op has type {true_classes.dtype.name} that does "
                        f"not match expected type of int64.")
    dims = true_classes.shape.dims
    if dims is not None and len(dims) != 2:
        raise ValueError(f"{fn}: true_classes must be a matrix [batch_size, num_true], got shape "
                         f"{true_classes.shape}")
    if dims is not None and dims[1] is not None and dims[1] != num_true:
        raise InvalidArgumentError(f"{fn}: true_classes must have num_true columns, expected: {num_true} "
                                   f"was: {dims[1]}")
    if unique and num_sampled > range_max:
        raise InvalidArgumentError(f"{fn}: Sampler's range is too small: num_sampled={num_sampled} unique "
                                   f"samples from range_max={range_max}")
    seeds = get_seed(seed)
    dist = dist_cls(range_max)
    with get_default_graph().name_scope(name or op_name):
        if unique:
            sampled, num_tries = _unique_sample(dist, num_sampled, seeds)
        else:
            sampled, num_tries = dist.draw(_uniform64([num_sampled], seeds, 0, "uniform")), None
        sampled = m.identity(sampled, name="sampled_candidates")
        true_p = dist.prob(m.cast(true_classes, float64))
        true_expected = m.identity(_expected_count(true_p, num_tries, num_sampled), name="true_expected_count")
        sampled_p = dist.prob(m.cast(sampled, float64))
        sampled_expected = m.identity(_expected_count(sampled_p, num_tries, num_sampled),
                                      name="sampled_expected_count")
    return CandidateSamples(sampled, true_expected, sampled_expected)


def log_uniform_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max, seed=None, name=None):
    """tf.nn.log_uniform_candidate_sampler: num_sampled int64 classes from the log-uniform (Zipfian)
    distribution over [0, range_max), without replacement when `unique`, and their expected counts."""
    return _candidate_sampler(_LogUniform, "log_uniform_candidate_sampler", "LogUniformCandidateSampler",
                              true_classes, num_true, num_sampled, unique, range_max, seed, name)


def uniform_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max, seed=None, name=None):
    """tf.nn.uniform_candidate_sampler: as log_uniform_candidate_sampler, uniform over [0, range_max)."""
    return _candidate_sampler(_Uniform, "uniform_candidate_sampler", "UniformCandidateSampler",
                              true_classes, num_true, num_sampled, unique, range_max, seed, name)


# ---- sampled losses ---------------------------------------------------------------------------------------
def _single_weights(weights, fn):
    if isinstance(weights, (list, tuple)):
        if len(weights) != 1:
            raise UnsupportedError(f"{fn}: sharded `weights` (a list of {len(weights)} tensors) are not supported")
        weights = weights[0]
    if type(weights).__name__ == "PartitionedVariable":
        raise UnsupportedError(f"{fn}: a partitioned `weights` variable is not supported")
    return weights


def _compute_sampled_logits(weights, biases, labels, inputs, num_sampled, num_classes, num_true, sampled_values,
                            remove_accidental_hits, partition_strategy, name, seed, fn):
    """(logits [batch, num_true + num_sampled], labels of the same shape) as TF's _compute_sampled_logits
    with subtract_log_q=True."""
    if partition_strategy not in ("mod", "div"):
        raise ValueError(f"{fn}: unknown partition_strategy {partition_strategy!r}")
    weights = convert_to_tensor(_single_weights(weights, fn))
    num_true = _static_int(num_true, "num_true", fn, 1)
    graph = get_default_graph()
    with graph.name_scope(name or "compute_sampled_logits"):
        biases = convert_to_tensor(biases)
        inputs = convert_to_tensor(inputs)
        labels = convert_to_tensor(labels)
        if labels.dtype != int64:
            labels = m.cast(labels, int64)
        labels_flat = reshape(labels, [-1])
        if sampled_values is None:
            sampled_values = log_uniform_candidate_sampler(labels, num_true, num_sampled, True, num_classes,
                                                           seed=seed)
        sampled, true_expected, sampled_expected = (m.stop_gradient(convert_to_tensor(s))
                                                    for s in sampled_values)
        sampled = m.cast(sampled, int64) if sampled.dtype != int64 else sampled

        true_w = gather(weights, labels_flat)                       # [batch * num_true, dim]
        sampled_w = gather(weights, sampled)                        # [num_sampled, dim]
        if true_w.dtype != inputs.dtype:
            true_w, sampled_w = m.cast(true_w, inputs.dtype), m.cast(sampled_w, inputs.dtype)
        true_b = gather(biases, labels_flat)
        sampled_b = gather(biases, sampled)
        if true_b.dtype != inputs.dtype:
            true_b, sampled_b = m.cast(true_b, inputs.dtype), m.cast(sampled_b, inputs.dtype)

        sampled_logits = m.add(m.matmul(inputs, sampled_w, transpose_b=True), sampled_b)
        dim = weights.shape.dims[1] if weights.shape.dims is not None and len(weights.shape.dims) == 2 else None
        if dim is None:
            raise UnsupportedError(f"{fn}: `weights` must be a matrix with a known number of columns, "
                                   f"got shape {weights.shape}")
        true_w3 = reshape(true_w, [-1, num_true, dim])
        true_logits = m.reduce_sum(m.multiply(expand_dims(inputs, 1), true_w3), axis=2)   # [batch, num_true]
        true_logits = m.add(true_logits, reshape(true_b, [-1, num_true]))

        if remove_accidental_hits:
            labels_2d = reshape(labels, [-1, num_true])
            hits = reduce_any(m.equal(expand_dims(labels_2d, 2), reshape(sampled, [1, 1, -1])), axis=1)
            sampled_logits = m.add(sampled_logits, m.multiply(m.cast(hits, sampled_logits.dtype), _FLT_LOWEST))

        true_logits = m.subtract(true_logits, m.log(m.cast(true_expected, true_logits.dtype)))
        sampled_logits = m.subtract(sampled_logits, m.log(m.cast(sampled_expected, sampled_logits.dtype)))
        out_logits = concat([true_logits, sampled_logits], 1)
        out_labels = concat([m.truediv(ones_like(true_logits), float(num_true)), zeros_like(sampled_logits)], 1)
    return out_logits, out_labels


def nce_loss(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1, sampled_values=None,
             remove_accidental_hits=False, partition_strategy="mod", name="nce_loss"):
    """tf.nn.nce_loss: per-example noise-contrastive estimation loss, shape [batch_size]."""
    logits, labels = _compute_sampled_logits(weights, biases, labels, inputs, num_sampled, num_classes, num_true,
                                             sampled_values, remove_accidental_hits, partition_strategy, name,
                                             None, "nce_loss")
    losses = sigmoid_cross_entropy_with_logits(labels=labels, logits=logits, name="sampled_losses")
    return m.reduce_sum(losses, axis=1)


def sampled_softmax_loss(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1,
                         sampled_values=None, remove_accidental_hits=True, partition_strategy="mod",
                         name="sampled_softmax_loss", seed=None):
    """tf.nn.sampled_softmax_loss: per-example sampled softmax cross-entropy, shape [batch_size]."""
    logits, labels = _compute_sampled_logits(weights, biases, labels, inputs, num_sampled, num_classes, num_true,
                                             sampled_values, remove_accidental_hits, partition_strategy, name,
                                             seed, "sampled_softmax_loss")
    labels = m.stop_gradient(labels, name="labels_stop_gradient")
    return softmax_cross_entropy_with_logits_v2(labels=labels, logits=logits)
