"""conv2d's forward micro-kernel for one output row at a time, with no work on padding.

The register block is a segment of one output row: R pixels at compile-time columns x0..x0+R-1 times
a group of up to j vectors of output channels (R*j accumulators). Because the columns are constants,
so is the set of pixels each filter column kw reads inside the input: the kernel unrolls kw and emits
the FMAs of exactly those pixels; the filter rows run over the row's valid range (a runtime bound).
A tap that falls in the padding costs nothing, where codegen/conv_kernels.py's `direct_conv` (any
block of the flattened pixels) multiplies a row of zeros: for the W10 CNN's 5x5 SAME convolution of
a 14x14 map that is 16% of its multiply-adds. Used for the 'direct' forward strategy when a row has at
most MAX_ROW_PIXELS pixels (codegen/conv_kernels.py, codegen/conv_pool_kernels.py)."""
from __future__ import annotations

from .conv_kernels import add, block_shape, mul, ptr_at, vector_slot

MAX_ROW_PIXELS = 32      # wider rows: more unrolled segments than is worth compiling


def row_plan(ow, O, itemsize):
    """(j_max, R, segments [(x0, count)]) for rows of `ow` pixels: the widest channel groups (each pixel's
    input value is broadcast once per group, and a broadcast competes with the FMAs: measured, 2 groups
    of 14 pixels ran no faster than 1 group of 6 with 16% more multiply-adds), the row cut into
    segments of near-equal length (14 pixels: 5 + 5 + 4, not 6 + 6 + 2)."""
    R, _, _ = block_shape(O, itemsize, 4)
    count = -(-ow // R)
    base, extra = divmod(ow, count)
    sizes = [base + (1 if k < extra else 0) for k in range(count)]
    return 4, R, [(sum(sizes[:k]), size) for k, size in enumerate(sizes)]


def row_conv(fb, vec, dims, x_ptr, w_ptr, b, y, store):
    """Output row y of image b: store(x, g_off, [(width, offset, vector)]) for every pixel x of the row.
    dims: (h, w, c, ow, o, kh_n, kw_n, pt, pl, sh, sw, dh, dw) (python ints)."""
    h, w, c, ow, o, kh_n, kw_n, pt, pl, sh, sw, dh, dw = dims
    t, itemsize = vec.t, vec.dtype.itemsize
    j_max, R, segments = row_plan(ow, o, itemsize)
    _, lanes, groups = block_shape(o, itemsize, j_max)
    accs = [[vector_slot(fb, vec.ty(lanes)) for _ in range(j_max)] for _ in range(R)]
    iy0 = add(fb, mul(fb, y, sh), -pt)
    neg = fb.assign(f"sub nsw i64 0, {iy0}")                   # filter rows with 0 <= iy0 + kh*dh < h
    lo = fb.assign(f"sdiv i64 {add(fb, neg, dh - 1)}, {dh}")
    lo = fb.assign(f"select i1 {fb.assign(f'icmp sgt i64 {neg}, 0')}, i64 {lo}, i64 0")
    room = fb.assign(f"sub nsw i64 {h}, {iy0}")
    hi = fb.assign(f"sdiv i64 {add(fb, room, dh - 1)}, {dh}")
    hi = fb.assign(f"select i1 {fb.assign(f'icmp sgt i64 {room}, 0')}, i64 {hi}, i64 0")
    hi = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {hi}, {kh_n}')}, i64 {hi}, i64 {kh_n}")
    image_row = mul(fb, b, h)
    for x0, count in segments:
        for g_off, widths in groups:
            for r in range(count):
                for k, width in enumerate(widths):
                    vec.store(width, "zeroinitializer", accs[r][k])
            with fb.loop(lo, hi, "kh") as kh:
                iy = add(fb, iy0, mul(fb, kh, dh))
                x_row = ptr_at(fb, t, x_ptr, mul(fb, add(fb, image_row, iy), w * c))
                w_rows = ptr_at(fb, t, w_ptr, add(fb, mul(fb, kh, kw_n * c * o), g_off))
                for kw in range(kw_n):
                    cols = {r: (x0 + r) * sw - pl + kw * dw for r in range(count)}
                    cols = {r: ix for r, ix in cols.items() if 0 <= ix < w}
                    if not cols:
                        continue
                    with fb.loop("0", str(c), "c") as ch:
                        w_at = add(fb, mul(fb, ch, o), kw * c * o)
                        wv, off = [], 0
                        for width in widths:
                            wv.append(vec.load(width, ptr_at(fb, t, w_rows, add(fb, w_at, off))))
                            off += width
                        for r, ix in cols.items():
                            xs = fb.load(t, ptr_at(fb, t, x_row, add(fb, ch, ix * c)))
                            for k, width in enumerate(widths):
                                acc = fb.load(vec.ty(width), accs[r][k])
                                fb.store(vec.ty(width), vec.fma(width, vec.splat(width, xs), wv[k], acc), accs[r][k])
            for r in range(count):
                values, off = [], 0
                for k, width in enumerate(widths):
                    values.append((width, off, fb.load(vec.ty(width), accs[r][k])))
                    off += width
                store(x0 + r, g_off, values)


def row_tap_range(fb, first, last, kh_count, dh, h, kw_count):
    """[lo, hi) of the taps (kh-major, kw_count per filter row) whose filter rows read inside the input for
    some pixel of a block: `first` / `last` are (image row base, input row of kh = 0) of its first and
    last pixel. Within one image the block's rows are first..last, so the filter rows it needs run
    from the last pixel's lowest valid kh to the first pixel's highest; a block spanning two images
    runs every tap (rows of zeros stand in for the padding)."""
    (n_first, y_first), (n_last, y_last) = first[:2], last[:2]
    neg = fb.assign(f"sub nsw i64 0, {y_last}")                    # kh*dh >= -y_last
    lo = fb.assign(f"sdiv i64 {add(fb, neg, dh - 1)}, {dh}")
    lo = fb.assign(f"select i1 {fb.assign(f'icmp sgt i64 {neg}, 0')}, i64 {lo}, i64 0")
    room = fb.assign(f"sub nsw i64 {h}, {y_first}")                # kh*dh < h - y_first
    hi = fb.assign(f"sdiv i64 {add(fb, room, dh - 1)}, {dh}")
    hi = fb.assign(f"select i1 {fb.assign(f'icmp sgt i64 {room}, 0')}, i64 {hi}, i64 0")
    hi = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {hi}, {kh_count}')}, i64 {hi}, i64 {kh_count}")
    lo = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {lo}, {hi}')}, i64 {lo}, i64 {hi}")
    same = fb.assign(f"icmp eq i64 {n_first}, {n_last}")
    lo = fb.assign(f"select i1 {same}, i64 {lo}, i64 0")
    hi = fb.assign(f"select i1 {same}, i64 {hi}, i64 {kh_count}")
    return mul(fb, lo, kw_count), mul(fb, hi, kw_count)


def row_dims(x_shape, f_shape, attrs):
    from jitflow.ops.conv import geometry
    n, h, w, c = x_shape
    kh_n, kw_n, _, o = f_shape
    (oh, ow), (pt, pl) = geometry((h, w), (kh_n, kw_n), attrs)
    (sh, sw), (dh, dw) = attrs["strides"], attrs["dilations"]
    return oh, (h, w, c, ow, o, kh_n, kw_n, pt, pl, sh, sw, dh, dw)


def emit_row_conv2d(name, kernel, x_buf, f_buf, attrs, declarations):
    """conv2d's CPU kernel by output rows (parallel over image rows): (text, buffers, status, info)."""
    from .conv_kernels import Vec, _work_info, ranged_function, unique_buffers
    from .loops import PHASE_MAIN, _phase
    out = kernel.out
    n = x_buf.shape[0]
    oh, dims = row_dims(x_buf.shape, f_buf.shape, attrs)
    ow, o = dims[3], dims[4]
    buffers = unique_buffers(x_buf, f_buf, out)
    fb = ranged_function(name, buffers)
    vec = Vec(fb, declarations, out.dtype)
    t = vec.t
    items = n * oh if ow and o else 0
    if items:
        with _phase(fb, PHASE_MAIN):
            with fb.loop("%start", "%stop", "row") as item:
                b, y = fb.assign(f"udiv i64 {item}, {oh}"), fb.assign(f"urem i64 {item}, {oh}")
                first = mul(fb, item, ow * o)

                def store(x, g_off, values):
                    for width, off, value in values:
                        vec.store(width, value, ptr_at(fb, t, f"%b{out.id}", add(fb, first, x * o + g_off + off)))
                row_conv(fb, vec, dims, f"%b{x_buf.id}", f"%b{f_buf.id}", b, y, store)
    flops = n * oh * ow * o * dims[2] * dims[5] * dims[6]
    return fb.render(), buffers, False, _work_info(items, flops)
