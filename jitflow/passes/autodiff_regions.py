"""Reverse mode through the IR region ops (jitflow/ir/regions.py), called by jitflow/passes/autodiff_ir.py.

- `cond`: the gradient is a cond on the same predicate. Operands: the captures, then the cotangents
  of the results that have one; each branch region is a copy of its forward branch followed by the
  adjoint nodes of that copy (reverse mode run inside the region) and returns one gradient per float
  capture (zeros where none flows). Only the taken branch's gradient runs, so `cond(x > 0, sqrt(x), 0)`
  has gradient 0 at 0, as TF.
- `while`: two native loops.
  1. a recording loop: the forward loop again, each iteration first writing its input state (every
     carried value the backward body reads: not, e.g., an accumulator it only writes into) into row i
     of a stack of `maximum_iterations` rows; it also counts the iterations T;
  2. the backward loop, j = T-1 .. 0: reads iteration j's state from the stacks, replays the body on
     it (a copy of the body region) and runs reverse mode on the copy with the incoming adjoints of
     the carried values as cotangents; the adjoints of the body's inputs are the next adjoints, those
     of the loop invariants are summed over the iterations.
  The stacks need a bound known when the graph is built; a loop without a static
  `maximum_iterations` recomputes each iteration's state instead (autodiff_while_recompute.py).
A loop built with `back_prop=False` passes no gradient: graph-level requests list its results as stop
values (jitflow/autodiff.py), so the walk never reaches it.
"""
from __future__ import annotations

import numpy as np

from ..ir.core import Function, Node, Value
from ..ir.types import TensorType, int32
from ..ops import get_op
from .autodiff_builder import _Site, make_emitter, new_builder, unwrap


def _floating(value) -> bool:
    return isinstance(value.type, TensorType) and value.type.dtype.is_floating


def _clone(region: Function, params: list, nodes: list) -> list:
    """Copies region's nodes (reading `params` for its parameters) into `nodes`; returns its results."""
    mapping = {id(old): new for old, new in zip(region.params, params)}
    for n in region.nodes:
        copy = Node(n.op, [mapping.get(id(v), v) for v in n.operands], n.attrs, [r.type for r in n.results],
                    loc=n.loc, scope=n.scope)
        copy.regions = n.regions
        for old, new in zip(n.results, copy.results):
            mapping[id(old)] = new
        nodes.append(copy)
    return [mapping.get(id(r), r) for r in region.results]


def _params(types, prefix="a"):
    return [Value(t, name=f"{prefix}{i}") for i, t in enumerate(types)]


def _region_builder(nodes, node):
    return new_builder(make_emitter(nodes, _Site(node.scope or node.op, node.loc)))


def _int_const(b, value):
    array = np.array(value, dtype=np.int32)
    array.setflags(write=False)
    return b.emit("const", [], {"value": array, "dtype": int32})


def _adjoints(b, nodes, ys, cotangents, xs):
    from .autodiff_ir import reverse_mode
    got = reverse_mode(b, nodes, ys, cotangents, xs, scope="gradients")
    return [unwrap(b.zeros_like(x)) if g is None else g for g, x in zip(got, xs)]


def region_gradient(builder, node, grads) -> list:
    if get_op(node.op).extra.get("loop"):          # the record's trait: a loop (while), else a branch
        return _while_gradient(builder, node, grads)
    return _cond_gradient(builder, node, grads)


def _cond_gradient(b, node, grads):
    captures = node.operands[1:]
    wrt = [k for k, v in enumerate(captures) if _floating(v)]
    with_g = [k for k, g in enumerate(grads) if g is not None and _floating(node.results[k])]
    if not wrt or not with_g:
        return [None] * len(node.operands)

    def branch(region, name):
        params = _params([v.type for v in captures])
        cotangents = _params([node.results[k].type for k in with_g], "g")
        nodes: list = []
        results = _clone(region, params, nodes)
        rb = _region_builder(nodes, node)
        grads_in = _adjoints(rb, nodes, [results[k] for k in with_g], cotangents, [params[k] for k in wrt])
        return Function(name, params + cotangents, nodes, grads_in)
    regions = tuple(branch(r, name) for r, name in zip(node.regions, ("then", "else")))
    operands = [node.operands[0]] + list(captures) + [grads[k] for k in with_g]
    new = Node(node.op, operands, node.attrs, [captures[k].type for k in wrt], loc=node.loc, scope=node.scope)
    new.regions = regions
    b.nodes.append(new)
    out = [None] * len(node.operands)
    for j, k in enumerate(wrt):
        out[1 + k] = new.results[j]
    return out


def _write(b, stack, i, value, rows):
    """stack with row i replaced by value (a select over the rows, as the graph-built loops do)."""
    shape = tuple(value.type.shape)
    index = _int_const(b, np.arange(rows, dtype=np.int32).reshape((rows,) + (1,) * len(shape)))
    hit = unwrap(b.cmp("equal", index, i))
    row = b.emit("reshape", [value], {"shape": (1,) + shape})
    full = (rows,) + shape
    return unwrap(b.select(b.emit("broadcast_to", [hit], {"shape": full}),
                           b.emit("broadcast_to", [row], {"shape": full}), stack))


def _live_values(fn: Function) -> set:
    """ids of the values `fn`'s results depend on (operands of the nodes they need, transitively)."""
    live = {id(r) for r in fn.results}
    for n in reversed(fn.nodes):
        if any(id(r) in live for r in n.results):
            live.update(id(v) for v in n.operands)
    return live


def _while_gradient(b, node, grads):
    n = len(node.results)
    carried, invariants = list(node.operands[:n]), list(node.operands[n:])
    float_c = [k for k in range(n) if _floating(carried[k])]
    float_i = [m for m, v in enumerate(invariants) if _floating(v)]
    if not float_c or all(grads[k] is None for k in float_c):
        return [None] * len(node.operands)
    limit = node.attrs.get("maximum_iterations", -1)
    if not isinstance(limit, int) or limit < 0:     # no bound to size the stacks: recompute instead
        from .autodiff_while_recompute import while_gradient_by_recompute
        return while_gradient_by_recompute(b, node, grads, float_c, float_i)
    rows = max(limit, 1)
    cond_region, body_region = node.regions
    attrs = {"maximum_iterations": limit}

    # 2. (built first) the backward loop: (j, adjoints of the float carried, sums for the float invariants)
    #    carried, (stacks..., invariants...) invariant. Only the carried values its body reads are
    #    recorded: an accumulator the body only writes into (a TensorArray, scan's stacked result) would
    #    otherwise be stacked whole at every iteration.
    nf = len(float_c)
    n_back = 1 + nf + len(float_i)

    def back_body(types, stacked):
        params = _params(types)
        nodes: list = []
        rb = _region_builder(nodes, node)
        j, dxs, dcs = params[0], params[1:1 + nf], params[1 + nf:n_back]
        stacks_p, inv = params[n_back:n_back + len(stacked)], params[n_back + len(stacked):]
        rows_of = dict(zip(stacked, stacks_p))
        xs = [rb.emit("gather", [rows_of[k], j], {"axis": 0}) if k in rows_of else
              rb.emit("broadcast_to", [unwrap(rb.const(0, v))], {"shape": tuple(v.type.shape)})
              for k, v in enumerate(carried)]
        outs = _clone(body_region, xs + inv, nodes)
        got = _adjoints(rb, nodes, [outs[k] for k in float_c], dxs, [xs[k] for k in float_c] + [inv[m] for m in float_i])
        sums = [unwrap(rb.add(a, g)) for a, g in zip(dcs, got[nf:])]
        return Function("body", params, nodes, [unwrap(rb.sub(j, _int_const(rb, 1)))] + got[:nf] + sums), xs

    def back_types(stacked):
        head = [TensorType(int32, ())] + [carried[k].type for k in float_c] + [invariants[m].type for m in float_i]
        return head + [TensorType(carried[k].type.dtype, (rows,) + tuple(carried[k].type.shape)) for k in stacked] \
            + [v.type for v in invariants]
    trial, trial_xs = back_body(back_types(range(n)), list(range(n)))
    live = _live_values(trial)
    stacked = [k for k in range(n) if id(trial_xs[k]) in live]

    # 1. the recording loop: (i, carried..., stacks of the read ones...) carried, the invariants as before
    stack_types = [TensorType(carried[k].type.dtype, (rows,) + tuple(carried[k].type.shape)) for k in stacked]
    stacks0 = [b.emit("broadcast_to", [unwrap(b.const(0, carried[k]))], {"shape": t.shape})
               for k, t in zip(stacked, stack_types)]
    rec_operands = [_int_const(b, 0)] + carried + stacks0 + invariants
    rec_types = [v.type for v in rec_operands]
    ns = len(stacked)

    def rec_cond():
        params = _params(rec_types)
        nodes: list = []
        result = _clone(cond_region, params[1:1 + n] + params[1 + n + ns:], nodes)
        return Function("cond", params, nodes, result)

    def rec_body():
        params = _params(rec_types)
        nodes: list = []
        rb = _region_builder(nodes, node)
        i, xs, stacks = params[0], params[1:1 + n], params[1 + n:1 + n + ns]
        new_xs = _clone(body_region, xs + params[1 + n + ns:], nodes)
        new_stacks = [_write(rb, s, i, xs[k], rows) for s, k in zip(stacks, stacked)]
        return Function("body", params, nodes, [unwrap(rb.add(i, _int_const(rb, 1)))] + new_xs + new_stacks)
    record = Node(node.op, rec_operands, attrs, rec_types[:1 + n + ns], loc=node.loc, scope=node.scope + "/record")
    record.regions = (rec_cond(), rec_body())
    b.nodes.append(record)
    count, stacks = record.results[0], record.results[1 + n:1 + n + ns]

    dxs0 = [grads[k] if grads[k] is not None else unwrap(b.zeros_like(carried[k])) for k in float_c]
    dcs0 = [unwrap(b.zeros_like(invariants[m])) for m in float_i]
    back_operands = [unwrap(b.sub(count, _int_const(b, 1)))] + dxs0 + dcs0 + list(stacks) + invariants
    types = [v.type for v in back_operands]

    def back_cond():
        params = _params(types)
        nodes: list = []
        rb = _region_builder(nodes, node)
        return Function("cond", params, nodes, [unwrap(rb.cmp("greater_equal", params[0], _int_const(rb, 0)))])
    back = Node(node.op, back_operands, attrs, types[:n_back], loc=node.loc, scope=node.scope + "/backward")
    back.regions = (back_cond(), back_body(types, stacked)[0])
    b.nodes.append(back)
    return operand_gradients(node, back, float_c, float_i)


def operand_gradients(node, back, float_c, float_i) -> list:
    """One gradient per operand of while `node` from its backward loop `back`, whose results are
    (j, adjoints of the float carried values, sums for the float invariants); None elsewhere."""
    n, nf = len(node.results), len(float_c)
    out = [None] * len(node.operands)
    for idx, k in enumerate(float_c):
        out[k] = back.results[1 + idx]
    for idx, m in enumerate(float_i):
        out[n + m] = back.results[1 + nf + idx]
    return out
