"""The user API's run-time checks (ops in jitflow/ops/checks.py): where TF raises
InvalidArgumentError for bad *data* (fed labels out of range, an integer divisor of
zero), the API routes the operand through a check op, so the compiled run fails
with TF's message, the node's name and the user's line instead of returning a
silently wrong value. Constant operands already known to pass are not checked.
"""
from __future__ import annotations

import numpy as np

from ..framework.graph import get_default_graph


def _constant_value(t):
    op = t.op
    return op.attrs["value"] if op._op == "const" else None


def _check_inputs(graph, x):
    """[x], or [x, active] inside tf.cond branches: active is true when every enclosing branch is taken
    (jitflow/api/control_flow.py computes both branches; only the taken one may fail, as in TF)."""
    conditions = list(getattr(graph, "_cond_stack", ()))
    if not conditions:
        return [x]
    active = None
    for pred, taken_when in conditions:
        term = pred if taken_when else graph.create_op("logical_not", [pred], name="LogicalNot").outputs[0]
        active = term if active is None else graph.create_op("logical_and", [active, term],
                                                             name="LogicalAnd").outputs[0]
    return [x, active]


def checked_labels(labels, depth: int, op_type: str = "SparseSoftmaxCrossEntropyWithLogits", name="labels"):
    """labels, checked to lie in [0, depth) when the run executes (TF: "Received a label value of 10
    which is outside the valid range of [0, 10)")."""
    value = _constant_value(labels)
    if value is not None and np.all((value >= 0) & (value < depth)):
        return labels
    attrs = {"lo": 0, "hi": int(depth), "what": "label", "op_type": op_type}
    op = labels.graph.create_op("check_range", _check_inputs(labels.graph, labels), attrs, name=name)
    return op.outputs[0]


def checked_division(op_name: str, x, y, name: str, op_type: str):
    """`op_name(x, y)` (floordiv / floormod) whose integer divisor is checked to be nonzero when the
    run executes (TF: "Integer division by zero"). The check is the node '<name>/divisor'."""
    graph = x.graph if x.graph is not None else get_default_graph()
    value = _constant_value(y)
    if not y.dtype.is_integer or x.dtype != y.dtype or (value is not None and np.all(value != 0)):
        return graph.create_op(op_name, [x, y], name=name).outputs[0]
    final = graph.unique_name(name)                 # the division's own name, reserved first
    with graph.name_scope(final + "/"):
        y = graph.create_op("check_nonzero", _check_inputs(graph, y), {"op_type": op_type},
                            name="divisor").outputs[0]
    return graph.create_op(op_name, [x, y], name=final + "/").outputs[0]
