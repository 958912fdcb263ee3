"""`tf.debugging.check_numerics`, `tf.check_numerics` and `tf.add_check_numerics_ops`.

How the check runs (host side, after the native call): `check_numerics(t, message)`
is a real graph op (`CheckNumerics`) whose compiled form is the identity (lowering
expands it to its operand, so it costs nothing inside fused kernels). When a
`Session.run` needs check ops, the session also fetches each checked tensor,
runs the compiled code on *copies* of the variables, scans the checked values
for NaN and Inf, and only then commits the variables. A failed check raises
`tf.errors.InvalidArgumentError` naming the tensor, the message and where the
check was created, and the run leaves no trace: variables (and random-op run
counters) keep the values they had before it. Runs without check ops are
untouched (one dict lookup).

`add_check_numerics_ops()` adds a check on every float tensor of the default
graph (except variable updates, whose values are checked through the reads and
the expressions they assign) and returns a group op that runs them all.

Under @jit the op is the identity (no check): a jitted function has no Session.
"""
from __future__ import annotations

import numpy as np

from . import errors
from .framework.graph import Operation, get_default_graph
from .ir.types import FLOATS, TensorType
from .ops import summary_ops  # noqa: F401  (the check_numerics op's record)

_UPDATES = ("assign_var", "assign_add_var", "assign_sub_var")


# the check_numerics op's record: jitflow/ops/summary_ops.py


def check_numerics(tensor, message, name=None):
    """The tensor, checked: a run that computes NaN or Inf in it raises InvalidArgumentError."""
    from .api.convert import convert_to_tensor
    tensor = convert_to_tensor(tensor)
    graph = tensor.graph
    op = graph.create_op("check_numerics", [tensor], {"message": str(message)}, name=name or "CheckNumerics")
    graph._numeric_checks = True        # Session.run looks for check ops only in graphs that have some
    return op.outputs[0]


def add_check_numerics_ops():
    """A group op that checks every float tensor of the default graph for NaN and Inf."""
    from .api.variables import group
    graph = get_default_graph()
    checks = []
    for op in list(graph.get_operations()):
        if op._op in _UPDATES or op._op == "check_numerics":
            continue
        for t in op.outputs:
            if isinstance(t._type, TensorType) and t.dtype in FLOATS:
                checks.append(check_numerics(t, f"{op.name}:{t.value_index}", name="CheckNumerics"))
    return group(*[c.op for c in checks], name="check_numerics_ops")


def checks_for(graph, targets, fed) -> list:
    """The check_numerics ops a run of `targets` executes (walking inputs and control inputs)."""
    from .framework.lowering import needed_ops
    return [op for op in needed_ops(targets, fed)
            if op._op == "check_numerics" and not all(id(t) in fed for t in op.outputs)]


def verify(checks, values):
    """Raises InvalidArgumentError for the first check whose value has NaN or Inf."""
    for op, value in zip(checks, values):
        array = np.asarray(value)
        if array.size and not np.all(np.isfinite(array)):
            what = "NaN" if np.any(np.isnan(array)) else "Inf"
            if what == "NaN" and np.any(np.isinf(array)):
                what = "NaN and Inf"
            checked = op.inputs[0]
            raise errors.InvalidArgumentError(
                None, op, f"{op.attrs['message']} : Tensor had {what} values (tensor '{checked.name}' "
                          f"checked by '{op.name}'; the run was rolled back: variables are unchanged)\n  "
                          f"{errors.describe_op(op)}")


__all__ = ["check_numerics", "add_check_numerics_ops", "Operation"]
