"""GPU library kernels of the array ops (jitflow/ops/array_extra.py), the
counterparts of codegen/array_kernels.py: gather (a thread per output element;
an out-of-range index is not read, the element is zeroed and the run's status
word gets STATUS_BAD_INDEX), segment_sum (zeroed, then an atomic add per data
element), scan (a thread per column, sequential along the axis, the CPU's column
code) and top_k (a thread per row, the CPU's insertion code).
"""
from __future__ import annotations

from jitflow.ir.types import num_elements
from jitflow.ops.array_extra import STATUS_BAD_INDEX

from . import array_kernels as cpu
from .llvm_builder import literal
from .ptx_module import GpuModule, grid_for, grid_stride, report_status


def _split(fb, e, m, inner):
    """e -> (o, j, i) for a [outer, m, inner] iteration space."""
    block = fb.assign(f"udiv i64 {e}, {m * inner}")
    rest = fb.assign(f"urem i64 {e}, {m * inner}")
    return block, fb.assign(f"udiv i64 {rest}, {inner}"), fb.assign(f"urem i64 {rest}, {inner}")


def emit_gather(gm: GpuModule, name, schedule, kernel):
    node = kernel.root.node
    (p_buf, i_buf), buffers = cpu._buffers(schedule, kernel)
    out = kernel.out
    outer, n, m, inner = cpu.gather_dims(node)
    total = num_elements(out.shape)
    t = cpu.mem(out.dtype)
    fb = gm.kernel(name, buffers, ["ptr %status"])
    if total and inner:
        with grid_stride(fb, gm.declarations, total) as e:
            o, j, i = _split(fb, e, m, inner)
            index = cpu.load_index(fb, f"%b{i_buf.id}", i_buf.dtype, j)
            ok = cpu.index_ok(fb, index, n)
            if n:
                src = fb.assign(f"add nsw i64 {cpu.row_start(fb, o, n, index, inner)}, {i}")
                src = fb.assign(f"select i1 {ok}, i64 {src}, i64 0")
                value = fb.load(t, fb.gep(t, f"%b{p_buf.id}", src))
                value = fb.assign(f"select i1 {ok}, {t} {value}, {t} {literal(0, out.dtype)}")
            else:
                value = literal(0, out.dtype)
            fb.store(t, value, fb.gep(t, f"%b{out.id}", e))
            with fb.if_(fb.assign(f"xor i1 {ok}, true")):
                report_status(fb, str(STATUS_BAD_INDEX))
    gm.functions.append(fb.render())
    gm.plan.has_status = True
    gm.launch(name, buffers, grid_for(total), extra=[["status", 0]])


def emit_segment_sum(gm: GpuModule, name, schedule, kernel):
    node = kernel.root.node
    (d_buf, i_buf), buffers = cpu._buffers(schedule, kernel)
    out = kernel.out
    outer, n, m, inner = cpu.segment_dims(node)
    total = outer * m * inner
    dtype, t = out.dtype, cpu.mem(out.dtype)
    gm.memset(out)
    fb = gm.kernel(name, buffers)
    if total:
        with grid_stride(fb, gm.declarations, total) as e:
            o, j, i = _split(fb, e, m, inner)
            index = cpu.load_index(fb, f"%b{i_buf.id}", i_buf.dtype, j)
            with fb.if_(cpu.index_ok(fb, index, n)):
                dst = fb.assign(f"add nsw i64 {cpu.row_start(fb, o, n, index, inner)}, {i}")
                value = fb.load(t, fb.gep(t, f"%b{d_buf.id}", e))
                op = "fadd" if dtype.is_floating else "add"
                fb.emit(f"atomicrmw {op} ptr {fb.gep(t, f'%b{out.id}', dst)}, {t} {value} monotonic")
    gm.functions.append(fb.render())
    gm.launch(name, buffers, grid_for(total))


def emit_scan(gm: GpuModule, name, schedule, kernel):
    node = kernel.root.node
    (x_buf,), buffers = cpu._buffers(schedule, kernel)
    outer, n, inner = cpu.scan_dims(node)
    columns = outer * inner
    fb = gm.kernel(name, buffers)
    if columns and n:
        with grid_stride(fb, gm.declarations, columns) as c:
            o = fb.assign(f"udiv i64 {c}, {inner}")
            i = fb.assign(f"urem i64 {c}, {inner}")
            base = fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {o}, {n * inner}')}, {i}")
            cpu.scan_column(fb, node, f"%b{x_buf.id}", f"%b{kernel.out.id}", base, inner)
    gm.functions.append(fb.render())
    gm.launch(name, buffers, grid_for(columns))


def emit_top_k(gm: GpuModule, name, schedule, kernel):
    node = kernel.root.node
    (x_buf,), buffers = cpu._buffers(schedule, kernel)
    out = kernel.out
    rows, n, k = cpu.top_k_dims(node)
    fb = gm.kernel(name, buffers)
    if rows and k:
        t = cpu.mem(x_buf.dtype)
        vals, idxs = fb.alloca(f"[{k} x {t}]"), fb.alloca(f"[{k} x i32]")
        with grid_stride(fb, gm.declarations, rows) as r:
            cpu.top_k_row(fb, x_buf.dtype, f"%b{x_buf.id}", r, n, k, vals, idxs)
            source, st = (idxs, "i32") if node.attrs["output"] == 1 else (vals, t)
            base = fb.assign(f"mul nsw i64 {r}, {k}")
            with fb.loop("0", str(k), "tw") as j:
                fb.store(st, fb.load(st, fb.gep(st, source, j)),
                         fb.gep(st, f"%b{out.id}", fb.assign(f"add nsw i64 {base}, {j}")))
    gm.functions.append(fb.render())
    gm.launch(name, buffers, grid_for(rows))


# kernel-table key (an op record's extra["kernel"]) -> GPU emitter; registered by codegen/kernel_table.py
EMITTERS = {"gather": emit_gather, "segment_sum": emit_segment_sum, "scan": emit_scan, "top_k": emit_top_k}
