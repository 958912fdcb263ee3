"""The gradient rule of the structured control-flow ops (registered on their op records,
jitflow/ops/control_flow_ops.py).

Gradients are built in the IR: a tf.gradients request (jitflow/autodiff.py) is fulfilled by the
reverse-mode transform (jitflow/passes/autodiff_ir.py), which hands `cond` and `while` nodes to
jitflow/passes/autodiff_regions.py (the gradient of a cond is a cond over the branch adjoints; a loop
records its forward states per iteration and runs the backward loop in reverse). A loop built with
`back_prop=False` passes no gradient, as TF (the request lists its results as stop values).
"""
from __future__ import annotations

from ..errors import UnsupportedError


def gradient(builder, op, grads):
    node = getattr(op, "node", None)
    if node is None:
        raise UnsupportedError(f"the gradient of '{op.name}' ({op.type}) is built in the IR when a run is "
                               f"specialized; request it with tf.gradients")
    from ..passes.autodiff_regions import region_gradient
    return region_gradient(builder, node, grads)
