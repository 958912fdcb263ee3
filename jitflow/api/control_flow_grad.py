"""Gradients of the structured control-flow ops (registered on their op records,
jitflow/ops/control_flow_ops.py).

The gradient of `cond` is a `cond` on the same predicate: each gradient branch replays its
forward branch (jitflow/framework/func_graph.py `replay`) and differentiates the copy, so only
the taken branch's gradient runs (`cond(x > 0, sqrt(x), 0)` has gradient 0 at 0, as TF).

Gradients of `while` loops are built in jitflow/api/while_grad.py. A loop built with
`back_prop=False` passes no gradient, as TF.
"""
from __future__ import annotations

from ..framework.func_graph import regions_of, replay
from ..framework.graph import get_default_graph


def gradient(builder, op, grads):
    if op._op == "while":
        if not op.attrs.get("_back_prop", True):
            return [None] * len(op.inputs)
        from .while_grad import while_gradient
        return while_gradient(op, grads)
    return _cond_gradient(op, grads)


def _cond_gradient(op, grads):
    from ..autodiff import gradients
    from .array_ops import zeros_like
    from .control_flow import cond
    pred, captures = op.inputs[0], list(op.inputs[1:])
    wrt = [k for k, t in enumerate(captures) if t.dtype.is_floating]
    float_out = [k for k, t in enumerate(op.outputs) if t.dtype.is_floating]
    if not wrt or not float_out:
        return [None] * len(op.inputs)
    dys = [grads[k] if grads[k] is not None else zeros_like(op.outputs[k]) for k in float_out]
    regions = regions_of(op)

    def branch(region):
        def fn():
            graph = get_default_graph()
            inputs = [graph.capture(t) for t in captures]
            outs = replay(region, inputs)
            got = gradients([outs[k] for k in float_out], [inputs[k] for k in wrt],
                            grad_ys=[graph.capture(d) for d in dys])
            return [g if g is not None else zeros_like(inputs[k]) for g, k in zip(got, wrt)]
        return fn
    results = cond(pred, branch(regions[0]), branch(regions[1]), strict=True, name="cond_grad")
    out = [None] * len(op.inputs)
    for g, k in zip(results, wrt):
        out[1 + k] = g
    return out
