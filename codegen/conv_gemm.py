"""conv2d-family kernels that are matrix products, on the process's BLAS GEMM
(the CBLAS call matmul makes, codegen/library.py). jitflow.ops.conv.strategy
picks them:
- 'gemm': a 1x1, stride-1, unpadded convolution is a GEMM on the buffers as
  they are: out[P, O] = x[P, C] @ f[C, O]; the input gradient dy @ f^T; the
  filter gradient x^T @ dy.
- 'im2col' (forward, filters past the cache): chunks of patch rows copied to the
  workspace temp ([rows, kh*kw*c], zeros where a tap falls in the padding),
  each chunk one GEMM with the filter seen as [kh*kw*c, O].
One call of the kernel does the whole op (OpenBLAS runs its own threads).
"""
from __future__ import annotations

from jitflow.ir.types import num_elements
from jitflow.ops.conv import geometry

from .conv_kernels import _node_bufs, add, decompose, mul, ranged_function, unique_buffers
from .library import BLAS_PREFIX, CBLAS_NO_TRANS, CBLAS_ROW_MAJOR, CBLAS_TRANS
from .llvm_builder import literal, llvm_type
from .loops import PHASE_MAIN, RangeInfo, _phase


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
    pa, pb, po = f"%b{a_buf.id}", f"%b{b_buf.id}", f"%b{out.id}"
    with _phase(fb, PHASE_MAIN):
        if kind == "im2col":
            _im2col_forward(fb, declarations, dtype, t, node, a_buf, b_buf, out, kernel.scratch)
        else:
            if direction == "conv2d":      # x [P, C] @ f [C, O]
                p, c = num_elements(a_buf.shape[:3]), a_buf.shape[3]
                o = b_buf.shape[3]
                dims, args = (p, o, c), (False, False, pa, c, pb, o, po, o)
            elif direction == "input":     # dy [P, O] @ f[C, O]^T
                p, o = num_elements(b_buf.shape[:3]), b_buf.shape[3]
                c = a_buf.shape[2]
                dims, args = (p, c, o), (False, True, pb, o, pa, o, po, c)
            else:                   # x [P, C]^T @ dy [P, O]
                p, c = num_elements(a_buf.shape[:3]), a_buf.shape[3]
                o = b_buf.shape[3]
                dims, args = (c, o, p), (True, False, pa, c, pb, o, po, o)
            m, n, k = dims
            if not k:
                _zero(fb, t, dtype, out)
            elif m and n:
                ta, tb, a, lda, b, ldb, c_ptr, ldc = args
                gemm_call(fb, declarations, dtype, ta, tb, m, n, k, a, lda, b, ldb, c_ptr, ldc)
    return fb.render(), buffers, False, RangeInfo(1, 0, False)     # one call: BLAS threads inside


def _im2col_forward(fb, declarations, dtype, t, node, x_buf, f_buf, out, col):
    n, h, w, c = x_buf.shape
    kh_n, kw_n, _, o = f_buf.shape
    (oh, ow), (pt, pl) = geometry((h, w), (kh_n, kw_n), node.attrs)
    (sh, sw), (dh, dw) = node.attrs["strides"], node.attrs["dilations"]
    rows, k = col.shape
    P = n * oh * ow
    if not (P and o):
        return
    if not k:
        _zero(fb, t, dtype, out)
        return
    px, pcol = f"%b{x_buf.id}", f"%b{col.id}"
    with fb.loop("0", str(-(-P // rows)), "chunk") as chunk:
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
