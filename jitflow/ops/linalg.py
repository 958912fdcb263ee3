"""Linear algebra: matmul (2-D, transpose flags) and matrix_inverse.

Both are LIBRARY ops: codegen lowers them to a named kernel (a BLAS GEMM call
when the process has one, else a tiled loop; Gauss-Jordan inversion with
partial pivoting).
"""
from __future__ import annotations

import numpy as np

from ..ir.types import FLOATS, NUMERIC, TensorType
from .broadcast import check_dtype, fmt_shape, same_dtype
from .registry import LIBRARY, ShapeError, define_op


def _matmul_infer(types, attrs, op="matmul"):
    a, b = types
    dtype = same_dtype(types, op)
    check_dtype(a, NUMERIC, op)
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise ShapeError(f"{op}: both operands must be 2-D, got shapes {fmt_shape(a.shape)} "
                         f"and {fmt_shape(b.shape)}")
    m, ka = a.shape[::-1] if attrs.get("transpose_a") else a.shape
    kb, n = b.shape[::-1] if attrs.get("transpose_b") else b.shape
    if ka is not None and kb is not None and ka != kb:
        raise ShapeError(f"{op}: inner dimensions differ: {fmt_shape(a.shape)} x {fmt_shape(b.shape)}"
                         f"{' (transpose_a)' if attrs.get('transpose_a') else ''}"
                         f"{' (transpose_b)' if attrs.get('transpose_b') else ''}")
    return [TensorType(dtype, (m, n))]


def _matmul_reference(a, b, transpose_a=False, transpose_b=False):
    a = a.T if transpose_a else a
    b = b.T if transpose_b else b
    return np.matmul(a, b).astype(a.dtype)


# a GEMM: reads a 2-D transposed operand through its transpose flags and takes an alpha / beta
# epilogue (passes/fusion.py); codegen/library.py and codegen/ptx_library.py hold the kernels
matmul = define_op("matmul", LIBRARY, _matmul_infer, reference=_matmul_reference, tf_name="MatMul",
                   test_domain=(-1.0, 1.0), extra={"kernel": "matmul", "gemm": True})


def _inverse_infer(types, attrs, op="matrix_inverse"):
    (a,) = types
    check_dtype(a, FLOATS, op)
    if len(a.shape) != 2 or (None not in a.shape and a.shape[0] != a.shape[1]):
        raise ShapeError(f"{op}: input must be a square matrix, got shape {fmt_shape(a.shape)}")
    return [TensorType(a.dtype, a.shape)]


matrix_inverse = define_op("matrix_inverse", LIBRARY, _inverse_infer,
                           reference=lambda a: np.linalg.inv(a).astype(a.dtype),
                           tf_name="MatrixInverse",
                           # Gauss-Jordan works on a copy of its operand: a workspace of the result's type
                           extra={"kernel": "matrix_inverse", "scratch": lambda node: node.result.type})


# ---- gradient rules ----------------------------------------------------------------
def _matmul_grad(b, op, g):
    a, w = op.inputs
    ta, tb = op.attrs.get("transpose_a", False), op.attrs.get("transpose_b", False)
    grad = g[0]
    if not ta and not tb:
        return [b.matmul(grad, w, transpose_b=True), b.matmul(a, grad, transpose_a=True)]
    if not ta and tb:
        return [b.matmul(grad, w), b.matmul(grad, a, transpose_a=True)]
    if ta and not tb:
        return [b.matmul(w, grad, transpose_b=True), b.matmul(a, grad)]
    return [b.matmul(w, grad, transpose_a=True, transpose_b=True),
            b.matmul(grad, a, transpose_a=True, transpose_b=True)]


def _inverse_grad(b, op, g):
    inv = op.outputs[0]
    return [b.neg(b.matmul(inv, b.matmul(g[0], inv, transpose_b=True), transpose_a=True))]


matmul.grad = _matmul_grad
matrix_inverse.grad = _inverse_grad
