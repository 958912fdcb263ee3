"""CPU kernels of the conv2d family (jitflow/ops/conv.py): register-blocked,
explicitly vectorized direct convolutions, parallel over the cores.

- conv2d and conv2d_backprop_input share one micro-kernel: a block of R output
  pixels times a group of up to J vectors of output channels stays in registers
  (R*J accumulators) while the loop runs over taps and input channels:
  `acc[r][j] += splat(row_r[c]) * W[tap, c, j]` (one FMA per vector). A row is
  the input pixel a tap reads, or a zeroed row where the tap falls in the
  padding (backprop-input: where no output pixel maps there), so the inner loop
  has no branches. Backprop-input runs it over the output gradient with the
  filter transposed to [kh, kw, out, in] (a workspace temp, filled in the
  kernel's init phase).
- conv2d_backprop_filter: per (tap, block of R input channels, channel group) a
  register tile accumulated over the output pixels of one image at a time (the
  image stays in cache while every tile passes over it), unrolled U pixels deep
  when the tile is small so the FMA chains overlap.
conv2d's forward on rows of at most 32 pixels runs by output rows instead (codegen/conv_rows.py: no
work on padding); conv2d + max_pool is codegen/conv_pool_kernels.py. The depthwise and pooling kernels
(loop nests) are in codegen/pool_kernels.py;
codegen/kernel_table.py registers both tables under the op records' `extra["kernel"]` keys.
"""
from __future__ import annotations

from jitflow.ir.types import num_elements
from jitflow.ops.conv import geometry, strategy

from .llvm_builder import FunctionBuilder, literal, llvm_type
from .loops import PHASE_INIT, PHASE_MAIN, RangeInfo, _phase


def simd_registers() -> tuple[int, int]:
    """(vector bytes, vector registers) of the host: 64 / 32 with AVX-512, else 32 / 16."""
    from .cpu import _initialize
    return (64, 32) if "+avx512f" in _initialize()["features"] else (32, 16)


def ranged_function(name, buffers):
    params = [f"ptr noalias %b{b.id}" for b in buffers] + ["i64 %start", "i64 %stop", "i32 %phases"]
    return FunctionBuilder(name, params, attrs="nounwind")


def unique_buffers(*bufs):
    return list({b.id: b for b in bufs}.values())


class Vec:
    """Vector helpers over one element type: loads, stores, splats and FMAs of any width."""

    def __init__(self, fb, declarations, dtype):
        self.fb, self.decl, self.dtype = fb, declarations, dtype
        self.t = llvm_type(dtype)
        self.suffix = "f32" if dtype.name == "float32" else "f64"

    def ty(self, w):
        return f"<{w} x {self.t}>"

    def zero(self, w):
        return "zeroinitializer"

    def load(self, w, ptr):
        return self.fb.assign(f"load {self.ty(w)}, ptr {ptr}, align {self.dtype.itemsize}")

    def store(self, w, value, ptr):
        self.fb.emit(f"store {self.ty(w)} {value}, ptr {ptr}, align {self.dtype.itemsize}")

    def splat(self, w, scalar):
        one = self.fb.assign(f"insertelement {self.ty(w)} poison, {self.t} {scalar}, i64 0")
        return self.fb.assign(f"shufflevector {self.ty(w)} {one}, {self.ty(w)} poison, <{w} x i32> zeroinitializer")

    def fma(self, w, a, b, c):
        name = f"llvm.fma.v{w}{self.suffix}"
        ty = self.ty(w)
        self.decl.add(f"declare {ty} @{name}({ty}, {ty}, {ty})")
        return self.fb.assign(f"call {ty} @{name}({ty} {a}, {ty} {b}, {ty} {c})")

    def add(self, w, a, b):
        return self.fb.assign(f"fadd {self.ty(w)} {a}, {b}")


def vector_slot(fb, type_):
    """An entry-block alloca aligned for any vector (SROA turns the accumulators into registers)."""
    name = fb.fresh("acc")
    fb.allocas.append(f"  {name} = alloca {type_}, align 64")
    return name


def channel_groups(channels, lanes, j_max):
    """[(offset, [widths])]: the channels in vectors of `lanes` (a narrower last one), up to j_max per group."""
    widths = [lanes] * (channels // lanes) + ([channels % lanes] if channels % lanes else [])
    groups = []
    for k in range(0, len(widths), j_max):
        groups.append((k * lanes, widths[k:k + j_max]))
    return groups


def ptr_at(fb, t, base, index):
    """Element pointer without `inbounds` (a padding row's address may be out of range; it is never read)."""
    return fb.assign(f"getelementptr {t}, ptr {base}, i64 {index}", "p")


def mul(fb, a, b):
    return fb.assign(f"mul nsw i64 {a}, {b}")


def add(fb, a, b):
    return fb.assign(f"add nsw i64 {a}, {b}")


def decompose(fb, p, dims):
    """p -> its coordinates in row-major dims (python ints)."""
    coords = []
    for d in reversed(dims[1:]):
        coords.append(fb.assign(f"urem i64 {p}, {d}"))
        p = fb.assign(f"udiv i64 {p}, {d}")
    coords.append(p)
    return coords[::-1]


# ---- the direct micro-kernel ----------------------------------------------------------------------
def block_shape(O, itemsize, j_max=4):
    """(R pixels per block, vector lanes, channel groups of up to j_max vectors) of the direct
    micro-kernel for O output channels."""
    lanes_bytes, regs = simd_registers()
    lanes = lanes_bytes // itemsize
    groups = channel_groups(O, lanes, j_max)
    j = len(groups[0][1])
    return max(1, min(16, (regs - 2 - j) // j)), lanes, groups


def direct_conv(fb, vec, P, C, O, taps, kw_count, w_ptr, out_ptr, pixel, row, start, stop, tap_range=None,
                span=None, store=None, j_max=4):
    """out[p, 0:O] = sum over taps and c of row(p, tap)[c] * W[tap, c, 0:O], for pixel blocks [start, stop).
    `pixel(p)` precomputes what `row(info, kh, kw, zero)` needs to give the row pointer.
    `tap_range(first_info, last_info)`, when given, bounds the taps a block runs to [lo, hi) (taps are
    kh-major: a range of filter rows), so rows that read only padding for the whole block are skipped.
    `span` (first, end): block b covers pixels first + b*R ... (below end) instead of b*R ... (below P);
    `store(p, g_off, [(width, offset, vector)])` replaces the plain store of a pixel's results (an epilogue);
    `j_max`: the most vectors of output channels a block holds (fewer: more pixels per block)."""
    t, dtype = vec.t, vec.dtype
    R, lanes, groups = block_shape(O, dtype.itemsize, j_max)
    j = len(groups[0][1])
    base_p, end_p = span if span is not None else ("0", str(P))
    last_p = add(fb, end_p, -1) if span is not None else str(P - 1)
    zero = fb.alloca(f"[{max(C, 1)} x {t}]")
    accs = [[vector_slot(fb, vec.ty(lanes)) for _ in range(j)] for _ in range(R)]
    with fb.loop("0", str(C), "zr") as c:
        fb.store(t, literal(0, dtype), fb.gep(t, zero, c))
    with fb.loop(start, stop, "blk") as blk:
        p0 = add(fb, base_p, mul(fb, blk, R))
        infos, last = [], []
        for r in range(R):
            p = add(fb, p0, r)
            inside = fb.assign(f"icmp slt i64 {p}, {end_p}")
            last.append(inside)
            clamped = fb.assign(f"select i1 {inside}, i64 {p}, i64 {last_p}")
            infos.append((clamped, pixel(clamped)))
        for g_off, widths in groups:
            for r in range(R):
                for k, w in enumerate(widths):
                    vec.store(w, "zeroinitializer", accs[r][k])
            lo, hi = ("0", str(taps)) if tap_range is None else tap_range(infos[0][1], infos[-1][1])
            with fb.loop(lo, hi, "tap") as tap:
                kh = fb.assign(f"udiv i64 {tap}, {kw_count}")
                kw = fb.assign(f"urem i64 {tap}, {kw_count}")
                rows = [row(info, kh, kw, zero) for _, info in infos]
                w_row = ptr_at(fb, t, w_ptr, add(fb, mul(fb, tap, C * O), g_off))
                with fb.loop("0", str(C), "c") as c:
                    w_at = mul(fb, c, O)
                    wv, off = [], 0
                    for w in widths:
                        wv.append(vec.load(w, ptr_at(fb, t, w_row, add(fb, w_at, off))))
                        off += w
                    for r in range(R):
                        xs = fb.load(t, ptr_at(fb, t, rows[r], c))
                        for k, w in enumerate(widths):
                            xb = vec.splat(w, xs)
                            acc = fb.load(vec.ty(w), accs[r][k])
                            fb.store(vec.ty(w), vec.fma(w, xb, wv[k], acc), accs[r][k])
            for r in range(R):
                def store_row(r=r):
                    offs = [sum(widths[:k]) for k in range(len(widths))]
                    values = [(w, off, fb.load(vec.ty(w), accs[r][k])) for k, (w, off) in enumerate(zip(widths, offs))]
                    if store is not None:
                        store(infos[r][0], g_off, values)
                        return
                    base = add(fb, mul(fb, infos[r][0], O), g_off)
                    for w, off, value in values:
                        vec.store(w, value, ptr_at(fb, t, out_ptr, add(fb, base, off)))
                if r == 0:
                    store_row()
                else:
                    with fb.if_(last[r]):
                        store_row()
    return R


def pad_input(fb, t, dtype, x_buf, pad_buf, pads):
    """Init phase: pad_buf[b, y, x] = x[b, y - pt, x - pl] where that is inside x, else zeros."""
    n, h, w, c = x_buf.shape
    _, hp, wp, _ = pad_buf.shape
    with _phase(fb, PHASE_INIT):
        with fb.loop("0", str(n * hp * wp), "pad") as e:
            b, y, x = decompose(fb, e, (n, hp, wp))
            iy, ix = add(fb, y, -pads[0]), add(fb, x, -pads[1])
            ok = fb.assign(f"and i1 {fb.assign(f'icmp ult i64 {iy}, {h}')}, {fb.assign(f'icmp ult i64 {ix}, {w}')}")
            dst = mul(fb, e, c)
            with fb.if_(ok):
                src = mul(fb, add(fb, mul(fb, add(fb, mul(fb, b, h), iy), w), ix), c)
                with fb.loop("0", str(c), "pc") as ch:
                    value = fb.load(t, fb.gep(t, f"%b{x_buf.id}", add(fb, src, ch)))
                    fb.store(t, value, fb.gep(t, f"%b{pad_buf.id}", add(fb, dst, ch)))
            with fb.if_(fb.assign(f"xor i1 {ok}, true")):
                with fb.loop("0", str(c), "pz") as ch:
                    fb.store(t, literal(0, dtype), fb.gep(t, f"%b{pad_buf.id}", add(fb, dst, ch)))
    return f"%b{pad_buf.id}"


def _node_bufs(schedule, kernel):
    node = kernel.root.node
    return node, [schedule.value_buffer[id(x)] for x in node.operands]


def _work_info(blocks, work):
    """The outer loop's extent (0: nothing to do, the loop never runs) and its work."""
    return RangeInfo(blocks, work, True)


def forward_access(fb, t, dtype, x_buf, f_shape, attrs, kind, scratch):
    """How the direct micro-kernel reads conv2d's input: (channels per tap, taps, taps per filter row,
    pixel, row, tap_range) for `direct_conv`. 'folded' (few channels) copies the input padded to
    `scratch` in the init phase and runs KH taps of KW*C contiguous channels; 'direct' reads the
    input itself, a zero row where a tap falls in the padding, and skips filter rows no pixel of a
    block needs."""
    n, h, w, c = x_buf.shape
    kh_n, kw_n, _, o = f_shape
    (oh, ow), (pt, pl) = geometry((h, w), (kh_n, kw_n), attrs)
    (sh, sw), (dh, dw) = attrs["strides"], attrs["dilations"]
    if kind == "folded":
        _, hp, wp, _ = scratch.shape
        xp = pad_input(fb, t, dtype, x_buf, scratch, (pt, pl))

        def folded_pixel(p):
            b, y, x = decompose(fb, p, (n, oh, ow))
            return ptr_at(fb, t, xp, mul(fb, add(fb, mul(fb, add(fb, mul(fb, b, hp), mul(fb, y, sh)), wp),
                                                   mul(fb, x, sw)), c))

        def folded_row(start, kh, kw, zero):
            return ptr_at(fb, t, start, mul(fb, kh, dh * wp * c))
        return kw_n * c, kh_n, 1, folded_pixel, folded_row, None
    px = f"%b{x_buf.id}"

    def pixel(p):
        b, y, x = decompose(fb, p, (n, oh, ow))
        return (mul(fb, b, h), add(fb, mul(fb, y, sh), -pt), add(fb, mul(fb, x, sw), -pl))

    def row(info, kh, kw, zero):
        base_n, ih0, iw0 = info
        ih = add(fb, ih0, mul(fb, kh, dh))
        iw = add(fb, iw0, mul(fb, kw, dw))
        ok = fb.assign(f"and i1 {fb.assign(f'icmp ult i64 {ih}, {h}')}, {fb.assign(f'icmp ult i64 {iw}, {w}')}")
        offset = mul(fb, add(fb, mul(fb, add(fb, base_n, ih), w), iw), c)
        return fb.assign(f"select i1 {ok}, ptr {ptr_at(fb, t, px, offset)}, ptr {zero}")
    from .conv_rows import row_tap_range
    return c, kh_n * kw_n, kw_n, pixel, row, lambda first, last: row_tap_range(fb, first, last, kh_n, dh, h, kw_n)


def emit_conv2d(name, schedule, kernel, declarations, blas):
    node, (x_buf, f_buf) = _node_bufs(schedule, kernel)
    out = kernel.out
    n, h, w, c = x_buf.shape
    kh_n, kw_n, _, o = f_buf.shape
    attrs = node.attrs
    (oh, ow), _ = geometry((h, w), (kh_n, kw_n), attrs)
    kind = strategy("conv2d", x_buf.shape, f_buf.shape, attrs, out.dtype.itemsize)
    if kind in ("gemm", "im2col") and blas:
        from . import conv_gemm
        return conv_gemm.emit(kind, "conv2d", name, schedule, kernel, declarations)
    kind = "folded" if kind == "folded" else "direct"
    from .conv_rows import MAX_ROW_PIXELS, emit_row_conv2d
    if kind == "direct" and ow <= MAX_ROW_PIXELS:     # by output rows, no work on padding
        return emit_row_conv2d(name, kernel, x_buf, f_buf, attrs, declarations)
    buffers = unique_buffers(x_buf, f_buf, out, *([kernel.scratch] if kind == "folded" else []))
    fb = ranged_function(name, buffers)
    vec = Vec(fb, declarations, out.dtype)
    P = n * oh * ow
    channels, taps, kw_count, pixel, row, tap_range = forward_access(fb, vec.t, out.dtype, x_buf, f_buf.shape,
                                                                     attrs, kind, kernel.scratch)
    blocks = 0
    if P and o:
        with _phase(fb, PHASE_MAIN):
            R = direct_conv(fb, vec, P, channels, o, taps, kw_count, f"%b{f_buf.id}", f"%b{out.id}", pixel, row,
                            "%start", "%stop", tap_range=tap_range)
        blocks = -(-P // R)
    return fb.render(), buffers, False, _work_info(blocks, P * o * c * kh_n * kw_n)


def emit_conv2d_backprop_input(name, schedule, kernel, declarations, blas):
    node, (f_buf, dy_buf) = _node_bufs(schedule, kernel)
    out, wt = kernel.out, kernel.scratch
    n, h, w, c = out.shape
    kh_n, kw_n, _, o = f_buf.shape
    _, oh, ow, _ = dy_buf.shape
    attrs = node.attrs
    _, (pt, pl) = geometry((h, w), (kh_n, kw_n), attrs)
    (sh, sw), (dh, dw) = attrs["strides"], attrs["dilations"]
    if strategy("input", out.shape, f_buf.shape, attrs, out.dtype.itemsize) == "gemm" and blas:
        from . import conv_gemm
        return conv_gemm.emit("gemm", "input", name, schedule, kernel, declarations)
    buffers = unique_buffers(f_buf, dy_buf, out, wt)
    fb = ranged_function(name, buffers)
    vec = Vec(fb, declarations, out.dtype)
    t = vec.t
    taps = kh_n * kw_n
    with _phase(fb, PHASE_INIT):     # wt[tap, o, c] = f[tap, c, o]
        with fb.loop("0", str(taps * c), "tr") as tc:
            src = mul(fb, tc, o)
            tap = fb.assign(f"udiv i64 {tc}, {c}")
            ci = fb.assign(f"urem i64 {tc}, {c}")
            dst = add(fb, mul(fb, tap, o * c), ci)
            with fb.loop("0", str(o), "to") as oi:
                value = fb.load(t, fb.gep(t, f"%b{f_buf.id}", add(fb, src, oi)))
                fb.store(t, value, fb.gep(t, f"%b{wt.id}", add(fb, dst, mul(fb, oi, c))))
    P = n * h * w
    pdy = f"%b{dy_buf.id}"

    def pixel(p):
        b, y, x = decompose(fb, p, (n, h, w))
        return (mul(fb, b, oh), add(fb, y, pt), add(fb, x, pl))

    def source(th, stride, limit):
        """(valid, index) of the output row/col that reads input position th (th = o*stride + k*d)."""
        ok = fb.assign(f"icmp ult i64 {th}, {limit * stride}")
        if stride == 1:
            return ok, th
        exact = fb.assign(f"icmp eq i64 {fb.assign(f'urem i64 {th}, {stride}')}, 0")
        return fb.assign(f"and i1 {ok}, {exact}"), fb.assign(f"udiv i64 {th}, {stride}")

    def row(info, kh, kw, zero):
        base_n, y, x = info
        ok_h, oy = source(fb.assign(f"sub nsw i64 {y}, {mul(fb, kh, dh)}"), sh, oh)
        ok_w, ox = source(fb.assign(f"sub nsw i64 {x}, {mul(fb, kw, dw)}"), sw, ow)
        ok = fb.assign(f"and i1 {ok_h}, {ok_w}")
        offset = mul(fb, add(fb, mul(fb, add(fb, base_n, oy), ow), ox), o)
        return fb.assign(f"select i1 {ok}, ptr {ptr_at(fb, t, pdy, offset)}, ptr {zero}")

    blocks = 0
    if P and c:
        with _phase(fb, PHASE_MAIN):
            R = direct_conv(fb, vec, P, o, c, taps, kw_n, f"%b{wt.id}", f"%b{out.id}", pixel, row,
                            "%start", "%stop")
        blocks = -(-P // R)
    return fb.render(), buffers, False, _work_info(blocks, P * o * c * taps)


def emit_conv2d_backprop_filter(name, schedule, kernel, declarations, blas):
    node, (x_buf, dy_buf) = _node_bufs(schedule, kernel)
    out = kernel.out
    n, h, w, c = x_buf.shape
    kh_n, kw_n, _, o = out.shape
    _, oh, ow, _ = dy_buf.shape
    attrs = node.attrs
    _, (pt, pl) = geometry((h, w), (kh_n, kw_n), attrs)
    (sh, sw), (dh, dw) = attrs["strides"], attrs["dilations"]
    kind = strategy("filter", x_buf.shape, out.shape, attrs, out.dtype.itemsize)
    if kind == "gemm" and blas:
        from . import conv_gemm
        return conv_gemm.emit("gemm", "filter", name, schedule, kernel, declarations)
    buffers = unique_buffers(x_buf, dy_buf, out, *([kernel.scratch] if kind == "folded" else []))
    fb = ranged_function(name, buffers)
    vec = Vec(fb, declarations, out.dtype)
    t, dtype = vec.t, out.dtype
    px, px_stride, flops = f"%b{x_buf.id}", c, n * oh * ow * o * c * kh_n * kw_n
    if kind == "folded":     # few channels: the padded copy, KH taps of KW*C contiguous channels
        px = pad_input(fb, t, dtype, x_buf, kernel.scratch, (pt, pl))
        (_, h, w, _), c, kw_n, pt, pl = kernel.scratch.shape, kw_n * c, 1, 0, 0
    lanes_bytes, regs = simd_registers()
    lanes = lanes_bytes // dtype.itemsize
    groups = channel_groups(o, lanes, 4)
    j = len(groups[0][1])
    budget = regs - 2 - j
    R = max([d for d in range(1, min(c, max(1, budget // j)) + 1) if c % d == 0] or [1])
    U = max(1, min(8, budget // (R * j)))
    CB = -(-c // R)
    items = kh_n * kw_n * CB * len(groups)
    with _phase(fb, PHASE_INIT):
        with fb.loop("0", str(num_elements(out.shape)), "z") as e:
            fb.store(t, literal(0, dtype), fb.gep(t, f"%b{out.id}", e))
    if not (items and n and oh and ow):
        return fb.render(), buffers, False, _work_info(0, 0)
    accs = [[[vector_slot(fb, vec.ty(lanes)) for _ in range(j)] for _ in range(R)] for _ in range(U)]
    pdy, pdf = f"%b{dy_buf.id}", f"%b{out.id}"

    def bounds(k, d, pad, stride, size, count):
        """[lo, hi) of the output positions whose input position o*stride + k*d - pad is inside [0, size)."""
        a = fb.assign(f"sub nsw i64 {pad}, {mul(fb, k, d)}")                 # o*stride >= a
        lo = fb.assign(f"sdiv i64 {add(fb, a, stride - 1)}, {stride}")
        lo = fb.assign(f"select i1 {fb.assign(f'icmp sgt i64 {a}, 0')}, i64 {lo}, i64 0")
        b = add(fb, a, size - 1)                                                # o*stride <= b
        hi = add(fb, fb.assign(f"sdiv i64 {b}, {stride}"), 1)
        hi = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {b}, 0')}, i64 0, i64 {hi}")
        hi = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {hi}, {count}')}, i64 {hi}, i64 {count}")
        return lo, fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {lo}, {hi}')}, i64 {hi}, i64 {lo}")

    with _phase(fb, PHASE_MAIN):
        with fb.loop("0", str(n), "img") as b:
            with fb.loop("%start", "%stop", "item") as item:
                g_index = fb.assign(f"urem i64 {item}, {len(groups)}")
                rest = fb.assign(f"udiv i64 {item}, {len(groups)}")
                cb = fb.assign(f"urem i64 {rest}, {CB}")
                tap = fb.assign(f"udiv i64 {rest}, {CB}")
                kh = fb.assign(f"udiv i64 {tap}, {kw_n}")
                kw = fb.assign(f"urem i64 {tap}, {kw_n}")
                c0 = mul(fb, cb, R)
                cidx = [fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {add(fb, c0, r)}, {c}')}, i64 "
                                  f"{add(fb, c0, r)}, i64 {c - 1}") for r in range(R)]
                oh_lo, oh_hi = bounds(kh, dh, pt, sh, h, oh)
                ow_lo, ow_hi = bounds(kw, dw, pl, sw, w, ow)
                span = fb.assign(f"sub nsw i64 {ow_hi}, {ow_lo}")
                full = fb.assign(f"udiv i64 {span}, {U}")
                for g, (g_off, widths) in enumerate(groups):
                    with fb.if_(fb.assign(f"icmp eq i64 {g_index}, {g}")):
                        _filter_tile(fb, vec, accs, widths, g_off, R, U, cidx, b, kh, kw, oh_lo, oh_hi, ow_lo,
                                     ow_hi, full, (h, w, px_stride, oh, ow, o, sh, sw, dh, dw, pt, pl), px, pdy)
                        for r in range(R):
                            with fb.if_(fb.assign(f"icmp slt i64 {add(fb, c0, r)}, {c}")):
                                base = add(fb, mul(fb, add(fb, mul(fb, tap, c), cidx[r]), o), g_off)
                                off = 0
                                for k, wd in enumerate(widths):
                                    ptr = ptr_at(fb, t, pdf, add(fb, base, off))
                                    vec.store(wd, vec.add(wd, vec.load(wd, ptr), fb.load(vec.ty(wd), accs[0][r][k])),
                                              ptr)
                                    off += wd
    return fb.render(), buffers, False, _work_info(items, flops)


def _filter_tile(fb, vec, accs, widths, g_off, R, U, cidx, b, kh, kw, oh_lo, oh_hi, ow_lo, ow_hi, full, dims,
                 px, pdy):
    h, w, c, oh, ow, o, sh, sw, dh, dw, pt, pl = dims
    t = vec.t
    for u in range(U):
        for r in range(R):
            for k, wd in enumerate(widths):
                vec.store(wd, "zeroinitializer", accs[u][r][k])

    def step(u, ox, x_row, dy_row):
        ix = add(fb, add(fb, mul(fb, ox, sw), mul(fb, kw, dw)), -pl)
        xp = ptr_at(fb, t, px, add(fb, x_row, mul(fb, ix, c)))
        dp = ptr_at(fb, t, pdy, add(fb, add(fb, dy_row, mul(fb, ox, o)), g_off))
        dv, off = [], 0
        for wd in widths:
            dv.append(vec.load(wd, ptr_at(fb, t, dp, str(off))))
            off += wd
        for r in range(R):
            xs = fb.load(t, ptr_at(fb, t, xp, cidx[r]))
            for k, wd in enumerate(widths):
                acc = fb.load(vec.ty(wd), accs[u][r][k])
                fb.store(vec.ty(wd), vec.fma(wd, vec.splat(wd, xs), dv[k], acc), accs[u][r][k])

    with fb.loop(oh_lo, oh_hi, "oy") as oy:
        iy = add(fb, add(fb, mul(fb, oy, sh), mul(fb, kh, dh)), -pt)
        x_row = mul(fb, add(fb, mul(fb, b, h), iy), w * c)
        dy_row = mul(fb, add(fb, mul(fb, b, oh), oy), ow * o)
        with fb.loop("0", full, "ou") as q:
            first = add(fb, ow_lo, mul(fb, q, U))
            for u in range(U):
                step(u, add(fb, first, u), x_row, dy_row)
        with fb.loop(add(fb, ow_lo, mul(fb, full, U)), ow_hi, "ot") as ox:
            step(0, ox, x_row, dy_row)
    for u in range(1, U):
        for r in range(R):
            for k, wd in enumerate(widths):
                total = vec.add(wd, fb.load(vec.ty(wd), accs[0][r][k]), fb.load(vec.ty(wd), accs[u][r][k]))
                fb.store(vec.ty(wd), total, accs[0][r][k])


# kernel-table key (an op record's extra["kernel"]) -> emitter of (text, buffers, returns_status, RangeInfo);
# registered by codegen/kernel_table.py (with its concrete-shape check)
EMITTERS = {"conv2d": emit_conv2d, "conv2d_backprop_input": emit_conv2d_backprop_input,
            "conv2d_backprop_filter": emit_conv2d_backprop_filter}

