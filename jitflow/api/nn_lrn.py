"""`tf.nn.local_response_normalization` (`tf.nn.lrn`): TF's LRN op over the last (depth) axis of a 4-D
tensor, as a composite of registry ops that fuses into one loop (square, pad, the 2r+1 shifted depth
slices summed, pow), so its gradient is the composite's.

    sqr_sum[a, b, c, d] = sum(input[a, b, c, d - depth_radius : d + depth_radius + 1] ** 2)
    output = input / (bias + alpha * sqr_sum) ** beta
"""
from __future__ import annotations

from ..errors import UnsupportedError
from ..framework.graph import get_default_graph
from ..ir.types import float32, float64
from . import array_extra, math_ops
from .convert import convert_to_tensor


def local_response_normalization(input, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, name=None):  # noqa: A002
    with get_default_graph().name_scope(name or "LRN"):
        x = convert_to_tensor(input, name="input")
        if x.dtype not in (float32, float64):
            raise TypeError(f"local_response_normalization: input must be float32 (or float64), got {x.dtype.name}")
        dims = x.shape.dims
        if dims is not None and len(dims) != 4:
            raise ValueError(f"local_response_normalization: input must be 4-dimensional, got shape {x.shape}")
        if dims is None or dims[3] is None:
            raise UnsupportedError(f"local_response_normalization needs the depth (last) dimension known when the "
                                   f"graph is built; got shape {x.shape}")
        radius = int(depth_radius)
        if radius < 0:
            raise ValueError(f"local_response_normalization: depth_radius must be >= 0, got {depth_radius}")
        depth = dims[3]
        padded = array_extra.pad(math_ops.square(x), [[0, 0], [0, 0], [0, 0], [radius, radius]])
        window = [array_extra.slice(padded, [0, 0, 0, k], [-1, -1, -1, depth]) for k in range(2 * radius + 1)]
        sqr_sum = window[0] if len(window) == 1 else math_ops.add_n(window)
        scale = math_ops.pow(bias + alpha * sqr_sum, -float(beta))
        return math_ops.multiply(x, scale)


lrn = local_response_normalization
