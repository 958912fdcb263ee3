"""Slab kernels: concat writes each operand into its slab of the result, scatter_slice writes a
slice's gradient into zeros. Built on the loop machinery of codegen/loops.py."""
from __future__ import annotations

from jitflow.ir.kernel_plan import Kernel, Schedule
from jitflow.ir.types import num_elements

from .llvm_builder import literal, llvm_type
from .scalar import Affine, linear_offset
from .loops import ExprBuilder, LoopEmitter, _function, _index_affines, _nest, _ptr_table, plan_groups


def emit_concat_kernel(name: str, schedule: Schedule, kernel: Kernel, declarations: set):
    node = kernel.root.node
    axis = node.attrs["axis"]
    out = kernel.out
    pieces, offset = [], 0
    builders = []
    for x in node.operands:
        builder = ExprBuilder(schedule, kernel)
        point = [Affine.dim(k) for k in range(len(x.shape))]
        expr = builder.at(x, point)
        out_point = [p + offset if k == axis else p for k, p in enumerate(point)]
        pieces.append((x, expr, linear_offset(out_point, out.shape)))
        builders.append(builder)
        offset += x.shape[axis]
    buffers = {out.id: out}
    for b in builders:
        buffers.update(b.buffers_used)
    buffers = list(buffers.values())
    fb = _function(name, buffers)
    ptrs = _ptr_table(buffers)
    for (x, expr, out_affine), builder in zip(pieces, builders):
        affines = [load.attr[2] for load in builder.s.loads] + [out_affine] + _index_affines(builder)
        em = LoopEmitter(fb, declarations, ptrs, x.shape, plan_groups(x.shape, affines))
        _nest(em, 0, lambda em=em, expr=expr, out_affine=out_affine:
              em.store(out, out_affine, em.value(expr)))
    return fb.render(), buffers



def emit_scatter_kernel(name: str, schedule: Schedule, kernel: Kernel, declarations: set):
    """scatter_slice: zeros, then the operand written at begin + stride * index."""
    node = kernel.root.node
    g, out = node.operands[0], kernel.out
    builder = ExprBuilder(schedule, kernel)
    point = [Affine.dim(k) for k in range(len(g.shape))]
    expr = builder.at(g, point)
    out_point = [p * s + b for p, b, s in zip(point, node.attrs["begin"], node.attrs["stride"])]
    out_affine = linear_offset(out_point, out.shape)
    buffers = dict(builder.buffers_used)
    buffers[out.id] = out
    buffers = list(buffers.values())
    fb = _function(name, buffers)
    ptrs = _ptr_table(buffers)
    t = llvm_type(out.dtype, False)
    with fb.loop("0", str(num_elements(out.shape)), "zero") as i:
        fb.store(t, literal(0, out.dtype), fb.gep(t, ptrs[out.id], i))
    affines = [load.attr[2] for load in builder.s.loads] + [out_affine] + _index_affines(builder)
    em = LoopEmitter(fb, declarations, ptrs, g.shape, plan_groups(g.shape, affines))
    _nest(em, 0, lambda: em.store(out, out_affine, em.value(expr)))
    return fb.render(), buffers
