"""conv2d_max_pool's CPU kernel for inputs with few channels (the 'folded' strategy's shapes: a CNN's
first layer, e.g. 5x5x1->32 on 28x28), with the whole pool window in registers.

The parallel loop runs over (image, pooled row). A register block is P pooled columns (compile-time
columns, so the conv pixels of their windows are known and a tap reading left/right padding is
dropped at compile time) times the pool window's rows and columns times a group of up to 2 vectors of
output channels: P*pkh*pkw*j accumulators. Each conv row of the band runs its filter rows over its
valid range (a runtime bound, so top/bottom padding costs nothing; a band row outside the map counts
as -inf), reading the input itself (no padded copy); the kw and channel taps are unrolled, each a
broadcast of one input value times the filter's channel vectors. The pool max (scan order, strict
`>`: the first maximum wins and a NaN never does, as codegen/conv_pool_kernels.py), the bias and
the ReLU (llvm.maximum with 0) run in registers and each pooled cell is stored once: no -inf fill,
no read-modify-write of the pooled row, no second pass."""
from __future__ import annotations

from .conv_kernels import add, block_shape, mul, ptr_at, simd_registers, vector_slot
from .llvm_builder import literal

MAX_UNROLL = 64          # kw * c taps unrolled per filter row
MAX_ROW_PIXELS = 64      # wider rows: more unrolled segments than is worth compiling


def small_plan(x_shape, f_shape, ow, pool_ksize, pw, itemsize):
    """(P pooled columns per block, channel groups) or None where this kernel does not apply."""
    c, o = x_shape[3], f_shape[3]
    kw_n = f_shape[1]
    pkh, pkw = pool_ksize
    if kw_n * c > MAX_UNROLL or ow > MAX_ROW_PIXELS or not (pw and o):
        return None
    _, regs = simd_registers()
    _, _, groups = block_shape(o, itemsize, 2)
    j = len(groups[0][1])
    P = (regs - 4) // (pkh * pkw * j)
    if P < 1:
        return None
    return min(P, pw), groups


def _segments(pw, P):
    count = -(-pw // P)
    base, extra = divmod(pw, count)
    sizes = [base + (1 if k < extra else 0) for k in range(count)]
    return [(sum(sizes[:k]), size) for k, size in enumerate(sizes)]


def small_pool_conv(fb, vec, plan, dims, pool, x_ptr, w_ptr, out_ptr, bias_ptr, activation, item):
    """One pooled row (item = b * ph + py) of conv2d_max_pool. dims: codegen/conv_rows.py `row_dims`;
    pool: (ph, pw, oh, (pkh, pkw), (psh, psw), (qt, ql))."""
    h, w, c, ow, o, kh_n, kw_n, pt, pl, sh, sw, dh, dw = dims
    ph, pw, oh, (pkh, pkw), (psh, psw), (qt, ql) = pool
    P, groups = plan
    t, dtype = vec.t, vec.dtype
    lanes = groups[0][1][0]
    b = fb.assign(f"udiv i64 {item}, {ph}")
    py = fb.assign(f"urem i64 {item}, {ph}")
    orow = mul(fb, item, pw * o)
    top = add(fb, mul(fb, py, psh), -qt)
    image_row = mul(fb, b, h)
    rows = []                                   # per band row r: (valid, iy0, lo, hi)
    for r in range(pkh):
        y = add(fb, top, r)
        valid = fb.assign(f"and i1 {fb.assign(f'icmp sge i64 {y}, 0')}, {fb.assign(f'icmp slt i64 {y}, {oh}')}")
        iy0 = add(fb, mul(fb, y, sh), -pt)
        neg = fb.assign(f"sub nsw i64 0, {iy0}")
        lo = fb.assign(f"sdiv i64 {add(fb, neg, dh - 1)}, {dh}")
        lo = fb.assign(f"select i1 {fb.assign(f'icmp sgt i64 {neg}, 0')}, i64 {lo}, i64 0")
        room = fb.assign(f"sub nsw i64 {h}, {iy0}")
        hi = fb.assign(f"sdiv i64 {add(fb, room, dh - 1)}, {dh}")
        hi = fb.assign(f"select i1 {fb.assign(f'icmp sgt i64 {room}, 0')}, i64 {hi}, i64 0")
        hi = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {hi}, {kh_n}')}, i64 {hi}, i64 {kh_n}")
        hi = fb.assign(f"select i1 {valid}, i64 {hi}, i64 {lo}")
        rows.append((valid, iy0, lo, hi))
    accs = [[[vector_slot(fb, vec.ty(lanes)) for _ in range(2)] for _ in range(P * pkw)] for _ in range(pkh)]
    neg_inf = literal(float("-inf"), dtype)
    if activation:
        relu = f"llvm.maximum.v{{w}}{vec.suffix}"
    for px0, count in _segments(pw, P):
        cols = [(px, x) for px in range(px0, px0 + count)
                for x in range(px * psw - ql, px * psw - ql + pkw) if 0 <= x < ow]
        for g_off, widths in groups:
            for r, (valid, iy0, lo, hi) in enumerate(rows):
                for s in range(len(cols)):
                    for k, width in enumerate(widths):
                        vec.store(width, "zeroinitializer", accs[r][s][k])
                with fb.loop(lo, hi, "skh") as kh:
                    x_row = ptr_at(fb, t, x_ptr, mul(fb, add(fb, image_row, add(fb, iy0, mul(fb, kh, dh))), w * c))
                    w_row = ptr_at(fb, t, w_ptr, add(fb, mul(fb, kh, kw_n * c * o), g_off))
                    for kw in range(kw_n):
                        taps = [(s, x * sw - pl + kw * dw) for s, (_, x) in enumerate(cols)]
                        taps = [(s, ix) for s, ix in taps if 0 <= ix < w]
                        if not taps:
                            continue
                        for ch in range(c):
                            wv, off = [], 0
                            for width in widths:
                                wv.append(vec.load(width, ptr_at(fb, t, w_row, str((kw * c + ch) * o + off))))
                                off += width
                            for s, ix in taps:
                                xs = fb.load(t, ptr_at(fb, t, x_row, str(ix * c + ch)))
                                for k, width in enumerate(widths):
                                    acc = fb.load(vec.ty(width), accs[r][s][k])
                                    fb.store(vec.ty(width), vec.fma(width, vec.splat(width, xs), wv[k], acc),
                                             accs[r][s][k])
            off = 0
            for k, width in enumerate(widths):
                ty = vec.ty(width)
                splat_inf = vec.splat(width, neg_inf)
                for px in range(px0, px0 + count):
                    best = splat_inf
                    for r, (valid, *_rest) in enumerate(rows):
                        for s, (qx, _) in enumerate(cols):
                            if qx != px:
                                continue
                            value = fb.load(ty, accs[r][s][k])
                            better = fb.assign(f"fcmp ogt {ty} {value}, {best}")
                            inside = _splat_i1(fb, width, valid)
                            better = fb.assign(f"and <{width} x i1> {better}, {inside}")
                            best = fb.assign(f"select <{width} x i1> {better}, {ty} {value}, {ty} {best}")
                    if bias_ptr is not None:
                        best = vec.add(width, best, vec.load(width, ptr_at(fb, t, bias_ptr, str(g_off + off))))
                    if activation:
                        name = relu.format(w=width)
                        vec.decl.add(f"declare {ty} @{name}({ty}, {ty})")
                        best = fb.assign(f"call {ty} @{name}({ty} {best}, {ty} zeroinitializer)")
                    vec.store(width, best, ptr_at(fb, t, out_ptr, add(fb, orow, px * o + g_off + off)))
                off += width


def _splat_i1(fb, width, flag):
    one = fb.assign(f"insertelement <{width} x i1> poison, i1 {flag}, i64 0")
    return fb.assign(f"shufflevector <{width} x i1> {one}, <{width} x i1> poison, <{width} x i32> zeroinitializer")
