"""Generator steps drawn from the op registry: every ELEMENTWISE op with a numpy reference and a
scalar rule that the hand-written steps do not already cover (the math ops of
jitflow/ops/math_extra.py and any added later: sin, log1p, relu6, squared_difference, ...), with
the dtypes its infer rule accepts; and the array ops of jitflow/ops/array_extra.py through their
TF functions (tf.gather, tf.pad, tf.reverse, tf.slice, tf.cumsum). A mixin of Generator."""
from __future__ import annotations

import functools
import inspect

import numpy as np

from ..ir.types import TensorType
from ..ops import all_ops
from ..ops.registry import ELEMENTWISE
from .common import (BINARY_FLOAT, BINARY_NUMERIC, COMPARE, DTYPES, FLOAT_NAMES, INT_NAMES, LOGICAL, NUMERIC_NAMES,
                     UNARY_FLOAT, UNARY_NUMERIC)

COVERED_ELSEWHERE = set(UNARY_FLOAT + UNARY_NUMERIC + BINARY_NUMERIC + BINARY_FLOAT + COMPARE + LOGICAL) | {
    "logical_not", "select", "cast", "iota", "identity", "stop_gradient", "add_n"}
POSITIVE_INPUT = ("log1p", "reciprocal")     # kept positive in gradient cases (and half the others)
BOUNDED_INPUT = ("tan", "expm1")             # through tanh in gradient cases
GATHER_EXCLUDED_DTYPES = ()      # (bool gather failed to compile until its zero store was fixed)


@functools.lru_cache(maxsize=None)
def registry_elementwise() -> tuple:
    """(name, arity, allowed dtype names, differentiable) of the registry's other elementwise ops."""
    out = []
    for name, opdef in sorted(all_ops().items()):
        if opdef.kind != ELEMENTWISE or opdef.reference is None or opdef.scalar is None or opdef.stateful \
                or name in COVERED_ELSEWHERE:
            continue
        params = [p for p in inspect.signature(opdef.scalar).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
        arity = len(params) - 2           # (s, attrs, x[, y])
        if arity not in (1, 2):
            continue
        allowed = []
        for dtype in FLOAT_NAMES + INT_NAMES + ("bool",):
            try:
                opdef.infer([TensorType(DTYPES[dtype], ())] * arity, {})
            except (TypeError, ValueError):
                continue
            allowed.append(dtype)
        if allowed:
            differentiable = opdef.differentiable and opdef.grad is not None and "float64" in allowed
            out.append((name, arity, tuple(allowed), differentiable))
    return tuple(out)


class RegistrySteps:
    def step_registry(self):
        d = self.d
        ops = [o for o in registry_elementwise() if not self.grad or o[3]]
        if not ops:
            return self.step_unary()
        name, arity, allowed, _ = d.choice(ops)
        if self.grad:
            allowed = ("float64",)
        x = self.pick(allowed)
        if self.dtypes[x] not in allowed:
            target = self.main_dtype if self.main_dtype in allowed else allowed[0]
            x = self.emit("cast", [x], {"dtype": target}, self.exact[x])
        if name in POSITIVE_INPUT and (self.grad or d.bool(0.5)):
            x = self.positive(x)
        if name in BOUNDED_INPUT and self.grad:
            x = self.emit("op", [x], {"op": "tanh"})
        ids = [x] if arity == 1 else [x, self.partner(x)]
        from .bounds import is_exact
        exact = is_exact(name) and all(self.exact[i] for i in ids)
        return self.emit("op", ids, {"op": name}, exact)

    def step_api_array(self):
        d = self.d
        dtypes = FLOAT_NAMES if self.grad else tuple(DTYPES)
        x = self.pick(dtypes, pred=lambda i: len(self.shapes[i]) >= 1 and self.static_known[i])
        if not self.static_known[x] or not self.shapes[x] or self.dtypes[x] not in dtypes:
            x = self.new_input(self.main_dtype if self.main_dtype in dtypes else "float64",
                               self.random_shape(d.int(1, 3)), unknown=False)
        shape, dtype, exact = self.shapes[x], self.dtypes[x], self.exact[x]
        rank = len(shape)
        choice = d.weighted({"gather": 2 if dtype not in GATHER_EXCLUDED_DTYPES else 0, "pad": 2, "reverse": 1, "tf_slice": 1,
                             "cumsum": 1.5 if dtype in NUMERIC_NAMES and not self.grad else 0})
        if choice == "gather":
            axis = d.int(-rank, rank - 1)
            n = shape[axis]
            index_shape = self.random_shape(d.int(0, 2)) if n else (0,)
            indices = self.data_rng.integers(0, max(n, 1), size=index_shape)
            if n and indices.size and not self.grad and d.bool(0.1):      # TF: InvalidArgumentError
                indices.reshape(-1)[self.data_rng.integers(indices.size)] = n + d.int(0, 3)
            idx = self.new_input(d.choice(INT_NAMES), index_shape, array=indices, unknown=False)
            return self.emit("gather", [x, idx], {"axis": axis}, exact)
        if choice == "pad":
            mode = d.weighted({"CONSTANT": 3, "REFLECT": 1, "SYMMETRIC": 1})
            if dtype == "bool":
                mode = "CONSTANT"
            limit = (lambda n: n - 1) if mode == "REFLECT" else (lambda n: n) if mode == "SYMMETRIC" else \
                (lambda n: 3)
            paddings = tuple((d.int(0, max(0, min(2, limit(n)))), d.int(0, max(0, min(2, limit(n)))))
                             for n in shape)
            value = False if dtype == "bool" else 0 if mode != "CONSTANT" else d.choice((0, 0, 1, -2)) if dtype in INT_NAMES else \
                d.choice((0.0, 0.0, 1.5, -2.0))
            if int(np.prod([n + a + b for n, (a, b) in zip(shape, paddings)])) > self.max_elements:
                paddings = tuple((0, 0) for _ in shape)
            return self.emit("pad", [x], {"paddings": paddings, "mode": mode, "value": value}, exact)
        if choice == "reverse":
            axes = tuple(sorted({d.int(-rank, rank - 1) % rank for _ in range(d.int(1, rank))}))
            return self.emit("reverse", [x], {"axes": axes}, exact)
        if choice == "tf_slice":
            begin = tuple(d.int(0, n) for n in shape)
            size = tuple(-1 if d.bool(0.2) else d.int(0, n - b) for n, b in zip(shape, begin))
            return self.emit("tf_slice", [x], {"begin": begin, "size": size}, exact)
        return self.emit("cumsum", [x], {"axis": d.int(-rank, rank - 1), "exclusive": d.bool(0.3),
                                         "reverse": d.bool(0.3)}, exact and dtype in INT_NAMES)
