"""`tf.dtypes`: the dtype objects and `as_dtype`."""
from .ir.types import DType, as_dtype, bool_, float32, float64, int32, int64  # noqa: F401
from .ir.types import float16, int8, int16, uint8  # noqa: F401

half = float16

bool = bool_  # noqa: A001
float = float32  # noqa: A001
double = float64
from .ir.types import string  # noqa: F401,E402  (host-side values)
