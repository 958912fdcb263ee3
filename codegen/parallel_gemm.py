"""A large BLAS GEMM as a ranged kernel over the rows (or columns) of its output, so that the
entry splits it across the persistent pool (codegen/thread_pool.py) like any parallel loop.

jitflow runs its OpenBLAS with ONE thread (runtime/thread_budget.py: one thread budget, no
second spinning pool); this is where a big matmul gets its parallelism back. Rows [start, stop)
of C = beta*C + alpha*op(A) @ op(B) are one GEMM call on row `start` of C and of op(A) (a column
offset when A is transposed), B shared; or, when C has few rows and more columns, columns
[start, stop) of C and op(B), A shared. (Row blocks measured faster than column blocks on a
256x784x512 product with OpenBLAS 0.3, though each call packs the shared B again.) Small GEMMs, the SYRK and GEMV special cases, the
loop fallback without BLAS and symbolic shapes stay with codegen/library.py's `emit_matmul`.
"""
from __future__ import annotations

from . import library
from .library import BLAS_PREFIX, CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, CBLAS_TRANS, _gemm_operand
from .llvm_builder import FunctionBuilder, literal, llvm_type
from .loops import PHASE_MAIN, RangeInfo, _phase

MIN_ROWS = 2          # fewer rows (columns) than this: nothing to split
ROWS_ENOUGH = 64      # C with at least this many rows (or more rows than columns) is split by rows
MIN_WORK = 1 << 18    # multiply-adds below which a split costs more than it saves (cpu.PARALLEL_MIN_WORK)


def emit_matmul(name: str, schedule, kernel, declarations: set, blas: bool):
    """The CPU kernel-table emitter of matmul: (text, buffers, returns_status, info)."""
    split = emit(name, schedule, kernel, declarations, blas)
    if split is not None:
        return (*split[:2], False, split[2])
    return (*library.emit_matmul(name, schedule, kernel, declarations, blas), False, None)


def emit(name: str, schedule, kernel, declarations: set, blas: bool, min_work: int = MIN_WORK):
    """(text, buffers, RangeInfo) for a GEMM worth splitting by rows, else None."""
    node = kernel.root.node
    dtype = kernel.out.dtype
    if not blas or dtype.name not in BLAS_PREFIX or len(kernel.out.shape) != 2:
        return None
    a, b = node.operands
    ta, tb = node.attrs.get("transpose_a", False), node.attrs.get("transpose_b", False)
    m, n = kernel.out.shape
    k = a.shape[0] if ta else a.shape[1]
    if not all(isinstance(d, int) for d in (m, n, k)) or min(m, n) < MIN_ROWS or not k or m * n * k < min_work:
        return None
    home = schedule.value_buffer
    (a_buf, ta), (b_buf, tb) = _gemm_operand(home, a, ta), _gemm_operand(home, b, tb)
    if (a_buf is b_buf and ta != tb and m == n and kernel.beta == 0.0) or (n == 1 and kernel.beta == 0.0 and not tb):
        return None                                  # SYRK / GEMV: library.emit_matmul's calls
    c_buf = kernel.out
    if c_buf.id in (a_buf.id, b_buf.id):
        return None
    buffers = list({x.id: x for x in (a_buf, b_buf, c_buf)}.values())
    params = [f"ptr noalias %b{x.id}" for x in buffers] + ["i64 %start", "i64 %stop", "i32 %phases"]
    fb = FunctionBuilder(name, params, attrs="nounwind")
    t = llvm_type(dtype)
    lda, ldb = max(1, m if ta else k), max(1, k if tb else n)
    symbol = f"jf_cblas_{BLAS_PREFIX[dtype.name]}gemm"
    declarations.add(f"declare void @{symbol}(i32, i32, i32, i64, i64, i64, {t}, ptr, i64, ptr, i64, "
                     f"{t}, ptr, i64)")
    by_rows = m >= min(n, ROWS_ENOUGH)     # measured: row blocks run faster; columns when C has few rows
    with _phase(fb, PHASE_MAIN):
        count = fb.assign("sub i64 %stop, %start")
        with fb.if_(fb.assign(f"icmp sgt i64 {count}, 0")):
            pa, pb = f"%b{a_buf.id}", f"%b{b_buf.id}"
            if by_rows:     # rows [start, stop) of C and op(A)
                pa = fb.gep(t, pa, "%start" if ta else fb.assign(f"mul i64 %start, {lda}"))
                pc = fb.gep(t, f"%b{c_buf.id}", fb.assign(f"mul i64 %start, {n}"))
                dims = f"i64 {count}, i64 {n}"
            else:           # columns [start, stop) of C and op(B)
                pb = fb.gep(t, pb, fb.assign(f"mul i64 %start, {ldb}") if tb else "%start")
                pc = fb.gep(t, f"%b{c_buf.id}", "%start")
                dims = f"i64 {m}, i64 {count}"
            fb.emit(f"call void @{symbol}(i32 {CBLAS_ROW_MAJOR}, i32 {CBLAS_TRANS if ta else CBLAS_NO_TRANS}, "
                    f"i32 {CBLAS_TRANS if tb else CBLAS_NO_TRANS}, {dims}, i64 {k}, "
                    f"{t} {literal(kernel.alpha, dtype)}, ptr {pa}, i64 {lda}, ptr {pb}, i64 {ldb}, "
                    f"{t} {literal(kernel.beta, dtype)}, ptr {pc}, i64 {n})")
    return fb.render(), buffers, RangeInfo(m if by_rows else n, m * n * k, True)


def emit_ranged_gemm(name: str, buffers: list, dtype, ta: bool, tb: bool, m: int, n: int, k: int,
                     a_buf, lda: int, b_buf, ldb: int, c_buf, ldc: int, declarations: set,
                     min_work: int = MIN_WORK):
    """C[m, n] = op(A) @ op(B) (row-major, beta 0) on buffers that are not a matmul node's (the conv2d
    family's GEMMs, codegen/conv_gemm.py) as a ranged kernel split like `emit`'s: rows of C and op(A),
    or columns of C and op(B) when C has few rows. (text, RangeInfo), or None when too small to split."""
    if dtype.name not in BLAS_PREFIX or min(m, n) < MIN_ROWS or not k or m * n * k < min_work:
        return None
    params = [f"ptr noalias %b{x.id}" for x in buffers] + ["i64 %start", "i64 %stop", "i32 %phases"]
    fb = FunctionBuilder(name, params, attrs="nounwind")
    t = llvm_type(dtype)
    symbol = f"jf_cblas_{BLAS_PREFIX[dtype.name]}gemm"
    declarations.add(f"declare void @{symbol}(i32, i32, i32, i64, i64, i64, {t}, ptr, i64, ptr, i64, "
                     f"{t}, ptr, i64)")
    by_rows = m >= min(n, ROWS_ENOUGH)
    with _phase(fb, PHASE_MAIN):
        count = fb.assign("sub i64 %stop, %start")
        with fb.if_(fb.assign(f"icmp sgt i64 {count}, 0")):
            pa, pb = f"%b{a_buf.id}", f"%b{b_buf.id}"
            if by_rows:
                pa = fb.gep(t, pa, "%start" if ta else fb.assign(f"mul i64 %start, {lda}"))
                pc = fb.gep(t, f"%b{c_buf.id}", fb.assign(f"mul i64 %start, {ldc}"))
                dims = f"i64 {count}, i64 {n}"
            else:
                pb = fb.gep(t, pb, fb.assign(f"mul i64 %start, {ldb}") if tb else "%start")
                pc = fb.gep(t, f"%b{c_buf.id}", "%start")
                dims = f"i64 {m}, i64 {count}"
            fb.emit(f"call void @{symbol}(i32 {CBLAS_ROW_MAJOR}, i32 {CBLAS_TRANS if ta else CBLAS_NO_TRANS}, "
                    f"i32 {CBLAS_TRANS if tb else CBLAS_NO_TRANS}, {dims}, i64 {k}, {t} {literal(1.0, dtype)}, "
                    f"ptr {pa}, i64 {max(1, lda)}, ptr {pb}, i64 {max(1, ldb)}, {t} {literal(0.0, dtype)}, "
                    f"ptr {pc}, i64 {max(1, ldc)})")
    return fb.render(), RangeInfo(m if by_rows else n, m * n * k, True)
