"""CPU kernels of pooling (jitflow/ops/pooling.py) and depthwise convolution
(jitflow/ops/conv.py): loop nests whose innermost loop runs over the contiguous
channels (LLVM vectorizes it), with each window's in-range taps computed as loop
bounds so there are no per-element branches. Parallel over output pixels where
each writes its own output row, and over images where windows scatter into the
input's gradient (overlapping windows of one image stay in one thread).

max_pool's gradient goes to the first maximum in window scan order (a strict
`>` while scanning rows then columns, as TF); avg_pool divides by the number of
in-range cells. Dispatched from codegen/conv_kernels.py's `emit`.
"""
from __future__ import annotations

from jitflow.ir.types import num_elements
from jitflow.ops.conv import geometry

from .conv_kernels import _node_bufs, _work_info, add, decompose, mul, ranged_function, unique_buffers
from .llvm_builder import literal, llvm_type
from .loops import PHASE_INIT, PHASE_MAIN, _phase


def tap_bounds(fb, first, d, size, k):
    """[lo, hi) of the taps t with 0 <= first + t*d < size (first may be negative)."""
    neg = fb.assign(f"sub nsw i64 0, {first}")
    lo = fb.assign(f"sdiv i64 {add(fb, neg, d - 1)}, {d}")
    lo = fb.assign(f"select i1 {fb.assign(f'icmp sgt i64 {neg}, 0')}, i64 {lo}, i64 0")
    room = fb.assign(f"sub nsw i64 {size}, {first}")
    hi = fb.assign(f"sdiv i64 {add(fb, room, d - 1)}, {d}")
    hi = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {hi}, {k}')}, i64 {hi}, i64 {k}")
    return lo, fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {hi}, {lo}')}, i64 {lo}, i64 {hi}")


class Window:
    """The window of output pixel p: its image, first input row / column, and tap bounds."""

    def __init__(self, fb, p, in_hw, out_hw, k_hw, strides, dilations, pads, batch):
        (h, w), (oh, ow), (kh, kw) = in_hw, out_hw, k_hw
        self.b, y, x = decompose(fb, p, (batch, oh, ow))
        self.y0 = add(fb, mul(fb, y, strides[0]), -pads[0])
        self.x0 = add(fb, mul(fb, x, strides[1]), -pads[1])
        self.rows = tap_bounds(fb, self.y0, dilations[0], h, kh)
        self.cols = tap_bounds(fb, self.x0, dilations[1], w, kw)
        self.fb, self.h, self.w, self.d = fb, h, w, dilations

    def taps(self, body):
        """body(kh, kw, input pixel index) for every in-range tap, in scan order."""
        fb = self.fb
        with fb.loop(*self.rows, "kh") as kh:
            iy = add(fb, self.y0, mul(fb, kh, self.d[0]))
            row = mul(fb, add(fb, mul(fb, self.b, self.h), iy), self.w)
            with fb.loop(*self.cols, "kw") as kw:
                body(kh, kw, add(fb, row, add(fb, self.x0, mul(fb, kw, self.d[1]))))

    def count(self):
        fb = self.fb
        rows = fb.assign(f"sub nsw i64 {self.rows[1]}, {self.rows[0]}")
        return mul(fb, rows, fb.assign(f"sub nsw i64 {self.cols[1]}, {self.cols[0]}"))


def _setup(schedule, kernel, x_shape, k_hw):
    node, bufs = _node_bufs(schedule, kernel)
    attrs = node.attrs
    n, h, w, _ = x_shape
    (oh, ow), pads = geometry((h, w), k_hw, attrs)
    return node, bufs, n, (h, w), (oh, ow), pads, attrs["strides"], attrs.get("dilations", (1, 1))


def _channels(fb, c, hint="ch"):
    return fb.loop("0", str(c), hint)


def _zero_rows(fb, t, dtype, ptr, first, count):
    with fb.loop("0", str(count), "zr") as e:
        fb.store(t, literal(0, dtype), fb.gep(t, ptr, add(fb, first, e)))


# ---- max / avg pooling -----------------------------------------------------------------------------
def _emit_pool(name, schedule, kernel, declarations, is_max):
    out = kernel.out
    node, (x_buf,), n, in_hw, out_hw, pads, strides, dil = _setup(schedule, kernel, kernel.root.node.operands[0].shape,
                                                                  kernel.root.node.attrs["ksize"])
    c = out.shape[3]
    buffers = unique_buffers(x_buf, out)
    fb = ranged_function(name, buffers)
    dtype, t = out.dtype, llvm_type(out.dtype)
    P = num_elements(out.shape[:3])
    px, po = f"%b{x_buf.id}", f"%b{out.id}"
    with _phase(fb, PHASE_MAIN):
        with fb.loop("%start", "%stop", "pix") as p:
            win = Window(fb, p, in_hw, out_hw, node.attrs["ksize"], strides, dil, pads, n)
            orow = mul(fb, p, c)
            with _channels(fb, c) as ch:
                fb.store(t, literal(float("-inf") if is_max else 0.0, dtype), fb.gep(t, po, add(fb, orow, ch)))

            def tap(kh, kw, pixel):
                irow = mul(fb, pixel, c)
                with _channels(fb, c) as ch:
                    dst = fb.gep(t, po, add(fb, orow, ch))
                    v, cur = fb.load(t, fb.gep(t, px, add(fb, irow, ch))), fb.load(t, dst)
                    if is_max:
                        new = fb.assign(f"select i1 {fb.assign(f'fcmp ogt {t} {v}, {cur}')}, {t} {v}, {t} {cur}")
                    else:
                        new = fb.assign(f"fadd {t} {cur}, {v}")
                    fb.store(t, new, dst)
            win.taps(tap)
            if not is_max:
                scale = fb.assign(f"fdiv {t} {literal(1.0, dtype)}, {fb.assign(f'sitofp i64 {win.count()} to {t}')}")
                with _channels(fb, c) as ch:
                    dst = fb.gep(t, po, add(fb, orow, ch))
                    fb.store(t, fb.assign(f"fmul {t} {fb.load(t, dst)}, {scale}"), dst)
    return fb.render(), buffers, False, _work_info(P, P * c * 4)


def emit_max_pool(name, schedule, kernel, declarations, blas):
    return _emit_pool(name, schedule, kernel, declarations, True)


def emit_avg_pool(name, schedule, kernel, declarations, blas):
    return _emit_pool(name, schedule, kernel, declarations, False)


def _first_argmax(fb, t, px, win, c, best, where):
    """best[c] / where[c] (allocas): the first maximum of the window in scan order, and its input pixel."""
    first = add(fb, mul(fb, add(fb, mul(fb, win.b, win.h), add(fb, win.y0, win.rows[0])), win.w),
                add(fb, win.x0, win.cols[0]))
    with _channels(fb, c) as ch:
        fb.store(t, fb.load(t, fb.gep(t, px, add(fb, mul(fb, first, c), ch))), fb.gep(t, best, ch))
        fb.store("i64", first, fb.gep("i64", where, ch))

    def tap(kh, kw, pixel):
        irow = mul(fb, pixel, c)
        with _channels(fb, c) as ch:
            v = fb.load(t, fb.gep(t, px, add(fb, irow, ch)))
            bp, wp = fb.gep(t, best, ch), fb.gep("i64", where, ch)
            cur, pos = fb.load(t, bp), fb.load("i64", wp)
            better = fb.assign(f"fcmp ogt {t} {v}, {cur}")
            fb.store(t, fb.assign(f"select i1 {better}, {t} {v}, {t} {cur}"), bp)
            fb.store("i64", fb.assign(f"select i1 {better}, i64 {pixel}, i64 {pos}"), wp)
    win.taps(tap)


def emit_max_pool_grad(name, schedule, kernel, declarations, blas):
    """dx (like x) from (x, dy): per image, zero dx, then each window adds dy to its first maximum."""
    out = kernel.out
    node, (x_buf, dy_buf), n, in_hw, out_hw, pads, strides, dil = _setup(schedule, kernel, out.shape,
                                                                         kernel.root.node.attrs["ksize"])
    return _scatter_kernel(name, kernel, node, x_buf, dy_buf, n, in_hw, out_hw, pads, strides, dil, True)


def emit_avg_pool_grad(name, schedule, kernel, declarations, blas):
    out = kernel.out
    node, (dy_buf,), n, in_hw, out_hw, pads, strides, dil = _setup(schedule, kernel, out.shape,
                                                                   kernel.root.node.attrs["ksize"])
    return _scatter_kernel(name, kernel, node, None, dy_buf, n, in_hw, out_hw, pads, strides, dil, False)


def _scatter_kernel(name, kernel, node, x_buf, dy_buf, n, in_hw, out_hw, pads, strides, dil, is_max):
    out = kernel.out
    c = out.shape[3]
    buffers = unique_buffers(*([x_buf] if x_buf else []), dy_buf, out)
    fb = ranged_function(name, buffers)
    dtype, t = out.dtype, llvm_type(out.dtype)
    pdy, pdx = f"%b{dy_buf.id}", f"%b{out.id}"
    per_image = out_hw[0] * out_hw[1]
    best, where = (fb.alloca(f"[{max(c, 1)} x {t}]"), fb.alloca(f"[{max(c, 1)} x i64]")) if is_max else (None, None)
    with _phase(fb, PHASE_MAIN):
        with fb.loop("%start", "%stop", "img") as b:
            _zero_rows(fb, t, dtype, pdx, mul(fb, b, in_hw[0] * in_hw[1] * c), in_hw[0] * in_hw[1] * c)
            with fb.loop("0", str(per_image), "op") as q:
                p = add(fb, mul(fb, b, per_image), q)
                win = Window(fb, p, in_hw, out_hw, node.attrs["ksize"], strides, dil, pads, n)
                grow = mul(fb, p, c)
                if is_max:
                    _first_argmax(fb, t, f"%b{x_buf.id}", win, c, best, where)
                    with _channels(fb, c) as ch:
                        dst = fb.gep(t, pdx, add(fb, mul(fb, fb.load("i64", fb.gep("i64", where, ch)), c), ch))
                        g = fb.load(t, fb.gep(t, pdy, add(fb, grow, ch)))
                        fb.store(t, fb.assign(f"fadd {t} {fb.load(t, dst)}, {g}"), dst)
                else:
                    scale = fb.assign(f"fdiv {t} {literal(1.0, dtype)}, "
                                      f"{fb.assign(f'sitofp i64 {win.count()} to {t}')}")

                    def tap(kh, kw, pixel):
                        irow = mul(fb, pixel, c)
                        with _channels(fb, c) as ch:
                            dst = fb.gep(t, pdx, add(fb, irow, ch))
                            g = fb.assign(f"fmul {t} {fb.load(t, fb.gep(t, pdy, add(fb, grow, ch)))}, {scale}")
                            fb.store(t, fb.assign(f"fadd {t} {fb.load(t, dst)}, {g}"), dst)
                    win.taps(tap)
    return fb.render(), buffers, False, _work_info(n, num_elements(out.shape) * 4)


def emit_max_pool_grad_grad(name, schedule, kernel, declarations, blas):
    """out (pooled shape) from (x, g): g at each window's first maximum."""
    out = kernel.out
    node, (x_buf, g_buf), n, in_hw, out_hw, pads, strides, dil = _setup(
        schedule, kernel, kernel.root.node.operands[0].shape, kernel.root.node.attrs["ksize"])
    c = out.shape[3]
    buffers = unique_buffers(x_buf, g_buf, out)
    fb = ranged_function(name, buffers)
    t = llvm_type(out.dtype)
    best, where = fb.alloca(f"[{max(c, 1)} x {t}]"), fb.alloca(f"[{max(c, 1)} x i64]")
    P = num_elements(out.shape[:3])
    with _phase(fb, PHASE_MAIN):
        with fb.loop("%start", "%stop", "pix") as p:
            win = Window(fb, p, in_hw, out_hw, node.attrs["ksize"], strides, dil, pads, n)
            _first_argmax(fb, t, f"%b{x_buf.id}", win, c, best, where)
            with _channels(fb, c) as ch:
                src = add(fb, mul(fb, fb.load("i64", fb.gep("i64", where, ch)), c), ch)
                dst = fb.gep(t, f"%b{out.id}", add(fb, mul(fb, p, c), ch))
                fb.store(t, fb.load(t, fb.gep(t, f"%b{g_buf.id}", src)), dst)
    return fb.render(), buffers, False, _work_info(P, P * c * 4)


# ---- depthwise convolution ---------------------------------------------------------------------------
def emit_depthwise(name, schedule, kernel, declarations, blas):
    out = kernel.out
    x_shape = kernel.root.node.operands[0].shape
    f_shape = kernel.root.node.operands[1].shape
    node, (x_buf, f_buf), n, in_hw, out_hw, pads, strides, dil = _setup(schedule, kernel, x_shape, f_shape[:2])
    c, m = f_shape[2], f_shape[3]
    buffers = unique_buffers(x_buf, f_buf, out)
    fb = ranged_function(name, buffers)
    dtype, t = out.dtype, llvm_type(out.dtype)
    P = num_elements(out.shape[:3])
    px, pf, po = f"%b{x_buf.id}", f"%b{f_buf.id}", f"%b{out.id}"
    with _phase(fb, PHASE_MAIN):
        with fb.loop("%start", "%stop", "pix") as p:
            win = Window(fb, p, in_hw, out_hw, f_shape[:2], strides, dil, pads, n)
            orow = mul(fb, p, c * m)
            _zero_rows(fb, t, dtype, po, orow, c * m)

            def tap(kh, kw, pixel):
                irow = mul(fb, pixel, c)
                frow = mul(fb, add(fb, mul(fb, kh, f_shape[1]), kw), c * m)
                with _channels(fb, c) as ch:
                    xv = fb.load(t, fb.gep(t, px, add(fb, irow, ch)))
                    with fb.loop("0", str(m), "mm") as mm:
                        q = add(fb, mul(fb, ch, m), mm)
                        dst = fb.gep(t, po, add(fb, orow, q))
                        prod = fb.assign(f"fmul {t} {xv}, {fb.load(t, fb.gep(t, pf, add(fb, frow, q)))}")
                        fb.store(t, fb.assign(f"fadd {t} {fb.load(t, dst)}, {prod}"), dst)
            win.taps(tap)
    return fb.render(), buffers, False, _work_info(P, P * c * m * num_elements(f_shape[:2]))


def emit_depthwise_backprop_input(name, schedule, kernel, declarations, blas):
    out = kernel.out
    f_shape = kernel.root.node.operands[0].shape
    node, (f_buf, dy_buf), n, in_hw, out_hw, pads, strides, dil = _setup(schedule, kernel, out.shape, f_shape[:2])
    c, m = f_shape[2], f_shape[3]
    buffers = unique_buffers(f_buf, dy_buf, out)
    fb = ranged_function(name, buffers)
    dtype, t = out.dtype, llvm_type(out.dtype)
    per_image = out_hw[0] * out_hw[1]
    pf, pdy, pdx = f"%b{f_buf.id}", f"%b{dy_buf.id}", f"%b{out.id}"
    with _phase(fb, PHASE_MAIN):
        with fb.loop("%start", "%stop", "img") as b:
            _zero_rows(fb, t, dtype, pdx, mul(fb, b, in_hw[0] * in_hw[1] * c), in_hw[0] * in_hw[1] * c)
            with fb.loop("0", str(per_image), "op") as qp:
                p = add(fb, mul(fb, b, per_image), qp)
                win = Window(fb, p, in_hw, out_hw, f_shape[:2], strides, dil, pads, n)
                grow = mul(fb, p, c * m)

                def tap(kh, kw, pixel):
                    irow = mul(fb, pixel, c)
                    frow = mul(fb, add(fb, mul(fb, kh, f_shape[1]), kw), c * m)
                    with _channels(fb, c) as ch:
                        dst = fb.gep(t, pdx, add(fb, irow, ch))
                        with fb.loop("0", str(m), "mm") as mm:
                            q = add(fb, mul(fb, ch, m), mm)
                            prod = fb.assign(f"fmul {t} {fb.load(t, fb.gep(t, pdy, add(fb, grow, q)))}, "
                                             f"{fb.load(t, fb.gep(t, pf, add(fb, frow, q)))}")
                            fb.store(t, fb.assign(f"fadd {t} {fb.load(t, dst)}, {prod}"), dst)
                win.taps(tap)
    return fb.render(), buffers, False, _work_info(n, num_elements(dy_buf.shape) * num_elements(f_shape[:2]))


def emit_depthwise_backprop_filter(name, schedule, kernel, declarations, blas):
    out = kernel.out
    node, (x_buf, dy_buf), n, in_hw, out_hw, pads, strides, dil = _setup(
        schedule, kernel, kernel.root.node.operands[0].shape, out.shape[:2])
    kh_n, kw_n, c, m = out.shape
    buffers = unique_buffers(x_buf, dy_buf, out)
    fb = ranged_function(name, buffers)
    dtype, t = out.dtype, llvm_type(out.dtype)
    px, pdy, pdf = f"%b{x_buf.id}", f"%b{dy_buf.id}", f"%b{out.id}"
    P = n * out_hw[0] * out_hw[1]
    with _phase(fb, PHASE_INIT):
        _zero_rows(fb, t, dtype, pdf, "0", num_elements(out.shape))
    with _phase(fb, PHASE_MAIN):
        with fb.loop("%start", "%stop", "tap") as tap:
            kh = fb.assign(f"udiv i64 {tap}, {kw_n}")
            kw = fb.assign(f"urem i64 {tap}, {kw_n}")
            frow = mul(fb, tap, c * m)
            with fb.loop("0", str(P), "pix") as p:
                b, y, x = decompose(fb, p, (n,) + out_hw)
                iy = add(fb, add(fb, mul(fb, y, strides[0]), mul(fb, kh, dil[0])), -pads[0])
                ix = add(fb, add(fb, mul(fb, x, strides[1]), mul(fb, kw, dil[1])), -pads[1])
                ok = fb.assign(f"and i1 {fb.assign(f'icmp ult i64 {iy}, {in_hw[0]}')}, "
                               f"{fb.assign(f'icmp ult i64 {ix}, {in_hw[1]}')}")
                with fb.if_(ok):
                    irow = mul(fb, add(fb, mul(fb, add(fb, mul(fb, b, in_hw[0]), iy), in_hw[1]), ix), c)
                    grow = mul(fb, p, c * m)
                    with _channels(fb, c) as ch:
                        xv = fb.load(t, fb.gep(t, px, add(fb, irow, ch)))
                        with fb.loop("0", str(m), "mm") as mm:
                            q = add(fb, mul(fb, ch, m), mm)
                            dst = fb.gep(t, pdf, add(fb, frow, q))
                            prod = fb.assign(f"fmul {t} {xv}, {fb.load(t, fb.gep(t, pdy, add(fb, grow, q)))}")
                            fb.store(t, fb.assign(f"fadd {t} {fb.load(t, dst)}, {prod}"), dst)
    return fb.render(), buffers, False, _work_info(kh_n * kw_n, P * c * m * kh_n * kw_n)


EMITTERS = {"max_pool": emit_max_pool, "avg_pool": emit_avg_pool, "max_pool_grad": emit_max_pool_grad,
            "max_pool_grad_grad": emit_max_pool_grad_grad, "avg_pool_grad": emit_avg_pool_grad,
            "depthwise_conv2d_native": emit_depthwise,
            "depthwise_conv2d_native_backprop_input": emit_depthwise_backprop_input,
            "depthwise_conv2d_native_backprop_filter": emit_depthwise_backprop_filter}
