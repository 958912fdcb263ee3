"""GPU kernels of the conv2d, depthwise and pooling ops (jitflow/ops/conv.py,
jitflow/ops/pooling.py): one thread per output element, each a sum (or max)
over the loop nest that defines the element, so there are no atomics and every
gradient is a gather: backprop-input visits the output pixels that read its
input pixel (a tap counts when the stride divides the offset), max_pool_grad
the windows that contain its cell (adding dy where the cell is the window's
FIRST maximum in scan order, as the CPU kernel and TF), avg_pool_grad those
windows' dy / count. Straightforward, not tuned (the CPU kernels in
codegen/conv_kernels.py and codegen/pool_kernels.py are); the workspace temps
the CPU kernels use (a padded input, a transposed filter) are left unused.
"""
from __future__ import annotations

from jitflow.ir.types import num_elements
from jitflow.ops.conv import geometry

from .conv_kernels import add, decompose, mul
from .llvm_builder import literal, llvm_type
from .pool_kernels import tap_bounds
from .ptx_module import GpuModule, grid_for, grid_stride


class _Element:
    """A kernel with a thread per output element; `acc` is a scalar slot for the element's value."""

    def __init__(self, gm: GpuModule, name, schedule, kernel):
        node = kernel.root.node
        self.gm, self.name, self.node, self.out = gm, name, node, kernel.out
        self.ins = [schedule.value_buffer[id(x)] for x in node.operands]
        self.buffers = list({b.id: b for b in self.ins + [kernel.out]}.values())
        self.fb = gm.kernel(name, self.buffers)
        self.dtype, self.t = kernel.out.dtype, llvm_type(kernel.out.dtype)
        self.acc = self.fb.alloca(self.t)

    def ptr(self, buf, index):
        return self.fb.gep(self.t, f"%b{buf.id}", index)

    def load(self, buf, index):
        return self.fb.load(self.t, self.ptr(buf, index))

    def mac(self, a, b):
        fb, t = self.fb, self.t
        fb.store(t, fb.assign(f"fadd {t} {fb.load(t, self.acc)}, {fb.assign(f'fmul {t} {a}, {b}')}"), self.acc)

    def run(self, body):
        """body(e) computes element e into `acc`; the kernel stores it."""
        fb, total = self.fb, num_elements(self.out.shape)
        if total:
            with grid_stride(fb, self.gm.declarations, total) as e:
                fb.store(self.t, literal(0, self.dtype), self.acc)
                body(e)
                fb.store(self.t, fb.load(self.t, self.acc), self.ptr(self.out, e))
        self.gm.functions.append(fb.render())
        self.gm.launch(self.name, self.buffers, grid_for(total))


def _attrs(node):
    a = node.attrs
    return a["strides"], a.get("dilations", (1, 1))


def _pixel(fb, b, y, x, dims):
    """Flat pixel index of (b, y, x) in an image batch of spatial dims (h, w)."""
    return add(fb, mul(fb, add(fb, mul(fb, b, dims[0]), y), dims[1]), x)


# ---- convolutions --------------------------------------------------------------------------------
def emit_conv(gm, name, schedule, kernel, depthwise):
    k = _Element(gm, name, schedule, kernel)
    fb, (x_buf, f_buf) = k.fb, k.ins[:2]
    n, h, w, c = x_buf.shape
    kh_n, kw_n, _, m = f_buf.shape
    _, oh, ow, oc_n = kernel.out.shape
    (sh, sw), (dh, dw) = _attrs(k.node)
    _, (pt, pl) = geometry((h, w), (kh_n, kw_n), k.node.attrs)

    def body(e):
        b, y, x, oc = decompose(fb, e, (n, oh, ow, oc_n))
        y0, x0 = add(fb, mul(fb, y, sh), -pt), add(fb, mul(fb, x, sw), -pl)
        with fb.loop(*tap_bounds(fb, y0, dh, h, kh_n), "kh") as kh:
            with fb.loop(*tap_bounds(fb, x0, dw, w, kw_n), "kw") as kw:
                pix = _pixel(fb, b, add(fb, y0, mul(fb, kh, dh)), add(fb, x0, mul(fb, kw, dw)), (h, w))
                tap = add(fb, mul(fb, kh, kw_n), kw)
                if depthwise:
                    ch = fb.assign(f"udiv i64 {oc}, {m}")
                    k.mac(k.load(x_buf, add(fb, mul(fb, pix, c), ch)), k.load(f_buf, add(fb, mul(fb, tap, c * m), oc)))
                else:
                    with fb.loop("0", str(c), "c") as ch:
                        k.mac(k.load(x_buf, add(fb, mul(fb, pix, c), ch)),
                              k.load(f_buf, add(fb, mul(fb, add(fb, mul(fb, tap, c), ch), m), oc)))
    k.run(body)


def _source(fb, pos, stride, count):
    """(valid, index): the output position o with o*stride == pos (pos may be negative)."""
    ok = fb.assign(f"icmp ult i64 {pos}, {count * stride}")
    if stride == 1:
        return ok, pos
    exact = fb.assign(f"icmp eq i64 {fb.assign(f'urem i64 {pos}, {stride}')}, 0")
    return fb.assign(f"and i1 {ok}, {exact}"), fb.assign(f"udiv i64 {pos}, {stride}")


def emit_conv_backprop_input(gm, name, schedule, kernel, depthwise):
    k = _Element(gm, name, schedule, kernel)
    fb, (f_buf, dy_buf) = k.fb, k.ins[:2]
    n, h, w, c = kernel.out.shape
    kh_n, kw_n, _, m = f_buf.shape
    _, oh, ow, oc_n = dy_buf.shape
    (sh, sw), (dh, dw) = _attrs(k.node)
    _, (pt, pl) = geometry((h, w), (kh_n, kw_n), k.node.attrs)

    def body(e):
        b, y, x, ch = decompose(fb, e, (n, h, w, c))
        with fb.loop("0", str(kh_n), "kh") as kh:
            ok_y, oy = _source(fb, fb.assign(f"sub nsw i64 {add(fb, y, pt)}, {mul(fb, kh, dh)}"), sh, oh)
            with fb.if_(ok_y):
                with fb.loop("0", str(kw_n), "kw") as kw:
                    ok_x, ox = _source(fb, fb.assign(f"sub nsw i64 {add(fb, x, pl)}, {mul(fb, kw, dw)}"), sw, ow)
                    with fb.if_(ok_x):
                        row = mul(fb, _pixel(fb, b, oy, ox, (oh, ow)), oc_n)
                        frow = mul(fb, add(fb, mul(fb, add(fb, mul(fb, kh, kw_n), kw), c), ch), m)
                        with fb.loop("0", str(m), "o") as o:
                            oc = add(fb, mul(fb, ch, m), o) if depthwise else o
                            k.mac(k.load(dy_buf, add(fb, row, oc)), k.load(f_buf, add(fb, frow, o)))
    k.run(body)


def emit_conv_backprop_filter(gm, name, schedule, kernel, depthwise):
    k = _Element(gm, name, schedule, kernel)
    fb, (x_buf, dy_buf) = k.fb, k.ins[:2]
    n, h, w, c = x_buf.shape
    kh_n, kw_n, _, m = kernel.out.shape
    _, oh, ow, oc_n = dy_buf.shape
    (sh, sw), (dh, dw) = _attrs(k.node)
    _, (pt, pl) = geometry((h, w), (kh_n, kw_n), k.node.attrs)

    def body(e):
        kh, kw, ch, o = decompose(fb, e, (kh_n, kw_n, c, m))
        oc = add(fb, mul(fb, ch, m), o) if depthwise else o
        with fb.loop("0", str(n), "b") as b:
            with fb.loop("0", str(oh), "oy") as oy:
                iy = add(fb, add(fb, mul(fb, oy, sh), mul(fb, kh, dh)), -pt)
                with fb.if_(fb.assign(f"icmp ult i64 {iy}, {h}")):
                    with fb.loop("0", str(ow), "ox") as ox:
                        ix = add(fb, add(fb, mul(fb, ox, sw), mul(fb, kw, dw)), -pl)
                        with fb.if_(fb.assign(f"icmp ult i64 {ix}, {w}")):
                            xv = k.load(x_buf, add(fb, mul(fb, _pixel(fb, b, iy, ix, (h, w)), c), ch))
                            k.mac(xv, k.load(dy_buf, add(fb, mul(fb, _pixel(fb, b, oy, ox, (oh, ow)), oc_n), oc)))
    k.run(body)


# ---- pooling -------------------------------------------------------------------------------------
def _window(fb, y, x, node, in_hw):
    (sh, sw), ksize = node.attrs["strides"], node.attrs["ksize"]
    _, (pt, pl) = geometry(in_hw, ksize, node.attrs)
    y0, x0 = add(fb, mul(fb, y, sh), -pt), add(fb, mul(fb, x, sw), -pl)
    return y0, x0, tap_bounds(fb, y0, 1, in_hw[0], ksize[0]), tap_bounds(fb, x0, 1, in_hw[1], ksize[1])


def _scan(k, x_buf, b, ch, y, x, in_hw, c, visit):
    """visit(pixel) for the in-range cells of output (y, x)'s window, in scan order."""
    fb = k.fb
    y0, x0, rows, cols = _window(fb, y, x, k.node, in_hw)
    with fb.loop(*rows, "wy") as wy:
        with fb.loop(*cols, "wx") as wx:
            visit(_pixel(fb, b, add(fb, y0, wy), add(fb, x0, wx), in_hw))
    return rows, cols


def _argmax(k, x_buf, b, ch, y, x, in_hw, c):
    """The input pixel of the first maximum of output (y, x)'s window (channel ch)."""
    fb, t = k.fb, k.t
    best, where = fb.alloca(t), fb.alloca("i64")
    fb.store(t, literal(float("-inf"), k.dtype), best)
    fb.store("i64", "-1", where)

    def visit(pix):
        v = k.load(x_buf, add(fb, mul(fb, pix, c), ch))
        first = fb.assign(f"icmp slt i64 {fb.load('i64', where)}, 0")
        better = fb.assign(f"or i1 {first}, {fb.assign(f'fcmp ogt {t} {v}, {fb.load(t, best)}')}")
        fb.store(t, fb.assign(f"select i1 {better}, {t} {v}, {t} {fb.load(t, best)}"), best)
        fb.store("i64", fb.assign(f"select i1 {better}, i64 {pix}, i64 {fb.load('i64', where)}"), where)
    _scan(k, x_buf, b, ch, y, x, in_hw, c, visit)
    return fb.load("i64", where)


def emit_pool(gm, name, schedule, kernel, kind):
    k = _Element(gm, name, schedule, kernel)
    fb, t = k.fb, k.t
    x_buf = k.ins[0]
    n, h, w, c = x_buf.shape
    _, oh, ow, _ = kernel.out.shape

    def body(e):
        b, y, x, ch = decompose(fb, e, (n, oh, ow, c))
        if kind == "max":
            fb.store(t, k.load(x_buf, add(fb, mul(fb, _argmax(k, x_buf, b, ch, y, x, (h, w), c), c), ch)), k.acc)
        elif kind == "grad_grad":
            where = _argmax(k, x_buf, b, ch, y, x, (h, w), c)
            fb.store(t, k.load(k.ins[1], add(fb, mul(fb, where, c), ch)), k.acc)
        else:
            def visit(pix):
                fb.store(t, fb.assign(f"fadd {t} {fb.load(t, k.acc)}, {k.load(x_buf, add(fb, mul(fb, pix, c), ch))}"),
                         k.acc)
            rows, cols = _scan(k, x_buf, b, ch, y, x, (h, w), c, visit)
            count = mul(fb, fb.assign(f"sub nsw i64 {rows[1]}, {rows[0]}"),
                        fb.assign(f"sub nsw i64 {cols[1]}, {cols[0]}"))
            fb.store(t, fb.assign(f"fdiv {t} {fb.load(t, k.acc)}, {fb.assign(f'sitofp i64 {count} to {t}')}"), k.acc)
    k.run(body)


def _covering(fb, i, pad, stride, k, count):
    """[lo, hi) of the output positions whose window (o*stride - pad, k wide) contains input position i."""
    top = add(fb, i, pad)                                    # o*stride <= i + pad
    hi = add(fb, fb.assign(f"sdiv i64 {top}, {stride}"), 1)
    hi = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {hi}, {count}')}, i64 {hi}, i64 {count}")
    low = add(fb, top, -(k - 1))                             # o*stride >= i + pad - k + 1
    lo = fb.assign(f"sdiv i64 {add(fb, low, stride - 1)}, {stride}")
    return fb.assign(f"select i1 {fb.assign(f'icmp sgt i64 {low}, 0')}, i64 {lo}, i64 0"), hi


def emit_pool_grad(gm, name, schedule, kernel, is_max):
    k = _Element(gm, name, schedule, kernel)
    fb, t = k.fb, k.t
    node = k.node
    n, h, w, c = kernel.out.shape
    dy_buf = k.ins[1] if is_max else k.ins[0]
    _, oh, ow, _ = dy_buf.shape
    (sh, sw), (kh_n, kw_n) = node.attrs["strides"], node.attrs["ksize"]
    _, (pt, pl) = geometry((h, w), (kh_n, kw_n), node.attrs)

    def body(e):
        b, y, x, ch = decompose(fb, e, (n, h, w, c))
        me = _pixel(fb, b, y, x, (h, w))
        with fb.loop(*_covering(fb, y, pt, sh, kh_n, oh), "oy") as oy:
            with fb.loop(*_covering(fb, x, pl, sw, kw_n, ow), "ox") as ox:
                g = k.load(dy_buf, add(fb, mul(fb, _pixel(fb, b, oy, ox, (oh, ow)), c), ch))
                if is_max:
                    hit = fb.assign(f"icmp eq i64 {_argmax(k, k.ins[0], b, ch, oy, ox, (h, w), c)}, {me}")
                    g = fb.assign(f"select i1 {hit}, {t} {g}, {t} {literal(0, k.dtype)}")
                else:
                    _, _, rows, cols = _window(fb, oy, ox, node, (h, w))
                    count = mul(fb, fb.assign(f"sub nsw i64 {rows[1]}, {rows[0]}"),
                                fb.assign(f"sub nsw i64 {cols[1]}, {cols[0]}"))
                    g = fb.assign(f"fdiv {t} {g}, {fb.assign(f'sitofp i64 {count} to {t}')}")
                fb.store(t, fb.assign(f"fadd {t} {fb.load(t, k.acc)}, {g}"), k.acc)
    k.run(body)


# kernel-table key (an op record's extra["kernel"]) -> GPU emitter; registered by codegen/kernel_table.py
EMITTERS = {
    "conv2d": lambda gm, n, s, k: emit_conv(gm, n, s, k, False),
    "depthwise_conv2d_native": lambda gm, n, s, k: emit_conv(gm, n, s, k, True),
    "conv2d_backprop_input": lambda gm, n, s, k: emit_conv_backprop_input(gm, n, s, k, False),
    "depthwise_conv2d_native_backprop_input": lambda gm, n, s, k: emit_conv_backprop_input(gm, n, s, k, True),
    "conv2d_backprop_filter": lambda gm, n, s, k: emit_conv_backprop_filter(gm, n, s, k, False),
    "depthwise_conv2d_native_backprop_filter": lambda gm, n, s, k: emit_conv_backprop_filter(gm, n, s, k, True),
    "max_pool": lambda gm, n, s, k: emit_pool(gm, n, s, k, "max"),
    "avg_pool": lambda gm, n, s, k: emit_pool(gm, n, s, k, "avg"),
    "max_pool_grad_grad": lambda gm, n, s, k: emit_pool(gm, n, s, k, "grad_grad"),
    "max_pool_grad": lambda gm, n, s, k: emit_pool_grad(gm, n, s, k, True),
    "avg_pool_grad": lambda gm, n, s, k: emit_pool_grad(gm, n, s, k, False),
}

