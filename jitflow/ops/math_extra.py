"""More elementwise ops: trigonometry, rounding, log1p/expm1, squared_difference,
reciprocal, and the activations elu, selu, relu6, softplus, softsign.

Same shape as ops/elementwise.py: one `define_op` record per op (infer, numpy
reference for tests, scalar rule over `ScalarBuilder` primitives, TF gradient).
The op names are listed in elementwise.ELEMENTWISE_UNARY/BINARY for the sweeps.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import NUMERIC, SMALL_NUMERIC
from .elementwise import HALF_FLOATS, binary, unary

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _typed(fn):
    """A numpy reference that keeps its input's dtype and ignores floating-point warnings."""
    def reference(*xs):
        with np.errstate(all="ignore"):
            return np.asarray(fn(*xs)).astype(xs[0].dtype)
    return reference


def _np_erf(x):
    import math
    return np.vectorize(math.erf, otypes=[x.dtype])(x) if x.size else x.copy()


def _np_softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _np_selu(x):
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))


def _np_reciprocal(x):
    return 1 / x


# ---- scalar rules -----------------------------------------------------------------------------
def _round_scalar(s, a, x):
    return s.rint(x) if x.dtype.is_floating else x


def _elu_scalar(s, a, x):
    return s.select(s.cmp("gt", x, s.const(0, x.dtype)), x, s.expm1(x))


def _selu_scalar(s, a, x):
    zero = s.const(0, x.dtype)
    negative = s.mul(s.const(SELU_ALPHA, x.dtype), s.expm1(s.min(x, zero)))
    return s.mul(s.const(SELU_SCALE, x.dtype), s.select(s.cmp("gt", x, zero), x, negative))


def _relu6_scalar(s, a, x):
    return s.min(s.max(x, s.const(0, x.dtype)), s.const(6, x.dtype))


def _softplus_scalar(s, a, x):
    """max(x, 0) + log1p(exp(-|x|)): no overflow for large x, no cancellation for small."""
    return s.add(s.max(x, s.const(0, x.dtype)), s.log1p(s.exp(s.neg(s.abs(x)))))


def _softsign_scalar(s, a, x):
    return s.div(x, s.add(s.const(1, x.dtype), s.abs(x)))


def _squared_difference_scalar(s, a, x, y):
    d = s.sub(x, y)
    return s.mul(d, d)


sin = unary("sin", HALF_FLOATS, np.sin, lambda s, a, x: s.sin(x), "Sin")
cos = unary("cos", HALF_FLOATS, np.cos, lambda s, a, x: s.cos(x), "Cos")
tan = unary("tan", HALF_FLOATS, np.tan, lambda s, a, x: s.tan(x), "Tan", domain=(-1.2, 1.2))
floor = unary("floor", HALF_FLOATS, np.floor, lambda s, a, x: s.floor(x), "Floor")
ceil = unary("ceil", HALF_FLOATS, np.ceil, lambda s, a, x: s.ceil(x), "Ceil")
round_ = unary("round", SMALL_NUMERIC, lambda x: x.copy() if x.dtype.kind in "iu" else _typed(np.rint)(x),
               _round_scalar, "Round")      # half to even; integers unchanged (rint via float64 wraps 2**63-1)
rint = unary("rint", HALF_FLOATS, np.rint, lambda s, a, x: s.rint(x), "Rint")
log1p = unary("log1p", HALF_FLOATS, _typed(np.log1p), lambda s, a, x: s.log1p(x), "Log1p", domain=(-0.9, 3.0))
expm1 = unary("expm1", HALF_FLOATS, _typed(np.expm1), lambda s, a, x: s.expm1(x), "Expm1")
reciprocal = unary("reciprocal", HALF_FLOATS, _typed(_np_reciprocal),
                   lambda s, a, x: s.div(s.const(1, x.dtype), x), "Reciprocal", domain=(0.5, 3.0))
elu = unary("elu", HALF_FLOATS, _typed(lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0)))),
            _elu_scalar, "Elu")
selu = unary("selu", HALF_FLOATS, _typed(_np_selu), _selu_scalar, "Selu")
relu6 = unary("relu6", NUMERIC, _typed(lambda x: np.minimum(np.maximum(x, 0), 6)), _relu6_scalar, "Relu6",
              domain=(-3.0, 9.0))
softplus = unary("softplus", HALF_FLOATS, _typed(_np_softplus), _softplus_scalar, "Softplus")
erf = unary("erf", HALF_FLOATS, _typed(_np_erf), lambda s, a, x: s.erf(x), "Erf")
softsign = unary("softsign", HALF_FLOATS, _typed(lambda x: x / (1 + np.abs(x))), _softsign_scalar, "Softsign")
squared_difference = binary("squared_difference", NUMERIC, _typed(lambda x, y: np.square(x - y)),
                            _squared_difference_scalar, "SquaredDifference")


# ---- gradient rules (TF's definitions) --------------------------------------------------------
def _zero_grad(b, op, g):
    return [None]        # TF registers these as having no gradient (floor, ceil, round, rint)


sin.grad = lambda b, op, g: [b.mul(g[0], b.op("cos", [op.inputs[0]]))]
cos.grad = lambda b, op, g: [b.neg(b.mul(g[0], b.op("sin", [op.inputs[0]])))]
tan.grad = lambda b, op, g: [b.mul(g[0], b.add(b.const(1, op.outputs[0]),
                                               b.mul(op.outputs[0], op.outputs[0])))]
for _op in (floor, ceil, round_, rint):
    _op.grad = _zero_grad
    _op.differentiable = False
log1p.grad = lambda b, op, g: [b.div(g[0], b.add(b.const(1, op.inputs[0]), op.inputs[0]))]
expm1.grad = lambda b, op, g: [b.mul(g[0], b.exp(op.inputs[0]))]
erf.grad = lambda b, op, g: [b.mul(g[0], b.mul(b.const(2 / np.sqrt(np.pi), op.inputs[0]),
                                              b.exp(b.neg(b.mul(op.inputs[0], op.inputs[0])))))]
reciprocal.grad = lambda b, op, g: [b.neg(b.mul(g[0], b.mul(op.outputs[0], op.outputs[0])))]


def _elu_grad(b, op, g):
    """EluGrad: g * (y + 1) where y < 0, else g."""
    y = op.outputs[0]
    return [b.select(b.cmp("less", y, b.zeros_like(y)), b.mul(g[0], b.add(y, b.const(1, y))), g[0])]


def _selu_grad(b, op, g):
    """SeluGrad: g * (y + scale * alpha) where y < 0, else g * scale."""
    y = op.outputs[0]
    negative = b.mul(g[0], b.add(y, b.const(SELU_SCALE * SELU_ALPHA, y)))
    return [b.select(b.cmp("less", y, b.zeros_like(y)), negative, b.mul(g[0], b.const(SELU_SCALE, y)))]


def _relu6_grad(b, op, g):
    """Relu6Grad: g where 0 < y < 6, else 0."""
    y = op.outputs[0]
    inside = b.op("logical_and", [b.cmp("greater", y, b.zeros_like(y)), b.cmp("less", y, b.const(6, y))])
    return [b.select(inside, g[0], b.zeros_like(g[0]))]


def _softplus_grad(b, op, g):
    """SoftplusGrad: g * sigmoid(x)."""
    return [b.mul(g[0], b.op("sigmoid", [op.inputs[0]]))]


def _softsign_grad(b, op, g):
    """SoftsignGrad: g / (1 + |x|)^2."""
    x = op.inputs[0]
    denominator = b.add(b.const(1, x), b.op("abs", [x]))
    return [b.div(g[0], b.mul(denominator, denominator))]


def _squared_difference_grad(b, op, g):
    x, y = op.inputs
    dx = b.mul(g[0], b.mul(b.const(2, x), b.sub(x, y)))
    return [b.sum_to(dx, x), b.sum_to(b.neg(dx), y)]


elu.grad = _elu_grad
selu.grad = _selu_grad
relu6.grad = _relu6_grad
softplus.grad = _softplus_grad
softsign.grad = _softsign_grad
squared_difference.grad = _squared_difference_grad

# ---- accuracy of the compiled CPU code (codegen/vector_math.py), in float ulp of the result -----
# Max error against a correctly rounded reference, measured and enforced by tests/test_vector_math.py
# over dense sweeps and special values; the GPU path uses libdevice (__nv_*) and its documented bounds.
ULP_BOUNDS = {"exp": {"float32": 2, "float64": 2}, "log": {"float32": 1, "float64": 1},
              "tanh": {"float32": 3, "float64": 3}, "sigmoid": {"float32": 3, "float64": 3},
              "log1p": {"float32": 3, "float64": 3}, "expm1": {"float32": 2, "float64": 2},
              "sin": {"float32": 1, "float64": 1}, "cos": {"float32": 1, "float64": 1},
              "pow": {"float32": 1, "float64": 1}, "softplus": {"float32": 3, "float64": 3},
              "erf": {"float32": 1, "float64": 1}}     # float64 sin/cos/pow/erf: libm's bound (vector_math.LIBM_FLOAT64)


def _record_ulp_bounds():
    from .registry import get_op
    for name, bounds in ULP_BOUNDS.items():
        get_op(name).extra["ulp"] = dict(bounds)


_record_ulp_bounds()
for _record in (floor, ceil, round_, rint, relu6, reciprocal, squared_difference):
    _record.ulps = 0        # the fuzzer's tolerance: correctly rounded (OpDef.ulps)
