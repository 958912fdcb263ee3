"""Pieces the Keras recurrent layers need that Keras names: the `hard_sigmoid` activation
(TF 1.15 Keras: clip(0.2 * x + 0.5, 0, 1), the default recurrent activation of LSTM and GRU
there) and the `Orthogonal` initializer (the default recurrent_initializer).

`Orthogonal` computes, in the compiled initializer graph, the orthogonal polar factor of a
random normal matrix by Newton-Schulz iteration (X <- 1.5 X - 0.5 X X^T X after scaling X to
unit Frobenius norm). The polar factor of a Gaussian matrix is a uniformly (Haar) distributed
orthogonal matrix, the same distribution as TF's sign-corrected QR factor; rectangular shapes get
orthonormal rows or columns (the smaller side), as TF. Values differ from TF's for one seed.
"""
from __future__ import annotations

from ..api import math_ops as m
from ..api import random_ops
from ..api.array_ops import reshape, transpose
from ..api.init_ops import Initializer
from ..ir.types import as_dtype, float32

NEWTON_SCHULZ_STEPS = 40      # from sigma_min ~ n**-1.5 (n = 256) to 1 at float32 precision, with margin


def hard_sigmoid(x):
    """clip(0.2 * x + 0.5, 0, 1) (tf.keras in TF 1.15)."""
    return m.minimum(m.maximum(m.add(m.multiply(x, 0.2), 0.5), 0.0), 1.0)


class Orthogonal(Initializer):
    def __init__(self, gain=1.0, seed=None, dtype=float32):
        self.gain, self.seed, self.dtype = float(gain), seed, as_dtype(dtype)

    def __call__(self, shape, dtype=None, partition_info=None):
        shape = tuple(int(d) for d in shape)
        if len(shape) < 2:
            raise ValueError("The tensor to initialize must be at least two-dimensional")
        dtype = as_dtype(dtype or self.dtype)
        rows = 1
        for d in shape[:-1]:
            rows *= d
        cols = shape[-1]
        n, k = max(rows, cols), min(rows, cols)
        x = random_ops.random_normal((n, k), 0.0, 1.0, dtype, self.seed)        # tall: orthonormal columns
        x = m.truediv(x, m.sqrt(m.reduce_sum(m.square(x))))
        for _ in range(NEWTON_SCHULZ_STEPS):
            gram = m.matmul(x, x, transpose_a=True)
            x = m.subtract(m.multiply(x, 1.5), m.multiply(m.matmul(x, gram), 0.5))
        if rows < cols:
            x = transpose(x)
        return reshape(m.multiply(x, self.gain), shape)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}
