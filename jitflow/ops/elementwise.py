"""Elementwise ops: arithmetic, math functions, comparisons, logic, select, cast.

Each op's `scalar` rule is written over the scalar primitives of
`jitflow.codegen.scalar.ScalarEmitter` (s.add, s.exp, s.select, ...), so codegen
lowers every op of this file with one loop-nest generator.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import EVERY_DTYPE, FLOATS, NUMERIC, SMALL_NUMERIC, TensorType, bool_, float16

HALF_FLOATS = FLOATS + (float16,)    # float ops also take float16 (computed in float32 per op)
from .broadcast import broadcast_shapes, check_dtype, same_dtype
from .registry import ELEMENTWISE, define_op


def _unary_infer(allowed, result_dtype=None):
    def infer(types, attrs, op="op"):
        (t,) = types
        check_dtype(t, allowed, op)
        return [TensorType(result_dtype or t.dtype, t.shape)]
    return infer


def _binary_infer(allowed, result_dtype=None):
    def infer(types, attrs, op="op"):
        dtype = same_dtype(types, op)
        for t in types:
            check_dtype(t, allowed, op)
        return [TensorType(result_dtype or dtype, broadcast_shapes(*(t.shape for t in types), op=op))]
    return infer


def unary(name, allowed, reference, scalar, tf_name, domain=(-3.0, 3.0), result_dtype=None, **kw):
    return define_op(name, ELEMENTWISE, _unary_infer(allowed, result_dtype), reference=reference,
                     scalar=scalar, tf_name=tf_name, test_domain=domain, **kw)


def binary(name, allowed, reference, scalar, tf_name, domain=(-3.0, 3.0), result_dtype=None, **kw):
    return define_op(name, ELEMENTWISE, _binary_infer(allowed, result_dtype), reference=reference,
                     scalar=scalar, tf_name=tf_name, test_domain=domain, **kw)


def _np_floordiv(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.floor_divide(a, b)


def _np_floormod(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.remainder(a, b)


def _np_pow(a, b):
    if not np.issubdtype(a.dtype, np.integer):
        return np.power(a, b)
    with np.errstate(all="ignore"):
        positive = np.power(a, np.maximum(b, 0)).astype(a.dtype)
    one_or_minus_one = np.where(b % 2 == 0, 1, -1).astype(a.dtype)
    negative = np.where(a == 1, 1, np.where(a == -1, one_or_minus_one, 0)).astype(a.dtype)
    return np.where(b < 0, negative, positive).astype(a.dtype)


def _np_sigmoid(x):
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-x))).astype(x.dtype)


def _np_rsqrt(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return (1 / np.sqrt(x)).astype(x.dtype)


# ---- arithmetic ---------------------------------------------------------------
add = binary("add", SMALL_NUMERIC, np.add, lambda s, a, x, y: s.add(x, y), "Add")
sub = binary("sub", SMALL_NUMERIC, np.subtract, lambda s, a, x, y: s.sub(x, y), "Sub")
mul = binary("mul", SMALL_NUMERIC, np.multiply, lambda s, a, x, y: s.mul(x, y), "Mul")
div = binary("div", HALF_FLOATS, np.true_divide, lambda s, a, x, y: s.div(x, y), "RealDiv",
             domain=(0.5, 3.0))
floordiv = binary("floordiv", SMALL_NUMERIC, _np_floordiv, lambda s, a, x, y: s.floordiv(x, y), "FloorDiv",
                  domain=(0.5, 5.0))
floormod = binary("floormod", SMALL_NUMERIC, _np_floormod, lambda s, a, x, y: s.floormod(x, y), "FloorMod",
                  domain=(0.5, 5.0))
pow_ = binary("pow", NUMERIC + (float16,), _np_pow, lambda s, a, x, y: s.pow(x, y), "Pow", domain=(0.5, 2.0))
maximum = binary("maximum", SMALL_NUMERIC, np.maximum, lambda s, a, x, y: s.max(x, y), "Maximum")
minimum = binary("minimum", SMALL_NUMERIC, np.minimum, lambda s, a, x, y: s.min(x, y), "Minimum")

neg = unary("neg", SMALL_NUMERIC, np.negative, lambda s, a, x: s.neg(x), "Neg")
abs_ = unary("abs", SMALL_NUMERIC, np.abs, lambda s, a, x: s.abs(x), "Abs")
sign = unary("sign", SMALL_NUMERIC, np.sign, lambda s, a, x: s.sign(x), "Sign")
square = unary("square", SMALL_NUMERIC, np.square, lambda s, a, x: s.mul(x, x), "Square")
relu = unary("relu", SMALL_NUMERIC, lambda x: np.maximum(x, np.zeros((), x.dtype)),
             lambda s, a, x: s.relu(x), "Relu")

sqrt = unary("sqrt", HALF_FLOATS, np.sqrt, lambda s, a, x: s.sqrt(x), "Sqrt", domain=(0.1, 4.0))
rsqrt = unary("rsqrt", HALF_FLOATS, _np_rsqrt, lambda s, a, x: s.div(s.const(1, x.dtype), s.sqrt(x)),
              "Rsqrt", domain=(0.1, 4.0))
exp = unary("exp", HALF_FLOATS, np.exp, lambda s, a, x: s.exp(x), "Exp")
log = unary("log", HALF_FLOATS, np.log, lambda s, a, x: s.log(x), "Log", domain=(0.1, 4.0))
tanh = unary("tanh", HALF_FLOATS, np.tanh, lambda s, a, x: s.tanh(x), "Tanh")
sigmoid = unary("sigmoid", HALF_FLOATS, _np_sigmoid, lambda s, a, x: s.sigmoid(x), "Sigmoid", domain=(-6.0, 6.0))

# ---- comparisons and logic ------------------------------------------------------


def _cmp(name, pred, reference, tf_name, allowed=SMALL_NUMERIC):
    return binary(name, allowed, reference, lambda s, a, x, y: s.cmp(pred, x, y), tf_name,
                  result_dtype=bool_, differentiable=False)


equal = _cmp("equal", "eq", np.equal, "Equal", EVERY_DTYPE)
not_equal = _cmp("not_equal", "ne", np.not_equal, "NotEqual", EVERY_DTYPE)
less = _cmp("less", "lt", np.less, "Less")
less_equal = _cmp("less_equal", "le", np.less_equal, "LessEqual")
greater = _cmp("greater", "gt", np.greater, "Greater")
greater_equal = _cmp("greater_equal", "ge", np.greater_equal, "GreaterEqual")

logical_and = binary("logical_and", (bool_,), np.logical_and, lambda s, a, x, y: s.and_(x, y),
                     "LogicalAnd", differentiable=False)
logical_or = binary("logical_or", (bool_,), np.logical_or, lambda s, a, x, y: s.or_(x, y),
                    "LogicalOr", differentiable=False)
logical_not = unary("logical_not", (bool_,), np.logical_not, lambda s, a, x: s.not_(x),
                    "LogicalNot", differentiable=False)


def _select_infer(types, attrs, op="select"):
    cond, x, y = types
    if cond.dtype != bool_:
        raise TypeError(f"{op}: condition must be bool, got {cond.dtype.name}")
    dtype = same_dtype([x, y], op)
    return [TensorType(dtype, broadcast_shapes(cond.shape, x.shape, y.shape, op=op))]


select = define_op("select", ELEMENTWISE, _select_infer, reference=np.where,
                   scalar=lambda s, a, c, x, y: s.select(c, x, y), tf_name="SelectV2")


def _cast_infer(types, attrs, op="cast"):
    (t,) = types
    return [TensorType(attrs["dtype"], t.shape)]


def _np_cast(x, dtype):
    with np.errstate(invalid="ignore"):
        if dtype.is_integer and np.issubdtype(x.dtype, np.floating):
            # truncate toward zero and saturate (+-inf too); NaN -> 0. The bounds are compared
            # as powers of two: float(iinfo.max) rounds up to 2**63 for int64 and would overflow
            info = np.iinfo(dtype.np)
            t = np.trunc(x.astype(np.float64))
            high, low = t >= float(int(info.max) + 1), t < float(info.min)
            inside = np.where(high | low | np.isnan(t), 0, t).astype(dtype.np)
            return np.where(high, info.max, np.where(low, info.min, inside)).astype(dtype.np)
        return x.astype(dtype.np)


cast = define_op("cast", ELEMENTWISE, _cast_infer, reference=_np_cast,
                 scalar=lambda s, a, x: s.cast(x, a["dtype"]), tf_name="Cast")

ELEMENTWISE_BINARY = ("add", "sub", "mul", "div", "floordiv", "floormod", "pow", "maximum", "minimum",
                      "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
                      "logical_and", "logical_or",
                      "squared_difference")                                   # ops/math_extra.py
ELEMENTWISE_UNARY = ("neg", "abs", "sign", "square", "relu", "sqrt", "rsqrt", "exp", "log", "tanh",
                     "sigmoid", "logical_not",
                     "sin", "cos", "tan", "floor", "ceil", "round", "rint", "log1p", "expm1", "erf",  # ops/math_extra.py
                     "reciprocal", "elu", "selu", "relu6", "softplus", "softsign")


def _add_n_infer(types, attrs, op="add_n"):
    dtype = same_dtype(types, op)
    for t in types:
        check_dtype(t, NUMERIC, op)
    return [TensorType(dtype, broadcast_shapes(*(t.shape for t in types), op=op))]


def _add_n_scalar(s, attrs, *xs):
    total = xs[0]
    for x in xs[1:]:
        total = s.add(total, x)
    return total


add_n = define_op("add_n", ELEMENTWISE, _add_n_infer, scalar=_add_n_scalar, tf_name="AddN",
                  reference=lambda *xs: sum(xs[1:], xs[0]).astype(xs[0].dtype))

# the fuzzer's tolerances (OpDef.ulps): correctly rounded (or a fixed sequence of correctly rounded
# steps numpy's reference repeats exactly), so exact operands give a bit-identical result ...
for _record in (add, sub, mul, div, floordiv, floormod, sqrt, rsqrt, square, neg, abs_, relu, maximum,
                minimum, sign, select, cast, add_n):
    _record.ulps = 0
# ... and the transcendental ones, in units in the last place
exp.ulps = log.ulps = tanh.ulps = pow_.ulps = 8
sigmoid.ulps = 10
mul.extra["mul"] = True         # the scheduler's `c * (a @ b)` GEMM epilogue (passes/fusion.py)
cast.extra["cast"] = True       # the simplifier drops a cast to the operand's own dtype


# ---- gradient rules (b: autodiff.GradBuilder, op: the forward Operation, grads: output grads) ----
def _xy(op):
    return op.inputs[0], op.inputs[1]


add.grad = lambda b, op, g: [b.sum_to(g[0], op.inputs[0]), b.sum_to(g[0], op.inputs[1])]
for _monotone in (add, relu, maximum, minimum):     # jitflow/passes/pool_commute.py
    _monotone.extra["nondecreasing"] = True
add.extra["epilogue"], relu.extra["epilogue"] = "bias", "relu"     # jitflow/passes/conv_pool_fusion.py
sub.grad = lambda b, op, g: [b.sum_to(g[0], op.inputs[0]), b.sum_to(b.neg(g[0]), op.inputs[1])]
mul.grad = lambda b, op, g: [b.sum_to(b.mul(g[0], op.inputs[1]), op.inputs[0]),
                             b.sum_to(b.mul(op.inputs[0], g[0]), op.inputs[1])]
div.grad = lambda b, op, g: [
    b.sum_to(b.div(g[0], op.inputs[1]), op.inputs[0]),
    b.sum_to(b.neg(b.div(b.mul(g[0], op.outputs[0]), op.inputs[1])), op.inputs[1])]
floordiv.grad = lambda b, op, g: [None, None]
floormod.grad = lambda b, op, g: [b.sum_to(g[0], op.inputs[0]),
                                  b.sum_to(b.neg(b.mul(g[0], b.floordiv(*_xy(op)))), op.inputs[1])]


def _pow_grad(b, op, g):
    x, y = _xy(op)
    z = op.outputs[0]
    one = b.const(1, y)
    dx = b.mul(g[0], b.mul(y, b.pow(x, b.sub(y, one))))
    zero = b.zeros_like(x)
    safe_log = b.select(b.cmp("greater", x, zero), b.log(b.select(b.cmp("greater", x, zero), x, b.ones_like(x))),
                        zero)
    dy = b.mul(g[0], b.mul(z, safe_log))
    return [b.sum_to(dx, x), b.sum_to(dy, y)]


pow_.grad = _pow_grad


def _minmax_grad(compare):
    def rule(b, op, g):
        x, y = _xy(op)
        zero = b.zeros_like(g[0])
        pick_x = b.cmp(compare, x, y)
        return [b.sum_to(b.select(pick_x, g[0], zero), x), b.sum_to(b.select(pick_x, zero, g[0]), y)]
    return rule


maximum.grad = _minmax_grad("greater_equal")
minimum.grad = _minmax_grad("less_equal")
neg.grad = lambda b, op, g: [b.neg(g[0])]
abs_.grad = lambda b, op, g: [b.mul(g[0], b.sign(op.inputs[0]))]
sign.grad = lambda b, op, g: [b.zeros_like(op.inputs[0])]
square.grad = lambda b, op, g: [b.mul(g[0], b.mul(b.const(2, op.inputs[0]), op.inputs[0]))]
relu.grad = lambda b, op, g: [b.select(b.cmp("greater", op.outputs[0], b.zeros_like(op.outputs[0])),
                                       g[0], b.zeros_like(g[0]))]
sqrt.grad = lambda b, op, g: [b.div(b.mul(g[0], b.const(0.5, op.outputs[0])), op.outputs[0])]
rsqrt.grad = lambda b, op, g: [b.mul(b.mul(g[0], b.const(-0.5, op.outputs[0])),
                                     b.mul(op.outputs[0], b.mul(op.outputs[0], op.outputs[0])))]
exp.grad = lambda b, op, g: [b.mul(g[0], op.outputs[0])]
log.grad = lambda b, op, g: [b.div(g[0], op.inputs[0])]
tanh.grad = lambda b, op, g: [b.mul(g[0], b.sub(b.const(1, op.outputs[0]),
                                                 b.mul(op.outputs[0], op.outputs[0])))]
sigmoid.grad = lambda b, op, g: [b.mul(g[0], b.mul(op.outputs[0], b.sub(b.const(1, op.outputs[0]),
                                                                          op.outputs[0])))]


def _select_grad(b, op, g):
    cond, x, y = op.inputs
    zero = b.zeros_like(g[0])
    return [None, b.sum_to(b.select(cond, g[0], zero), x), b.sum_to(b.select(cond, zero, g[0]), y)]


select.grad = _select_grad


def _cast_grad(b, op, g):
    x = op.inputs[0]
    if x.dtype.is_floating and op.outputs[0].dtype.is_floating:
        return [b.cast(g[0], x.dtype)]
    return [None]


cast.grad = _cast_grad
add_n.grad = lambda b, op, g: [b.sum_to(g[0], x) for x in op.inputs]
