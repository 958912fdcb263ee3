"""Generator steps that move data or combine values in patterns: transpose/reshape/broadcast/
squeeze, slicing, concat/stack, matmul, matrix_inverse, one_hot, random ops and softmax /
normalization patterns that reuse intermediates (a mixin of Generator)."""
from __future__ import annotations

import numpy as np

from .common import DTYPES, FLOAT_NAMES, INT_NAMES, NUMERIC_NAMES


class LayoutSteps:


    def step_layout(self):
        d = self.d
        dtypes = FLOAT_NAMES if self.grad else tuple(DTYPES)
        x = self.pick(dtypes)
        shape = self.shapes[x]
        exact = self.exact[x]
        choice = d.weighted({"transpose": 3, "reshape": 3, "broadcast_to": 2, "expand_dims": 1,
                             "squeeze": 1 if 1 in shape and self.static_known[x] else 0})
        if choice == "transpose":
            perm = list(range(len(shape)))
            for k in range(len(perm) - 1, 0, -1):
                j = d.int(0, k)
                perm[k], perm[j] = perm[j], perm[k]
            return self.emit("transpose", [x], {"perm": tuple(perm)}, exact)
        if choice == "reshape":
            if not self.static_known[x]:
                return self.emit("reshape", [x], {"shape": (-1,)}, exact)
            n = int(np.prod(shape, dtype=np.int64))
            new = self.factor(n)
            if new and n and d.bool(0.3):
                new[d.int(0, len(new) - 1)] = -1
            return self.emit("reshape", [x], {"shape": tuple(new)}, exact)
        if choice == "broadcast_to":
            target = [n if n != 1 or not d.bool(0.5) else d.choice((2, 3, 0)) for n in shape]
            if len(target) < 4 and d.bool(0.4):
                target = [d.choice((1, 2, 3))] + target
            if self.grad:
                target = [max(1, t) for t in target]
            if int(np.prod(target, dtype=np.int64)) > self.max_elements or not self.static_known[x]:
                target = list(shape)
            return self.emit("broadcast_to", [x], {"shape": tuple(target)}, exact)
        if choice == "expand_dims":
            return self.emit("expand_dims", [x], {"axis": d.int(-len(shape) - 1, len(shape))}, exact)
        ones = [k for k, n in enumerate(shape) if n == 1]
        axis = None if d.bool(0.3) else (d.choice(ones),)
        return self.emit("squeeze", [x], {"axis": axis}, exact)

    def factor(self, n: int) -> list:
        """A random shape with n elements."""
        d = self.d
        if n == 0:
            dims = [0] + [d.choice((1, 2, 3)) for _ in range(d.int(0, 2))]
            perm_at = d.int(0, len(dims) - 1)
            dims[0], dims[perm_at] = dims[perm_at], dims[0]
            return dims
        dims, rest = [], n
        for _ in range(d.int(0, 3)):
            divisors = [k for k in range(1, min(rest, 40) + 1) if rest % k == 0]
            k = d.choice(divisors)
            dims.append(k)
            rest //= k
        dims.append(rest)
        order = list(range(len(dims)))
        for k in range(len(order) - 1, 0, -1):
            j = d.int(0, k)
            order[k], order[j] = order[j], order[k]
        return [dims[k] for k in order]

    def step_slice(self):
        d = self.d
        x = self.pick(tuple(DTYPES), pred=lambda i: len(self.shapes[i]) >= 1 and self.static_known[i])
        if not self.static_known[x] or not self.shapes[x]:
            x = self.new_input(self.main_dtype, self.random_shape(d.int(1, 3)))
        shape = self.shapes[x]
        index = []
        for n in shape:
            r = d.int(0, 9)
            if r < 2 and n > 0:
                index.append(("i", d.int(-n, n - 1)))
            elif r < 3:
                index.append(("s", None, None, None))
            else:
                step = d.choice((1, -1, 2, -2, 3, -3, 1)) if not d.bool(0.1) else d.choice((5, -7))
                style = d.int(0, 3)
                if style == 0:      # the whole dim, strided
                    start, stop = None, None
                elif style == 1:    # a long run: from near one end towards the other
                    near_end, near_start = d.int(-2, -1), d.int(0, 1)
                    start, stop = (near_start, None) if step > 0 else (near_end, None)
                    if d.bool(0.5):
                        stop = -n - 1 if step < 0 and d.bool(0.5) else (near_end if step > 0 else near_start)
                else:               # anything, including empty and out-of-range bounds
                    start = None if d.bool(0.3) else d.int(-n - 2, n + 2)
                    stop = None if d.bool(0.3) else d.int(-n - 2, n + 2)
                index.append(("s", start, stop, step))
            if d.bool(0.1):
                index.append(("n",))
        if len(index) > 1 and d.bool(0.15):
            k = d.int(0, len(index) - 1)
            index = index[:k] + [("e",)]
        if self.grad and any(item[0] == "i" for item in index) and d.bool(0.5):
            index = [("s", None, None, -1) if item[0] == "i" else item for item in index]
        return self.emit("getitem", [x], {"index": tuple(index)}, self.exact[x])

    def step_concat(self):
        d = self.d
        x = self.pick(FLOAT_NAMES if self.grad else tuple(DTYPES),
                      pred=lambda i: len(self.shapes[i]) >= 1 and self.static_known[i])
        shape = self.shapes[x]
        if not shape or not self.static_known[x]:
            x = self.new_input(self.main_dtype, self.random_shape(d.int(1, 3)))
            shape = self.shapes[x]
        axis = d.int(-len(shape), len(shape) - 1)
        parts = [x]
        for _ in range(d.int(1, 3)):
            other = list(shape)
            other[axis % len(shape)] = d.choice((0, 1, 2, 3)) if not self.grad else d.choice((1, 2, 3))
            match = [j for j in range(len(self.tensors)) if self.dtypes[j] == self.dtypes[x]
                     and self.shapes[j] == tuple(other) and self.static_known[j]]
            parts.append(d.choice(match) if match and d.bool(0.5) else self.new_input(self.dtypes[x], other))
        if int(np.prod(shape)) * len(parts) > self.max_elements:
            parts = parts[:2]
        exact = all(self.exact[i] for i in parts)
        if d.bool(0.2) and all(self.shapes[i] == shape for i in parts):
            return self.emit("stack", parts, {"axis": d.int(-len(shape) - 1, len(shape))}, exact)
        return self.emit("concat", parts, {"axis": axis}, exact)

    def step_matmul(self):
        d = self.d
        dtypes = FLOAT_NAMES if self.grad else NUMERIC_NAMES
        x = self.pick(dtypes, pred=lambda i: len(self.shapes[i]) == 2)
        if len(self.shapes[x]) != 2:
            x = self.new_input(self.dtypes[x] if self.dtypes[x] in dtypes else "float32",
                               (d.weighted({1: 1, 2: 2, 3: 2, 5: 1, 0: 0.5 if not self.grad else 0, 17: 1}),
                                d.weighted({1: 1, 2: 2, 4: 2, 0: 0.5 if not self.grad else 0, 33: 1})))
        ta, tb = d.bool(0.3), d.bool(0.3)
        m, k = self.shapes[x][::-1] if ta else self.shapes[x]
        n = d.weighted({1: 1, 2: 2, 3: 2, 7: 1, 0: 0.3 if not self.grad else 0})
        want = (n, k) if tb else (k, n)
        match = [j for j in range(len(self.tensors)) if self.dtypes[j] == self.dtypes[x] and self.shapes[j] == want
                 and self.static_known[j]]
        y = d.choice(match) if match and d.bool(0.5) else self.new_input(self.dtypes[x], want)
        return self.emit("matmul", [x, y], {"ta": ta, "tb": tb}, False)

    def step_inverse(self):
        d = self.d
        n = d.int(1, 5)
        dtype = d.choice(FLOAT_NAMES)
        x = self.pick((dtype,), pred=lambda i: self.shapes[i] == (n, n), fresh_shape=(n, n))
        if self.shapes[x] != (n, n):
            x = self.new_input(dtype, (n, n))
        t = self.emit("op", [x], {"op": "tanh"})
        eye = self.new_input(dtype, (n, n), kind="const", array=np.eye(n) * (n + 1.5))
        m = self.emit("op", [t, eye], {"op": "add"})
        return self.emit("inverse", [m], {})

    def step_one_hot(self):
        d = self.d
        x = self.pick(INT_NAMES, pred=lambda i: len(self.shapes[i]) <= 2 and self.static_known[i])
        if len(self.shapes[x]) > 2 or not self.static_known[x]:
            x = self.new_input("int32", self.random_shape(d.int(0, 2)))
        return self.emit("one_hot", [x], {"depth": d.choice((1, 3, 4, 10)),
                                          "dtype": d.choice(("float32", "float64", "int32"))}, True)

    def step_random(self):
        d = self.d
        shape = self.random_shape()
        return self.emit("random", [], {"op": d.choice(("uniform", "normal", "truncated_normal")), "shape": shape,
                                        "dtype": d.choice(FLOAT_NAMES), "seed": d.int(0, 1000)}, False)

    # patterns that reuse intermediates
    def step_softmax(self):
        d = self.d
        x = self.pick(FLOAT_NAMES, pred=lambda i: len(self.shapes[i]) >= 1)
        if not self.shapes[x] or d.bool(0.5):     # rows long enough for row-group fusion
            x = self.new_input(self.dtypes[x] if self.dtypes[x] in FLOAT_NAMES else "float32", self.row_shape())
        rank = len(self.shapes[x])
        axis = d.choice((-1, -1, rank - 1, 0)) if rank > 1 else -1
        style = d.int(0, 3)
        if style == 0:
            return self.emit("softmax", [x], {"axis": axis})
        if style == 1:
            return self.emit("log_softmax", [x], {"axis": axis})
        m = self.emit("reduce", [x], {"op": "reduce_max", "axis": (axis,), "keepdims": True}, self.exact[x])
        shifted = self.emit("op", [x, m], {"op": "sub"}, self.exact[x])
        e = self.emit("op", [shifted], {"op": "exp"})
        s = self.emit("reduce", [e], {"op": "reduce_sum", "axis": (axis,), "keepdims": True})
        if rank >= 2 and self.static_known[s] and d.bool(0.4):
            # read a row-wise result across rows (reversed rows, or transposed): row-group fusion
            # must not put such a reader in the same loop over rows as the producer
            if d.bool(0.5):
                s = self.emit("getitem", [s], {"index": (("s", None, None, -1),)})
            else:
                s = self.emit("reduce", [s], {"op": "reduce_max", "axis": (0,), "keepdims": True})
        if style == 2:
            out = self.emit("op", [e, s], {"op": "div"})
        else:
            out = self.emit("op", [shifted, self.emit("op", [s], {"op": "log"})], {"op": "sub"})
        if d.bool(0.5):
            self.program.fetches.append(d.choice((m, e, s)))
        return out

    def row_shape(self) -> tuple:
        d = self.d
        rows = d.choice((2, 3, 5, 8))
        if d.bool(0.3):
            return (rows, d.choice((2, 4)), d.choice((16, 9)))
        return (rows, d.choice((16, 17, 33, 40, 4)))

    def step_normalize(self):
        d = self.d
        x = self.pick(FLOAT_NAMES, pred=lambda i: len(self.shapes[i]) >= 2)
        if len(self.shapes[x]) < 2 or d.bool(0.5):
            x = self.new_input(self.dtypes[x] if self.dtypes[x] in FLOAT_NAMES else "float32", self.row_shape())
        axis = d.choice((0, -1))
        mean = self.emit("reduce", [x], {"op": "reduce_mean", "axis": (axis,), "keepdims": True})
        centered = self.emit("op", [x, mean], {"op": "sub"})
        var = self.emit("reduce", [self.emit("op", [centered], {"op": "square"})],
                        {"op": "reduce_mean", "axis": (axis,), "keepdims": True})
        eps = self.new_input(self.dtypes[x], (), kind="const", array=0.5)
        return self.emit("op", [centered, self.emit("op", [self.emit("op", [var, eps], {"op": "add"})],
                                                     {"op": "rsqrt"})], {"op": "mul"})

    # --- whole programs
