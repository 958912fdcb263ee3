"""The CPU kernel of conv2d_max_pool (jitflow/ops/conv.py): conv2d's direct micro-kernel
(codegen/conv_kernels.py `direct_conv`, the 'direct' or 'folded' input access) with a max-pool
epilogue. Pool windows do not overlap (the op's precondition), so each pooled row belongs to one
band of convolution rows; the parallel loop runs over (image, pooled row), and each item
- fills its pooled row with -inf,
- runs the micro-kernel over the band's pixels in blocks, and max-reduces every block's results
  into the pooled cells while they are in registers (scan order, a strict `>`: the first maximum
  wins and a NaN never does, as the max_pool kernel).
A bias and ReLU the op took in (jitflow/passes/conv_pool_fusion.py) run over the finished pooled row.
The full-size convolution map is never written: for the W10 CNN's first layer at batch 256 that is
25.7 MB written and read back less per forward pass. Inputs with few channels (the 'folded' strategy's
shapes, e.g. the W10 CNN's first layer) run codegen/conv_pool_small.py instead (the pool window, bias
and ReLU in registers)."""
from __future__ import annotations

from jitflow.ops.conv import geometry, pool_attrs, strategy

from .conv_pool_small import small_plan, small_pool_conv
from .conv_rows import MAX_ROW_PIXELS, row_conv, row_dims
from .conv_kernels import (Vec, _node_bufs, _work_info, add, block_shape, direct_conv, forward_access, mul,
                           ptr_at, ranged_function, unique_buffers)
from .llvm_builder import literal
from .loops import PHASE_MAIN, _phase


def emit_conv2d_max_pool(name, schedule, kernel, declarations, blas):
    node, (x_buf, f_buf, *bias) = _node_bufs(schedule, kernel)
    out = kernel.out
    n, h, w, c = x_buf.shape
    kh_n, kw_n, _, o = f_buf.shape
    attrs = node.attrs
    (oh, ow), _ = geometry((h, w), (kh_n, kw_n), attrs)
    pool = pool_attrs(attrs)
    (ph, pw), (qt, ql) = geometry((oh, ow), pool["ksize"], pool)
    (pkh, _), (psh, psw) = pool["ksize"], pool["strides"]
    kind = "folded" if strategy("conv2d", x_buf.shape, f_buf.shape, attrs, out.dtype.itemsize) == "folded" \
        else "direct"
    buffers = unique_buffers(x_buf, f_buf, *bias, out, *([kernel.scratch] if kind == "folded" else []))
    fb = ranged_function(name, buffers)
    vec = Vec(fb, declarations, out.dtype)
    t, dtype = vec.t, out.dtype
    channels, taps, kw_count, pixel, row, tap_range = forward_access(fb, t, dtype, x_buf, f_buf.shape, attrs,
                                                                     kind, kernel.scratch)
    items = n * ph
    if not (items and pw and o):
        return fb.render(), buffers, False, _work_info(0, 0)
    _, dims = row_dims(x_buf.shape, f_buf.shape, attrs)
    by_rows = kind == "direct" and ow <= MAX_ROW_PIXELS      # codegen/conv_rows.py: no work on padding
    band = min(pkh, oh) * ow          # pixels of a full band: the block shape that wastes least on it
    j_max = max((4, 3, 2, 1), key=lambda j: band / (-(-band // block_shape(o, dtype.itemsize, j)[0])
                                                    * block_shape(o, dtype.itemsize, j)[0]))
    R = block_shape(o, dtype.itemsize, j_max)[0]
    po = f"%b{out.id}"
    small = small_plan(x_buf.shape, f_buf.shape, ow, pool["ksize"], pw, dtype.itemsize) \
        if kind == "folded" else None
    if small is not None:                       # codegen/conv_pool_small.py: few input channels
        buffers = unique_buffers(x_buf, f_buf, *bias, out)
        fb = ranged_function(name, buffers)
        vec = Vec(fb, declarations, out.dtype)
        pool_dims = (ph, pw, oh, pool["ksize"], pool["strides"], (qt, ql))
        with _phase(fb, PHASE_MAIN):
            with fb.loop("%start", "%stop", "item") as item:
                small_pool_conv(fb, vec, small, dims, pool_dims, f"%b{x_buf.id}", f"%b{f_buf.id}", po,
                                f"%b{bias[0].id}" if bias else None, attrs.get("activation"), item)
        return fb.render(), buffers, False, _work_info(items, items * pkh * ow * o * c * kh_n * kw_n)

    def max_into(base, values):
        for width, off, value in values:
            ptr = ptr_at(fb, t, po, add(fb, base, off))
            cur = vec.load(width, ptr)
            better = fb.assign(f"fcmp ogt {vec.ty(width)} {value}, {cur}")
            vec.store(width, fb.assign(f"select <{width} x i1> {better}, {vec.ty(width)} {value}, {vec.ty(width)} {cur}"),
                      ptr)

    with _phase(fb, PHASE_MAIN):
        with fb.loop("%start", "%stop", "item") as item:
            b = fb.assign(f"udiv i64 {item}, {ph}")
            py = fb.assign(f"urem i64 {item}, {ph}")
            orow = mul(fb, item, pw * o)
            with fb.loop("0", str(pw * o), "ninf") as e:
                fb.store(t, literal(float("-inf"), dtype), fb.gep(t, po, add(fb, orow, e)))
            top = add(fb, mul(fb, py, psh), -qt)                     # the band: conv rows [top, top + pkh)
            y_lo = fb.assign(f"select i1 {fb.assign(f'icmp sgt i64 {top}, 0')}, i64 {top}, i64 0")
            bottom = add(fb, top, pkh)
            y_hi = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {bottom}, {oh}')}, i64 {bottom}, i64 {oh}")
            y_hi = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {y_hi}, {y_lo}')}, i64 {y_lo}, i64 {y_hi}")
            if by_rows:
                def row_store(x, g_off, values):
                    if (x + ql) // psw < pw:                          # else a column no window covers
                        max_into(add(fb, orow, (x + ql) // psw * o + g_off), values)
                with fb.loop(y_lo, y_hi, "band") as y:
                    row_conv(fb, vec, dims, f"%b{x_buf.id}", f"%b{f_buf.id}", b, y, row_store)
            else:
                image = mul(fb, b, oh * ow)
                first, end = add(fb, image, mul(fb, y_lo, ow)), add(fb, image, mul(fb, y_hi, ow))
                blocks = fb.assign(f"udiv i64 {add(fb, fb.assign(f'sub nsw i64 {end}, {first}'), R - 1)}, {R}")

                def store(p, g_off, values):
                    px = fb.assign(f"udiv i64 {add(fb, fb.assign(f'urem i64 {p}, {ow}'), ql)}, {psw}")
                    with fb.if_(fb.assign(f"icmp ult i64 {px}, {pw}")):     # a column no window covers: dropped
                        max_into(add(fb, add(fb, orow, mul(fb, px, o)), g_off), values)
                direct_conv(fb, vec, n * oh * ow, channels, o, taps, kw_count, f"%b{f_buf.id}", po, pixel, row,
                            "0", blocks, tap_range=tap_range, span=(first, end), store=store, j_max=j_max)
            if bias or attrs.get("activation"):
                _epilogue(fb, vec, po, orow, pw, o, bias[0] if bias else None, attrs.get("activation"))
    return fb.render(), buffers, False, _work_info(items, items * pkh * ow * o * c * kh_n * kw_n)


def _epilogue(fb, vec, po, orow, pw, o, bias, activation):
    """The finished pooled row (in cache): + bias[channel], then the activation (ReLU: llvm.maximum with
    0, NaN-propagating, as the elementwise relu's code)."""
    t, dtype = vec.t, vec.dtype
    if activation:
        name = f"llvm.maximum.{'f32' if dtype.name == 'float32' else 'f64'}"
        vec.decl.add(f"declare {t} @{name}({t}, {t})")
    with fb.loop("0", str(pw), "epx") as px:
        row = add(fb, orow, mul(fb, px, o))
        with fb.loop("0", str(o), "ech") as ch:
            ptr = fb.gep(t, po, add(fb, row, ch))
            value = fb.load(t, ptr)
            if bias is not None:
                value = fb.assign(f"fadd {t} {value}, {fb.load(t, fb.gep(t, f'%b{bias.id}', ch))}")
            if activation:
                value = fb.assign(f"call {t} @{name}({t} {value}, {t} {literal(0.0, dtype)})")
            fb.store(t, value, ptr)


EMITTERS = {"conv2d_max_pool": emit_conv2d_max_pool}
