"""Row groups: several kernels (a softmax's max, sum and normalize; a cross-entropy) emitted inside
one loop over rows, so each row is read while it is in cache. Built on the loop machinery of
codegen/loops.py (ExprBuilder, LoopEmitter); the GPU path reuses `prepare_row_group`."""
from __future__ import annotations

from jitflow.ir.kernel_plan import Schedule
from jitflow.ir.types import num_elements
from jitflow.ops import get_op

from .llvm_builder import FunctionBuilder, literal, llvm_type
from .scalar import Affine, linear_offset
from .loops import (ExprBuilder, LoopEmitter, RangeInfo, _combine, _function, _identity, _index_affines, _nest,
                    _phase, _ptr_table, _reduce_nest, plan_groups, PHASE_MAIN)


# ---- row groups: several kernels inside one loop over rows ------------------------------------
def emit_row_group(name: str, schedule: Schedule, kernels, declarations: set):
    """One function for a row group (see jitflow/passes/row_groups.py): for each row r in
    [start, stop), every member runs its loops over the rest of the row, in order."""
    rows, members, buffers = prepare_row_group(schedule, kernels)
    fb = _function(name, buffers, ranged=True)
    ptrs = _ptr_table(buffers)
    with _phase(fb, PHASE_MAIN), fb.loop("%start", "%stop", "row") as r:
        for member in members:
            em = LoopEmitter(fb, declarations, ptrs, member["shape"], member["groups"])
            em.vars[0] = r
            if member["kernel"].kind == "loop":
                _nest(em, 1, lambda em=em, m=member: em.store(m["kernel"].out, m["out_affine"], em.value(m["expr"])))
            else:
                _row_reduce(em, fb, member, r)
    work = num_elements(_iteration_shape(kernels[0])) * len(kernels)
    return fb.render(), buffers, RangeInfo(rows, work, True)


def prepare_row_group(schedule, kernels):
    """(rows, members, buffers) of a row group: each member's scalar DAG and loop groups, and the
    buffers the whole group touches (shared by the CPU and GPU emitters)."""
    members, buffers = [], {}
    for kernel in kernels:
        member = _prepare_member(schedule, kernel)
        members.append(member)
        buffers.update(member["buffers"])
    return _iteration_shape(kernels[0])[0], members, list(buffers.values())


def _iteration_shape(kernel):
    return kernel.out.shape if kernel.kind == "loop" else kernel.root.node.operands[0].shape


def _prepare_member(schedule, kernel) -> dict:
    shape = _iteration_shape(kernel)
    builder = ExprBuilder(schedule, kernel)
    point = [Affine.dim(k) for k in range(len(shape))]
    if kernel.kind == "loop":
        expr = builder.at(kernel.expr, point)
        out_affine = linear_offset(point, shape)
        axes = set()
    else:
        node = kernel.root.node
        expr = builder.at(node.operands[0], point)
        axes = set(node.attrs["axes"])
        out_point = [0 if k in axes else point[k] for k in range(len(shape))]
        out_affine = linear_offset(out_point, tuple(1 if k in axes else d for k, d in enumerate(shape)))
    buffers = dict(builder.buffers_used)
    buffers[kernel.out.id] = kernel.out
    affines = [load.attr[2] for load in builder.s.loads] + [out_affine] + _index_affines(builder) + [Affine.dim(0)]
    return {"kernel": kernel, "shape": shape, "expr": expr, "out_affine": out_affine, "axes": axes,
            "buffers": buffers, "groups": plan_groups(shape, affines)}


def _row_reduce(em: LoopEmitter, fb: FunctionBuilder, member: dict, r: str):
    kernel, out = member["kernel"], member["kernel"].out
    kind = get_op(kernel.root.node.op).reduce
    dtype, t = out.dtype, llvm_type(out.dtype)
    per_row = num_elements(out.shape) // out.shape[0]
    base = fb.assign(f"mul nsw i64 {r}, {per_row}")
    with fb.loop("0", str(per_row), "rinit") as i:
        fb.store(t, _identity(kind, dtype), fb.gep(t, em.ptrs[out.id], fb.assign(f"add nsw i64 {base}, {i}")))
    groups, axes, expr = member["groups"], member["axes"], member["expr"]
    if len(groups) > 1 and groups[-1][-1] in axes:
        _reduce_nest(em, 1, out, member["out_affine"], expr, kind, dtype, ranged=False)
    else:
        def accumulate():
            ptr = em.address(out, member["out_affine"])
            fb.store(t, _combine(em.low, kind, dtype, fb.load(t, ptr), em.value(expr)), ptr)
        _nest(em, 1, accumulate)
    if kind == "mean":
        count = num_elements([member["shape"][a] for a in axes])
        with fb.loop("0", str(per_row), "rfin") as i:
            ptr = fb.gep(t, em.ptrs[out.id], fb.assign(f"add nsw i64 {base}, {i}"))
            value = fb.load(t, ptr)
            result = fb.assign(f"fdiv {t} {value}, {literal(float(count), dtype)}") if dtype.is_floating else \
                fb.assign(f"sdiv {t} {value}, {max(count, 1)}")
            fb.store(t, result, ptr)
