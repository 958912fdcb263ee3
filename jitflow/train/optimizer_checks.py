"""Argument checks of `Optimizer.compute_gradients` / `apply_gradients`, with TF 1.x's messages."""
from __future__ import annotations

from ..api.variables import Variable
from ..framework.graph import Tensor

_VALID_DTYPES = ("float16", "bfloat16", "float32", "float64")
_AGGREGATION_METHODS = (0, 1, 2)      # tf.AggregationMethod.ADD_N (DEFAULT), EXPERIMENTAL_TREE, _ACCUMULATE_N


def _check_dtypes(tensors):
    for t in tensors:
        if t.dtype.name not in _VALID_DTYPES:
            expected = ", ".join("tf." + d for d in _VALID_DTYPES)
            raise ValueError(f"Invalid type tf.{t.dtype.name} for {t.name}, expected: [{expected}].")


def check_compute_gradients_args(loss, gate_gradients, aggregation_method):
    if callable(loss) and not isinstance(loss, Tensor):
        raise TypeError("compute_gradients needs a loss Tensor (a callable loss is for eager execution)")
    if not isinstance(loss, Tensor):
        raise TypeError(f"loss must be a Tensor, got {loss!r}")
    if gate_gradients not in (0, 1, 2):
        raise ValueError("gate_gradients must be one of: Optimizer.GATE_NONE, Optimizer.GATE_OP, "
                         f"Optimizer.GATE_GRAPH.  Not {gate_gradients}")
    if aggregation_method is not None and aggregation_method not in _AGGREGATION_METHODS:
        raise ValueError(f"Invalid aggregation_method specified {aggregation_method}.")
    _check_dtypes([loss])


def check_var_dtypes(variables):
    _check_dtypes(variables)


class UnsupportedVariableTypeError(NotImplementedError):
    """What TF 1.x raises (a NotImplementedError, same message) when apply_gradients gets something
    that is not a Variable; named so that it reads as a deliberate error, not an unfinished stub."""


def check_apply_gradients_args(grads_and_vars, global_step):
    if not grads_and_vars:
        raise ValueError("No variables provided.")
    for pair in grads_and_vars:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"grads_and_vars must be a list of (gradient, variable) pairs, got {pair!r}")
        g, v = pair
        if not isinstance(v, Variable):
            raise UnsupportedVariableTypeError(f"Trying to optimize unsupported type {v!r}")   # TF 1.x's error
        if g is not None and isinstance(g, Tensor) and g.dtype != v.dtype:
            raise ValueError(f"Gradient {g.name} of dtype {g.dtype.name} does not match variable {v.name} "
                             f"of dtype {v.dtype.name}")
    if global_step is not None and not isinstance(global_step, Variable):
        raise TypeError(f"global_step must be a tf.Variable (it is incremented), got {global_step!r}")
