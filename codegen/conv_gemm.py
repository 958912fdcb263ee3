"""conv2d-family kernels that are matrix products, on the process's BLAS GEMM
(the CBLAS call matmul makes, codegen/library.py). jitflow.ops.conv.strategy
picks them:
- 'gemm': a 1x1, stride-1, unpadded convolution is a GEMM on the buffers as
  they are: out[P, O] = x[P, C] @ f[C, O]; the input gradient dy @ f^T; the
  filter gradient x^T @ dy.
- 'im2col' (forward, filters past the cache): chunks of patch rows copied to the
  workspace temp ([rows, kh*kw*c], zeros where a tap falls in the padding),
  each chunk one GEMM with the filter seen as [kh*kw*c, O].
Both run on the thread pool (jitflow's OpenBLAS runs one thread): a 'gemm' large enough split by
rows (or columns) of the product (codegen/parallel_gemm.py `emit_ranged_gemm`), 'im2col' by chunks,
each thread filling and multiplying its chunks in one of the workspace's IM2COL_SLOTS slots.
"""
from __future__ import annotations

from jitflow.ir.types import num_elements
from jitflow.ops.conv import IM2COL_SLOTS, geometry, im2col_rows

from .conv_kernels import _node_bufs, add, decompose, mul, ranged_function, unique_buffers
from .library import BLAS_PREFIX, CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, CBLAS_TRANS
from .llvm_builder import literal, llvm_type
from .loops import PHASE_INIT, PHASE_MAIN, RangeInfo, _phase
from .parallel_gemm import emit_ranged_gemm


def gemm_call(fb, declarations, dtype, ta, tb, m, n, k, a, lda, b, ldb, c, ldc):
    """C[m, n] = op(A) @ op(B), row-major (m may be an i64 SSA name)."""
    t = llvm_type(dtype)
    symbol = f"jf_cblas_{BLAS_PREFIX[dtype.name]}gemm"
    # the same declaration text as codegen/library.py's, so one module holds it once
    declarations.add(f"declare void @{symbol}(i32, i32, i32, i64, i64, i64, {t}, ptr, i64, ptr, i64, "
                     f"{t}, ptr, i64)")
    fb.emit(f"call void @{symbol}(i32 {CBLAS_ROW_MAJOR}, i32 {CBLAS_TRANS if ta else CBLAS_NO_TRANS}, "
            f"i32 {CBLAS_TRANS if tb else CBLAS_NO_TRANS}, i64 {m}, i64 {n}, i64 {k}, {t} {literal(1.0, dtype)}, "
            f"ptr {a}, i64 {max(1, lda)}, ptr {b}, i64 {max(1, ldb)}, {t} {literal(0.0, dtype)}, ptr {c}, "
            f"i64 {max(1, ldc)})")


def _zero(fb, t, dtype, buf):
    with fb.loop("0", str(num_elements(buf.shape)), "z") as e:
        fb.store(t, literal(0, dtype), fb.gep(t, f"%b{buf.id}", e))


def emit(kind, direction, name, schedule, kernel, declarations):
    node, (a_buf, b_buf) = _node_bufs(schedule, kernel)
    out = kernel.out
    dtype, t = out.dtype, llvm_type(out.dtype)
    scratch = [kernel.scratch] if kind == "im2col" else []
    buffers = unique_buffers(a_buf, b_buf, out, *scratch)
    fb = ranged_function(name, buffers)
    if kind == "im2col":
        return _im2col_kernel(fb, declarations, dtype, t, node, a_buf, b_buf, out, kernel.scratch, buffers)
    if direction == "conv2d":      # x [P, C] @ f [C, O]
        p, c, o = num_elements(a_buf.shape[:3]), a_buf.shape[3], b_buf.shape[3]
        (m, n, k), (ta, tb, a, lda, b, ldb, ldc) = (p, o, c), (False, False, a_buf, c, b_buf, o, o)
    elif direction == "input":     # dy [P, O] @ f[C, O]^T
        p, o, c = num_elements(b_buf.shape[:3]), b_buf.shape[3], a_buf.shape[2]
        (m, n, k), (ta, tb, a, lda, b, ldb, ldc) = (p, c, o), (False, True, b_buf, o, a_buf, o, c)
    else:                          # x [P, C]^T @ dy [P, O]
        p, c, o = num_elements(a_buf.shape[:3]), a_buf.shape[3], b_buf.shape[3]
        (m, n, k), (ta, tb, a, lda, b, ldb, ldc) = (c, o, p), (True, False, a_buf, c, b_buf, o, o)
    split = emit_ranged_gemm(name, buffers, dtype, ta, tb, m, n, k, a, lda, b, ldb, out, ldc, declarations)
    if split is not None:          # rows (or columns) of the product over the thread pool
        return split[0], buffers, False, split[1]
    with _phase(fb, PHASE_MAIN):
        if not k:
            _zero(fb, t, dtype, out)
        elif m and n:
            gemm_call(fb, declarations, dtype, ta, tb, m, n, k, f"%b{a.id}", lda, f"%b{b.id}", ldb, f"%b{out.id}", ldc)
    return fb.render(), buffers, False, RangeInfo(1, 0, False)     # one call (jitflow's OpenBLAS: 1 thread)


def _claim_slot(fb, flags):
    """Spins until it owns one of the IM2COL_SLOTS busy flags (0 -> 1); returns its index."""
    slot = fb.alloca("i64")
    fb.store("i64", "0", slot)
    claim, claimed = fb.label("claim"), fb.label("claimed")
    fb.emit(f"br label %{claim}")
    fb.start_block(claim)
    s = fb.load("i64", slot)
    result = fb.assign(f"cmpxchg ptr {fb.gep('i32', flags, s)}, i32 0, i32 1 acq_rel monotonic")
    ok = fb.assign(f"extractvalue {{i32, i1}} {result}, 1")
    following = add(fb, s, 1)
    wrapped = fb.assign(f"select i1 {fb.assign(f'icmp eq i64 {following}, {IM2COL_SLOTS}')}, i64 0, i64 {following}")
    fb.store("i64", fb.assign(f"select i1 {ok}, i64 {s}, i64 {wrapped}"), slot)
    fb.emit(f"br i1 {ok}, label %{claimed}, label %{claim}")
    fb.start_block(claimed)
    return fb.load("i64", slot)


def _im2col_kernel(fb, declarations, dtype, t, node, x_buf, f_buf, out, col, buffers):
    """Chunks of patch rows split over the thread pool: each call (a range of chunks) claims one of the
    workspace's IM2COL_SLOTS chunk slots (its busy flag, zeroed in the init phase), fills it and
    multiplies it, chunk after chunk, and frees it."""
    n, h, w, c = x_buf.shape
    kh_n, kw_n, _, o = f_buf.shape
    (oh, ow), _ = geometry((h, w), (kh_n, kw_n), node.attrs)
    P, k = n * oh * ow, col.shape[1]
    rows = im2col_rows(x_buf.shape, f_buf.shape, node.attrs, dtype.itemsize)
    chunks = -(-P // rows) if P and o else 0
    flags = fb.gep(t, f"%b{col.id}", str(IM2COL_SLOTS * rows * k))
    with _phase(fb, PHASE_INIT):
        with fb.loop("0", str(IM2COL_SLOTS), "fl") as s:
            fb.store("i32", "0", fb.gep("i32", flags, s))
        if chunks and not k:
            _zero(fb, t, dtype, out)
    if chunks and k:
        with _phase(fb, PHASE_MAIN):
            with fb.if_(fb.assign("icmp slt i64 %start, %stop")):
                slot = _claim_slot(fb, flags)
                chunk_col = fb.gep(t, f"%b{col.id}", mul(fb, slot, rows * k))
                _im2col_forward(fb, declarations, dtype, t, node, x_buf, f_buf, out, col, chunk_col, rows)
                fb.emit(f"store atomic i32 0, ptr {fb.gep('i32', flags, slot)} release, align 4")
    return fb.render(), buffers, False, RangeInfo(chunks, P * o * k if k else 0, True)


def _im2col_forward(fb, declarations, dtype, t, node, x_buf, f_buf, out, col, pcol, rows):
    """Chunks [%start, %stop) of `rows` patch rows each: copied to `pcol`, then one GEMM each."""
    n, h, w, c = x_buf.shape
    kh_n, kw_n, _, o = f_buf.shape
    (oh, ow), (pt, pl) = geometry((h, w), (kh_n, kw_n), node.attrs)
    (sh, sw), (dh, dw) = node.attrs["strides"], node.attrs["dilations"]
    k = col.shape[1]
    P = n * oh * ow
    px = f"%b{x_buf.id}"
    with fb.loop("%start", "%stop", "chunk") as chunk:
        first = mul(fb, chunk, rows)
        left = fb.assign(f"sub nsw i64 {P}, {first}")
        count = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {left}, {rows}')}, i64 {left}, i64 {rows}")
        with fb.loop("0", count, "r") as r:
            b, y, x = decompose(fb, add(fb, first, r), (n, oh, ow))
            with fb.loop("0", str(kh_n * kw_n), "tap") as tap:
                kh = fb.assign(f"udiv i64 {tap}, {kw_n}")
                kw = fb.assign(f"urem i64 {tap}, {kw_n}")
                iy = add(fb, add(fb, mul(fb, y, sh), mul(fb, kh, dh)), -pt)
                ix = add(fb, add(fb, mul(fb, x, sw), mul(fb, kw, dw)), -pl)
                ok = fb.assign(f"and i1 {fb.assign(f'icmp ult i64 {iy}, {h}')}, "
                               f"{fb.assign(f'icmp ult i64 {ix}, {w}')}")
                dst = add(fb, mul(fb, r, k), mul(fb, tap, c))
                with fb.if_(ok):
                    src = mul(fb, add(fb, mul(fb, add(fb, mul(fb, b, h), iy), w), ix), c)
                    with fb.loop("0", str(c), "cc") as ch:
                        fb.store(t, fb.load(t, fb.gep(t, px, add(fb, src, ch))), fb.gep(t, pcol, add(fb, dst, ch)))
                with fb.if_(fb.assign(f"xor i1 {ok}, true")):
                    with fb.loop("0", str(c), "cz") as ch:
                        fb.store(t, literal(0, dtype), fb.gep(t, pcol, add(fb, dst, ch)))
        target = fb.gep(t, f"%b{out.id}", mul(fb, first, o))
        gemm_call(fb, declarations, dtype, False, False, count, o, k, pcol, k, f"%b{f_buf.id}", o, target, o)
