"""The gradient of a `while` op (registered through jitflow/api/control_flow_grad.py).

Two loops, both native (jitflow/api/control_flow.py):

1. a recording forward loop: the loop again, each iteration first writing its input state (every
   carried value) into row i of a stack of `maximum_iterations` rows; it also counts the
   iterations T;
2. the backward loop, j = T-1 .. 0: reads iteration j's state from the stacks, replays the body
   region on it (jitflow/framework/func_graph.py `replay`) and differentiates the copy with the
   incoming adjoints of the carried values as grad_ys; the adjoints of the body's inputs become
   the next adjoints, the adjoints of the loop's captured tensors are summed over iterations.

The stacks need a bound known when the graph is built, so a loop without a static
`maximum_iterations` raises UnsupportedError naming the loop (never a wrong gradient).
"""
from __future__ import annotations

from ..errors import UnsupportedError
from ..framework.func_graph import regions_of, replay
from ..framework.graph import get_default_graph
from ..ir.types import int32
from . import array_ops, math_ops
from .convert import convert_to_tensor


def _stack(x, rows: int):
    dims = x._type.shape
    if dims is not None and None not in dims:
        return array_ops.zeros([rows] + list(dims), dtype=x.dtype)
    return array_ops.zeros(array_ops.concat([[rows], array_ops.shape(x)], 0), dtype=x.dtype)


def while_gradient(op, grads):
    from ..autodiff import gradients
    from .control_flow import while_loop
    from .functional_ops import _write
    from .gather_api import gather
    limit = op.attrs.get("maximum_iterations", -1)
    if not isinstance(limit, int) or limit < 0:
        raise UnsupportedError(
            f"tf.gradients through the tf.while_loop '{op.name}' (created at {op.loc}) needs a static "
            f"maximum_iterations (a Python int): it bounds the per-iteration stacks of forward values the "
            f"backward loop reads; pass maximum_iterations=..., or back_prop=False")
    n = len(op.outputs)
    carried, captures = list(op.inputs[:n]), list(op.inputs[n:])
    cond_region, body_region = regions_of(op)
    float_carried = [k for k in range(n) if carried[k].dtype.is_floating]
    float_caps = [m for m, c in enumerate(captures) if c.dtype.is_floating]
    if not float_carried or all(grads[k] is None for k in float_carried):
        return [None] * len(op.inputs)
    rows = max(limit, 1)

    def captured():
        graph = get_default_graph()
        return [graph.capture(c) for c in captures]

    def rec_cond(i, xs, stacks):
        return replay(cond_region, list(xs) + captured())[0]

    def rec_body(i, xs, stacks):
        new_stacks = [_write(s, i, x, rows) for s, x in zip(stacks, xs)]
        return i + 1, replay(body_region, list(xs) + captured()), new_stacks

    with get_default_graph().name_scope("while_grad"):
        count, _, stacks = while_loop(rec_cond, rec_body, [convert_to_tensor(0, dtype=int32), carried,
                                                           [_stack(x, rows) for x in carried]],
                                      maximum_iterations=limit, back_prop=False, return_same_structure=True,
                                      name="record")

        def back_cond(j, dxs, dcs):
            return math_ops.greater_equal(j, 0)

        def back_body(j, dxs, dcs):
            caps = captured()
            xs = [gather(s, j) for s in stacks]
            outs = replay(body_region, xs + caps)
            wrt = [xs[k] for k in float_carried] + [caps[m] for m in float_caps]
            got = gradients([outs[k] for k in float_carried], wrt, grad_ys=list(dxs))
            got = [g if g is not None else array_ops.zeros_like(t) for g, t in zip(got, wrt)]
            nf = len(float_carried)
            return j - 1, got[:nf], [math_ops.add(a, b) for a, b in zip(dcs, got[nf:])]

        dxs0 = [grads[k] if grads[k] is not None else array_ops.zeros_like(op.outputs[k]) for k in float_carried]
        dcs0 = [array_ops.zeros_like(captures[m]) for m in float_caps]
        _, dxs, dcs = while_loop(back_cond, back_body, [count - 1, dxs0, dcs0], maximum_iterations=limit,
                                 back_prop=False, return_same_structure=True, name="backward")
    result = [None] * len(op.inputs)
    for k, g in zip(float_carried, dxs):
        result[k] = g
    for m, g in zip(float_caps, dcs):
        result[n + m] = g
    return result
