"""The IR: types, SSA data structures, the text form (printer and parser) and the
verifier.  This package imports nothing from the rest of jitflow (the parser
only looks the op registry up at call time, to reject unknown op names)."""
from .core import Function, Module, Node, SourceLoc, Value
from .parser import IRParseError, parse_function, parse_module
from .printer import print_function, print_module
from .types import (ALL_DTYPES, EFFECT, FLOATS, INTS, NUMERIC, DType, EffectType, TensorType, VarType,
                    as_dtype, bool_, dtype_from_short, float32, float64, int32, int64)
from .verify import IRVerifyError, verify_function

__all__ = [
    "ALL_DTYPES", "EFFECT", "FLOATS", "INTS", "NUMERIC", "DType", "EffectType", "TensorType", "VarType",
    "as_dtype", "bool_", "dtype_from_short", "float32", "float64", "int32", "int64",
    "Function", "Module", "Node", "SourceLoc", "Value",
    "print_function", "print_module", "parse_function", "parse_module", "IRParseError",
    "verify_function", "IRVerifyError",
]
