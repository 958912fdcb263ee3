"""Constants shared by the fuzzer's modules: dtype tables, op families, size limits."""
from __future__ import annotations

from ..ir.types import ALL_DTYPES


DTYPES = {d.name: d for d in ALL_DTYPES}
FLOAT_NAMES = ("float32", "float64")
INT_NAMES = ("int32", "int64")
NUMERIC_NAMES = FLOAT_NAMES + INT_NAMES
MAX_ELEMENTS = 2048
SAFETY = 4.0           # compiled results may be SAFETY x the propagated error bound away

UNARY_FLOAT = ("sqrt", "rsqrt", "exp", "log", "tanh", "sigmoid")
UNARY_NUMERIC = ("neg", "abs", "sign", "square", "relu", "identity")
BINARY_NUMERIC = ("add", "sub", "mul", "maximum", "minimum", "floordiv", "floormod", "pow")
BINARY_FLOAT = ("div",)
COMPARE = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
LOGICAL = ("logical_and", "logical_or")
POSITIVE_DOMAIN = ("sqrt", "rsqrt", "log")
REDUCE = ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod")
DIFFERENTIABLE_UNARY = ("neg", "abs", "square", "relu", "sqrt", "rsqrt", "exp", "log", "tanh", "sigmoid")
DIFFERENTIABLE_BINARY = ("add", "sub", "mul", "div", "maximum", "minimum", "pow")
