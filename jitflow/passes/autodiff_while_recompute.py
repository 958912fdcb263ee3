"""Reverse mode through a `while` with no static bound (no `maximum_iterations`), by recomputation;
called by jitflow/passes/autodiff_regions.py, which records per-iteration stacks when a bound
sizes them.

Without a bound no stack can be sized when the graph is built, so nothing is recorded:
1. a counting loop runs the forward loop again and counts its iterations T;
2. the backward loop, j = T-1 .. 0, gets iteration j's input state by running the body j times
   from the loop's initial values (an inner native loop), replays the body on it and runs reverse
   mode on the copy, exactly as the recorded gradient does.
The gradient is the same; the cost is T(T+1)/2 body evaluations instead of T, so a long loop
should be given `maximum_iterations` (TF itself keeps growing stacks instead).
"""
from __future__ import annotations

from ..ir.core import Function, Node
from .autodiff_builder import unwrap


def while_gradient_by_recompute(b, node, grads, float_c, float_i):
    from .autodiff_regions import _adjoints, _clone, _int_const, _params, _region_builder, operand_gradients
    n = len(node.results)
    carried, invariants = list(node.operands[:n]), list(node.operands[n:])
    cond_region, body_region = node.regions
    attrs = {"maximum_iterations": -1}

    def loop(operands, carried_count, cond, body, scope):
        """A while node over `operands` (the first `carried_count` carried) with regions built by
        cond(params, nodes, rb) / body(params, nodes, rb)."""
        types = [v.type for v in operands]
        regions = []
        for name, build in (("cond", cond), ("body", body)):
            params, nodes = _params(types), []
            regions.append(Function(name, params, nodes, build(params, nodes, _region_builder(nodes, node))))
        new = Node(node.op, list(operands), attrs, types[:carried_count], loc=node.loc, scope=node.scope + scope)
        new.regions = tuple(regions)
        return new

    # 1. the counting loop: (i, carried...) carried, the invariants as before
    count = loop([_int_const(b, 0)] + carried + invariants, 1 + n,
                 lambda p, nodes, rb: _clone(cond_region, p[1:1 + n] + p[1 + n:], nodes),
                 lambda p, nodes, rb: [unwrap(rb.add(p[0], _int_const(rb, 1)))]
                 + _clone(body_region, p[1:1 + n] + p[1 + n:], nodes), "/count")
    b.nodes.append(count)

    # 2. the backward loop: (j, adjoints of the float carried, sums for the float invariants) carried,
    #    (initial values..., invariants...) invariant
    nf = len(float_c)
    n_back = 1 + nf + len(float_i)
    dxs0 = [grads[k] if grads[k] is not None else unwrap(b.zeros_like(carried[k])) for k in float_c]
    dcs0 = [unwrap(b.zeros_like(invariants[m])) for m in float_i]
    back_operands = [unwrap(b.sub(count.results[0], _int_const(b, 1)))] + dxs0 + dcs0 + carried + invariants

    def back_cond(p, nodes, rb):
        return [unwrap(rb.cmp("greater_equal", p[0], _int_const(rb, 0)))]

    def back_body(p, nodes, rb):
        j, dxs, dcs = p[0], p[1:1 + nf], p[1 + nf:n_back]
        x0, inv = p[n_back:n_back + n], p[n_back + n:]
        # iteration j's input state: the body run j times from the initial values (k < j)
        replay = loop([_int_const(rb, 0)] + x0 + [j] + inv, 1 + n,
                      lambda q, ns, qb: [unwrap(qb.cmp("less", q[0], q[1 + n]))],
                      lambda q, ns, qb: [unwrap(qb.add(q[0], _int_const(qb, 1)))]
                      + _clone(body_region, q[1:1 + n] + q[2 + n:], ns), "/replay")
        nodes.append(replay)
        xs = list(replay.results[1:1 + n])
        body: list = []            # reverse mode walks the body's copy only, never back into the replay
        outs = _clone(body_region, xs + inv, body)
        nodes.extend(body)
        got = _adjoints(rb, body, [outs[k] for k in float_c], dxs, [xs[k] for k in float_c] + [inv[m] for m in float_i])
        sums = [unwrap(rb.add(a, g)) for a, g in zip(dcs, got[nf:])]
        return [unwrap(rb.sub(j, _int_const(rb, 1)))] + got[:nf] + sums

    back = loop(back_operands, n_back, back_cond, back_body, "/backward")
    b.nodes.append(back)
    return operand_gradients(node, back, float_c, float_i)

