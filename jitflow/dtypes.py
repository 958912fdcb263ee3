"""`tf.dtypes`: the dtype objects and `as_dtype`."""
from .ir.types import DType, as_dtype, bool_, float32, float64, int32, int64  # noqa: F401

bool = bool_  # noqa: A001
float = float32  # noqa: A001
double = float64
