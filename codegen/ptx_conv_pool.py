"""The GPU kernel of conv2d_max_pool (jitflow/ops/conv.py), in the style of codegen/ptx_conv.py: one
thread per pooled element, which scans its window's convolution cells in order (rows, then columns;
only cells inside the convolution's output, as max_pool never reads padding), computes each cell's
sum over its in-range taps and channels, and keeps the first maximum (a strict `>`); then the bias and
ReLU the op took in. Straightforward,
not tuned: a GPU inference graph gets the same fused op as the CPU and the same results."""
from __future__ import annotations

from jitflow.ops.conv import geometry, pool_attrs

from .conv_kernels import add, decompose, mul
from .llvm_builder import literal
from .pool_kernels import tap_bounds
from .ptx_conv import _Element, _pixel


def emit_conv2d_max_pool(gm, name, schedule, kernel):
    k = _Element(gm, name, schedule, kernel)
    fb, t, (x_buf, f_buf) = k.fb, k.t, k.ins[:2]
    n, h, w, c = x_buf.shape
    kh_n, kw_n, _, m = f_buf.shape
    attrs = k.node.attrs
    (oh, ow), (pt, pl) = geometry((h, w), (kh_n, kw_n), attrs)
    (sh, sw), (dh, dw) = attrs["strides"], attrs["dilations"]
    pool = pool_attrs(attrs)
    (ph, pw), (qt, ql) = geometry((oh, ow), pool["ksize"], pool)
    (pkh, pkw), (psh, psw) = pool["ksize"], pool["strides"]
    cell = fb.alloca(t)

    def body(e):
        b, py, px, oc = decompose(fb, e, (n, ph, pw, m))
        fb.store(t, literal(float("-inf"), k.dtype), k.acc)
        cy0, cx0 = add(fb, mul(fb, py, psh), -qt), add(fb, mul(fb, px, psw), -ql)
        with fb.loop(*tap_bounds(fb, cy0, 1, oh, pkh), "wy") as wy:
            with fb.loop(*tap_bounds(fb, cx0, 1, ow, pkw), "wx") as wx:
                y, x = add(fb, cy0, wy), add(fb, cx0, wx)
                fb.store(t, literal(0, k.dtype), cell)
                y0, x0 = add(fb, mul(fb, y, sh), -pt), add(fb, mul(fb, x, sw), -pl)
                with fb.loop(*tap_bounds(fb, y0, dh, h, kh_n), "kh") as kh:
                    with fb.loop(*tap_bounds(fb, x0, dw, w, kw_n), "kw") as kw:
                        pix = _pixel(fb, b, add(fb, y0, mul(fb, kh, dh)), add(fb, x0, mul(fb, kw, dw)), (h, w))
                        tap = add(fb, mul(fb, kh, kw_n), kw)
                        with fb.loop("0", str(c), "c") as ch:
                            xv = k.load(x_buf, add(fb, mul(fb, pix, c), ch))
                            fv = k.load(f_buf, add(fb, mul(fb, add(fb, mul(fb, tap, c), ch), m), oc))
                            fb.store(t, fb.assign(f"fadd {t} {fb.load(t, cell)}, {fb.assign(f'fmul {t} {xv}, {fv}')}"),
                                     cell)
                v, best = fb.load(t, cell), fb.load(t, k.acc)
                fb.store(t, fb.assign(f"select i1 {fb.assign(f'fcmp ogt {t} {v}, {best}')}, {t} {v}, {t} {best}"),
                         k.acc)
        value = fb.load(t, k.acc)
        if len(k.ins) == 3:                   # the bias the op took in
            value = fb.assign(f"fadd {t} {value}, {k.load(k.ins[2], oc)}")
        if attrs.get("activation") == "relu":
            name = f"llvm.maximum.{'f32' if k.dtype.name == 'float32' else 'f64'}"
            gm.declarations.add(f"declare {t} @{name}({t}, {t})")
            value = fb.assign(f"call {t} @{name}({t} {value}, {t} {literal(0.0, k.dtype)})")
        fb.store(t, value, k.acc)
    k.run(body)


EMITTERS = {"conv2d_max_pool": emit_conv2d_max_pool}
