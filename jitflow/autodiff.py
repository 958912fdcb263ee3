"""Reverse-mode symbolic differentiation: `gradients(ys, xs, grad_ys)` walks the
ops that lie between xs and ys in reverse order and emits new graph ops from
each op's gradient rule (the `grad` of its registry record), summing fan-in
with one `add_n`. Gradients are ordinary ops, so they compile with the forward
pass and can be differentiated again.

Rules receive a `GradBuilder` (the op constructors they may use), the forward
Operation and the gradients of its outputs, and return one gradient (or None)
per input. Shape-dependent steps (reducing a broadcast gradient, spreading a
reduction's gradient) are ops with `expand` rules, resolved when a run is
specialized, so gradients work with unknown batch dimensions.
"""
from __future__ import annotations

import numpy as np

from .api.convert import convert_to_tensor
from .api.variables import Variable
from .framework.gc_pause import gc_paused
from .framework.graph import Tensor
from .ops import get_op


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


def _aggregate(builder, grads):
    grads = [g for g in (grads or []) if g is not None]
    if not grads:
        return None
    if len(grads) == 1:
        return grads[0]
    return builder.op("add_n", grads)


def gradients(ys, xs, grad_ys=None, name="gradients", stop_gradients=None, colocate_gradients_with_ops=False,
              gate_gradients=False, aggregation_method=None):
    """Symbolic d(sum of ys)/d(xs); None for an x that no y depends on (as TF 1.x)."""
    ys, xs = _as_tensor_list(ys), _as_tensor_list(xs)
    graph = ys[0].graph
    stop_ids = {id(t) for t in _as_tensor_list(stop_gradients or [])}
    if grad_ys is None:
        grad_ys = [None] * len(ys)
    elif not isinstance(grad_ys, (list, tuple)):
        grad_ys = [grad_ys]
    builder = GradBuilder(graph)
    pending: dict[int, list] = {}
    with gc_paused(), graph.name_scope(name or "gradients"):
        for y, gy in zip(ys, grad_ys):
            if gy is None:
                if not y.dtype.is_floating:
                    raise TypeError(f"gradients: {y.name} has dtype {y.dtype.name}; grad_ys must be given for "
                                    f"non-float ys")
                gy = builder.op("fill_like", [y], {"value": 1, "dtype": y.dtype})
            else:
                gy = convert_to_tensor(gy, dtype=y.dtype)
            pending.setdefault(id(y), []).append(gy)
        for op in reversed(_between_ops(graph, ys, xs, stop_ids)):
            out_grads = [_aggregate(builder, pending.get(id(t))) for t in op.outputs]
            for t, g in zip(op.outputs, out_grads):
                if g is not None:
                    pending[id(t)] = [g]
            if all(g is None for g in out_grads) or any(id(t) in stop_ids for t in op.outputs):
                continue
            opdef = get_op(op._op)
            if not opdef.differentiable or not any(t.dtype.is_floating for t in op.inputs):
                continue
            if opdef.grad is None:
                raise LookupError(f"No gradient defined for operation '{op.name}' (op type: {op.type}), "
                                  f"created at {op.loc}")
            with graph.name_scope(op.name + "_grad"):
                in_grads = opdef.grad(builder, op, out_grads)
            if len(in_grads) != len(op.inputs):
                raise RuntimeError(f"gradient rule of {op.type} returned {len(in_grads)} gradients for "
                                   f"{len(op.inputs)} inputs")
            for t, g in zip(op.inputs, in_grads):
                if g is not None and t.dtype.is_floating:
                    pending.setdefault(id(t), []).append(g)
        return [_aggregate(builder, pending.get(id(x))) if x.dtype.is_floating else None for x in xs]
