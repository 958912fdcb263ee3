"""The GEMMs of the fused LSTM kernels (codegen/lstm_kernels.py) as generated vector code.

`gemm_rows`: the per-step product, C[r, :] += A[r, 0:K] @ B for the rows r of one thread's block, B the
weights packed once per kernel call (`pack`, PHASE_INIT, into the op's workspace) in panels of W = J
vectors of columns: packed[p][k][0:W] = B[k][p*W : (p+1)*W]; K in passes of ROWS_K_BLOCK so the panel
block stays in L1. `gemm_panels`: the weight gradient, C = A @ B with A [m, K] and B [K, cols], ranged
over column panels, K in blocks whose panel block is copied to a contiguous stack buffer.
Both run a register block of R rows x J vectors of accumulators (4 x 4 zmm with AVX-512) down K with
one broadcast of A per row and one load of B per vector: a step's small GEMM (32 x 1024 x 256 on W11)
needs no BLAS call, no re-packing of B per call and no thread of BLAS's own. Measured on W11's shapes
(one core, AVX-512): forward 202, backward 194, weight gradient 234 GFLOP/s, where OpenBLAS's
Haswell kernels (this environment sets OPENBLAS_CORETYPE=Haswell) give 110-125. Used where the column
count is a multiple of W; the callers fall back to the BLAS call (or a plain loop) otherwise.
"""
from __future__ import annotations

J = 4      # vectors of columns per panel


def geometry(dtype):
    """(lanes, R): vector lanes of the host's widest SIMD and the register block's rows."""
    from .cpu import _initialize
    avx512 = "+avx512f" in _initialize()["features"]
    return (64 if avx512 else 32) // dtype.itemsize, (4 if avx512 else 2)


def fits(cols: int, dtype) -> bool:
    lanes, _ = geometry(dtype)
    return cols > 0 and cols % (lanes * J) == 0


def pack(e, src: str, k_rows: int, cols: int, transposed: bool, dst: str):
    """dst = B packed in panels; B[k][c] = src[k*cols + c], or src[c*k_rows + k] when `transposed`."""
    fb, t = e.fb, e.t
    lanes, _ = geometry(e.dtype)
    width = lanes * J
    with fb.loop("0", str(cols // width), "pp") as p:
        with fb.loop("0", str(k_rows), "pk") as k:
            panel_row = e.i64(f"add nuw nsw i64 {e.i64(f'mul nuw nsw i64 {p}, {k_rows}')}, {k}")
            out_row = fb.gep(t, dst, e.i64(f"mul nuw nsw i64 {panel_row}, {width}"))
            col0 = e.i64(f"mul nuw nsw i64 {p}, {width}")
            with fb.loop("0", str(width), "pw") as w:
                col = e.i64(f"add nuw nsw i64 {col0}, {w}")
                index = e.i64(f"add nuw nsw i64 {e.i64(f'mul nuw nsw i64 {col}, {k_rows}')}, {k}") if transposed \
                    else e.i64(f"add nuw nsw i64 {e.i64(f'mul nuw nsw i64 {k}, {cols}')}, {col}")
                fb.store(t, fb.load(t, fb.gep(t, src, index)), fb.gep(t, out_row, w))


def gemm_rows(e, r0: str, r1: str, k_rows: int, cols: int, packed: str, a_row, c_row, k_first: int = 0,
              k_total: int | None = None):
    """C[r, :] += A[r, 0:K] @ B[k_first : k_first + K] for r in [r0, r1) (K = k_rows; B packed with k_total
    rows, default K); a_row(r) / c_row(r) give the rows' pointers."""
    k_total = k_rows if k_total is None else k_total
    fb = e.fb
    lanes, rows = geometry(e.dtype)
    width = lanes * J
    vt = f"<{lanes} x {e.t}>"
    suffix = "f32" if e.dtype.name == "float32" else "f64"
    e.declarations.add(f"declare {vt} @llvm.fma.v{lanes}{suffix}({vt}, {vt}, {vt})")
    count = e.i64(f"sub i64 {r1}, {r0}")
    blocks = e.i64(f"sdiv i64 {count}, {rows}")
    tail_start = e.i64(f"add i64 {r0}, {e.i64(f'mul i64 {blocks}, {rows}')}")
    with fb.loop("0", str(cols // width), "gp") as p:
        panel = fb.gep(e.t, packed, e.i64(f"add nuw nsw i64 {e.i64(f'mul nuw nsw i64 {p}, {k_total * width}')}, "
                                          f"{k_first * width}"))
        col0 = e.i64(f"mul nuw nsw i64 {p}, {width}")
        for k_lo in range(0, k_rows, ROWS_K_BLOCK):     # a panel block that stays in L1 while the rows pass
            ks = (str(k_lo), str(min(k_lo + ROWS_K_BLOCK, k_rows)))
            with fb.loop("0", blocks, "gb") as b:
                first = e.i64(f"add i64 {r0}, {e.i64(f'mul i64 {b}, {rows}')}")
                _block(e, [e.i64(f"add i64 {first}, {i}") for i in range(rows)], ks, lanes, vt, suffix,
                       (panel, width), col0, a_row, c_row)
            with fb.loop(tail_start, r1, "gt") as r:
                _block(e, [r], ks, lanes, vt, suffix, (panel, width), col0, a_row, c_row)


ROWS_K_BLOCK = 128     # K per pass of gemm_rows (128 x 64 float32: 32 KB of the packed panel)


def gemm_panels(e, start: str, stop: str, m: int, k_total: int, a: str, b: str, c: str, cols: int):
    """C[:, panels start..stop) = A @ B for C [m, cols], A [m, k_total] and B [k_total, cols] row-major
    (the LSTM weight gradient: the transposed inputs @ gate gradients). K runs in blocks of K_BLOCK rows;
    per block and panel, B's block (K_BLOCK x W) is copied to a contiguous stack buffer (no 4 KB-strided
    rows fighting over cache sets), which stays in cache while every register block of rows of C passes."""
    fb = e.fb
    lanes, rows = geometry(e.dtype)
    width = lanes * J
    vt = f"<{lanes} x {e.t}>"
    suffix = "f32" if e.dtype.name == "float32" else "f64"
    e.declarations.add(f"declare {vt} @llvm.fma.v{lanes}{suffix}({vt}, {vt}, {vt})")
    k_blocks = -(-k_total // K_BLOCK)
    b_block = fb.fresh("bblk")
    fb.allocas.append(f"  {b_block} = alloca [{K_BLOCK * width} x {e.t}], align 64")
    with fb.loop(start, stop, "wp") as p:               # beta = 0
        col0 = e.i64(f"mul nuw nsw i64 {p}, {width}")
        with fb.loop("0", str(m), "wz") as r:
            row = fb.gep(e.t, c, e.i64(f"add nuw nsw i64 {e.i64(f'mul nuw nsw i64 {r}, {cols}')}, {col0}"))
            with fb.loop("0", str(width), "wzc") as w:
                fb.store(e.t, e.lit(0), fb.gep(e.t, row, w))
    with fb.loop("0", str(k_blocks), "wk") as kb:
        k0 = e.i64(f"mul nuw nsw i64 {kb}, {K_BLOCK}")
        k1 = e.i64(f"add nuw nsw i64 {k0}, {K_BLOCK}")
        k1 = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {k1}, {k_total}')}, i64 {k1}, i64 {k_total}")
        kn = e.i64(f"sub nuw nsw i64 {k1}, {k0}")
        with fb.loop(start, stop, "wp") as p:
            col0 = e.i64(f"mul nuw nsw i64 {p}, {width}")
            with fb.loop("0", kn, "wbk") as k:          # B's block of this panel: b_block[k][0:W]
                krow = e.i64(f"add nuw nsw i64 {k0}, {k}")
                src = fb.gep(e.t, b, e.i64(f"add nuw nsw i64 {e.i64(f'mul nuw nsw i64 {krow}, {cols}')}, {col0}"))
                dst = fb.gep(e.t, b_block, e.i64(f"mul nuw nsw i64 {k}, {width}"))
                with fb.loop("0", str(width), "wbw") as w:
                    fb.store(e.t, fb.load(e.t, fb.gep(e.t, src, w)), fb.gep(e.t, dst, w))

            def a_row(r):          # row r of A^T from column k0 on: contiguous
                return fb.gep(e.t, a, e.i64(f"add nuw nsw i64 {e.i64(f'mul nuw nsw i64 {r}, {k_total}')}, {k0}"))

            def c_row(r):
                return fb.gep(e.t, c, e.i64(f"mul nuw nsw i64 {r}, {cols}"))
            blocks = m // rows
            with fb.loop("0", str(blocks), "wb") as blk:
                first = e.i64(f"mul nuw nsw i64 {blk}, {rows}")
                _block(e, [e.i64(f"add nuw nsw i64 {first}, {i}") for i in range(rows)], ("0", kn), lanes, vt,
                       suffix, (b_block, width), col0, a_row, c_row)
            with fb.loop(str(blocks * rows), str(m), "wt") as r:
                _block(e, [r], ("0", kn), lanes, vt, suffix, (b_block, width), col0, a_row, c_row)


K_BLOCK = 128       # rows of B per block of the weight-gradient GEMM (a panel block: 32 KB of float32)


def _block(e, row_names, k_range, lanes, vt, suffix, b_rows, col0, a_row, c_row, a_stride=1):
    """acc[r][j] += A[r, k] * B[k, j-th vector] for k in k_range, then stored to C; B row k at
    b_rows[0] + k * b_rows[1], A's element k of row r at a_row(r) + k * a_stride."""
    fb, t = e.fb, e.t
    panel, b_stride = b_rows
    a_ptrs = [a_row(r) for r in row_names]
    c_ptrs = [fb.gep(t, c_row(r), col0) for r in row_names]
    accs = []
    for c_ptr in c_ptrs:
        row_accs = []
        for j in range(J):
            slot = fb.fresh("acc")
            fb.allocas.append(f"  {slot} = alloca {vt}, align 64")
            fb.store(vt, fb.assign(f"load {vt}, ptr {fb.gep(t, c_ptr, str(j * lanes))}, align {e.dtype.itemsize}"),
                     slot)
            row_accs.append(slot)
        accs.append(row_accs)
    with fb.loop(k_range[0], k_range[1], "gk") as k:
        b_row = fb.gep(t, panel, e.i64(f"mul nuw nsw i64 {k}, {b_stride}"))
        bs = [fb.assign(f"load {vt}, ptr {fb.gep(t, b_row, str(j * lanes))}, align {e.dtype.itemsize}")
              for j in range(J)]
        for a_ptr, row_accs in zip(a_ptrs, accs):
            a = fb.load(t, fb.gep(t, a_ptr, k if a_stride == 1 else e.i64(f"mul nuw nsw i64 {k}, {a_stride}")))
            one = fb.assign(f"insertelement {vt} poison, {t} {a}, i64 0")
            splat = fb.assign(f"shufflevector {vt} {one}, {vt} poison, <{lanes} x i32> zeroinitializer")
            for b, slot in zip(bs, row_accs):
                acc = fb.load(vt, slot)
                fb.store(vt, fb.assign(f"call {vt} @llvm.fma.v{lanes}{suffix}({vt} {splat}, {vt} {b}, {vt} {acc})"),
                         slot)
    for c_ptr, row_accs in zip(c_ptrs, accs):
        for j, slot in enumerate(row_accs):
            fb.emit(f"store {vt} {fb.load(vt, slot)}, ptr {fb.gep(t, c_ptr, str(j * lanes))}, "
                    f"align {e.dtype.itemsize}")
