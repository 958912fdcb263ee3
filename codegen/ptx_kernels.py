"""GPU kernels from the fused schedule: the same Kernels the CPU turns into loop
nests become NVPTX kernels (`ptx_kernel` functions) plus a launch plan.

Only the loop structure differs from the CPU: the scalar DAG of one element is
built by `codegen.loops.ExprBuilder`, its loop dims merged by `plan_groups`, and
lowered by `LoopEmitter` / `ScalarLowering` (with libdevice for transcendentals),
exactly as on the CPU. Here a flat element index (a thread's position in a
grid-stride or team loop) is split into the loop-group indices instead of nesting
loops; threads take 4 adjacent elements at a time, so loads become vector loads.

- loop, concat, scatter: grid-stride loops over the elements (scatter zero-fills
  its output with a memset first).
- reduce with the reduced dims innermost: a team per output (a warp when the
  reduction is short, else a block, see ptx_module.Team) strides over the reduced
  elements, then a tree reduction (warp shuffles; a shared slot per warp for
  blocks). Reduced dims outermost: a thread per output walks them (coalesced across
  threads). Long reductions are split; partial results go to a scratch area and a
  second kernel combines them in a fixed order.
- row groups (softmax, cross-entropy): a team per row runs every member in order,
  a sync between members; with a warp per row the row's reductions stay in
  registers and, the loops being unrolled, the members share their loads (softmax
  reads its input once and computes exp once per element).
- argmax/argmin: a thread per output scans the axis.
- matmul, random, matrix_inverse: codegen/ptx_library.py.
"""
from __future__ import annotations

from jitflow.ir.kernel_plan import Schedule
from jitflow.ir.types import num_elements
from jitflow.ops import get_op

from .llvm_builder import llvm_type
from .loops import (ExprBuilder, LoopEmitter, _index_affines, _ptr_table, prepare_row_group,
                    plan_groups)
from .ptx_module import (BLOCK, MIN_PER_THREAD, SPLIT_TARGET_BLOCKS, WARP_ITEM_MAX, GpuLoopEmitter, GpuModule, Team,
                          accumulate, each, finalize, grid_elements, grid_for, grid_stride, set_vars, strided_loop,
                          vector_width)
from .scalar import Affine, linear_offset


# ---- elementwise -----------------------------------------------------------------------------
def _buffers(builder, *extra):
    buffers = dict(builder.buffers_used)
    for b in extra:
        buffers[b.id] = b
    return list(buffers.values())


def emit_loop(gm: GpuModule, name: str, schedule: Schedule, kernel):
    shape = kernel.out.shape
    builder = ExprBuilder(schedule, kernel)
    point = [Affine.dim(k) for k in range(len(shape))]
    expr = builder.at(kernel.expr, point)
    out_affine = linear_offset(point, shape)
    buffers = _buffers(builder, kernel.out)
    groups = plan_groups(shape, [ld.attr[2] for ld in builder.s.loads] + [out_affine] + _index_affines(builder))
    fb = gm.kernel(name, buffers)
    em = gm.lowering_for(LoopEmitter(fb, gm.declarations, _ptr_table(buffers), shape, groups))
    total, vec = num_elements(shape), vector_width(num_elements(shape))

    def element(e):
        set_vars(em, fb, list(range(len(groups))), e)
        em.memo.clear()
        em.store(kernel.out, out_affine, em.value(expr), kernel.update)
    grid_elements(fb, gm.declarations, total, element, vec)
    gm.functions.append(fb.render())
    gm.launch(name, buffers, grid_for(total // vec))


def emit_concat(gm: GpuModule, name: str, schedule: Schedule, kernel):
    node, out = kernel.root.node, kernel.out
    axis, offset, pieces, buffers = node.attrs["axis"], 0, [], {out.id: out}
    for x in node.operands:
        builder = ExprBuilder(schedule, kernel)
        point = [Affine.dim(k) for k in range(len(x.shape))]
        expr = builder.at(x, point)
        out_point = [p + offset if k == axis else p for k, p in enumerate(point)]
        out_affine = linear_offset(out_point, out.shape)
        pieces.append((x, expr, out_affine, builder))
        buffers.update(builder.buffers_used)
        offset += x.shape[axis]
    buffers = list(buffers.values())
    fb = gm.kernel(name, buffers)
    ptrs = _ptr_table(buffers)
    for x, expr, out_affine, builder in pieces:   # pieces write disjoint slabs: no ordering needed
        groups = plan_groups(x.shape, [ld.attr[2] for ld in builder.s.loads] + [out_affine] + _index_affines(builder))
        em = gm.lowering_for(LoopEmitter(fb, gm.declarations, ptrs, x.shape, groups))

        def element(e, em=em, groups=groups, expr=expr, out_affine=out_affine):
            set_vars(em, fb, list(range(len(groups))), e)
            em.memo.clear()
            em.store(out, out_affine, em.value(expr))
        grid_elements(fb, gm.declarations, num_elements(x.shape), element)
    gm.functions.append(fb.render())
    gm.launch(name, buffers, grid_for(max(num_elements(x.shape) for x in node.operands)))


def emit_scatter(gm: GpuModule, name: str, schedule: Schedule, kernel):
    node, out = kernel.root.node, kernel.out
    g = node.operands[0]
    builder = ExprBuilder(schedule, kernel)
    point = [Affine.dim(k) for k in range(len(g.shape))]
    expr = builder.at(g, point)
    out_point = [p * s + b for p, b, s in zip(point, node.attrs["begin"], node.attrs["stride"])]
    out_affine = linear_offset(out_point, out.shape)
    buffers = _buffers(builder, out)
    groups = plan_groups(g.shape, [ld.attr[2] for ld in builder.s.loads] + [out_affine] + _index_affines(builder))
    fb = gm.kernel(name, buffers)
    em = gm.lowering_for(LoopEmitter(fb, gm.declarations, _ptr_table(buffers), g.shape, groups))
    def element(e):
        set_vars(em, fb, list(range(len(groups))), e)
        em.memo.clear()
        em.store(out, out_affine, em.value(expr))
    grid_elements(fb, gm.declarations, num_elements(g.shape), element)
    gm.functions.append(fb.render())
    gm.memset(out)
    gm.launch(name, buffers, grid_for(num_elements(g.shape)))


# ---- reductions ------------------------------------------------------------------------------
def _splits(n_out: int, work: int, per_item: int) -> int:
    """How many pieces each output's reduction is cut into (1: no second pass)."""
    if n_out >= SPLIT_TARGET_BLOCKS or work <= per_item:
        return 1
    return max(1, min(-(-SPLIT_TARGET_BLOCKS // max(n_out, 1)), work // per_item))


def emit_reduce(gm: GpuModule, name: str, schedule: Schedule, kernel):
    node = kernel.root.node
    kind = get_op(node.op).reduce
    if kind in ("argmax", "argmin"):
        return emit_arg(gm, name, schedule, kernel, kind)
    x, out = node.operands[0], kernel.out
    axes, in_shape = set(node.attrs["axes"]), x.shape
    builder = ExprBuilder(schedule, kernel)
    point = [Affine.dim(k) for k in range(len(in_shape))]
    expr = builder.at(x, point)
    out_point = [0 if k in axes else point[k] for k in range(len(in_shape))]
    out_affine = linear_offset(out_point, tuple(1 if k in axes else d for k, d in enumerate(in_shape)))
    buffers = _buffers(builder, out)
    groups = plan_groups(in_shape, [ld.attr[2] for ld in builder.s.loads] + [out_affine] + _index_affines(builder))
    kept = [g for g, dims in enumerate(groups) if dims[0] not in axes]
    reduced = [g for g, dims in enumerate(groups) if dims[0] in axes]
    dtype, t = out.dtype, llvm_type(out.dtype)
    n_out = num_elements(out.shape)
    size = num_elements([in_shape[a] for a in axes])
    count = num_elements([in_shape[a] for a in axes])
    inner_reduced = bool(groups) and groups[-1][0] in axes
    splits = _splits(n_out, size, BLOCK * MIN_PER_THREAD if inner_reduced else 32)
    extra = ["ptr noalias %scratch"] if splits > 1 else []
    fb = gm.kernel(name, buffers, extra)
    decls = gm.declarations
    em = gm.lowering_for(LoopEmitter(fb, decls, _ptr_table(buffers), in_shape, groups))
    chunk = -(-size // splits)
    items = n_out * splits

    def item_range(item):
        """(output index, first, stop) of a work item."""
        if splits == 1:
            return item, "0", str(size)
        o, s = fb.assign(f"udiv i64 {item}, {splits}"), fb.assign(f"urem i64 {item}, {splits}")
        lo = fb.assign(f"mul nsw i64 {s}, {chunk}")
        hi = fb.assign(f"add nsw i64 {lo}, {chunk}")
        hi = fb.assign(f"select i1 {fb.assign(f'icmp slt i64 {hi}, {size}')}, i64 {hi}, i64 {size}")
        return o, lo, hi

    def element(o, r):
        set_vars(em, fb, kept, o)
        set_vars(em, fb, reduced, r)
        em.memo.clear()
        return em.value(expr)

    def write(item, o, total):
        if splits == 1:
            fb.store(t, finalize(fb, kind, dtype, total, count), fb.gep(t, f"%b{out.id}", o))
        else:
            fb.store(t, total, fb.gep(t, "%scratch", item))

    if inner_reduced:   # a team (warp or block) per work item, its threads across the reduced elements
        team = Team(gm, fb, name, warp=splits == 1 and size <= WARP_ITEM_MAX)
        with team.items(items) as item:
            o, lo, hi = item_range(item)
            loop = team.elements(size, vector_width(size)) if splits == 1 else each(team.members(lo, hi))
            total = accumulate(em, kind, dtype, loop, lambda r: element(o, r))
            total = team.reduce(em, kind, dtype, total)
            with team.leader():
                write(item, o, total)
        grid = team.grid(items)
    else:               # a thread per work item walks the reduced elements; adjacent threads, adjacent outputs
        with grid_stride(fb, decls, items) as flat:
            if splits == 1:
                item = o = flat
                lo, hi = "0", str(size)
            else:
                o, s = fb.assign(f"urem i64 {flat}, {n_out}"), fb.assign(f"udiv i64 {flat}, {n_out}")
                item = fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {o}, {splits}')}, {s}")
                _, lo, hi = item_range(item)
            total = accumulate(em, kind, dtype, each(strided_loop(fb, lo, hi, "1", "r")), lambda r: element(o, r))
            write(item, o, total)
        grid = grid_for(items)
    gm.functions.append(fb.render())
    scratch = [["scratch", 0]] if splits > 1 else []
    gm.launch(name, buffers, grid, extra=scratch)
    if splits > 1:
        gm.need_scratch(items * out.dtype.itemsize)
        _emit_combine(gm, name + "_combine", out, kind, splits, count)


def _emit_combine(gm: GpuModule, name: str, out, kind, splits: int, count: int):
    """Second pass of a split reduction: out[o] = combine(scratch[o*splits : (o+1)*splits])."""
    dtype, t = out.dtype, llvm_type(out.dtype)
    fb = gm.kernel(name, [out], ["ptr noalias %scratch"])
    em = gm.lowering_for(LoopEmitter(fb, gm.declarations, _ptr_table([out]), (), []))
    n_out = num_elements(out.shape)
    with grid_stride(fb, gm.declarations, n_out) as o:
        base = fb.assign(f"mul nsw i64 {o}, {splits}")
        total = accumulate(em, kind, dtype, each(strided_loop(fb, "0", str(splits), "1", "p")),
                           lambda s: fb.load(t, fb.gep(t, "%scratch", fb.assign(f"add nsw i64 {base}, {s}"))))
        fb.store(t, finalize(fb, kind, dtype, total, count), fb.gep(t, f"%b{out.id}", o))
    gm.functions.append(fb.render())
    gm.launch(name, [out], grid_for(n_out), extra=[["scratch", 0]])


def emit_arg(gm: GpuModule, name: str, schedule: Schedule, kernel, kind):
    node, out = kernel.root.node, kernel.out
    x = node.operands[0]
    axis = node.attrs["axis"] % len(x.shape)
    builder = ExprBuilder(schedule, kernel)
    point = [Affine.dim(k) for k in range(len(x.shape))]
    expr = builder.at(x, point)
    out_shape = tuple(d for k, d in enumerate(x.shape) if k != axis)
    out_affine = linear_offset([p for k, p in enumerate(point) if k != axis], out_shape)
    buffers = _buffers(builder, out)
    outer = [[k] for k in range(len(x.shape)) if k != axis]
    fb = gm.kernel(name, buffers)
    em = gm.lowering_for(LoopEmitter(fb, gm.declarations, _ptr_table(buffers), x.shape, outer + [[axis]]))
    vt, it = llvm_type(x.dtype), llvm_type(out.dtype)
    pred = {"argmax": "gt", "argmin": "lt"}[kind]
    n_out = num_elements(out_shape)
    with grid_stride(fb, gm.declarations, n_out) as o:
        set_vars(em, fb, list(range(len(outer))), o)
        best, best_i = fb.alloca(vt), fb.alloca("i64")
        em.vars[len(outer)] = "0"
        em.memo.clear()
        fb.store(vt, em.value(expr), best)
        fb.store("i64", "0", best_i)
        with fb.loop("1", str(x.shape[axis]), "a") as var:
            em.vars[len(outer)] = var
            em.memo.clear()
            v, b = em.value(expr), fb.load(vt, best)
            better = em.low.lower("cmp", x.dtype, [v, b], [x.dtype, x.dtype], pred)
            if x.dtype.is_floating:   # NaN wins, as numpy's argmax
                v_nan = fb.assign(f"fcmp uno {vt} {v}, 0.0")
                b_ok = fb.assign(f"fcmp ord {vt} {b}, 0.0")
                better = fb.assign(f"or i1 {better}, {fb.assign(f'and i1 {v_nan}, {b_ok}')}")
            fb.store(vt, fb.assign(f"select i1 {better}, {vt} {v}, {vt} {b}"), best)
            fb.store("i64", fb.assign(f"select i1 {better}, i64 {var}, i64 {fb.load('i64', best_i)}"), best_i)
        em.memo.clear()
        result = fb.load("i64", best_i)
        if it != "i64":
            result = fb.assign(f"trunc i64 {result} to {it}")
        fb.store(it, result, em.address(out, out_affine))
    gm.functions.append(fb.render())
    gm.launch(name, buffers, grid_for(n_out))


# ---- row groups ------------------------------------------------------------------------------
def emit_rows(gm: GpuModule, name: str, schedule: Schedule, kernels):
    """A block per row; the members run in order inside it, a barrier after each."""
    rows, members, buffers = prepare_row_group(schedule, kernels)
    fb = gm.kernel(name, buffers)
    decls = gm.declarations
    ptrs = _ptr_table(buffers)
    row_elements = max(num_elements(member["shape"][1:]) for member in members)
    team = Team(gm, fb, name, warp=row_elements <= WARP_ITEM_MAX)
    with team.items(rows, "row") as row:
        known = {}    # this row's reductions held in registers (warp teams)
        for member in members:
            em = gm.lowering_for(GpuLoopEmitter(fb, decls, ptrs, member["shape"], member["groups"], known=known))
            em.vars[0] = row
            rest = list(range(1, len(member["groups"])))
            k = member["kernel"]
            if k.kind == "loop":
                per_row = num_elements([em.group_extent(g) for g in rest])

                def element(e, em=em, rest=rest, k=k, member=member):
                    set_vars(em, fb, rest, e)
                    em.memo.clear()
                    em.store(k.out, member["out_affine"], em.value(member["expr"]))
                team.elements(per_row, vector_width(per_row))(element)
            else:
                _row_reduce(gm, em, member, rest, team)
            team.sync()
    gm.functions.append(fb.render())
    gm.launch(name, buffers, team.grid(rows))


def _row_reduce(gm: GpuModule, em: LoopEmitter, member: dict, rest: list[int], team: Team):
    fb = em.fb
    kernel = member["kernel"]
    out, kind = kernel.out, get_op(kernel.root.node.op).reduce
    dtype, t = out.dtype, llvm_type(out.dtype)
    axes = member["axes"]
    kept = [g for g in rest if member["groups"][g][0] not in axes]
    reduced = [g for g in rest if member["groups"][g][0] in axes]
    per_out = num_elements([em.group_extent(g) for g in kept])
    size = num_elements([em.group_extent(g) for g in reduced])
    count = num_elements([member["shape"][a] for a in axes])

    def element(o, r):
        set_vars(em, fb, kept, o)
        set_vars(em, fb, reduced, r)
        em.memo.clear()
        return em.value(member["expr"])

    def one_output(o):
        total = accumulate(em, kind, dtype, team.elements(size, vector_width(size)), lambda r: element(o, r))
        total = team.reduce(em, kind, dtype, total)
        if team.warp and per_out == 1:   # every lane holds the row's result: later members use it directly
            total = finalize(fb, kind, dtype, total, count)
            em.known[(out.id, member["out_affine"].key())] = total
        with team.leader():
            set_vars(em, fb, kept, o)
            for g in reduced:
                em.vars[g] = "0"
            final = total if team.warp and per_out == 1 else finalize(fb, kind, dtype, total, count)
            fb.store(t, final, em.address(out, member["out_affine"]))

    if per_out == 1:
        one_output("0")
    else:
        with fb.loop("0", str(per_out), "ro") as o:   # team-uniform
            one_output(o)
