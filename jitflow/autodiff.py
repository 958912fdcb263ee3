"""`tf.gradients` at graph level: a request the lowering fulfils in the IR.

`gradients(ys, xs, grad_ys)` decides, when the graph is built and exactly as TF 1.x does, which xs get
a gradient (None for an x no y depends on through differentiable ops), then creates one
`symbolic_gradient` request op (jitflow/passes/autodiff_request.py) with one result per connected x.
When a run is specialized, the lowering expands the request by running reverse mode on the IR values
of ys and xs (jitflow/passes/autodiff_ir.py) with the `grad` rules of the op records; gradients are
therefore IR nodes too, compile with the forward pass and can be differentiated again (a request over
another request's results sees the inner one's adjoint nodes).

Rules receive a builder (the op constructors of `GradBuilder`: graph ops here, IR nodes in
jitflow/passes/autodiff_builder.py `IRBuilder`), the forward op and the gradients of its outputs, and
return one gradient (or None) per input. Shape-dependent steps (reducing a broadcast gradient,
spreading a reduction's gradient) are ops with `expand` rules, resolved with the run's shapes.

Deciding connectivity runs each rule once against `_DryBuilder`, which builds nothing and only tracks
which inputs receive a gradient; `cond` / `while` ops pass a gradient to every float input (none for
a loop built with back_prop=False), as their IR rules (jitflow/passes/autodiff_regions.py) do.
"""
from __future__ import annotations

import numpy as np

from .api.convert import convert_to_tensor
from .api.variables import Variable
from .framework.gc_pause import gc_paused
from .framework.graph import Tensor
from .ops import get_op
from .passes import autodiff_request  # noqa: F401  (registers the request ops)

REGION_OPS = ("cond", "while")


class GradBuilder:
    """Op constructors for gradient rules; every op lands in the current name scope."""

    def __init__(self, graph):
        self.graph = graph

    def op(self, name, inputs, attrs=None):
        return self.graph.create_op(name, list(inputs), attrs or {}).outputs[0]

    def const(self, value, like):
        array = np.array(value, dtype=like.dtype.np)
        return self.graph.create_op("const", [], {"value": array, "dtype": like.dtype}).outputs[0]

    def add(self, a, b): return self.op("add", [a, b])
    def sub(self, a, b): return self.op("sub", [a, b])
    def mul(self, a, b): return self.op("mul", [a, b])
    def div(self, a, b): return self.op("div", [a, b])
    def neg(self, a): return self.op("neg", [a])
    def exp(self, a): return self.op("exp", [a])
    def log(self, a): return self.op("log", [a])
    def sign(self, a): return self.op("sign", [a])
    def pow(self, a, b): return self.op("pow", [a, b])
    def floordiv(self, a, b): return self.op("floordiv", [a, b])
    def cast(self, a, dtype): return a if a.dtype == dtype else self.op("cast", [a], {"dtype": dtype})
    def cmp(self, name, a, b): return self.op(name, [a, b])
    def select(self, c, a, b): return self.op("select", [c, a, b])
    def zeros_like(self, x): return self.op("fill_like", [x], {"value": 0, "dtype": x.dtype})
    def ones_like(self, x): return self.op("fill_like", [x], {"value": 1, "dtype": x.dtype})
    def sum_to(self, g, x): return self.op("sum_to_shape", [g, x])
    def reshape_like(self, g, x): return self.op("reshape_like", [g, x])
    def transpose(self, g, perm): return self.op("transpose", [g], {"perm": tuple(perm)})

    def broadcast_grad(self, g, x, axes, mean=False):
        return self.op("broadcast_grad", [g, x], {"axes": None if axes is None else tuple(axes), "mean": bool(mean)})

    def reduce_sum(self, x, axes, keepdims=False):
        return self.op("reduce_sum", [x], {"axes": None if axes is None else tuple(axes), "keepdims": keepdims})

    def matmul(self, a, b, transpose_a=False, transpose_b=False):
        return self.op("matmul", [a, b], {"transpose_a": transpose_a, "transpose_b": transpose_b})


class _Dry:
    """A value of the dry run: only its dtype is known."""

    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype


class _DryBuilder(GradBuilder):
    """Runs a rule without building anything: which inputs would receive a gradient."""

    def op(self, name, inputs, attrs=None):
        dtype = (attrs or {}).get("dtype")
        if dtype is None:
            dtype = next((t.dtype for t in inputs if getattr(t, "dtype", None) is not None), None)
        return _Dry(dtype)

    def const(self, value, like):
        return _Dry(like.dtype)


def _as_tensor_list(values):
    if isinstance(values, (Tensor, Variable)) or not isinstance(values, (list, tuple)):
        values = [values]
    # a Variable stands for its canonical read (what ops built from it use), even when gradients are
    # requested inside `control_dependencies` (where value() would make a fresh, unused read)
    return [v._as_graph_element() if isinstance(v, Variable) else convert_to_tensor(v) for v in values]


def _between_ops(graph, ys, xs, stop_ids):
    """Ops on a path from some x to some y (by data edges), in graph order."""
    consumers: dict[int, list] = {}
    for op in graph._ops:
        for t in op.inputs:
            consumers.setdefault(id(t), []).append(op)
    forward, stack = set(), [op for x in xs for op in consumers.get(id(x), [])]
    while stack:
        op = stack.pop()
        if op._id in forward:
            continue
        forward.add(op._id)
        for t in op.outputs:
            if id(t) not in stop_ids:
                stack.extend(consumers.get(id(t), []))
    between, stack = set(), [y.op for y in ys]
    while stack:
        op = stack.pop()
        if op._id in between or op._id not in forward:
            continue
        between.add(op._id)
        stack.extend(t.op for t in op.inputs)
    return [graph._ops[i] for i in sorted(between)]


def _stops_on_path(ys, stops) -> list:
    """The stop tensors some y depends on (the request's operands; others would pull in unneeded ops)."""
    if not stops:
        return []
    wanted = {id(t): t for t in stops}
    seen, stack, found = set(), [y.op for y in ys], {}
    for y in ys:
        if id(y) in wanted:
            found[id(y)] = y
    while stack and len(found) < len(wanted):
        op = stack.pop()
        if op._id in seen:
            continue
        seen.add(op._id)
        for t in op.inputs:
            if id(t) in wanted:
                found[id(t)] = t
            stack.append(t.op)
    return [t for t in stops if id(t) in found]


def _missing_rule(op):
    return LookupError(f"No gradient defined for operation '{op.name}' (op type: {op.type}), created at {op.loc}")


def _receiving(between, ys, stop_ids) -> set:
    """ids of the tensors that receive a gradient (the dry run of the rules, in reverse graph order)."""
    has = {id(y) for y in ys}
    dry = _DryBuilder(None)
    for op in reversed(between):
        flags = [id(t) in has for t in op.outputs]
        if not any(flags) or any(id(t) in stop_ids for t in op.outputs):
            continue
        opdef = get_op(op._op)
        if not opdef.differentiable or not any(t.dtype.is_floating for t in op.inputs):
            continue
        if opdef.grad is None:
            raise _missing_rule(op)
        got = None
        if op._op in REGION_OPS:         # cond / while: every float input (none when back_prop=False)
            got = [] if not op.attrs.get("_back_prop", True) else None
        elif not opdef.extra.get("autodiff_request"):
            try:
                got = opdef.grad(dry, op, [_Dry(t.dtype) if f else None for t, f in zip(op.outputs, flags)])
            except Exception:       # a rule that inspects more than the dry run knows: assume a path
                got = None
        if got == []:
            continue
        if got is None or len(got) != len(op.inputs):
            got = [True] * len(op.inputs)
        for t, g in zip(op.inputs, got):
            if g is not None and t.dtype.is_floating:
                has.add(id(t))
    return has


def _cotangents(ys, grad_ys):
    if grad_ys is None:
        grad_ys = [None] * len(ys)
    elif not isinstance(grad_ys, (list, tuple)):
        grad_ys = [grad_ys]
    out = []
    for y, gy in zip(ys, grad_ys):
        if gy is None:
            if not y.dtype.is_floating:
                raise TypeError(f"gradients: {y.name} has dtype {y.dtype.name}; grad_ys must be given for "
                                f"non-float ys")
            out.append(None)
        else:
            out.append(convert_to_tensor(gy, dtype=y.dtype))
    return out


def gradients(ys, xs, grad_ys=None, name="gradients", stop_gradients=None, colocate_gradients_with_ops=False,
              gate_gradients=False, aggregation_method=None):
    """Symbolic d(sum of ys)/d(xs); None for an x that no y depends on (as TF 1.x)."""
    ys, xs = _as_tensor_list(ys), _as_tensor_list(xs)
    graph = ys[0].graph
    stops = _as_tensor_list(stop_gradients or [])
    stop_ids = {id(t) for t in stops}
    with gc_paused():
        between = _between_ops(graph, ys, xs, stop_ids)
        with graph.name_scope(name or "gradients"):
            gys = _cotangents(ys, grad_ys)
            has = _receiving(between, ys, stop_ids)
            wrt = [x for x in xs if x.dtype.is_floating and id(x) in has]
            if not wrt:
                return [None] * len(xs)
            # a loop built with back_prop=False passes no gradient: its results stop the walk in the IR
            on_path = _stops_on_path(ys, stops) + [t for op in between if op._op == "while"
                                                   and not op.attrs.get("_back_prop", True) for t in op.outputs]
            inputs = ys + [g for g in gys if g is not None] + wrt + on_path
            attrs = {"n_ys": len(ys), "grad_ys": tuple(int(g is not None) for g in gys), "n_xs": len(wrt)}
            request = graph.create_op("symbolic_gradient", inputs, attrs, name="SymbolicGradient",
                                      output_types=[x._type for x in wrt])
    result = dict(zip((id(x) for x in wrt), request.outputs))
    return [result.get(id(x)) if x.dtype.is_floating else None for x in xs]
