"""A large BLAS GEMM as a ranged kernel over blocks of its output, so that the entry splits it
across the persistent pool (codegen/thread_pool.py) like any parallel loop.

jitflow runs its OpenBLAS with ONE thread (runtime/thread_budget.py: one thread budget, no
second spinning pool); this is where a big matmul gets its parallelism back. A chunk of the
range is one GEMM call on a block of C = beta*C + alpha*op(A) @ op(B): rows [lo, hi) of C and of
op(A) (a column offset when A is transposed), B shared; or columns [lo, hi) of C and op(B)
(a row offset when B is transposed), A shared.

The split direction is a per-shape decision (`split_by_columns`). Every chunk call packs the
operand it shares again (the pool cuts the range into 2 chunks per thread): a row split packs
all of op(B) (k x n) per chunk, a column split all of op(A) (m x k). So columns unless C is more
than twice as tall as wide: W10's dense layer 256x3136 @ 3136x1024 measured 4.1 ms by columns vs
5.9 ms by rows on 2 threads (A/B: bench/gemm_split_ab.py). Concrete shapes decide at compile
time, with the range over rows or columns; shape-polymorphic (symbolic) GEMMs decide at run time
from the run's m and n, with the range over SYMBOLIC_PARTS equal parts of whichever side is split
(`emit_symbolic`; before, they were one unsplit call). Small GEMMs, the SYRK and GEMV special
cases and the loop fallback without BLAS stay with codegen/library.py's `emit_matmul`.
"""
from __future__ import annotations

from jitflow.ir.symdim import is_symbolic

from . import library, symdims
from .library import BLAS_PREFIX, CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, CBLAS_TRANS, _gemm_operand
from .llvm_builder import FunctionBuilder, literal, llvm_type
from .loops import PHASE_MAIN, RangeInfo, _phase

MIN_ROWS = 2          # fewer rows (columns) than this: nothing to split
MIN_WORK = 1 << 18    # multiply-adds below which a split costs more than it saves (cpu.PARALLEL_MIN_WORK)


COLUMN_BIAS = 2       # columns unless C is more than this many times taller than wide


def split_by_columns(m: int, n: int) -> bool:
    """The split direction of a concrete m x n output: columns unless C is more than COLUMN_BIAS
    times taller than wide. (Each chunk re-packs op(A), m x k, in a column split and op(B), k x n,
    in a row split; at equal sizes column chunks measured faster: 1024^3 4.83 vs 5.22-5.35 ms on
    2 threads.) One rule with `_columns_at_run_time`, the symbolic path's test of it."""
    return COLUMN_BIAS * n >= m


def _columns_at_run_time(fb, m, n) -> str:
    """The i1 of `split_by_columns` from the run's dims."""
    return fb.assign(f"icmp sge i64 {fb.assign(f'mul i64 {n}, {COLUMN_BIAS}')}, {m}")


def _ld(x):
    return x if is_symbolic(x) else max(1, x)


def _declare(declarations: set, dtype) -> tuple:
    t = llvm_type(dtype)
    symbol = f"jf_cblas_{BLAS_PREFIX[dtype.name]}gemm"
    declarations.add(f"declare void @{symbol}(i32, i32, i32, i64, i64, i64, {t}, ptr, i64, ptr, i64, "
                     f"{t}, ptr, i64)")
    return t, symbol


def _block_call(fb, t, symbol, dtype, ta, tb, m, n, k, alpha, beta, a, lda, b, ldb, c, ldc, lo, count,
                columns):
    """One GEMM call on the block [lo, lo + count) of C's rows (columns: a Python bool, or an i1
    name chosen at run time) with the matching block of op(A) (rows) or op(B) (columns)."""
    if columns is True or columns is False:
        if columns:
            b = fb.gep(t, b, fb.assign(f"mul i64 {lo}, {ldb}") if tb else lo)
            c = fb.gep(t, c, lo)
            dims = f"i64 {m}, i64 {count}"
        else:
            a = fb.gep(t, a, lo if ta else fb.assign(f"mul i64 {lo}, {lda}"))
            c = fb.gep(t, c, fb.assign(f"mul i64 {lo}, {ldc}"))
            dims = f"i64 {count}, i64 {n}"
    else:
        row_a = fb.gep(t, a, lo if ta else fb.assign(f"mul i64 {lo}, {lda}"))
        row_c = fb.gep(t, c, fb.assign(f"mul i64 {lo}, {ldc}"))
        col_b = fb.gep(t, b, fb.assign(f"mul i64 {lo}, {ldb}") if tb else lo)
        col_c = fb.gep(t, c, lo)
        a = fb.assign(f"select i1 {columns}, ptr {a}, ptr {row_a}")
        b = fb.assign(f"select i1 {columns}, ptr {col_b}, ptr {b}")
        c = fb.assign(f"select i1 {columns}, ptr {col_c}, ptr {row_c}")
        rows = fb.assign(f"select i1 {columns}, i64 {m}, i64 {count}")
        cols = fb.assign(f"select i1 {columns}, i64 {count}, i64 {n}")
        dims = f"i64 {rows}, i64 {cols}"
    fb.emit(f"call void @{symbol}(i32 {CBLAS_ROW_MAJOR}, i32 {CBLAS_TRANS if ta else CBLAS_NO_TRANS}, "
            f"i32 {CBLAS_TRANS if tb else CBLAS_NO_TRANS}, {dims}, i64 {k}, {t} {literal(alpha, dtype)}, "
            f"ptr {a}, i64 {lda}, ptr {b}, i64 {ldb}, {t} {literal(beta, dtype)}, ptr {c}, i64 {ldc})")


def emit_matmul(name: str, schedule, kernel, declarations: set, blas: bool):
    """The CPU kernel-table emitter of matmul: (text, buffers, returns_status, info)."""
    split = emit(name, schedule, kernel, declarations, blas)
    if split is not None:
        return (*split[:2], False, split[2])
    return (*library.emit_matmul(name, schedule, kernel, declarations, blas), False, None)


def _operands(schedule, kernel, blas: bool):
    """(dtype, m, n, k, a_buf, ta, b_buf, tb, c_buf) of a matmul node a split may serve, else None."""
    node = kernel.root.node
    dtype = kernel.out.dtype
    if not blas or dtype.name not in BLAS_PREFIX or len(kernel.out.shape) != 2:
        return None
    a, b = node.operands
    ta, tb = node.attrs.get("transpose_a", False), node.attrs.get("transpose_b", False)
    m, n = kernel.out.shape
    k = a.shape[0] if ta else a.shape[1]
    home = schedule.value_buffer
    (a_buf, ta), (b_buf, tb) = _gemm_operand(home, a, ta), _gemm_operand(home, b, tb)
    if a_buf is b_buf and ta != tb and kernel.beta == 0.0 and m == n:
        return None                                  # SYRK: library.emit_matmul's call
    if n == 1 and kernel.beta == 0.0 and not tb:
        return None                                  # GEMV
    c_buf = kernel.out
    if c_buf.id in (a_buf.id, b_buf.id):
        return None
    return dtype, m, n, k, a_buf, ta, b_buf, tb, c_buf


def emit(name: str, schedule, kernel, declarations: set, blas: bool, min_work: int = MIN_WORK):
    """(text, buffers, RangeInfo) for a GEMM worth splitting, else None."""
    found = _operands(schedule, kernel, blas)
    if found is None:
        return None
    dtype, m, n, k, a_buf, ta, b_buf, tb, c_buf = found
    if is_symbolic((m, n, k)):
        return emit_symbolic(name, found, kernel, declarations, min_work)
    buffers = list({x.id: x for x in (a_buf, b_buf, c_buf)}.values())
    ranged = emit_ranged_gemm(name, buffers, dtype, ta, tb, m, n, k, a_buf, m if ta else k, b_buf, k if tb else n,
                              c_buf, n, declarations, min_work, kernel.alpha, kernel.beta)
    return None if ranged is None else (ranged[0], buffers, ranged[1])


SYMBOLIC_PARTS = 64   # range of a symbolic GEMM: parts of the split side (the pool takes 2 chunks a thread)


def emit_symbolic(name: str, found, kernel, declarations: set, min_work: int = MIN_WORK):
    """The split GEMM of a shape-polymorphic executable: the range is SYMBOLIC_PARTS equal parts
    of rows or columns, the direction `split_by_columns` of the run's m and n; (text, buffers,
    RangeInfo) with symbolic work (the entry runs it threaded only when the run's work reaches
    the threshold, codegen/symdims.py), or None when it is always too small."""
    dtype, m, n, k, a_buf, ta, b_buf, tb, c_buf = found
    work = m * n * k
    if symdims.below(work, min_work):
        return None
    buffers = list({x.id: x for x in (a_buf, b_buf, c_buf)}.values())
    params = [f"ptr noalias %b{x.id}" for x in buffers] + ["i64 %start", "i64 %stop", "i32 %phases"]
    fb = FunctionBuilder(name, params, attrs="nounwind")
    t, symbol = _declare(declarations, dtype)
    with _phase(fb, PHASE_MAIN):
        columns = _columns_at_run_time(fb, m, n)
        side = fb.assign(f"select i1 {columns}, i64 {n}, i64 {m}")
        lo = fb.assign(f"udiv i64 {fb.assign(f'mul i64 %start, {side}')}, {SYMBOLIC_PARTS}")
        hi = fb.assign(f"udiv i64 {fb.assign(f'mul i64 %stop, {side}')}, {SYMBOLIC_PARTS}")
        count = fb.assign(f"sub i64 {hi}, {lo}")
        nonempty = fb.assign(f"icmp sgt i64 {count}, 0")
        with fb.if_(fb.assign(f"and i1 {nonempty}, {fb.assign(f'icmp sgt i64 {k}, 0')}")):
            _block_call(fb, t, symbol, dtype, ta, tb, m, n, k, kernel.alpha, kernel.beta,
                        f"%b{a_buf.id}", _ld(m if ta else k), f"%b{b_buf.id}", _ld(k if tb else n),
                        f"%b{c_buf.id}", _ld(n), lo, count, columns)
    return fb.render(), buffers, RangeInfo(SYMBOLIC_PARTS, work, True)


def emit_ranged_gemm(name: str, buffers: list, dtype, ta: bool, tb: bool, m: int, n: int, k: int,
                     a_buf, lda: int, b_buf, ldb: int, c_buf, ldc: int, declarations: set,
                     min_work: int = MIN_WORK, alpha: float = 1.0, beta: float = 0.0):
    """C[m, n] = alpha op(A) @ op(B) + beta C (row-major) as a ranged kernel: a matmul node's (`emit`) or
    the conv2d family's GEMMs on buffers that are not a matmul node's (codegen/conv_gemm.py), split (rows of C and
    op(A), or columns of C and op(B) by `split_by_columns`). (text, RangeInfo), or None when too
    small to split."""
    if dtype.name not in BLAS_PREFIX or min(m, n) < MIN_ROWS or not k or m * n * k < min_work:
        return None
    params = [f"ptr noalias %b{x.id}" for x in buffers] + ["i64 %start", "i64 %stop", "i32 %phases"]
    fb = FunctionBuilder(name, params, attrs="nounwind")
    t, symbol = _declare(declarations, dtype)
    columns = split_by_columns(m, n)
    with _phase(fb, PHASE_MAIN):
        count = fb.assign("sub i64 %stop, %start")
        with fb.if_(fb.assign(f"icmp sgt i64 {count}, 0")):
            _block_call(fb, t, symbol, dtype, ta, tb, m, n, k, alpha, beta, f"%b{a_buf.id}", max(1, lda),
                        f"%b{b_buf.id}", max(1, ldb), f"%b{c_buf.id}", max(1, ldc), "%start", count, columns)
    return fb.render(), RangeInfo(n if columns else m, m * n * k, True)
