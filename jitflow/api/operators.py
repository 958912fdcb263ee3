"""Python operators on Tensors and Variables (`x*x*y + y + 2`, `a[1:, ::2]`,
`a @ b`), installed once on both classes."""
from __future__ import annotations

from . import array_ops, math_ops


def _swap(fn):
    return lambda self, other: fn(other, self)


OPERATORS = {
    "__add__": math_ops.add, "__radd__": _swap(math_ops.add),
    "__sub__": math_ops.subtract, "__rsub__": _swap(math_ops.subtract),
    "__mul__": math_ops.multiply, "__rmul__": _swap(math_ops.multiply),
    "__truediv__": math_ops.truediv, "__rtruediv__": _swap(math_ops.truediv),
    "__floordiv__": math_ops.floordiv, "__rfloordiv__": _swap(math_ops.floordiv),
    "__mod__": math_ops.floormod, "__rmod__": _swap(math_ops.floormod),
    "__pow__": math_ops.pow, "__rpow__": _swap(math_ops.pow),
    "__matmul__": math_ops.matmul, "__rmatmul__": _swap(math_ops.matmul),
    "__lt__": math_ops.less, "__le__": math_ops.less_equal,
    "__gt__": math_ops.greater, "__ge__": math_ops.greater_equal,
    "__and__": math_ops.logical_and, "__rand__": _swap(math_ops.logical_and),
    "__or__": math_ops.logical_or, "__ror__": _swap(math_ops.logical_or),
}


def _neg(self):
    return math_ops.negative(self)


def _abs(self):
    return math_ops.abs(self)


def _invert(self):
    return math_ops.logical_not(self)


def _getitem(self, index):
    return array_ops.strided_slice(self, index)


def install(cls):
    for name, fn in OPERATORS.items():
        setattr(cls, name, (lambda f: lambda self, other: f(self, other))(fn))
    cls.__neg__ = _neg
    cls.__abs__ = _abs
    cls.__invert__ = _invert
    cls.__getitem__ = _getitem
