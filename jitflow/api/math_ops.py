"""Math ops of the TF 1.x API (`tf.add`, `tf.reduce_mean`, `tf.matmul`, ...):
argument conversion and default names, then one `create_op` per call."""
from __future__ import annotations

import numpy as np

from ..framework.graph import Tensor
from ..ir.types import as_dtype, float32, float64, int32, int64
from .convert import binary_operands, convert_to_tensor
from ..errors import UnsupportedError
from .run_checks import checked_division


def _make(op_name, inputs, attrs=None, name=None):
    graph = inputs[0].graph if inputs else None
    if graph is None:
        from ..framework.graph import get_default_graph
        graph = get_default_graph()
    op = graph.create_op(op_name, inputs, attrs, name=name)
    return op.outputs[0]


def _binary(op_name, default_name):
    def fn(x, y, name=None):
        x, y = binary_operands(x, y)
        return _make(op_name, [x, y], name=name or default_name)
    fn.__name__ = default_name
    fn.__doc__ = f"Elementwise `{op_name}` with numpy broadcasting (TF op {default_name})."
    return fn


def _unary(op_name, default_name):
    def fn(x, name=None):
        x = convert_to_tensor(x)
        return _make(op_name, [x], name=name or default_name)
    fn.__name__ = default_name
    fn.__doc__ = f"Elementwise `{op_name}` (TF op {default_name})."
    return fn


add = _binary("add", "add")
subtract = _binary("sub", "sub")
multiply = _binary("mul", "mul")
maximum = _binary("maximum", "Maximum")
minimum = _binary("minimum", "Minimum")
def floordiv(x, y, name=None):
    """`x // y` with numpy broadcasting (TF op FloorDiv); an integer divisor of zero makes the run raise
    InvalidArgumentError ("Integer division by zero"), as in TF."""
    x, y = binary_operands(x, y)
    return checked_division("floordiv", x, y, name or "floordiv", "FloorDiv")


def floormod(x, y, name=None):
    """`x % y` with floor semantics (TF op FloorMod); an integer divisor of zero raises at run time, as in TF."""
    x, y = binary_operands(x, y)
    return checked_division("floormod", x, y, name or "floormod", "FloorMod")


pow = _binary("pow", "pow")  # noqa: A001
equal = _binary("equal", "Equal")
not_equal = _binary("not_equal", "NotEqual")
less = _binary("less", "Less")
less_equal = _binary("less_equal", "LessEqual")
greater = _binary("greater", "Greater")
greater_equal = _binary("greater_equal", "GreaterEqual")
logical_and = _binary("logical_and", "LogicalAnd")
logical_or = _binary("logical_or", "LogicalOr")

negative = _unary("neg", "Neg")
abs = _unary("abs", "Abs")  # noqa: A001
sign = _unary("sign", "Sign")
square = _unary("square", "Square")
sqrt = _unary("sqrt", "Sqrt")
rsqrt = _unary("rsqrt", "Rsqrt")
exp = _unary("exp", "Exp")
log = _unary("log", "Log")
tanh = _unary("tanh", "Tanh")
sigmoid = _unary("sigmoid", "Sigmoid")
relu = _unary("relu", "Relu")
logical_not = _unary("logical_not", "LogicalNot")
identity = _unary("identity", "Identity")
stop_gradient = _unary("stop_gradient", "StopGradient")
sub = subtract
mul = multiply
neg = negative


def truediv(x, y, name=None):
    """`x / y`; integer operands are cast to float64 first (TF 1.x `truediv`)."""
    x, y = binary_operands(x, y)
    if x.dtype != y.dtype:
        raise TypeError(f"x and y must have the same dtype, got {x.dtype.name} != {y.dtype.name}")
    if x.dtype.is_integer:
        x, y = cast(x, float64), cast(y, float64)
    return _make("div", [x, y], name=name or "truediv")


def divide(x, y, name=None):
    return truediv(x, y, name=name or "truediv")


def div(x, y, name=None):
    """TF 1.x `tf.div`: floor division for integers, true division for floats."""
    x, y = binary_operands(x, y)
    if x.dtype.is_integer:
        return checked_division("floordiv", x, y, name or "div", "FloorDiv")
    return _make("div", [x, y], name=name or "div")


realdiv = div
mod = floormod


def cast(x, dtype, name=None):
    x = convert_to_tensor(x)
    dtype = as_dtype(dtype)
    if x.dtype == dtype:
        return x
    return _make("cast", [x], {"dtype": dtype}, name=name or "Cast")


to_float = lambda x, name="ToFloat": cast(x, float32, name=name)  # noqa: E731
to_int32 = lambda x, name="ToInt32": cast(x, int32, name=name)  # noqa: E731
to_int64 = lambda x, name="ToInt64": cast(x, int64, name=name)  # noqa: E731


def where(condition, x=None, y=None, name=None):
    """TF 1.x `tf.where(cond, x, y)`: a vector `cond` as long as x's first dimension selects whole rows
    (TF 1.x semantics, also for a square x). Where TF 1.x would reject the shapes (x and y differ, or a
    vector cond matches no first dimension), jitflow broadcasts as `tf.where_v2` does."""
    if x is None or y is None:
        raise UnsupportedError("tf.where(condition) without x and y (dynamic output shape) "
                               "is not supported by jitflow")
    condition = convert_to_tensor(condition)
    x, y = binary_operands(x, y)
    xs, cs = x.shape.dims, condition.shape.dims
    if cs is not None and xs is not None and len(cs) == 1 and len(xs) > 1 and (
            cs[0] is None or xs[0] is None or cs[0] == xs[0]):
        from .array_ops import reshape
        condition = reshape(condition, [-1] + [1] * (len(xs) - 1))     # selects rows
    return _make("select", [condition, x, y], name=name or "Select")


def where_v2(condition, x=None, y=None, name=None):
    """`tf.where_v2` (TF 2's `tf.where`): selects elementwise with numpy broadcasting."""
    if x is None or y is None:
        raise UnsupportedError("tf.where_v2(condition) without x and y (dynamic output shape) "
                               "is not supported by jitflow")
    condition = convert_to_tensor(condition)
    x, y = binary_operands(x, y)
    return _make("select", [condition, x, y], name=name or "SelectV2")


def add_n(inputs, name=None):
    """Sums a list of tensors of one shape and dtype in one op."""
    inputs = [convert_to_tensor(t) for t in inputs]
    if not inputs:
        raise ValueError("add_n needs at least one input")
    if all(t.shape.is_fully_defined() for t in inputs) and len({t.shape.dims for t in inputs}) > 1:
        raise ValueError("add_n: all inputs must have the same shape, got "
                         + ", ".join(str(t.shape) for t in inputs))
    return _make("add_n", inputs, name=name or "AddN")


def matmul(a, b, transpose_a=False, transpose_b=False, adjoint_a=False, adjoint_b=False, name=None,
           a_is_sparse=False, b_is_sparse=False):
    a, b = binary_operands(a, b)
    return _make("matmul", [a, b], {"transpose_a": bool(transpose_a or adjoint_a),
                                     "transpose_b": bool(transpose_b or adjoint_b)}, name=name or "MatMul")


def matrix_inverse(x, adjoint=False, name=None):
    x = convert_to_tensor(x)
    if adjoint:
        from .array_ops import transpose
        x = transpose(x)
    return _make("matrix_inverse", [x], name=name or "MatrixInverse")


def _reduce(op_name, default_name):
    def fn(input_tensor, axis=None, keepdims=None, name=None, reduction_indices=None, keep_dims=None):
        x = convert_to_tensor(input_tensor)
        if axis is None:
            axis = reduction_indices
        keep = bool(keepdims if keepdims is not None else (keep_dims or False))
        if isinstance(axis, Tensor):
            raise TypeError(f"{default_name}: axis must be a Python int or list, not a Tensor")
        if axis is not None:
            axes = np.atleast_1d(np.asarray(axis))
            if axes.size and axes.dtype.kind not in "iu":    # TF: a float or bool axis is a TypeError
                raise TypeError(f"{default_name}: axis must hold integers, got {axis!r}")
            axis = [int(a) for a in axes.reshape(-1)]
            if x.shape.dims is not None:
                rank = len(x.shape.dims)
                for a in axis:
                    if not -rank <= a < max(rank, 1):
                        raise ValueError(f"{default_name}: axis {a} is out of range for a tensor of "
                                         f"rank {rank}")
                axis = sorted({a % rank if rank else 0 for a in axis})
        elif x.shape.dims is None:       # all axes of a rank known at run time
            out = _make(op_name, [x], {"axes": None, "keepdims": keep}, name=name or default_name)
            if not keep:
                out.set_shape(())
            return out
        else:
            axis = list(range(len(x.shape.dims)))
        return _make(op_name, [x], {"axes": tuple(axis), "keepdims": keep}, name=name or default_name)
    fn.__name__ = op_name
    return fn


reduce_sum = _reduce("reduce_sum", "Sum")
reduce_mean = _reduce("reduce_mean", "Mean")
reduce_max = _reduce("reduce_max", "Max")
reduce_min = _reduce("reduce_min", "Min")
reduce_prod = _reduce("reduce_prod", "Prod")


def _arg(op_name, default_name):
    def fn(input, axis=None, name=None, dimension=None, output_type=int64):  # noqa: A002
        from .axis_check import axis_int, check_axis
        x = convert_to_tensor(input)
        if axis is not None and dimension is not None:
            raise ValueError("Cannot specify both 'axis' and 'dimension'")
        if axis is None:
            axis = dimension if dimension is not None else 0
        axis = axis_int(axis, default_name)         # ints, numpy ints, tf.constant
        if x.shape.dims is not None:        # else checked when the run is specialized (InvalidArgumentError)
            axis = check_axis(axis, len(x.shape.dims), default_name, "dimension")
        return _make(op_name, [x], {"axis": axis, "output_type": as_dtype(output_type)},
                     name=name or default_name)
    fn.__name__ = op_name
    return fn


argmax = _arg("argmax", "ArgMax")
argmin = _arg("argmin", "ArgMin")
