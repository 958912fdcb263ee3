"""Fusion partitioning and buffer assignment: decides which values get a buffer
(their "home") and the ordered kernels that fill them.

Everything without a home is recomputed inside the kernel that reads it, so
elementwise chains, layout ops and the elementwise producers of a reduction
fuse into one loop nest. Values get a home when they feed a library op, are
reductions, library or random results, or are read by more than one kernel
(unless cheap to recompute). A value used several times inside ONE kernel
stays an SSA value there (the loop body computes it once per element), so a
chain of multi-use elementwise steps is one kernel, not one kernel per step. Variable reads alias the variable's buffer; a read that a
later kernel would see after an assignment to the same variable is copied at
the point of the read, so effect order is kept exactly.
"""
from __future__ import annotations

from ..ir.core import Function, Value
from ..ir.symdim import align_up
from ..ir.kernel_plan import CONST, OUTPUT, PARAM, VAR, Buffer, Kernel, Schedule
from ..ir.types import TensorType, VarType, num_elements
from ..ops import get_op
from ..ops.registry import CHECK, ELEMENTWISE, LAYOUT, LIBRARY, RANDOM, REDUCE, has_trait, kernel_key, scratch_type
from .row_groups import group_rows
from .region_schedule import plan_region_node



def is_assign(node) -> bool:
    """A variable update (its record's extra["update"]: set / add / sub)."""
    return "update" in get_op(node.op).extra


def is_const(node) -> bool:
    return has_trait(node, "constant")


def is_read(node) -> bool:
    return has_trait(node, "reads_var")


# most nodes fused into one kernel: a longer chain is stored every MAX_FUSED_NODES nodes, so no loop
# body grows without bound (LLVM's cost is superlinear in a body's size) and the pieces of a periodic
# chain are identical kernels that codegen compiles once (60 = 2^2 * 3 * 5: whole periods of most
# chains)
MAX_FUSED_NODES = 60
ALIGN = 64


def reshape_is_view_only(node) -> bool:
    """True when a reshape needs its operand as a contiguous buffer."""
    opdef = get_op(node.op)
    x = node.operands[0]
    point = list(range(len(node.result.shape)))
    return opdef.index_map(point, x.shape, node.attrs, node.result.shape) is None


class _Planner:
    def __init__(self, fn: Function):
        self.fn = fn
        self.buffers: list[Buffer] = []
        self.home: dict[int, Buffer] = {}
        self.position = {id(r): i for i, n in enumerate(fn.nodes) for r in n.results}
        self.uses: dict[int, list] = {}
        for node in fn.nodes:
            for v in node.operands:
                self.uses.setdefault(id(v), []).append(node)
        self.var_buffer: dict[str, Buffer] = {}
        self.var_of: dict[int, str] = {}        # id(value) -> variable name it aliases
        self.kernels: list[tuple[float, Kernel]] = []
        self.output_aliases: dict[int, int] = {}   # result index -> earlier result with the same value

    def new_buffer(self, kind, type_, ref=None) -> Buffer:
        buf = Buffer(len(self.buffers), kind, type_.dtype, tuple(type_.shape), ref=ref)
        self.buffers.append(buf)
        return buf

    # --- homes of sources
    def assign_sources(self):
        tensor_params = [p for p in self.fn.params if isinstance(p.type, TensorType)]
        for i, p in enumerate(tensor_params):
            self.home[id(p)] = self.new_buffer(PARAM, p.type, ref=i)
        var_params = [p for p in self.fn.params if isinstance(p.type, VarType)]
        for i, p in enumerate(var_params):
            if isinstance(p.type, VarType):
                buf = self.new_buffer(VAR, p.type, ref=i)
                self.var_buffer[p.name] = buf
                self.home[id(p)] = buf
        for node in self.fn.nodes:
            # 1-element constants are inlined into loops as literals, except where a library
            # kernel (GEMM, inverse) reads its operand from memory
            if is_const(node) and (num_elements(node.result.shape) != 1 or any(
                    get_op(u.op).kind == LIBRARY for u in self.uses.get(id(node.result), []))):
                self.home[id(node.result)] = self.new_buffer(CONST, node.result.type, ref=node.attrs["value"])
            elif is_read(node) or is_assign(node):
                name = node.operands[0].name
                self.var_of[id(node.result)] = name
                self.home[id(node.result)] = self.var_buffer[name]

    # --- which computed values need a home
    def needs_home(self, node) -> bool:
        v = node.results[0]
        kind = get_op(node.op).kind
        if kind in (REDUCE, LIBRARY, RANDOM, CHECK) or get_op(node.op).extra.get("writes_slabs"):
            return True     # a run-time check gets its own kernel, run before any reader (ops/checks.py)
        if kind not in (ELEMENTWISE, LAYOUT):
            return False
        users = self.uses.get(id(v), [])
        if has_trait(node, "transpose") and users and all(has_trait(u, "gemm") for u in users) \
                and len(v.shape) == 2 and id(node.operands[0]) in self.home:
            return False    # the GEMM reads the operand's buffer with its transpose flag flipped
        if any(get_op(u.op).kind == LIBRARY for u in users):
            return True
        if any(has_trait(u, "reshape") and reshape_is_view_only(u) for u in users):
            return True
        return False

    def is_cheap(self, node) -> bool:
        if has_trait(node, "cheap") or (has_trait(node, "broadcast") and num_elements(node.operands[0].shape) == 1):
            return True
        return get_op(node.op).kind == LAYOUT and not get_op(node.op).extra.get("writes_slabs") and all(
            id(x) in self.home for x in node.operands)

    def plan_kernels(self):
        shared = self.place_shared_values()
        for i, node in enumerate(self.fn.nodes):
            if node.regions:        # cond / while: a kernel with sub-schedules (passes/region_schedule.py)
                plan_region_node(self, i, node)
                continue
            if is_assign(node):
                mode = get_op(node.op).extra["update"]
                out = self.var_buffer[node.operands[0].name]
                self.kernels.append((i, Kernel("loop", node.result, out, update=mode, expr=node.operands[1])))
                continue
            if is_const(node) or is_read(node) or not node.results or not node.results[0].is_tensor:
                continue
            if id(node.result) in self.home or self.needs_home(node) or id(node) in shared:
                self.give_temp_home(node.result)

    def place_shared_values(self) -> set:
        """ids of the elementwise/layout nodes that need a home because more than one kernel reads
        them. One reverse walk: each fused value learns the kernel its users end up in; a value
        whose users all sit in one kernel stays in registers there (when every use reads it at the
        kernel's own point, so the body computes it once), a value several kernels read is
        recomputed when cheap and stored otherwise. Linear in the graph."""
        forced = {id(n) for n in self.fn.nodes if n.results and n.results[0].is_tensor
                  and not (is_const(n) or is_read(n) or is_assign(n)) and self.needs_home(n)}
        fetched = {id(v) for v in self.fn.results if v.is_tensor}
        kernel_of: dict[int, object] = {}     # id(node) -> id of the kernel it is fused into, or MANY
        size: dict[object, int] = {}          # kernel -> nodes fused into it so far
        frontier: dict[object, set] = {}      # kernel -> values its fused nodes read, not yet placed
        plain: dict[int, bool] = {}           # every use reads it at the kernel's iteration point
        shared: set = set()
        many = object()
        for node in reversed(self.fn.nodes):
            if not node.results or not node.results[0].is_tensor or is_assign(node) \
                    or id(node.results[0]) in self.home:
                continue
            kind = get_op(node.op).kind
            if id(node) in forced or kind not in (ELEMENTWISE, LAYOUT):
                continue
            v = node.results[0]
            users = self.uses.get(id(v), [])
            kernels, is_plain = set(), True
            for u in users:
                if id(u) in forced or id(u) in shared or is_assign(u) or not u.results \
                        or id(u.results[0]) in self.home or id(u) not in kernel_of:
                    kernels.add(id(u))      # u is a kernel of its own, reading v at its own point
                    u_kind = get_op(u.op).kind
                    is_plain = is_plain and (is_assign(u) or u_kind in (ELEMENTWISE, REDUCE, CHECK))
                elif kernel_of[id(u)] is not None:     # None: u itself is dead
                    kernels.add(kernel_of[id(u)])
                    is_plain = is_plain and plain[id(u)] and get_op(u.op).kind == ELEMENTWISE
            if id(v) in fetched:
                kernels.add(("fetch", id(v)))
            target = next(iter(kernels), None)
            for k in kernels:
                frontier.get(k, set()).discard(id(v))
            if len(kernels) <= 1 and many not in kernels and (len(users) <= 1 or is_plain) \
                    and not self.cut_here(size.get(target, 1), frontier.get(target)):
                kernel_of[id(node)] = target
                plain[id(node)] = is_plain and kind == ELEMENTWISE
                if target is not None:
                    size[target] = size.get(target, 1) + 1
                    pending = frontier.setdefault(target, set())
                    pending.update(id(x) for x in node.operands if x.is_tensor and id(x) not in self.home
                                   and x.node is not None and not is_const(x.node))
            elif self.is_cheap(node) or self.is_cheap_once_homed(node, forced):
                kernel_of[id(node)] = many
                plain[id(node)] = False
            else:
                shared.add(id(node))
        # a layout op of stored values is recomputed by each reader rather than stored (its operands'
        # homes were not all known yet when the walk reached it)
        homed = forced | shared
        for node in self.fn.nodes:
            if id(node) in shared and get_op(node.op).kind == LAYOUT \
                    and not get_op(node.op).extra.get("writes_slabs") and id(node.results[0]) not in fetched \
                    and all(id(x) in self.home or (x.node is not None and id(x.node) in homed)
                            for x in node.operands):
                shared.discard(id(node))
        return shared

    @staticmethod
    def cut_here(size: int, frontier) -> bool:
        """A kernel past MAX_FUSED_NODES stores the next value where that value is all it still reads
        (one buffer, the cut of a chain between two steps); past 4x it stores it anyway."""
        if size < MAX_FUSED_NODES:
            return False
        return not frontier or size >= 4 * MAX_FUSED_NODES

    def is_cheap_once_homed(self, node, forced) -> bool:
        """is_cheap, counting operands that the planning walk will store (forced homes)."""
        if get_op(node.op).kind != LAYOUT or get_op(node.op).extra.get("writes_slabs"):
            return False
        return all(id(x) in self.home or (x.node is not None and id(x.node) in forced) for x in node.operands)

    def give_temp_home(self, v: Value):
        node = v.node
        buf = self.new_buffer("temp", v.type)
        self.home[id(v)] = buf
        kind = get_op(node.op).kind
        kernel_kind = {REDUCE: "reduce", LIBRARY: "library", RANDOM: "random", CHECK: "check"}.get(kind, "loop")
        if kernel_key(node.op) is not None:     # the record names a library kernel (concat's slab copies, ...)
            kernel_kind = "library"
        kernel = Kernel(kernel_kind, v, buf, expr=v)
        if (scratch := scratch_type(node)) is not None:
            kernel.scratch = self.new_buffer("temp", scratch)    # a library kernel's workspace, from its op record
        self.kernels.append((self.position[id(v)], kernel))

    # --- reads that would see a later assignment
    def fused_leaves(self, expr: Value, root: Value):
        """Values a kernel loads from a home while evaluating `expr`."""
        leaves, stack, seen = [], [expr], set()
        while stack:
            v = stack.pop()
            if id(v) in seen:
                continue
            seen.add(id(v))
            if id(v) in self.home and v is not root:
                leaves.append(v)
                continue
            if v.node is None or is_const(v.node):
                continue
            if is_read(v.node) and v is root:
                continue
            stack.extend(x for x in v.node.operands if x.is_tensor)
        return leaves

    def fix_hazards(self) -> bool:
        assigns = [(self.position[id(n.result)], n.operands[0].name) for n in self.fn.nodes if is_assign(n)]
        if not assigns:
            return False
        changed = False
        for pos, kernel in list(self.kernels):
            for leaf in self.fused_leaves(kernel.expr, kernel.root):
                name = self.var_of.get(id(leaf))
                if name is None or self.home[id(leaf)].kind != VAR:
                    continue
                read_pos = self.position[id(leaf)]
                later_assign = any(name == n and read_pos < q < pos for q, n in assigns)
                in_place_shifted = (kernel.out is self.var_buffer[name]
                                    and not self.same_index_path(kernel.expr, leaf))
                if later_assign or in_place_shifted:
                    self.copy_read(leaf)
                    changed = True
        return changed

    def same_index_path(self, expr: Value, leaf: Value) -> bool:
        """True when every fused path from expr to leaf keeps the element index (one memoized
        post-order walk over the fused cone: no recursion, no path enumeration)."""
        reach: dict[int, bool] = {}
        ok: dict[int, bool] = {}
        stack = [expr]
        while stack:
            v = stack[-1]
            if id(v) in ok:
                stack.pop()
                continue
            if v is leaf:
                reach[id(v)], ok[id(v)] = True, True
                stack.pop()
                continue
            if id(v) in self.home or v.node is None or is_const(v.node):
                reach[id(v)], ok[id(v)] = False, True
                stack.pop()
                continue
            operands = [x for x in v.node.operands if x.is_tensor]
            missing = [x for x in operands if id(x) not in ok]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            reach[id(v)] = any(reach[id(x)] for x in operands)
            if get_op(v.node.op).kind != ELEMENTWISE:
                ok[id(v)] = not reach[id(v)]
            else:
                ok[id(v)] = all(ok[id(x)] if x.shape == v.shape else not reach[id(x)] for x in operands)
        return ok[id(expr)]

    def reaches(self, v: Value, leaf: Value) -> bool:
        return any(x is leaf for x in self.fused_leaves(v, None))

    def copy_read(self, read: Value):
        buf = self.new_buffer("temp", read.type)
        self.home[id(read)] = buf
        self.var_of.pop(id(read), None)
        # a read_var is copied before its position; the value an assignment leaves (the assign op's
        # result) only exists after the assignment's kernel ran
        after = read.node is not None and is_assign(read.node)
        self.kernels.append((self.position[id(read)] + (0.5 if after else -0.5), Kernel("loop", read, buf, expr=read)))

    # --- outputs
    def assign_outputs(self):
        first_result: dict[int, int] = {}
        for i, v in enumerate(self.fn.results):
            if not v.is_tensor:
                continue
            if id(v) in first_result:      # two fetches that CSE merged: one buffer, copied at the end
                self.output_aliases[i] = first_result[id(v)]
                continue
            first_result[id(v)] = i
            out = self.new_buffer(OUTPUT, v.type, ref=i)
            home = self.home.get(id(v))
            owner = next((k for _, k in self.kernels if k.root is v and k.out is home), None)
            if home is not None and home.kind == "temp" and owner is not None:
                owner.out = out
                self.home[id(v)] = out
                self.buffers.remove(home)
                continue
            pos = self.position.get(id(v), -1) + 0.25
            self.kernels.append((pos, Kernel("loop", v, out, expr=v)))

    def finish(self) -> Schedule:
        ordered = [k for _, k in sorted(enumerate(self.kernels), key=lambda e: (e[1][0], e[0]))]
        kernels = group_rows(self, [k for _, k in ordered])
        slots, offset = [], 0
        for kind in (PARAM, VAR, CONST, OUTPUT):
            for buf in self.buffers:
                if buf.kind == kind:
                    buf.slot = len(slots)
                    slots.append(buf)
        workspace_slot = len(slots)
        slots.append(None)
        for buf in self.buffers:
            if buf.kind == "temp":
                buf.slot = workspace_slot
                buf.offset = offset
                offset += align_up(buf.nbytes, ALIGN)     # symbolic sizes: every coefficient rounded up
        for i, buf in enumerate(self.buffers):
            buf.id = i
        return Schedule(kernels, self.buffers, self.home, slots, offset, dict(self.var_of), self.output_aliases)


def schedule_function(fn: Function) -> Schedule:
    planner = _Planner(fn)
    planner.assign_sources()
    planner.plan_kernels()
    for _ in range(len(fn.nodes) + 1):
        if not planner.fix_hazards():
            break
    planner.assign_outputs()
    # the kernels that compute fetched values exist only now: they too may read a variable
    # through a read that an assignment in between has overwritten
    for _ in range(len(fn.nodes) + 1):
        if not planner.fix_hazards():
            break
    fuse_gemm_updates(planner)
    return planner.finish()


def fuse_gemm_updates(planner):
    """`var -= c * (a @ b)` (an optimizer step) becomes one GEMM into the variable's buffer
    with alpha = -c and beta = 1, when nothing between the two reads the variable."""
    for position, kernel in list(planner.kernels):
        if kernel.kind != "loop" or kernel.update not in ("add", "sub") or kernel.out.kind != VAR:
            continue
        scale, product = _scaled_matmul(planner, kernel.expr)
        if product is None:
            continue
        gemm = next(((p, k) for p, k in planner.kernels if k.root is product and k.kind == "library"), None)
        if gemm is None or gemm[1].out.kind != "temp" or len(planner.uses.get(id(product), [])) != 1:
            continue
        var_name = kernel.out.ref
        if any(planner.home.get(id(x)) is kernel.out for x in product.node.operands):
            continue
        if kernel.expr is not product and any(r is kernel.expr for r in planner.fn.results):
            continue    # c * (a @ b) is also fetched: its kernel needs the product's buffer
        if any(gemm[0] < p < position and _reads_buffer(planner, k, kernel.out) for p, k in planner.kernels):
            continue
        gemm_kernel = gemm[1]
        planner.buffers.remove(gemm_kernel.out)
        del planner.home[id(product)]
        gemm_kernel.out = kernel.out
        gemm_kernel.alpha = scale if kernel.update == "add" else -scale
        gemm_kernel.beta = 1.0
        planner.kernels.remove((position, kernel))
        del var_name


def _scaled_matmul(planner, value):
    """(c, m) when value is m or c * m for a matmul m and a scalar constant c, else (None, None)."""
    node = value.node
    if node is None or id(value) in planner.home and not has_trait(node, "gemm"):
        return None, None
    if has_trait(node, "gemm"):
        return 1.0, value
    if not has_trait(node, "mul") or len(planner.uses.get(id(value), [])) != 1:
        return None, None
    for const, other in ((node.operands[0], node.operands[1]), (node.operands[1], node.operands[0])):
        if is_const(const.node) and num_elements(const.shape) == 1 \
                and has_trait(other.node, "gemm") and other.shape == value.shape:
            return float(const.node.attrs["value"].reshape(())), other
    return None, None


def _reads_buffer(planner, kernel, buffer) -> bool:
    expr = kernel.expr
    if expr is kernel.root and expr is not None and is_read(expr.node) \
            and planner.home.get(id(expr.node.operands[0])) is buffer:
        return True     # a kernel that copies a read of the variable (a fetched or hazard-copied read)
    return any(planner.home.get(id(leaf)) is buffer for leaf in planner.fused_leaves(kernel.expr, kernel.root))
