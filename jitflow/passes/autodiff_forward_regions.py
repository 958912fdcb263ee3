"""Forward mode through the IR region ops (jitflow/ir/regions.py).

- `cond`: a new cond on the same predicate whose operands are the captures followed by the tangents
  of the captures that have one; each branch is a copy of the forward branch plus its tangent nodes
  (jitflow/passes/autodiff_forward.py run inside the region) and returns the branch's results
  followed by the tangents of its float results. Only the taken branch's tangent runs.
- `while`: a new loop whose carried values are the old ones followed by the tangents of the float
  carried values (zeros where none enters), and whose invariants are the old ones followed by the
  tangents of those that have one; the body is a copy of the old body plus its tangent nodes. The
  primal loop is recomputed alongside; no per-iteration stacks are needed in forward mode.
The new node computes the primal results too; the old node stays for its other readers (dead-code
elimination drops it when nothing else reads it).
"""
from __future__ import annotations

from ..ir.core import Function, Node, Value
from ..ir.types import TensorType
from ..ops import get_op
from .autodiff_builder import _Site, make_emitter, new_builder, unwrap
from .autodiff_regions import _clone


def _floating(value) -> bool:
    return isinstance(value.type, TensorType) and value.type.dtype.is_floating


def _region_with_tangents(region, node, n_params, with_tangent, tangent_of, name):
    """A copy of `region` taking (its params, one tangent per `with_tangent` index) and returning
    (its results, then the tangent of each result index in `tangent_of`)."""
    from .autodiff_forward import forward_mode
    params = [Value(p.type, name=f"a{i}") for i, p in enumerate(region.params[:n_params])]
    tangent_params = [Value(region.params[k].type, name=f"t{k}") for k in with_tangent]
    nodes: list = []
    results = _clone(region, params, nodes)
    builder = new_builder(make_emitter(nodes, _Site(node.scope or node.op, node.loc)))
    got = forward_mode(builder, nodes, [params[k] for k in with_tangent], tangent_params,
                       [results[k] for k in tangent_of], scope="jvp")
    tangents = [unwrap(builder.zeros_like(results[k])) if t is None else t for t, k in zip(got, tangent_of)]
    return Function(name, params + tangent_params, nodes, results + tangents)


def region_tangents(b, node, tangents) -> list:
    if get_op(node.op).extra.get("loop"):          # the record's trait: a loop (while), else a branch
        return _while_tangents(b, node, tangents, node.regions)
    return _cond_tangents(b, node, tangents, node.regions)


def _cond_tangents(b, node, tangents, regions):
    captures = node.operands[1:]
    with_t = [k for k, t in enumerate(tangents[1:]) if t is not None]
    float_out = [k for k, r in enumerate(node.results) if _floating(r)]
    if not with_t or not float_out:
        return [None] * len(node.results)
    branches = tuple(_region_with_tangents(r, node, len(captures), with_t, float_out, name)
                     for r, name in zip(regions, ("then", "else")))
    operands = [node.operands[0]] + list(captures) + [tangents[1 + k] for k in with_t]
    new = Node(node.op, operands, node.attrs, branches[0].value_types(), loc=node.loc, scope=node.scope)
    new.regions = branches
    b.nodes.append(new)
    out = [None] * len(node.results)
    for j, k in enumerate(float_out):
        out[k] = new.results[len(node.results) + j]
    return out


def _while_tangents(b, node, tangents, regions):
    n = len(node.results)
    carried, invariants = list(node.operands[:n]), list(node.operands[n:])
    float_carried = [k for k in range(n) if _floating(carried[k])]
    inv_with_t = [m for m in range(len(invariants)) if tangents[n + m] is not None]
    if not float_carried or all(tangents[k] is None for k in range(len(tangents))):
        return [None] * n
    carried_t = [tangents[k] if tangents[k] is not None else unwrap(b.zeros_like(carried[k])) for k in float_carried]
    operands = carried + carried_t + invariants + [tangents[n + m] for m in inv_with_t]
    nf = len(float_carried)
    order = list(range(n)) + [None] * nf + [n + m for m in range(len(invariants))] + [None] * len(inv_with_t)
    cond_region, body_region = regions

    def rebuilt(region, name, body):
        from .autodiff_forward import forward_mode
        params = [Value(v.type, name=f"a{i}") for i, v in enumerate(operands)]
        old_params = [params[order.index(i)] for i in range(len(region.params))]
        nodes: list = []
        results = _clone(region, old_params, nodes)
        if not body:
            return Function(name, params, nodes, results)
        builder = new_builder(make_emitter(nodes, _Site(node.scope or node.op, node.loc)))
        xs = [old_params[k] for k in float_carried] + [old_params[n + m] for m in inv_with_t]
        ts = params[n:n + nf] + params[n + nf + len(invariants):]
        got = forward_mode(builder, nodes, xs, ts, [results[k] for k in float_carried], scope="jvp")
        tans = [unwrap(builder.zeros_like(results[k])) if t is None else t for t, k in zip(got, float_carried)]
        return Function(name, params, nodes, results + tans)
    new = Node(node.op, operands, node.attrs, [v.type for v in carried + carried_t], loc=node.loc, scope=node.scope)
    new.regions = (rebuilt(cond_region, "cond", False), rebuilt(body_region, "body", True))
    b.nodes.append(new)
    out = [None] * n
    for j, k in enumerate(float_carried):
        out[k] = new.results[n + j]
    return out
