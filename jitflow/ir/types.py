"""IR types: dtypes, tensor types with static (possibly unknown) shapes, variable
resources and effect tokens; the dtype promotion rules for Python scalars.

Nothing here imports the rest of jitflow.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    """A tensor element type. `tf.float32` and friends are instances of this."""

    name: str          # 'float32'
    short: str         # 'f32' (IR text)
    np_name: str       # numpy dtype name
    kind: str          # 'float' | 'int' | 'bool'
    bits: int

    @property
    def as_numpy_dtype(self):
        return np.dtype(self.np_name).type

    @property
    def np(self) -> np.dtype:
        return np.dtype(self.np_name)

    @property
    def is_floating(self) -> bool:
        return self.kind == "float"

    @property
    def is_integer(self) -> bool:
        return self.kind == "int"

    @property
    def is_bool(self) -> bool:
        return self.kind == "bool"

    @property
    def is_unsigned(self) -> bool:
        return self.np_name.startswith("uint")

    @property
    def itemsize(self) -> int:
        return max(1, self.bits // 8)

    @property
    def base_dtype(self) -> "DType":
        return self

    @property
    def min(self):
        return np.finfo(self.np).min if self.is_floating else (
            np.iinfo(self.np).min if self.is_integer else False)

    @property
    def max(self):
        return np.finfo(self.np).max if self.is_floating else (
            np.iinfo(self.np).max if self.is_integer else True)

    def __repr__(self) -> str:
        return f"tf.{self.name}"


float32 = DType("float32", "f32", "float32", "float", 32)
float64 = DType("float64", "f64", "float64", "float", 64)
int32 = DType("int32", "i32", "int32", "int", 32)
int64 = DType("int64", "i64", "int64", "int", 64)
bool_ = DType("bool", "i1", "bool", "bool", 8)
# small dtypes (storage and data-feeding types): arithmetic, comparisons, select and cast accept
# them; ops that cannot (reductions, matmul, ...) reject them in their infer rule with a TypeError
float16 = DType("float16", "f16", "float16", "float", 16)
int8 = DType("int8", "i8", "int8", "int", 8)
int16 = DType("int16", "i16", "int16", "int", 16)
uint8 = DType("uint8", "u8", "uint8", "int", 8)

ALL_DTYPES = (float32, float64, int32, int64, bool_)     # the core dtypes every op family supports
SMALL_DTYPES = (float16, int8, int16, uint8)
EVERY_DTYPE = ALL_DTYPES + SMALL_DTYPES
FLOATS = (float32, float64)
INTS = (int32, int64)
NUMERIC = FLOATS + INTS
SMALL_NUMERIC = NUMERIC + SMALL_DTYPES                   # elementwise arithmetic and comparisons
_BY_NAME = {d.name: d for d in EVERY_DTYPE}
_BY_SHORT = {d.short: d for d in EVERY_DTYPE}
_ALIASES = {"float": float32, "double": float64, "int": int32, "half": float16}
# tf.string: host-side values only (numpy object arrays of bytes, see jitflow/host_values.py); kept out
# of ALL_DTYPES / EVERY_DTYPE so that registry sweeps over dtypes never meet it
string = DType("string", "str", "object", "string", 0)
_BY_NAME[string.name] = _BY_SHORT[string.short] = string


def as_dtype(value) -> DType:
    """Converts a DType, numpy dtype, Python type or name to a jitflow DType."""
    if isinstance(value, DType):
        return value
    if value is float:
        return float32
    if value is int:
        return int32
    if value is bool:
        return bool_
    if isinstance(value, str):
        if value in _BY_NAME:
            return _BY_NAME[value]
        if value in _BY_SHORT:
            return _BY_SHORT[value]
        if _ALIASES.get(value) is not None:
            return _ALIASES[value]
    try:
        npd = np.dtype(value)
    except TypeError:
        raise TypeError(f"Cannot convert {value!r} to a jitflow dtype") from None
    if npd.name in _BY_NAME:
        return _BY_NAME[npd.name]
    if npd.kind in "OSU":               # object, bytes and str arrays hold tf.string values
        return string
    raise TypeError(f"dtype {npd.name} is not supported by jitflow "
                    f"(supported: {', '.join(d.name for d in EVERY_DTYPE)})")


def dtype_from_short(short: str) -> DType:
    return _BY_SHORT[short]


Shape = tuple  # tuple[int | None, ...]


def shape_str(shape: Shape) -> str:
    # a symbolic dim (jitflow/ir/symdim.py) prints as its expression: [s0,784]
    return "[" + ",".join("?" if d is None else getattr(d, "text", None) or str(d) for d in shape) + "]"


def is_fully_defined(shape: Shape) -> bool:
    return all(d is not None for d in shape)


def num_elements(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True)
class TensorType:
    dtype: DType
    shape: Shape

    def __str__(self) -> str:
        return f"{self.dtype.short}{shape_str(self.shape)}"

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass(frozen=True)
class VarType:
    """A variable resource: a named, mutable buffer owned by a Session."""

    dtype: DType
    shape: Shape

    def __str__(self) -> str:
        return f"!var<{self.dtype.short}{shape_str(self.shape)}>"


@dataclass(frozen=True)
class EffectType:
    """An effect token: threads the order of variable reads and writes."""

    def __str__(self) -> str:
        return "!effect"


EFFECT = EffectType()
