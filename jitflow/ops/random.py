"""Random ops: standard uniform [0, 1), standard normal and truncated normal.

Values come from the counter-based Philox-4x32-10 generator: element i of the
n-th run of an op uses counter (i, attempt, n_lo, n_hi) and key (seed, seed2).
Every random op owns a tiny `!var<i64[]>` run counter, so runs of one op in one
Session differ and a new Session repeats the same values. `philox_reference`
below is the bit-exact numpy oracle of the compiled generator.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import FLOATS, TensorType
from .broadcast import check_dtype
from .registry import RANDOM, define_op

PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
TRUNCATED_MAX_ATTEMPTS = 16


def philox_reference(c0, c1, c2, c3, k0, k1):
    """Philox-4x32-10 on uint32 arrays; returns four uint32 arrays."""
    c = [np.asarray(x, np.uint64) for x in (c0, c1, c2, c3)]
    k0, k1 = np.uint64(k0), np.uint64(k1)
    mask = np.uint64(0xFFFFFFFF)
    for _ in range(10):
        p0 = np.uint64(PHILOX_M0) * c[0]
        p1 = np.uint64(PHILOX_M1) * c[2]
        c = [((p1 >> np.uint64(32)) ^ c[1] ^ k0) & mask, p1 & mask,
             ((p0 >> np.uint64(32)) ^ c[3] ^ k1) & mask, p0 & mask]
        k0 = (k0 + np.uint64(PHILOX_W0)) & mask
        k1 = (k1 + np.uint64(PHILOX_W1)) & mask
    return [x.astype(np.uint32) for x in c]


def _uniform_bits(words, dtype):
    if dtype.name == "float32":
        return (words[0] >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)
    bits = (words[0].astype(np.uint64) << np.uint64(21)) ^ (words[1].astype(np.uint64) >> np.uint64(11))
    return bits.astype(np.float64) * 2.0 ** -53


def _normal_from_words(words, dtype):
    ft = dtype.np.type
    if dtype.name == "float32":
        u1 = ((words[0] >> np.uint32(8)).astype(np.float32) + np.float32(1)) * np.float32(2.0 ** -24)
        u2 = (words[1] >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)
    else:
        u1 = (((words[0].astype(np.uint64) << np.uint64(21)) ^ (words[1].astype(np.uint64) >> np.uint64(11)))
              .astype(np.float64) + 1) * 2.0 ** -53
        u2 = ((words[2].astype(np.uint64) << np.uint64(21)) ^ (words[3].astype(np.uint64) >> np.uint64(11))) \
            .astype(np.float64) * 2.0 ** -53
    radius = np.sqrt(ft(-2) * np.log(u1)).astype(ft)
    return (radius * np.cos(ft(2 * np.pi) * u2).astype(ft)).astype(ft)


def random_reference(kind, shape, dtype, seed, seed2, run):
    n = int(np.prod(shape, dtype=np.int64))
    index = np.arange(n, dtype=np.uint64)
    lo, hi = np.uint64(run & 0xFFFFFFFF), np.uint64(run >> 32)

    def words(attempt):
        return philox_reference(index & np.uint64(0xFFFFFFFF), np.full(n, attempt, np.uint64),
                                np.full(n, lo), np.full(n, hi), seed, seed2)
    if kind == "uniform":
        out = _uniform_bits(words(0), dtype)
    elif kind == "normal":
        out = _normal_from_words(words(0), dtype)
    else:
        out = np.zeros(n, dtype.np)
        done = np.zeros(n, bool)
        for attempt in range(TRUNCATED_MAX_ATTEMPTS):
            z = _normal_from_words(words(attempt), dtype)
            take = ~done & (np.abs(z) <= 2)
            out[take] = z[take]
            done |= take
        out[~done] = 0
    return out.astype(dtype.np).reshape(shape)


def _random_infer(types, attrs, op="random"):
    """Shape from the `shape` attr, or from a `like` operand (graph level: unknown dims allowed)."""
    check_dtype(TensorType(attrs["dtype"], ()), FLOATS, op)
    likes = [t for t in types if isinstance(t, TensorType)]
    if attrs.get("shape_from_value"):      # the operand holds the shape; attrs['shape'] its static part
        return [TensorType(attrs["dtype"], None if attrs.get("shape") is None else tuple(attrs["shape"]))]
    if likes and attrs.get("shape") is None:
        return [TensorType(attrs["dtype"], likes[0].shape)]
    return [TensorType(attrs["dtype"], tuple(attrs["shape"]))]


for _kind, _tf in (("uniform", "RandomUniform"), ("normal", "RandomStandardNormal"),
                   ("truncated_normal", "TruncatedNormal")):
    define_op("random_" + _kind, RANDOM, _random_infer, stateful=True, differentiable=False,
              tf_name=_tf, extra={"distribution": _kind},
              reference=(lambda kind: lambda shape, dtype, seed, seed2, run=0:
                         random_reference(kind, shape, dtype, seed, seed2, run))(_kind))
