"""The autodiff request ops: how a graph asks for derivatives that the lowering computes in the IR.

- `symbolic_gradient` (TF's SymbolicGradient): `tf.gradients(ys, xs, grad_ys, stop_gradients)` at
  graph level. Operands: ys, the grad_ys that were given, the xs that some y depends on, the stop
  tensors on the path; attrs `n_ys`, `grad_ys` (a 0/1 mask over ys: which have a given cotangent),
  `n_xs`; one result per x, typed like it. Its `expand` rule runs reverse mode on the values already
  lowered (jitflow/passes/autodiff_ir.py), so a request over another request's results (grad of grad,
  Hessian-vector products) differentiates the inner request's adjoint nodes, expanded before it.
- `jvp_request`: forward mode for `jitflow.jvp`. Operands: ys, xs, one tangent per x; one result per
  y (its tangent); the transform is jitflow/passes/autodiff_forward.py.

Both are SOURCE ops that never reach the IR (like the other expand-only ops): a request over another
request's results differentiates the adjoint or tangent nodes it expanded into, so their records' rule
only stands for "a gradient flows to every float operand" (jitflow/autodiff.py) and is never run.
"""
from __future__ import annotations

from ..errors import UnsupportedError
from ..ops import get_op
from ..ops.registry import SOURCE, define_op
from .autodiff_builder import new_builder, unwrap


def _gradient_infer(types, attrs, op="symbolic_gradient"):
    start = attrs["n_ys"] + sum(attrs["grad_ys"])
    return list(types[start:start + attrs["n_xs"]])


def _expand_gradient(emit, operands, attrs):
    from .autodiff_ir import reverse_mode
    n_ys, mask, n_xs = attrs["n_ys"], attrs["grad_ys"], attrs["n_xs"]
    ys, rest = operands[:n_ys], operands[n_ys:]
    given = iter(rest[:sum(mask)])
    grad_ys = [next(given) if m else None for m in mask]
    rest = rest[sum(mask):]
    xs, stops = rest[:n_xs], rest[n_xs:]
    builder = new_builder(emit)
    grads = reverse_mode(builder, emit.nodes, ys, grad_ys, xs, stops, scope=emit.op.name,
                         aliases=getattr(emit, "aliases", None))
    # the graph saw a path; the specialized IR may show that nothing flows along it (TF: None) -> zeros
    return [unwrap(builder.zeros_like(x)) if g is None else g for g, x in zip(grads, xs)]


def _no_graph_gradient(builder, op, grads):
    raise UnsupportedError(
        f"the autodiff request '{op.name}' is differentiated through the IR nodes it expands into; request "
        f"its derivative with tf.gradients")


symbolic_gradient = define_op("symbolic_gradient", SOURCE, _gradient_infer, expand=_expand_gradient,
                              grad=_no_graph_gradient, tf_name="SymbolicGradient",
                              extra={"autodiff_request": True})


def _jvp_infer(types, attrs, op="jvp_request"):
    return list(types[:attrs["n_ys"]])


def _expand_jvp(emit, operands, attrs):
    from .autodiff_forward import forward_mode
    n_ys, n_xs = attrs["n_ys"], attrs["n_xs"]
    ys, xs, tangents = operands[:n_ys], operands[n_ys:n_ys + n_xs], operands[n_ys + n_xs:]
    builder = new_builder(emit)
    out = forward_mode(builder, emit.nodes, xs, tangents, ys, scope=emit.op.name,
                       aliases=getattr(emit, "aliases", None))
    return [unwrap(builder.zeros_like(y)) if t is None else t for t, y in zip(out, ys)]


jvp_request = define_op("jvp_request", SOURCE, _jvp_infer, expand=_expand_jvp, grad=_no_graph_gradient,
                        tf_name="JVP", extra={"autodiff_request": True})


def request_parts(op):
    """(ys, xs) of a request graph op."""
    attrs = op.attrs
    n = attrs["n_ys"]
    start = n + sum(attrs.get("grad_ys", ()))
    return list(op.inputs[:n]), list(op.inputs[start:start + attrs["n_xs"]])


def _ancestors(ops_from, stop=None) -> set:
    """ids of the tensors the ops in `ops_from` read, transitively (an iterative walk)."""
    seen, tensors, stack = set(), set(), list(ops_from)
    while stack:
        op = stack.pop()
        if op._id in seen:
            continue
        seen.add(op._id)
        for t in op.inputs:
            tensors.add(id(t))
            if stop is None or id(t) not in stop:
                stack.append(t.op)
    return tensors


def fed_through(ops, feeds) -> list:
    """Fed tensors computed by an op from inputs (not placeholders) that lie on a path from some request's xs to its
    ys: as in TF, the gradient flows on through the op that would have computed them, evaluated on its
    own inputs, while the ops after them read the fed value."""
    candidates = [t for t in feeds if t.op.inputs and not get_op(t.op._op).stateful]
    if not candidates:
        return []
    found = {}
    for req in ops:
        if not get_op(req._op).extra.get("autodiff_request"):
            continue
        ys, xs = request_parts(req)
        above_ys = _ancestors([y.op for y in ys]) | {id(y) for y in ys}
        x_ids = {id(x) for x in xs}
        for t in candidates:
            if id(t) in above_ys and id(t) not in found and _ancestors([t.op]) & x_ids:
                found[id(t)] = t
    return list(found.values())
