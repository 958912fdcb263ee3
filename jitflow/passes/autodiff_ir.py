"""Reverse-mode autodiff as an IR-to-IR transform.

`reverse_mode(builder, nodes, ys, grad_ys, xs, stops)` takes the nodes of a function being built (in
topological order), output values ys with their cotangents, and the values to differentiate with
respect to; it appends the adjoint nodes to the same list (through `builder`, an IRBuilder from
jitflow/passes/autodiff_builder.py) and returns one adjoint Value per x, or None where no cotangent
reaches it. The per-op rules are the `grad` rules of the op records, run against IR values.

- Only the nodes on a path from some x to some y (by tensor operands; `!effect` and `!var` edges are
  not data) are differentiated; fan-in is summed with one `add_n`; a value in `stops` passes nothing.
- Every walk is iterative (no recursion on graph depth); the nodes are visited in reverse list order,
  so the adjoints land in topological order after the forward nodes.
- Gradients with respect to a variable are with respect to the value a `read_var` returned: that
  value is the x, and the walk never crosses the effect chain.
- Region ops (`cond`, `while`): their records' rule hands them to jitflow/passes/autodiff_regions.py.

`differentiate(fn, ys, xs, grad_ys)` is the same on a whole Function: it returns a new Function whose
results are the original results followed by the adjoints (hand-built IR, tests, dump tools).
"""
from __future__ import annotations

from ..errors import UnsupportedError
from ..ir.core import Function
from ..ir.types import TensorType
from ..ops import get_op
from .autodiff_builder import IROp, make_emitter, new_builder, unwrap


def _is_tensor(value) -> bool:
    return isinstance(value.type, TensorType)


def _floating(value) -> bool:
    return _is_tensor(value) and value.type.dtype.is_floating


def between_nodes(nodes, xs, ys, stop_ids=frozenset(), aliases=None) -> list:
    """The nodes on a path (by tensor operands) from some x to some y, in list order. `aliases`
    ({id(param): value}): a fed tensor's parameter stands for the value its op computes (TF
    differentiates through a fed tensor's op)."""
    aliases = aliases or {}
    param_of = {id(v): p_id for p_id, v in aliases.items()}
    consumers: dict[int, list] = {}
    position: dict[int, int] = {}
    for i, node in enumerate(nodes):
        position[id(node)] = i
        for v in node.operands:
            if _is_tensor(v):
                consumers.setdefault(id(v), []).append(node)
    forward: set[int] = set()
    stack = [n for x in xs for n in consumers.get(id(x), ())]
    while stack:
        node = stack.pop()
        if id(node) in forward:
            continue
        forward.add(id(node))
        for r in node.results:
            if id(r) not in stop_ids:
                stack.extend(consumers.get(id(r), ()))
                if id(r) in param_of:
                    stack.extend(consumers.get(param_of[id(r)], ()))
    between: dict[int, object] = {}
    stack = [y.node for y in ys if y.node is not None]
    while stack:
        node = stack.pop()
        if id(node) in between or id(node) not in forward:
            continue
        between[id(node)] = node
        for v in node.operands:
            if v.node is None and id(v) in aliases:
                v = aliases[id(v)]
            if v.node is not None and _is_tensor(v):
                stack.append(v.node)
    return sorted(between.values(), key=lambda n: position[id(n)])


def aggregate(builder, grads):
    grads = [g for g in (grads or ()) if g is not None]
    if not grads:
        return None
    if len(grads) == 1:
        return unwrap(grads[0])
    return unwrap(builder.op("add_n", grads))


def rule_gradients(builder, opdef, node, out_grads) -> list:
    """The record's rule on an IR node; a node that holds a shape operand of its graph form as an attr
    (record trait `shape_operand`: (position, attr)) is shown to the rule in its graph form."""
    operands = list(node.operands)
    form = opdef.extra.get("shape_operand")
    if form is not None:
        operands.insert(form[0], unwrap(builder.shape_const(node.attrs[form[1]])))
    grads = [None if g is None else unwrap(g) for g in opdef.grad(builder, IROp(node, operands), out_grads)]
    if form is not None and len(grads) == len(operands):
        del grads[form[0]]
    return grads


def reverse_mode(builder, nodes, ys, grad_ys, xs, stops=(), scope: str = "gradients", scan=None,
                 aliases=None) -> list:
    """Appends the adjoints to `nodes` (the builder's list); `scan` (default: `nodes`) is where the
    path from xs to ys is looked for; `aliases` as in `between_nodes`."""
    aliases = aliases or {}
    param_of = {id(v): p_id for p_id, v in aliases.items()}
    stop_ids = {id(v) for v in stops}
    pending: dict[int, list] = {}
    for y, gy in zip(ys, grad_ys):
        if gy is None:
            gy = unwrap(builder.ones_like(y))
        pending.setdefault(id(y), []).append(gy)
    for node in reversed(between_nodes(nodes if scan is None else scan, xs, ys, stop_ids, aliases)):
        out_grads = [aggregate(builder, pending.get(id(r), []) + pending.get(param_of.get(id(r)), []))
                     for r in node.results]
        for r, g in zip(node.results, out_grads):
            if g is not None:
                pending[id(r)] = [g]
        if all(g is None for g in out_grads) or any(id(r) in stop_ids for r in node.results):
            continue
        opdef = get_op(node.op)
        if not opdef.differentiable or not any(_floating(v) for v in node.operands):
            continue
        mark = len(nodes)
        if opdef.grad is None:
            raise LookupError(f"No gradient defined for operation '{node.scope or node.op}' (op type: "
                              f"{node.op}), created at {node.loc}")
        in_grads = rule_gradients(builder, opdef, node, out_grads)
        if len(in_grads) != len(node.operands):
            raise RuntimeError(f"gradient rule of {node.op} returned {len(in_grads)} gradients for "
                               f"{len(node.operands)} operands")
        label = f"{scope}/{node.scope or node.op}_grad"
        for new in nodes[mark:]:
            new.scope = label
        for v, g in zip(node.operands, in_grads):
            if g is not None and _floating(v):
                pending.setdefault(id(v), []).append(unwrap(g))
    return [aggregate(builder, pending.get(id(x))) if _floating(x) else None for x in xs]


def differentiate(fn: Function, ys=None, xs=None, grad_ys=None, zeros_for_none: bool = True) -> Function:
    """A copy of `fn` whose results are fn's tensor results, then d(sum of ys . grad_ys)/d(xs), then its
    effect results.
    ys default to fn's float results, xs to its float tensor parameters; grad_ys (Values of fn, or
    None for ones) default to ones."""
    ys = list(ys) if ys is not None else [r for r in fn.results if _floating(r)]
    xs = list(xs) if xs is not None else [p for p in fn.params if _floating(p)]
    if not ys:
        raise UnsupportedError(f"differentiate: function @{fn.name} has no float result")
    nodes = list(fn.nodes)
    builder = new_builder(make_emitter(nodes))
    grads = reverse_mode(builder, nodes, ys, grad_ys or [None] * len(ys), xs)
    if zeros_for_none:
        grads = [unwrap(builder.zeros_like(x)) if g is None else g for g, x in zip(grads, xs)]
    values = [r for r in fn.results if isinstance(r.type, TensorType)]
    effects = [r for r in fn.results if not isinstance(r.type, TensorType)]
    return Function(fn.name, list(fn.params), nodes, values + [g for g in grads if g is not None] + effects)
