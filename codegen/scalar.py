"""Scalar expression DAGs: what one element of a fused loop nest computes.

Op scalar rules (in jitflow/ops) call the primitives of `ScalarBuilder`
(`s.add`, `s.exp`, `s.select`, ...). The builder hash-conses nodes, so a value
used twice in a loop body is computed once. Loads and loop indices carry
`Affine` index expressions over the loop dimensions; `codegen.loops` turns the
DAG into LLVM.
"""
from __future__ import annotations

from dataclasses import dataclass

from jitflow.ir.symdim import SymDim
from jitflow.ir.types import DType, bool_, float32, float64, int64

from .vector_math import PRIMITIVES


class Affine:
    """const + sum(coeff[k] * loop_index[k]): an index along one tensor dim."""

    __slots__ = ("const", "coeffs")

    def __init__(self, const: int = 0, coeffs: dict | None = None):
        self.const = const if isinstance(const, SymDim) else int(const)
        self.coeffs = {k: c for k, c in (coeffs or {}).items() if c}

    @staticmethod
    def dim(k: int) -> "Affine":
        return Affine(0, {k: 1})

    @staticmethod
    def of(x) -> "Affine":
        return x if isinstance(x, Affine) else Affine(x if isinstance(x, SymDim) else int(x))

    def __add__(self, other):
        other = Affine.of(other)
        coeffs = dict(self.coeffs)
        for k, c in other.coeffs.items():
            coeffs[k] = coeffs.get(k, 0) + c
        return Affine(self.const + other.const, coeffs)

    __radd__ = __add__

    def __mul__(self, factor):
        if isinstance(factor, Affine):
            if factor.coeffs:
                raise ValueError("index expressions must stay affine")
            factor = factor.const
        return Affine(self.const * factor, {k: c * factor for k, c in self.coeffs.items()})

    __rmul__ = __mul__

    def key(self):
        return (self.const, tuple(sorted(self.coeffs.items())))

    def __repr__(self):
        terms = [f"{c}*i{k}" for k, c in sorted(self.coeffs.items())]
        return " + ".join(terms + [str(self.const)]) if terms else str(self.const)


def linear_offset(point, shape) -> Affine:
    """Row-major element offset of `point` in a contiguous buffer of `shape`."""
    offset, stride = Affine(0), 1
    for index, dim in zip(reversed(list(point)), reversed(list(shape))):
        offset = offset + Affine.of(index) * stride
        stride *= dim
    return offset


@dataclass(frozen=True, eq=False)
class SExpr:
    prim: str
    args: tuple
    dtype: DType
    attr: object = None

    def __repr__(self):
        return f"{self.prim}:{self.dtype.short}"


class ScalarBuilder:
    """The primitives op scalar rules are written in."""

    def __init__(self):
        self._memo: dict = {}
        self.loads: list[SExpr] = []      # every load, for access analysis
        self.indices: list[SExpr] = []

    def _node(self, prim, args, dtype, attr=None) -> SExpr:
        key = (prim, tuple(id(a) for a in args), dtype, attr[:2] if prim in ("load", "index") else attr)
        node = self._memo.get(key)
        if node is None:
            node = SExpr(prim, tuple(args), dtype, attr)
            self._memo[key] = (node, args)
            if prim == "load":
                self.loads.append(node)
            elif prim == "index":
                self.indices.append(node)
            return node
        return node[0]

    # --- leaves
    def const(self, value, dtype: DType) -> SExpr:
        if isinstance(value, SymDim) and dtype == int64:
            pass                        # a run-time dim (ops/symbolic.py dim_value)
        elif dtype.is_floating:
            value = float(value)
        elif dtype.is_bool:
            value = bool(value)
        else:
            value = int(value)
        return self._node("const", (), dtype, value)

    def load(self, buffer, offset: Affine) -> SExpr:
        return self._node("load", (), buffer.dtype, (buffer.id, offset.key(), offset))

    current_point: list = []

    def index(self, axis: int) -> SExpr:
        """The loop index along `axis` of the element being computed."""
        affine = Affine.of(self.current_point[axis])
        return self._node("index", (), int64, (None, affine.key(), affine))

    # --- arithmetic
    def add(self, a, b): return self._node("add", (a, b), a.dtype)
    def sub(self, a, b): return self._node("sub", (a, b), a.dtype)
    def mul(self, a, b): return self._node("mul", (a, b), a.dtype)
    def div(self, a, b): return self._node("div", (a, b), a.dtype)
    def floordiv(self, a, b): return self._node("floordiv", (a, b), a.dtype)
    def floormod(self, a, b): return self._node("floormod", (a, b), a.dtype)
    def pow(self, a, b): return self._node("pow", (a, b), a.dtype)
    def max(self, a, b): return self._node("max", (a, b), a.dtype)
    def min(self, a, b): return self._node("min", (a, b), a.dtype)
    def neg(self, a): return self._node("neg", (a,), a.dtype)
    def abs(self, a): return self._node("abs", (a,), a.dtype)
    def exp(self, a): return self._node("exp", (a,), a.dtype)
    def log(self, a): return self._node("log", (a,), a.dtype)
    def tanh(self, a): return self._node("tanh", (a,), a.dtype)
    def sqrt(self, a): return self._node("sqrt", (a,), a.dtype)
    def sin(self, a): return self._node("sin", (a,), a.dtype)
    def cos(self, a): return self._node("cos", (a,), a.dtype)
    def tan(self, a): return self._node("tan", (a,), a.dtype)
    def floor(self, a): return self._node("floor", (a,), a.dtype)
    def ceil(self, a): return self._node("ceil", (a,), a.dtype)
    def rint(self, a): return self._node("rint", (a,), a.dtype)      # round half to even
    def log1p(self, a): return self._node("log1p", (a,), a.dtype)    # accurate near 0
    def expm1(self, a): return self._node("expm1", (a,), a.dtype)    # accurate near 0
    def erf(self, a): return self._node("erf", (a,), a.dtype)

    def cmp(self, pred: str, a, b):
        return self._node("cmp", (a, b), bool_, pred)

    def and_(self, a, b): return self._node("and", (a, b), bool_)
    def or_(self, a, b): return self._node("or", (a, b), bool_)
    def not_(self, a): return self._node("not", (a,), bool_)

    def select(self, c, a, b):
        return self._node("select", (c, a, b), a.dtype)

    def check(self, ok, x):
        """x, where a run-time check requires `ok` (jitflow/ops/checks.py); the loop emitter's
        `on_check` decides what a failure does (codegen/checks.py)."""
        return self._node("check", (ok, x), x.dtype)

    def cast(self, a, dtype: DType):
        if a.dtype == dtype:
            return a
        return self._node("cast", (a,), dtype)

    # --- composites (written once here, used by several ops)
    def sigmoid(self, x):
        one = self.const(1, x.dtype)
        return self.div(one, self.add(one, self.exp(self.neg(x))))

    def relu(self, x):
        return self.max(x, self.const(0, x.dtype))

    def sign(self, x):
        zero = self.const(0, x.dtype)
        positive = self.select(self.cmp("gt", x, zero), self.const(1, x.dtype), x)
        return self.select(self.cmp("lt", x, zero), self.const(-1, x.dtype), positive)


FLOAT_TYPES = {float32: "float", float64: "double"}


# ---- what one element costs: whether a fused loop is worth splitting over threads (codegen/cpu.py)
SIMPLE_OPS_PER_ELEMENT = 2      # what one "innermost iteration" of PARALLEL_MIN_WORK (codegen/cpu.py) stands for
VECTOR_MATH_COST = 24           # an inlined exp / tanh / log ... (codegen/vector_math.py), in simple ops: its
                                # instructions and its latency on the element's dependency chain


def element_cost(expr) -> int:
    """How many simple loops' worth of work one element of a fused loop is (at least 1): a 1,000-op
    chain on a small tensor is worth the threads its element count alone would not earn."""
    seen, stack, ops = set(), [expr], 0
    while stack:
        node = stack.pop()
        if not isinstance(node, SExpr) or id(node) in seen:
            continue
        seen.add(id(node))
        ops += VECTOR_MATH_COST if node.prim in PRIMITIVES else 1
        stack.extend(node.args)
    return max(1, ops // SIMPLE_OPS_PER_ELEMENT)
