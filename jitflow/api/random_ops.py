"""Random ops (`tf.random_uniform`, `tf.random_normal`, `tf.truncated_normal`)
and TF 1.x's seed rules: the op seed comes from the graph seed and the op's
position in the graph, so a rebuilt graph repeats its values."""
from __future__ import annotations

import os

from ..framework.graph import get_default_graph
from ..ir.types import as_dtype, float32, float64
from .math_ops import add, identity, multiply
from .shape_args import is_tensor_shape, shape_tensor, static_shape_value

_DEFAULT_GRAPH_SEED = 87654321


def get_seed(op_seed):
    graph = get_default_graph()
    graph_seed = graph.seed
    if graph_seed is not None:
        if op_seed is None:
            op_seed = len(graph._ops)
        return int(graph_seed) & 0xFFFFFFFF, int(op_seed) & 0xFFFFFFFF
    if op_seed is not None:
        return _DEFAULT_GRAPH_SEED, int(op_seed) & 0xFFFFFFFF
    fresh = int.from_bytes(os.urandom(8), "little")
    return fresh & 0xFFFFFFFF, fresh >> 32


def set_random_seed(seed):
    get_default_graph().seed = seed


def _standard(kind, shape, dtype, seed, name):
    dtype = as_dtype(dtype)
    if is_tensor_shape(shape):          # tf.random_normal(tf.shape(z)): the shape is known at run time
        target = shape_tensor(shape)
        seed1, seed2 = get_seed(seed)
        op = get_default_graph().create_op("random_" + kind, [target], {
            "shape": static_shape_value(target), "shape_from_value": True, "dtype": dtype,
            "seed": seed1, "seed2": seed2}, name=name)
        return op.outputs[0]
    shape = (shape,) if isinstance(shape, int) else tuple(int(d) for d in shape)
    seed1, seed2 = get_seed(seed)
    op = get_default_graph().create_op("random_" + kind, [], {"shape": shape, "dtype": dtype,
                                                             "seed": seed1, "seed2": seed2}, name=name)
    return op.outputs[0]


def random_uniform(shape, minval=0, maxval=None, dtype=float32, seed=None, name=None):
    dtype = as_dtype(dtype)
    if dtype.is_integer:
        return _random_uniform_int(shape, minval, maxval, dtype, seed, name)
    maxval = 1 if maxval is None else maxval
    graph = get_default_graph()
    # as TF: the ops live under the `name` scope and the result is the op named `name` itself ("noise:0")
    with graph.name_scope(name or "random_uniform") as scope:
        rnd = _standard("uniform", shape, dtype, seed, "RandomUniform")
        if isinstance(minval, (int, float)) and isinstance(maxval, (int, float)):
            if (minval, maxval) == (0, 1):
                return identity(rnd, name=scope)
            return add(multiply(rnd, float(maxval) - float(minval)), minval, name=scope)
        return add(multiply(rnd, maxval - minval), minval, name=scope)


def _random_uniform_int(shape, minval, maxval, dtype, seed, name):
    """TF's integer `random_uniform`: integers uniform in [minval, maxval) (TF op RandomUniformInt), built
    as floor(u * (maxval - minval)) + minval from a float64 uniform u in [0, 1)."""
    from .convert import convert_to_tensor
    from .math_ops import cast, minimum, subtract
    if maxval is None:
        raise ValueError(f"Must specify maxval for integer dtype {dtype.name!r}")
    if isinstance(minval, int) and isinstance(maxval, int) and minval >= maxval:
        raise ValueError(f"Need minval < maxval: {minval} >= {maxval}")
    graph = get_default_graph()
    with graph.name_scope(name or "random_uniform") as scope:
        rnd = _standard("uniform", shape, float64, seed, "RandomUniformInt")
        span = subtract(convert_to_tensor(maxval, dtype=dtype), convert_to_tensor(minval, dtype=dtype))
        offset = cast(multiply(rnd, cast(span, float64)), dtype)
        offset = minimum(offset, subtract(span, 1))          # u * span can round up to span itself
        return add(offset, minval, name=scope)


def random_normal(shape, mean=0.0, stddev=1.0, dtype=float32, seed=None, name=None):
    graph = get_default_graph()
    with graph.name_scope(name or "random_normal") as scope:
        rnd = _standard("normal", shape, dtype, seed, "RandomStandardNormal")
        return add(multiply(rnd, stddev), mean, name=scope)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=float32, seed=None, name=None):
    graph = get_default_graph()
    with graph.name_scope(name or "truncated_normal") as scope:
        rnd = _standard("truncated_normal", shape, dtype, seed, "TruncatedNormal")
        return add(multiply(rnd, stddev), mean, name=scope)
