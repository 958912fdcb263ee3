"""Forward-mode autodiff (Jacobian-vector products) as an IR-to-IR transform.

`forward_mode(builder, nodes, xs, tangents, ys)` pushes one tangent per x through the nodes on a path
from the xs to the ys (in list order) and appends the tangent nodes to `nodes`; it returns one
tangent Value per y (None where no x reaches it). Each op's tangent rule comes from its record:

- ELEMENTWISE ops: their Jacobian is diagonal, so the record's `grad` rule evaluated once with a
  cotangent of ones (operands broadcast to the result's shape) gives every partial derivative
  d f / d x_i; the tangent is sum_i t_i * (d f / d x_i) — the same scalar derivative as reverse mode;
- linear ops (kind LAYOUT, REDUCE with `reduce` sum or mean, records whose `bounds` is "linear")
  apply themselves to the tangents (zeros for operands without one);
- bilinear ops (`bounds` "bilinear": conv2d and its backprops; the `gemm` trait: matmul) sum the op
  applied with one operand replaced by its tangent;
- region ops (`cond`, `while`): jitflow/passes/autodiff_forward_regions.py (the same transform run
  inside the regions: a cond over the branch tangents, a loop carrying the tangents);
- every other op (reduce_max/min/prod, matrix_inverse, max_pool and its gradients, gather,
  segment_sum, scan, top_k, ...) uses the transpose of its VJP: with a stand-in cotangent u,
  s = sum_i <vjp_i(u), t_i> is linear in u and d s / d u = J t (reverse mode on the few nodes the
  rule just built).
"""
from __future__ import annotations

from ..ir.types import TensorType
from ..ops import get_op
from ..ops.registry import ELEMENTWISE, LAYOUT, REDUCE
from .autodiff_builder import IROp, unwrap
from .autodiff_ir import between_nodes, reverse_mode, rule_gradients


def _floating(value) -> bool:
    return isinstance(value.type, TensorType) and value.type.dtype.is_floating


def tangent_kind(opdef) -> str:
    """Which tangent rule an op gets: elementwise, linear, bilinear or transpose (of its VJP)."""
    if opdef.kind == ELEMENTWISE:
        return "elementwise"
    if opdef.kind == LAYOUT or (opdef.kind == REDUCE and opdef.reduce in ("sum", "mean")) \
            or opdef.extra.get("bounds") == "linear":
        return "linear"
    if opdef.extra.get("bounds") == "bilinear" or opdef.extra.get("gemm"):
        return "bilinear"
    return "transpose"


def _add(b, terms):
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else unwrap(b.op("add_n", terms))


def _full(b, value, shape):
    if tuple(value.type.shape) == tuple(shape):
        return value
    return b.emit("broadcast_to", [value], {"shape": tuple(shape)})


def _elementwise(b, opdef, node, tangents):
    out = node.results[0]
    operands = [_full(b, v, out.type.shape) for v in node.operands]
    ones = unwrap(b.ones_like(out))
    partials = [None if g is None else unwrap(g) for g in opdef.grad(b, IROp(node, operands), [ones])]
    terms = []
    for d, t in zip(partials, tangents):
        if d is None or t is None:
            continue
        t = _full(b, unwrap(b.cast(t, d.dtype)) if t.dtype != d.dtype else t, out.type.shape)
        terms.append(unwrap(b.mul(t, d)))
    total = _add(b, terms)
    if total is not None and total.dtype != out.dtype:
        total = unwrap(b.cast(total, out.dtype))
    return [total]


def _apply(b, node, operands):
    return b.emit.node(node.op, operands, dict(node.attrs)).results


def _linear(b, node, tangents):
    operands = [t if t is not None else (unwrap(b.zeros_like(v)) if _floating(v) else v)
                for v, t in zip(node.operands, tangents)]
    return _apply(b, node, operands)


def _bilinear(b, node, tangents):
    per_result = []
    for k, t in enumerate(tangents):
        if t is None:
            continue
        operands = list(node.operands)
        operands[k] = t
        per_result.append(_apply(b, node, operands))
    return [_add(b, list(column)) for column in zip(*per_result)]


def _transpose_of_vjp(b, opdef, node, tangents):
    mark = len(b.nodes)
    stand_ins = [unwrap(b.zeros_like(r)) if _floating(r) else None for r in node.results]
    vjps = rule_gradients(b, opdef, node, stand_ins)
    terms = [unwrap(b.reduce_sum(b.mul(v, t), None)) for v, t in zip(vjps, tangents)
             if v is not None and t is not None]
    total = _add(b, terms)
    wrt = [u for u in stand_ins if u is not None]
    if total is None or not wrt:
        return [None] * len(node.results)
    got = iter(reverse_mode(b, b.nodes, [total], [None], wrt, scan=b.nodes[mark:], scope="jvp"))
    return [next(got) if u is not None else None for u in stand_ins]


def node_tangents(b, node, tangents) -> list:
    """The tangents of `node`'s results given its operands' (None: zero)."""
    opdef = get_op(node.op)
    if node.regions:
        from .autodiff_forward_regions import region_tangents
        return region_tangents(b, node, tangents)
    kind = tangent_kind(opdef)
    if kind == "elementwise":
        return _elementwise(b, opdef, node, tangents)
    if kind == "linear":
        return _linear(b, node, tangents)
    if kind == "bilinear":
        return _bilinear(b, node, tangents)
    return _transpose_of_vjp(b, opdef, node, tangents)


def forward_mode(builder, nodes, xs, tangents, ys, scope: str = "jvp", aliases=None) -> list:
    """`aliases` ({id(param): value}): a fed tensor's parameter carries the tangent of the value its
    op computes (as reverse mode, jitflow/passes/autodiff_ir.py)."""
    aliases = aliases or {}
    param_of = {id(v): p_id for p_id, v in aliases.items()}
    tan: dict[int, object] = {}
    for x, t in zip(xs, tangents):
        if _floating(x) and t is not None:
            tan[id(x)] = t if id(x) not in tan else _add(builder, [tan[id(x)], t])
    for node in between_nodes(nodes, xs, ys, aliases=aliases):
        ins = [tan.get(id(v)) if _floating(v) else None for v in node.operands]
        if all(t is None for t in ins) or not get_op(node.op).differentiable:
            continue
        mark = len(nodes)
        outs = node_tangents(builder, node, ins)
        label = f"{scope}/{node.scope or node.op}_jvp"
        for new in nodes[mark:]:
            new.scope = label
        for r, t in zip(node.results, outs):
            if t is not None and _floating(r):
                tan[id(r)] = unwrap(t)
                if id(r) in param_of:
                    tan[param_of[id(r)]] = tan[id(r)]
    return [tan.get(id(y)) for y in ys]
