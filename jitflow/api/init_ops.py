"""Initializers: callables `(shape, dtype) -> Tensor` used by Variables,
`tf.get_variable` and layers: constant, zeros, ones, random normal/uniform,
truncated normal, Glorot (Xavier) uniform/normal, He normal, variance scaling."""
from __future__ import annotations

import math

from ..ir.types import as_dtype, float32
from . import array_ops, random_ops


def _fans(shape):
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = 1
    for d in shape[:-2]:
        receptive *= d
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    def __call__(self, shape, dtype=None, partition_info=None):
        raise TypeError(f"{type(self).__name__} must implement this method")

    def get_config(self):
        return dict(self.__dict__)


class Constant(Initializer):
    def __init__(self, value=0, dtype=float32, verify_shape=False):
        self.value = value
        self.dtype = as_dtype(dtype)

    def __call__(self, shape, dtype=None, partition_info=None):
        return array_ops.constant(self.value, dtype=as_dtype(dtype or self.dtype), shape=tuple(shape))


class Zeros(Constant):
    def __init__(self, dtype=float32):
        super().__init__(0, dtype)


class Ones(Constant):
    def __init__(self, dtype=float32):
        super().__init__(1, dtype)


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=1.0, seed=None, dtype=float32):
        self.mean, self.stddev, self.seed, self.dtype = mean, stddev, seed, as_dtype(dtype)

    def __call__(self, shape, dtype=None, partition_info=None):
        return random_ops.random_normal(shape, self.mean, self.stddev, as_dtype(dtype or self.dtype), self.seed)


class RandomUniform(Initializer):
    def __init__(self, minval=0.0, maxval=None, seed=None, dtype=float32):
        self.minval, self.maxval, self.seed, self.dtype = minval, 1.0 if maxval is None else maxval, seed, \
            as_dtype(dtype)

    def __call__(self, shape, dtype=None, partition_info=None):
        return random_ops.random_uniform(shape, self.minval, self.maxval, as_dtype(dtype or self.dtype), self.seed)


class TruncatedNormal(Initializer):
    def __init__(self, mean=0.0, stddev=1.0, seed=None, dtype=float32):
        self.mean, self.stddev, self.seed, self.dtype = mean, stddev, seed, as_dtype(dtype)

    def __call__(self, shape, dtype=None, partition_info=None):
        return random_ops.truncated_normal(shape, self.mean, self.stddev, as_dtype(dtype or self.dtype),
                                           self.seed)


class VarianceScaling(Initializer):
    """TF's variance_scaling_initializer: scale / fan, normal (truncated) or uniform."""

    TRUNCATION = 0.87962566103423978   # stddev of a unit normal truncated to [-2, 2]

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None, dtype=float32):
        self.scale, self.mode, self.distribution, self.seed, self.dtype = scale, mode, distribution, seed, \
            as_dtype(dtype)

    def __call__(self, shape, dtype=None, partition_info=None):
        dtype = as_dtype(dtype or self.dtype)
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution in ("normal", "truncated_normal"):
            stddev = math.sqrt(variance) / self.TRUNCATION
            return random_ops.truncated_normal(shape, 0.0, stddev, dtype, self.seed)
        if self.distribution == "untruncated_normal":
            return random_ops.random_normal(shape, 0.0, math.sqrt(variance), dtype, self.seed)
        limit = math.sqrt(3.0 * variance)
        return random_ops.random_uniform(shape, -limit, limit, dtype, self.seed)


def glorot_uniform_initializer(seed=None, dtype=float32):
    return VarianceScaling(1.0, "fan_avg", "uniform", seed, dtype)


def glorot_normal_initializer(seed=None, dtype=float32):
    return VarianceScaling(1.0, "fan_avg", "truncated_normal", seed, dtype)


def he_normal(seed=None):
    return VarianceScaling(2.0, "fan_in", "truncated_normal", seed)


def he_uniform(seed=None):
    return VarianceScaling(2.0, "fan_in", "uniform", seed)


def xavier_initializer(uniform=True, seed=None, dtype=float32):
    return glorot_uniform_initializer(seed, dtype) if uniform else glorot_normal_initializer(seed, dtype)


constant_initializer = Constant
zeros_initializer = Zeros
ones_initializer = Ones
random_normal_initializer = RandomNormal
random_uniform_initializer = RandomUniform
truncated_normal_initializer = TruncatedNormal
variance_scaling_initializer = VarianceScaling
