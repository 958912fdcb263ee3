"""Fused loop nests: elementwise kernels, reductions and argmax/argmin (concat and scatter slabs are in
codegen/slab_kernels.py, row groups in codegen/row_group_kernels.py), each emitted as one LLVM function over its buffers.

A kernel first builds the scalar DAG of one element (`ScalarBuilder`) with
affine loads; adjacent loop dims that every access walks contiguously are then
merged (so `x*x*y + y + 2` over any shape is a single flat loop), size-1 dims
vanish, and the DAG is lowered inside the innermost loop, which LLVM vectorizes.
"""
from __future__ import annotations

from dataclasses import dataclass

from jitflow.ir.kernel_plan import Kernel, Schedule
from jitflow.ir.symdim import NeedsConcreteShape, SymDim
from jitflow.ir.types import num_elements
from jitflow.ops import get_op
from jitflow.ops.registry import CHECK, ELEMENTWISE, LAYOUT
from jitflow.ops.shape import broadcast_index

from .llvm_builder import FunctionBuilder, literal, llvm_type
from .scalar import Affine, ScalarBuilder, element_cost, linear_offset
from .scalar_llvm import ScalarLowering


class ExprBuilder:
    """Builds the scalar DAG of values at index points, fusing producers."""

    def __init__(self, schedule: Schedule, kernel: Kernel):
        self.schedule = schedule
        self.kernel = kernel
        self.s = ScalarBuilder()
        self.memo: dict = {}
        self.buffers_used: dict[int, object] = {}

    def load(self, buffer, point, shape):
        self.buffers_used[buffer.id] = buffer
        return self.s.load(buffer, linear_offset(point, shape))

    @staticmethod
    def _key(v, point):
        return (id(v), tuple(Affine.of(p).key() for p in point))

    def at(self, v, point):
        """The scalar DAG of `v` at `point`: an explicit post-order walk (no recursion, so the depth
        of a fused chain is unbounded), memoized per (value, point)."""
        key = self._key(v, point)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        stack = [(v, point, key)]
        while stack:
            v, point, key = stack[-1]
            if key in self.memo:
                stack.pop()
                continue
            kind, payload = self._plan(v, point)
            if kind == "leaf":
                stack.pop()
                self.memo[key] = payload()
                continue
            missing = [(x, p, k) for x, p in payload for k in (self._key(x, p),) if k not in self.memo]
            if missing:
                stack.extend(reversed(missing))
                continue
            stack.pop()
            args = [self.memo[self._key(x, p)] for x, p in payload]
            if kind == "layout":
                self.memo[key] = args[0]
            else:
                node = v.node
                self.s.current_point = point
                self.memo[key] = get_op(node.op).scalar(self.s, node.attrs, *args)
        return self.memo[key]

    def _plan(self, v, point):
        """('leaf', thunk) for a value read or made here, ('elementwise', [(operand, point)...]) or
        ('layout', [(operand, mapped point)]) for a fused producer."""
        home = self.schedule.value_buffer.get(id(v))
        defining = v is self.kernel.expr and v is self.kernel.root
        if home is not None and not defining:
            return "leaf", lambda: self.load(home, point, v.shape)
        node = v.node
        if node is None:
            return "leaf", lambda: self.load(home, point, v.shape)
        opdef = get_op(node.op)
        if opdef.extra.get("constant"):
            value = node.attrs["value"]
            if num_elements(value.shape) == 1:
                return "leaf", lambda: self.s.const(value.reshape(()).item(), v.dtype)
            return "leaf", lambda: self.load(home, point, v.shape)
        if opdef.extra.get("reads_var") or "update" in opdef.extra:      # a variable's read or update
            var_home = self.schedule.value_buffer[id(node.operands[0])]
            return "leaf", lambda: self.load(var_home, point, v.shape)
        if opdef.kind == ELEMENTWISE or (opdef.kind == CHECK and defining):
            return "elementwise", [(x, broadcast_index(point, x.shape, v.shape)) for x in node.operands]
        if opdef.kind == LAYOUT and opdef.index_map is not None:
            x = node.operands[0]
            mapped = opdef.index_map(point, x.shape, node.attrs, v.shape)
            if mapped is None:
                x_home = self.schedule.value_buffer[id(x)]
                return "leaf", lambda: self.load(x_home, point, v.shape)  # contiguous: same linear offset
            return "layout", [(x, mapped)]
        raise RuntimeError(f"value of {node.describe()} has no buffer and cannot be fused")


def plan_groups(extents, affines):
    """Merges adjacent loop dims that every affine access walks contiguously."""
    groups: list[list[int]] = []
    for k, extent in enumerate(extents):
        if extent == 1:
            continue
        if groups:
            prev = groups[-1][-1]
            if all(a.coeffs.get(prev, 0) == a.coeffs.get(k, 0) * extent for a in affines):
                groups[-1].append(k)
                continue
        groups.append([k])
    return groups


class LoopEmitter:
    """Emits loops over dim groups and the DAG inside them."""

    def __init__(self, fb: FunctionBuilder, declarations: set, buffer_ptrs: dict, extents, groups):
        self.fb = fb
        self.low = ScalarLowering(fb, declarations)
        self.ptrs = buffer_ptrs
        self.extents = extents
        self.groups = groups
        self.vars: dict[int, str] = {}      # group index -> loop var
        self.memo: dict[int, str] = {}
        # (emitter, ok: i1, x, dtype) -> None: what a failing run-time check does (codegen/checks.py);
        # None outside check kernels, where a check primitive is a scheduling bug
        self.on_check = None

    def group_extent(self, g) -> int:
        n = 1
        for k in self.groups[g]:
            n *= self.extents[k]
        return n

    def offset(self, affine: Affine) -> str:
        terms = []
        for g, dims in enumerate(self.groups):
            coeff = affine.coeffs.get(dims[-1], 0)
            if coeff:
                var = self.vars[g]
                terms.append(var if coeff == 1 else self.fb.assign(f"mul nsw i64 {var}, {coeff}", "o"))
        total = str(affine.const)
        for term in terms:
            total = term if total == "0" else self.fb.assign(f"add nsw i64 {total}, {term}", "o")
        return total

    def address(self, buffer, affine: Affine) -> str:
        return self.fb.gep(llvm_type(buffer.dtype, False), self.ptrs[buffer.id], self.offset(affine))

    def value(self, expr) -> str:
        """The LLVM value of a scalar DAG node: leaves directly, inner nodes by an explicit
        post-order walk (no recursion on the DAG's depth); each node is emitted once."""
        hit = self.memo.get(id(expr))
        if hit is not None:
            return hit
        if not expr.args:
            result = self._leaf(expr)
            self.memo[id(expr)] = result
            return result
        stack = [expr]
        while stack:
            top = stack[-1]
            if id(top) in self.memo:
                stack.pop()
                continue
            if not top.args:
                stack.pop()
                # leaves go through value(): a subclass may take a load from a register
                self.memo[id(top)] = self.value(top)
                continue
            missing = [a for a in top.args if id(a) not in self.memo]
            if missing:
                stack.extend(reversed(missing))
                continue
            stack.pop()
            args = [self.memo[id(a)] for a in top.args]
            if top.prim == "check":
                if self.on_check is None:
                    raise RuntimeError("a run-time check outside a check kernel")
                ok, result = args
                self.on_check(self, ok, result, top.dtype)
            else:
                result = self.low.lower(top.prim, top.dtype, args, [a.dtype for a in top.args], top.attr)
            self.memo[id(top)] = result
        return self.memo[id(expr)]

    def _leaf(self, expr) -> str:
        fb = self.fb
        if expr.prim == "const":
            return literal(expr.attr, expr.dtype)
        if expr.prim == "load":
            buf_id, _, affine = expr.attr
            buffer = self.ptrs["buffers"][buf_id]
            mem = llvm_type(buffer.dtype, False)
            raw = fb.load(mem, self.address(buffer, affine))
            return fb.assign(f"trunc i8 {raw} to i1") if buffer.dtype.is_bool else raw
        if expr.prim == "index":
            return self.offset(expr.attr[2])
        return self.low.lower(expr.prim, expr.dtype, [], [], expr.attr)

    def store(self, buffer, affine: Affine, value: str, update: str = "set"):
        mem = llvm_type(buffer.dtype, False)
        ptr = self.address(buffer, affine)
        if update != "set":
            old = self.fb.load(mem, ptr)
            op = ("f" + update) if buffer.dtype.is_floating else update
            value = self.fb.assign(f"{op} {mem} {old}, {value}")
        if buffer.dtype.is_bool:
            value = self.fb.assign(f"zext i1 {value} to i8")
        self.fb.store(mem, value, ptr)


def _function(name, buffers, ranged=False):
    params = [f"ptr noalias %b{b.id}" for b in buffers]
    if ranged:
        params += ["i64 %start", "i64 %stop", "i32 %phases"]
    return FunctionBuilder(name, params, attrs="nounwind")


@dataclass
class RangeInfo:
    """A kernel whose outermost loop runs over [%start, %stop): the entry may split it
    across threads. `%phases` selects init (1), main loop (2) and finalize (4) work."""

    extent: int            # iterations of the outermost loop
    work: int              # total innermost iterations (decides whether threads pay off)
    splittable: bool       # chunks of the outer loop write disjoint outputs


PHASE_INIT, PHASE_MAIN, PHASE_FINISH = 1, 2, 4


def _phase(fb, bit):
    flag = fb.assign(f"and i32 %phases, {bit}")
    return fb.if_(fb.assign(f"icmp ne i32 {flag}, 0"))


def _ptr_table(buffers):
    table = {b.id: f"%b{b.id}" for b in buffers}
    table["buffers"] = {b.id: b for b in buffers}
    return table


def emit_loop_kernel(name: str, schedule: Schedule, kernel: Kernel, declarations: set, prepared=None):
    """Elementwise kernel (and variable updates): out[i] (op)= expr(i)."""
    shape = kernel.out.shape
    expr, out_affine, buffers, groups = prepared or prepare_loop_kernel(schedule, kernel)
    fb = _function(name, buffers, ranged=bool(groups))
    em = LoopEmitter(fb, declarations, _ptr_table(buffers), shape, groups)
    if groups:
        with _phase(fb, PHASE_MAIN):
            _nest(em, 0, lambda: em.store(kernel.out, out_affine, em.value(expr), kernel.update), ranged=True)
    else:
        _nest(em, 0, lambda: em.store(kernel.out, out_affine, em.value(expr), kernel.update))
    work = num_elements(shape) * element_cost(expr)
    info = RangeInfo(em.group_extent(0), work, True) if groups else None
    return fb.render(), buffers, info


def prepare_loop_kernel(schedule: Schedule, kernel: Kernel):
    """(expr, out_affine, buffers, groups) of an elementwise kernel: its scalar DAG, before any LLVM."""
    shape = kernel.out.shape
    builder = ExprBuilder(schedule, kernel)
    point = [Affine.dim(k) for k in range(len(shape))]
    expr = builder.at(kernel.expr, point)
    out_affine = linear_offset(point, shape)
    buffers = dict(builder.buffers_used)
    buffers[kernel.out.id] = kernel.out
    buffers = list(buffers.values())
    affines = [load.attr[2] for load in builder.s.loads] + [out_affine] + _index_affines(builder)
    return expr, out_affine, buffers, plan_groups(shape, affines)


def loop_kernel_signature(kernel: Kernel, prepared) -> tuple:
    """Everything the emitted text of a prepared loop kernel depends on, modulo buffer identities
    (buffers by position): equal signatures give identical functions over other buffers, so codegen
    emits and compiles the function once. One post-order walk over the DAG."""
    expr, out_affine, buffers, groups = prepared
    position = {b.id: i for i, b in enumerate(buffers)}
    index: dict[int, int] = {}
    nodes = []
    stack = [expr]
    while stack:
        top = stack[-1]
        if id(top) in index:
            stack.pop()
            continue
        missing = [a for a in top.args if id(a) not in index]
        if missing:
            stack.extend(reversed(missing))
            continue
        stack.pop()
        attr = top.attr
        if top.prim == "load":
            attr = (position[attr[0]], attr[1])
        elif top.prim == "index":
            attr = attr[1]
        else:
            attr = (type(attr).__name__, repr(attr))
        index[id(top)] = len(nodes)
        nodes.append((top.prim, top.dtype.name, attr, tuple(index[id(a)] for a in top.args)))
    return ("loop", kernel.out.shape, kernel.update, position[kernel.out.id], out_affine.key(),
            tuple(b.dtype.name for b in buffers), tuple(map(tuple, groups)), tuple(nodes))


def _index_affines(builder):
    return [n.attr[2] for n in builder.s.indices]


def _nest(em: LoopEmitter, g: int, body, ranged: bool = False):
    if g == len(em.groups):
        em.memo.clear()
        body()
        return
    start, stop = ("%start", "%stop") if ranged and g == 0 else ("0", str(em.group_extent(g)))
    with em.fb.loop(start, stop, f"g{g}_") as var:
        em.vars[g] = var
        _nest(em, g + 1, body)


REDUCE_INIT = {"sum": 0, "mean": 0, "prod": 1}


def _identity(kind, dtype):
    if kind in REDUCE_INIT:
        return literal(REDUCE_INIT[kind], dtype)
    if dtype.is_floating:
        return literal(float("-inf") if kind == "max" else float("inf"), dtype)
    bits = dtype.bits
    return str(-(1 << (bits - 1)) if kind == "max" else (1 << (bits - 1)) - 1)


def _combine(low: ScalarLowering, kind, dtype, a, b) -> str:
    t = llvm_type(dtype)
    if kind in ("sum", "mean"):
        return low.fb.assign(f"fadd reassoc {t} {a}, {b}") if dtype.is_floating else low.fb.assign(f"add {t} {a}, {b}")
    if kind == "prod":
        return low.fb.assign(f"fmul reassoc {t} {a}, {b}") if dtype.is_floating else low.fb.assign(f"mul {t} {a}, {b}")
    return low.lower(kind, dtype, [a, b], [dtype, dtype], None)


def emit_reduce_kernel(name: str, schedule: Schedule, kernel: Kernel, declarations: set):
    node = kernel.root.node
    kind = get_op(node.op).reduce
    if kind in ("argmax", "argmin"):
        return emit_arg_kernel(name, schedule, kernel, declarations, kind)
    x = node.operands[0]
    axes = set(node.attrs["axes"])
    in_shape = x.shape
    builder = ExprBuilder(schedule, kernel)
    point = [Affine.dim(k) for k in range(len(in_shape))]
    expr = builder.at(x, point)
    out_point = [0 if k in axes else point[k] for k in range(len(in_shape))]
    out_full_shape = tuple(1 if k in axes else d for k, d in enumerate(in_shape))
    out_affine = linear_offset(out_point, out_full_shape)
    buffers = dict(builder.buffers_used)
    buffers[kernel.out.id] = kernel.out
    buffers = list(buffers.values())
    dtype, out = kernel.out.dtype, kernel.out
    t = llvm_type(dtype)
    n_out = num_elements(out.shape)
    ptrs = _ptr_table(buffers)
    affines = [load.attr[2] for load in builder.s.loads] + [out_affine] + _index_affines(builder)
    groups = plan_groups(in_shape, affines)
    fb = _function(name, buffers, ranged=True)
    em = LoopEmitter(fb, declarations, ptrs, in_shape, groups)
    inner_reduced = bool(groups) and groups[-1][-1] in axes
    with _phase(fb, PHASE_INIT):
        with fb.loop("0", str(n_out), "init") as i:
            fb.store(t, _identity(kind, dtype), fb.gep(t, ptrs[out.id], i))

    def accumulate_into_out():
        ptr = em.address(out, out_affine)
        old = fb.load(t, ptr)
        fb.store(t, _combine(em.low, kind, dtype, old, em.value(expr)), ptr)

    with _phase(fb, PHASE_MAIN):
        if not groups:
            _nest(em, 0, accumulate_into_out)
        elif not inner_reduced:
            _nest(em, 0, accumulate_into_out, ranged=True)
        else:
            _reduce_nest(em, 0, out, out_affine, expr, kind, dtype)
    if kind == "mean":
        count = num_elements([in_shape[a] for a in axes])
        with _phase(fb, PHASE_FINISH):
            with fb.loop("0", str(n_out), "fin") as i:
                ptr = fb.gep(t, ptrs[out.id], i)
                value = fb.load(t, ptr)
                if isinstance(count, SymDim):     # shape-polymorphic: the run's count (codegen/symdims.py)
                    if not dtype.is_floating:
                        raise NeedsConcreteShape("an integer mean over a symbolic count")
                    result = fb.assign(f"fdiv {t} {value}, {fb.assign(f'sitofp i64 {count} to {t}')}")
                elif dtype.is_floating:
                    result = fb.assign(f"fdiv {t} {value}, {literal(float(count), dtype)}")
                else:
                    result = fb.assign(f"sdiv {t} {value}, {max(count, 1)}")
                fb.store(t, result, ptr)
    extent = em.group_extent(0) if groups else 1
    splittable = bool(groups) and groups[0][0] not in axes
    return fb.render(), buffers, RangeInfo(extent, num_elements(in_shape), splittable)


def _reduce_nest(em: LoopEmitter, g: int, out, out_affine, expr, kind, dtype, ranged: bool = True):
    """Loops over groups g..; the innermost (reduced) one accumulates in a register. With
    `ranged`, group 0 runs over [%start, %stop) (a thread's slice)."""
    fb, t = em.fb, llvm_type(dtype)
    start, stop = ("%start", "%stop") if ranged and g == 0 else ("0", str(em.group_extent(g)))
    if g == len(em.groups) - 1:
        acc = fb.alloca(t)
        fb.store(t, _identity(kind, dtype), acc)
        with fb.loop(start, stop, f"r{g}_") as var:
            em.vars[g] = var
            em.memo.clear()
            current = fb.load(t, acc)
            fb.store(t, _combine(em.low, kind, dtype, current, em.value(expr)), acc)
        em.memo.clear()
        em.vars[g] = "0"
        ptr = em.address(out, out_affine)
        total = fb.load(t, acc)
        old = fb.load(t, ptr)
        fb.store(t, _combine(em.low, kind, dtype, old, total), ptr)
        return
    with fb.loop(start, stop, f"g{g}_") as var:
        em.vars[g] = var
        _reduce_nest(em, g + 1, out, out_affine, expr, kind, dtype, ranged)


def emit_arg_kernel(name, schedule, kernel, declarations, kind):
    node = kernel.root.node
    x = node.operands[0]
    axis = node.attrs["axis"] % len(x.shape)
    in_shape = x.shape
    builder = ExprBuilder(schedule, kernel)
    point = [Affine.dim(k) for k in range(len(in_shape))]
    expr = builder.at(x, point)
    out_shape = tuple(d for k, d in enumerate(in_shape) if k != axis)
    out_affine = linear_offset([p for k, p in enumerate(point) if k != axis], out_shape)
    buffers = dict(builder.buffers_used)
    buffers[kernel.out.id] = kernel.out
    buffers = list(buffers.values())
    fb = _function(name, buffers)
    # loops: every non-axis dim as its own group (outer), the axis innermost
    outer = [[k] for k in range(len(in_shape)) if k != axis]
    groups = outer + [[axis]]
    em = LoopEmitter(fb, declarations, _ptr_table(buffers), in_shape, groups)
    vt, it = llvm_type(x.dtype), llvm_type(kernel.out.dtype)
    pred = {"argmax": "gt", "argmin": "lt"}[kind]

    def outer_nest(g):
        if g == len(outer):
            best, best_i = fb.alloca(vt), fb.alloca("i64")
            em.vars[len(outer)] = "0"
            em.memo.clear()
            fb.store(vt, em.value(expr), best)
            fb.store("i64", "0", best_i)
            with fb.loop("1", str(in_shape[axis]), "a") as var:
                em.vars[len(outer)] = var
                em.memo.clear()
                v = em.value(expr)
                b = fb.load(vt, best)
                better = em.low.lower("cmp", x.dtype, [v, b], [x.dtype, x.dtype], pred)
                if x.dtype.is_floating:
                    v_nan = fb.assign(f"fcmp uno {vt} {v}, 0.0")
                    b_nan = fb.assign(f"fcmp uno {vt} {b}, 0.0")
                    b_ok = fb.assign(f"xor i1 {b_nan}, true")
                    nan_wins = fb.assign(f"and i1 {v_nan}, {b_ok}")
                    better = fb.assign(f"or i1 {better}, {nan_wins}")
                fb.store(vt, fb.assign(f"select i1 {better}, {vt} {v}, {vt} {b}"), best)
                old_i = fb.load("i64", best_i)
                fb.store("i64", fb.assign(f"select i1 {better}, i64 {var}, i64 {old_i}"), best_i)
            em.memo.clear()
            result = fb.load("i64", best_i)
            if it != "i64":
                result = fb.assign(f"trunc i64 {result} to {it}")
            fb.store(it, result, em.address(kernel.out, out_affine))
            return
        with fb.loop("0", str(in_shape[outer[g][0]]), f"o{g}_") as var:
            em.vars[g] = var
            outer_nest(g + 1)

    outer_nest(0)
    return fb.render(), buffers


from .row_group_kernels import emit_row_group, prepare_row_group  # noqa: E402,F401  (row groups)
