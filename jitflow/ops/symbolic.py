"""`dim_value`: the run-time value of a (possibly symbolic) dimension as a scalar tensor.

Shape-polymorphic runs (jitflow/shape_poly.py) lower with symbolic dims (jitflow/ir/symdim.py);
what a concrete run folds into a constant (the divisor of a mean's gradient) becomes this op, whose
scalar rule reads the dim as an i64 (codegen defines the value from the fed shapes) and casts it.
With an int dim it is a constant."""
from __future__ import annotations

import numpy as np

from ..ir.types import FLOATS, INTS, TensorType, int64
from .registry import ELEMENTWISE, define_op


def _infer(types, attrs, op="dim_value"):
    dtype = attrs["dtype"]
    if dtype not in FLOATS + INTS:
        raise TypeError(f"{op}: dtype must be a float or int type, got {dtype.name}")
    return [TensorType(dtype, ())]


def _reference(dim, dtype):
    return np.array(int(dim), dtype.np)


def _scalar(s, attrs):
    return s.cast(s.const(attrs["dim"], int64), attrs["dtype"])


dim_value = define_op("dim_value", ELEMENTWISE, _infer, reference=_reference, scalar=_scalar,
                      tf_name="DimValue", differentiable=False, extra={"no_fuzz": True})
