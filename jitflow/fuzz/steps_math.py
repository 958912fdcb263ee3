"""Generator steps that compute values: variables and their updates, elementwise unary/binary
ops, comparisons, selects, casts, add_n, reductions and argmax/argmin (a mixin of Generator)."""
from __future__ import annotations

import numpy as np

from .common import (BINARY_FLOAT, BINARY_NUMERIC, COMPARE, DIFFERENTIABLE_BINARY, DIFFERENTIABLE_UNARY, DTYPES,
                     FLOAT_NAMES, INT_NAMES, LOGICAL, NUMERIC_NAMES, POSITIVE_DOMAIN, REDUCE, UNARY_FLOAT,
                     UNARY_NUMERIC)


class MathSteps:


    # variables: initial reads, fresh reads, updates (effects run in graph order)
    def step_variable(self, dtype=None, shape=None) -> int:
        dtype = dtype or (self.main_dtype if self.d.bool(0.8) else self.d.choice(tuple(DTYPES)))
        shape = tuple(shape) if shape is not None else self.random_shape()
        k = len(self.program.variables)
        self.program.variables.append(self.random_array(dtype, shape))
        self.var_specs.append((dtype, shape))
        return self.emit("variable", [], {"var": k}, True)

    def pick_var(self, pred=None) -> int:
        ks = [k for k, spec in enumerate(self.var_specs) if pred is None or pred(*spec)]
        if ks and self.d.bool(0.8):
            return self.d.choice(ks)
        self.step_variable()
        return len(self.var_specs) - 1

    def step_read(self):
        return self.emit("read_value", [], {"var": self.pick_var()}, True)

    def step_update(self):
        d = self.d
        k = self.pick_var()
        dtype, shape = self.var_specs[k]
        kind = "assign" if dtype == "bool" else d.choice(("assign", "assign_add", "assign_sub"))
        style = d.int(0, 2)
        if style == 0:      # the variable's own value, read at other indices: an in-place hazard
            read = self.emit("read_value", [], {"var": k}, True) if d.bool(0.5) else None
            if read is None:
                read = next(i for i, (b, _, p) in enumerate(self.program.steps) if b == "variable" and p["var"] == k)
            value = read
            flips = [a for a, n in enumerate(shape) if n > 1]
            if flips:
                axis = d.choice(flips)
                index = tuple(("s", None, None, -1 if a == axis else None) for a in range(len(shape)))
                value = self.emit("getitem", [read], {"index": index}, True)
            if dtype != "bool" and d.bool(0.5):
                other = self.pick((dtype,), pred=lambda i: self.shapes[i] == shape and self.static_known[i],
                                  fresh_shape=shape)
                if self.shapes[other] == shape:
                    value = self.emit("op", [value, other], {"op": d.choice(("add", "mul", "maximum"))})
        elif style == 1:    # any value of the variable's dtype and shape
            value = self.pick((dtype,), pred=lambda i: self.shapes[i] == shape and self.static_known[i],
                              fresh_shape=shape)
            if self.shapes[value] != shape or self.dtypes[value] != dtype:
                value = self.new_input(dtype, shape)
        else:
            value = self.new_input(dtype, shape)
        return self.emit("update", [value], {"var": k, "kind": kind}, False)

    def step_sgd(self):
        """var -= c * (a @ b): one GEMM into the variable (alpha = -c, beta = 1) when nothing in
        between reads it; a, b sometimes read the variable itself (then it must not fuse)."""
        d = self.d
        dtype = d.choice(FLOAT_NAMES)
        k = self.pick_var(lambda dt, shape: dt == dtype and len(shape) == 2 and 0 not in shape)
        dtype, shape = self.var_specs[k]
        if len(shape) != 2 or 0 in shape or dtype not in FLOAT_NAMES:
            self.step_variable(dtype, (d.choice((2, 3, 17)), d.choice((2, 5, 16))))
            k = len(self.var_specs) - 1
            dtype, shape = self.var_specs[k]
        m, n = shape
        inner = d.choice((1, 3, 8, 33))
        a = self.new_input(dtype, (m, inner))
        b = self.new_input(dtype, (inner, n))
        if m == n and d.bool(0.3):
            a = self.emit("read_value", [], {"var": k}, True) if d.bool(0.5) else \
                next(i for i, (bb, _, p) in enumerate(self.program.steps) if bb == "variable" and p["var"] == k)
            b = self.new_input(dtype, (n, n))
        product = self.emit("matmul", [a, b], {"ta": False, "tb": False})
        c = self.new_input(dtype, (), kind="const", array=d.choice((0.5, 0.01, -2.0, 1.0)))
        scaled = self.emit("op", [c, product] if d.bool(0.5) else [product, c], {"op": "mul"})
        if d.bool(0.2):   # something in between reads the variable: no fusion allowed
            self.emit("read_value", [], {"var": k}, True)
        return self.emit("update", [scaled], {"var": k, "kind": d.choice(("assign_sub", "assign_add"))})

    # elementwise
    def step_unary(self):
        d = self.d
        if self.grad:
            op = d.choice(DIFFERENTIABLE_UNARY)
        else:
            op = d.choice(UNARY_NUMERIC + UNARY_FLOAT + ("logical_not",))
        if op == "logical_not":
            x = self.pick(("bool",))
            return self.emit("op", [x], {"op": op}, True)
        allowed = FLOAT_NAMES if op in UNARY_FLOAT else NUMERIC_NAMES
        x = self.pick(allowed)
        if self.dtypes[x] not in allowed:
            x = self.emit("cast", [x], {"dtype": "float32" if self.main_dtype != "float64" else "float64"},
                          True)
        if op in POSITIVE_DOMAIN and (self.grad or d.bool(0.7)):
            x = self.positive(x)
        if op == "exp" and (self.grad or d.bool(0.5)):
            x = self.emit("op", [x], {"op": "tanh"})
        exact = self.exact[x] and op in ("neg", "abs", "relu", "sign", "square", "sqrt", "rsqrt", "identity")
        return self.emit("op", [x], {"op": op}, exact)

    def positive(self, x):
        """square(x) + c: a strictly positive value (safe for log, sqrt, division)."""
        sq = self.emit("op", [x], {"op": "square"}, self.exact[x])
        c = self.new_input(self.dtypes[x], (), kind="const", array=self.data_rng.uniform(0.25, 2.25))
        return self.emit("op", [sq, c], {"op": "add"}, self.exact[x])

    def step_binary(self):
        d = self.d
        if self.grad:
            op = d.choice(DIFFERENTIABLE_BINARY)
        else:
            op = d.choice(BINARY_NUMERIC + BINARY_FLOAT)
        allowed = FLOAT_NAMES if op == "div" or self.grad else NUMERIC_NAMES
        x = self.pick(allowed)
        y = self.partner(x)
        if op == "pow" and (self.grad or (DTYPES[self.dtypes[x]].is_floating and d.bool(0.6))):
            x = self.positive(x)
        if op == "div" and (self.grad or d.bool(0.6)):
            y = self.positive(y)
        if d.bool(0.5) and op not in ("pow", "div"):
            x, y = y, x
        exact = self.exact[x] and self.exact[y] and op not in ("pow",)
        return self.emit("op", [x, y], {"op": op}, exact)

    def step_compare(self):
        x = self.pick(NUMERIC_NAMES + ("bool",), pred=lambda i: self.exact[i] or self.d.bool(0.3))
        op = self.d.choice(COMPARE if self.dtypes[x] != "bool" else ("equal", "not_equal"))
        y = self.partner(x)
        if self.dtypes[x] != "bool" and self.d.bool(0.4):    # many exact ties
            y = self.emit("op", [x, y], {"op": self.d.choice(("maximum", "minimum"))}, self.exact[x] and self.exact[y])
        return self.emit("op", [x, y], {"op": op}, True)

    def step_logical(self):
        x = self.pick(("bool",))
        y = self.partner(x)
        return self.emit("op", [x, y], {"op": self.d.choice(LOGICAL)}, True)

    def step_select(self):
        d = self.d
        x = self.pick(FLOAT_NAMES if self.grad else NUMERIC_NAMES + ("bool",))
        y = self.partner(x)
        if self.grad:   # a condition on the inputs only: no kinks from it
            c_src = self.new_input("float64", self.compatible_shape(self.shapes[x]), kind="const")
            zero = self.new_input("float64", (), kind="const", array=0.0)
            c = self.emit("op", [c_src, zero], {"op": "greater"}, True)
        else:
            c = self.partner(x, dtypes=("bool",))
            try:
                np.broadcast_shapes(self.shapes[c], self.shapes[x], self.shapes[y])
            except ValueError:      # compatible with x but not with y
                c = self.new_input("bool", self.compatible_shape(np.broadcast_shapes(self.shapes[x], self.shapes[y])))
        if d.bool(0.5):
            return self.emit("where", [c, x, y], {}, self.exact[x] and self.exact[y])
        return self.emit("op", [c, x, y], {"op": "select"}, self.exact[x] and self.exact[y])

    def step_cast(self):
        if self.d.bool(0.4):    # float -> int/bool: truncation, saturation, NaN (special values are inputs)
            x = self.pick(FLOAT_NAMES, pred=lambda i: self.exact[i])
            if self.dtypes[x] in FLOAT_NAMES:
                return self.emit("cast", [x], {"dtype": self.d.choice(INT_NAMES + ("bool",))}, True)
        x = self.pick(tuple(DTYPES))
        target = self.d.choice(tuple(n for n in DTYPES if n != self.dtypes[x]))
        return self.emit("cast", [x], {"dtype": target}, self.exact[x])

    def step_add_n(self):
        x = self.pick(FLOAT_NAMES if self.grad else NUMERIC_NAMES)
        others = []
        for _ in range(self.d.int(1, 3)):
            j = self.pick((self.dtypes[x],), pred=lambda i: self.shapes[i] == self.shapes[x]
                          and self.static_known[i] == self.static_known[x], fresh_shape=self.shapes[x])
            if self.shapes[j] != self.shapes[x]:
                j = self.new_input(self.dtypes[x], self.shapes[x])
            others.append(j)
        ids = [x] + others
        return self.emit("add_n", ids, {}, all(self.exact[i] for i in ids))

    # reductions
    def step_reduce(self):
        d = self.d
        x = self.pick(FLOAT_NAMES if self.grad else NUMERIC_NAMES, pred=lambda i: len(self.shapes[i]) >= 1)
        rank = len(self.shapes[x])
        op = d.choice(REDUCE)
        if op == "reduce_prod" and DTYPES[self.dtypes[x]].is_floating and d.bool(0.7):
            x = self.emit("op", [x], {"op": "tanh"})        # keep products of many elements finite
        if rank == 0 or d.bool(0.15):
            axis = None
        else:
            k = d.int(1, rank)
            axes = sorted({d.int(-rank, rank - 1) for _ in range(k)})
            axis = tuple(axes)
        keepdims = d.bool(0.5)
        exact = self.exact[x] and op in ("reduce_max", "reduce_min")
        return self.emit("reduce", [x], {"op": op, "axis": axis, "keepdims": keepdims}, exact)

    def step_arg(self):
        x = self.pick(NUMERIC_NAMES, pred=lambda i: len(self.shapes[i]) >= 1 and 0 not in self.shapes[i]
                      and self.static_known[i])
        shape = self.shapes[x]
        if not shape or 0 in shape:
            x = self.new_input(self.main_dtype if self.main_dtype in NUMERIC_NAMES else "float32",
                               self.random_shape(self.d.int(1, 3)))
            shape = self.shapes[x]
            if 0 in shape:
                return None
        axis = self.d.int(-len(shape), len(shape) - 1)
        return self.emit("arg", [x], {"op": self.d.choice(("argmax", "argmin")), "axis": axis,
                                      "output_type": self.d.choice(("int64", "int32"))}, True)

    # layout
