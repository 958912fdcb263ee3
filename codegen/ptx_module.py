"""The GPU side of a kernel that is not its arithmetic: the launch plan (`GpuPlan`),
the module under construction (`GpuModule`), thread indexing (grid-stride and team
loops, splitting a flat index into loop-group indices), warp and block reductions,
and `Team`, the threads (a warp or a block) that share one output or row. Used by
codegen/ptx_kernels.py and codegen/ptx_library.py.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field

from jitflow.ir.types import num_elements

from .llvm_builder import FunctionBuilder, literal, llvm_type
from .loops import LoopEmitter, _combine, _identity
from .ptx import KERNEL_ATTRS, LIBDEVICE_MATH, module_header
from .scalar_llvm import exp_f32_helper, ipow_helper

BLOCK = 256                # threads per block of every kernel except matmul's
MAX_GRID = 16384           # blocks of a grid-stride loop (each thread then handles several elements)
SPLIT_TARGET_BLOCKS = 1024  # a reduction with fewer outputs than this is split across blocks
MIN_PER_THREAD = 8          # ... as long as each thread still gets this many elements
WARP_ITEM_MAX = 4096        # reductions and rows up to this many elements get a warp each, not a block
UNROLL_MAX = 8              # a thread's loop over its share of an item is unrolled up to this many steps


@dataclass
class Launch:
    """One step of a run: a kernel launch, or a memset of a buffer."""

    kernel: str                 # function name ('' for a memset or a repeat)
    args: list                  # ["buf", id] | ["at", id, byte offset] | ["i64", value] | ["scratch", 0] |
                                # ["status", 0], in parameter order
    grid: list                  # [x, y, z] blocks
    block: list                 # [x, y, z] threads
    op: str = "launch"          # 'launch' | 'memset' | 'repeat' (codegen/ptx_control_flow.py)
    nbytes: int = 0             # memset: its size; repeat: how many of the following steps form the chunk


@dataclass
class GpuPlan:
    launches: list = field(default_factory=list)
    kernels: list = field(default_factory=list)
    scratch_bytes: int = 0       # partial results of split reductions (reused by each reduction in turn)
    has_status: bool = False     # a kernel reports a status word (matrix_inverse: singular)

    def to_json(self) -> dict:
        return {"launches": [asdict(x) for x in self.launches], "kernels": list(self.kernels),
                "scratch_bytes": self.scratch_bytes, "has_status": self.has_status}

    @staticmethod
    def from_json(data: dict) -> "GpuPlan":
        return GpuPlan([Launch(**x) for x in data["launches"]], list(data["kernels"]), data["scratch_bytes"],
                       data["has_status"])


def buffer_arg(buffer) -> list:
    """The launch argument of a buffer of the run's own schedule."""
    return ["buf", buffer.id]


class GpuModule:
    """What the kernels of one schedule add to the module: declarations, shared-memory globals,
    functions, and the launch plan."""

    def __init__(self):
        self.declarations: set = set()
        self.globals: list[str] = []
        self.functions: list[str] = []
        self.plan = GpuPlan()
        self.resolve = buffer_arg     # a Buffer -> its launch argument (a region's sub-schedule maps its own)

    def kernel(self, name: str, buffers, extra_params=()) -> FunctionBuilder:
        # every buffer starts 64-byte aligned (allocations; temps at 64-byte offsets): vector loads are legal
        params = [f"ptr noalias align 16 %b{b.id}" for b in buffers] + list(extra_params)
        self.plan.kernels.append(name)
        return FunctionBuilder(name, params, attrs=f"{KERNEL_ATTRS} nounwind", linkage="ptx_kernel")

    def launch(self, name, buffers, grid, block=BLOCK, extra=()):
        args = [self.resolve(b) for b in buffers] + [list(x) for x in extra]
        grid = list(grid) + [1] * (3 - len(grid)) if isinstance(grid, (list, tuple)) else [grid, 1, 1]
        block = list(block) + [1] * (3 - len(block)) if isinstance(block, (list, tuple)) else [block, 1, 1]
        self.plan.launches.append(Launch(name, args, [max(1, int(g)) for g in grid], block))

    def memset(self, buffer):
        self.plan.launches.append(Launch("", [self.resolve(buffer)], [1, 1, 1], [1, 1, 1], "memset", buffer.nbytes))

    def shared(self, name: str, elem: str, count: int, align: int = 16) -> str:
        self.globals.append(f"@{name} = internal addrspace(3) global [{count} x {elem}] undef, align {align}")
        return f"@{name}"

    def need_scratch(self, nbytes: int):
        self.plan.scratch_bytes = max(self.plan.scratch_bytes, nbytes)

    def lowering_for(self, em: LoopEmitter) -> LoopEmitter:
        em.low.math_functions = LIBDEVICE_MATH
        return em

    def render(self) -> str:
        parts = [module_header()] + self.globals
        for decl in sorted(self.declarations, key=str):
            if isinstance(decl, tuple) and decl[0] == "helper" and decl[1] == "jf_exp":
                parts.append("\n".join(line for line in exp_f32_helper().splitlines()
                                       if not (line.startswith("declare") and line in self.declarations)))
            elif isinstance(decl, tuple) and decl[0] == "helper":
                from jitflow.ir.types import as_dtype
                parts.append(ipow_helper(as_dtype(decl[2])))
            elif isinstance(decl, tuple) and decl[0] == "philox":
                from .library import philox_function
                parts.append(philox_function())
            else:
                parts.append(decl)
        return "\n".join(parts + self.functions) + "\n"


class GpuLoopEmitter(LoopEmitter):
    """A LoopEmitter that takes some loads from registers: `known` maps (buffer id, offset key) to a
    value this thread already holds (a row group's per-row reduction, which every lane of a warp has
    after the butterfly reduction), so later members neither reload nor wait for it."""

    def __init__(self, *args, known=None):
        super().__init__(*args)
        self.known = known if known is not None else {}

    def value(self, expr) -> str:
        if expr.prim == "load" and self.known:
            hit = self.known.get((expr.attr[0], expr.attr[1]))
            if hit is not None:
                return hit
        return super().value(expr)


# ---- thread indexing -------------------------------------------------------------------------
def sreg(fb: FunctionBuilder, decls: set, name: str) -> str:
    """A PTX special register (tid.x, ctaid.x, ntid.x, nctaid.x) as i32."""
    decls.add(f"declare i32 @llvm.nvvm.read.ptx.sreg.{name}()")
    return fb.assign(f"call i32 @llvm.nvvm.read.ptx.sreg.{name}()", "sr")


def report_status(fb: FunctionBuilder, code: str, detail: str | None = None):
    """Stores a failing status in the run's status word (`%status`) unless an earlier kernel or
    thread already did: the first failure is the one reported, as on the CPU, which stops there.
    `detail` (i64) goes 8 bytes after it (a failed check's value)."""
    swap = fb.assign(f"cmpxchg ptr %status, i32 0, i32 {code} monotonic monotonic")
    with fb.if_(fb.assign(f"extractvalue {{ i32, i1 }} {swap}, 1")):
        if detail is not None:
            fb.store("i64", detail, fb.assign("getelementptr inbounds i8, ptr %status, i64 8"))


def barrier(fb: FunctionBuilder, decls: set):
    decls.add("declare void @llvm.nvvm.barrier0()")
    fb.emit("call void @llvm.nvvm.barrier0()")


def wide(fb: FunctionBuilder, value: str) -> str:
    return fb.assign(f"zext i32 {value} to i64")


@contextlib.contextmanager
def strided_loop(fb: FunctionBuilder, start: str, stop: str, step: str, hint: str = "s"):
    """for (i = start; i < stop; i += step) over i64: yields i."""
    head, body, exit_ = fb.label(hint + "_head"), fb.label(hint + "_body"), fb.label(hint + "_exit")
    before = fb.block
    index, next_index = fb.fresh(hint), fb.fresh(hint + "n")
    fb.emit(f"br label %{head}")
    fb.start_block(head)
    marker = len(fb.lines)
    fb.lines.append(None)
    cond = fb.assign(f"icmp slt i64 {index}, {stop}", "c")
    fb.emit(f"br i1 {cond}, label %{body}, label %{exit_}")
    fb.start_block(body)
    yield index
    fb.emit(f"{next_index} = add nuw nsw i64 {index}, {step}")
    fb.lines[marker] = f"  {index} = phi i64 [ {start}, %{before} ], [ {next_index}, %{fb.block} ]"
    fb.emit(f"br label %{head}")
    fb.start_block(exit_)


@contextlib.contextmanager
def grid_stride(fb: FunctionBuilder, decls: set, total: int, hint: str = "gs"):
    """Every thread of the grid walks [0, total) with the grid's size as its stride."""
    tid, bid = wide(fb, sreg(fb, decls, "tid.x")), wide(fb, sreg(fb, decls, "ctaid.x"))
    ntid, nbid = wide(fb, sreg(fb, decls, "ntid.x")), wide(fb, sreg(fb, decls, "nctaid.x"))
    first = fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {bid}, {ntid}')}, {tid}")
    step = fb.assign(f"mul nsw i64 {nbid}, {ntid}")
    with strided_loop(fb, first, str(total), step, hint) as i:
        yield i


def vector_width(total: int) -> int:
    """Elements a thread handles side by side (adjacent loads become one vector load)."""
    return 4 if total % 4 == 0 and total >= 4 else 1


def _vector(fb: FunctionBuilder, index: str, vec: int, body):
    base = index if vec == 1 else fb.assign(f"shl nuw nsw i64 {index}, {vec.bit_length() - 1}")
    for u in range(vec):
        body(base if u == 0 else fb.assign(f"add nuw nsw i64 {base}, {u}"))


def grid_elements(fb: FunctionBuilder, decls: set, total: int, body, vec: int = 1):
    """body(e) for every element e in [0, total), `vec` consecutive elements per thread and step of a
    grid-stride loop (`total` divisible by `vec`)."""
    with grid_stride(fb, decls, total // vec) as i:
        _vector(fb, i, vec, body)


def each(loop_cm):
    """A loop context manager as a loop function: each(cm)(body) calls body(index)."""
    def run(body):
        with loop_cm as index:
            body(index)
    return run


def grid_for(total: int, block: int = BLOCK) -> int:
    return max(1, min(MAX_GRID, -(-total // block)))


def split_index(fb: FunctionBuilder, flat: str, extents: list[int]) -> list[str]:
    """Row-major indices (i64 names) of a flat i64 index over `extents` (i32 arithmetic when it fits)."""
    if not extents:
        return []
    total = num_elements(extents)
    narrow = total < (1 << 31)
    it = "i32" if narrow else "i64"
    rest = fb.assign(f"trunc i64 {flat} to i32") if narrow else flat
    out = [None] * len(extents)
    for g in range(len(extents) - 1, 0, -1):
        out[g] = fb.assign(f"urem {it} {rest}, {extents[g]}")
        rest = fb.assign(f"udiv {it} {rest}, {extents[g]}")
    out[0] = rest
    return [wide(fb, v) for v in out] if narrow else out


def set_vars(em: LoopEmitter, fb, groups_idx: list[int], flat: str):
    for g, var in zip(groups_idx, split_index(fb, flat, [em.group_extent(g) for g in groups_idx])):
        em.vars[g] = var


# ---- block reduction -------------------------------------------------------------------------
def shuffle_xor(fb: FunctionBuilder, decls: set, t: str, value: str, lane_mask: int) -> str:
    if t in ("float", "i32"):
        s = "f32" if t == "float" else "i32"
        decls.add(f"declare {t} @llvm.nvvm.shfl.sync.bfly.{s}(i32, {t}, i32, i32)")
        return fb.assign(f"call {t} @llvm.nvvm.shfl.sync.bfly.{s}(i32 -1, {t} {value}, i32 {lane_mask}, i32 31)")
    if t == "i1":
        wide_v = fb.assign(f"zext i1 {value} to i32")
        return fb.assign(f"trunc i32 {shuffle_xor(fb, decls, 'i32', wide_v, lane_mask)} to i1")
    bits = fb.assign(f"bitcast {t} {value} to i64") if t != "i64" else value
    lo = shuffle_xor(fb, decls, "i32", fb.assign(f"trunc i64 {bits} to i32"), lane_mask)
    hi = shuffle_xor(fb, decls, "i32", fb.assign(f"trunc i64 {fb.assign(f'lshr i64 {bits}, 32')} to i32"),
                     lane_mask)
    joined = fb.assign(f"or i64 {fb.assign(f'shl i64 {wide(fb, hi)}, 32')}, {wide(fb, lo)}")
    return fb.assign(f"bitcast i64 {joined} to {t}") if t != "i64" else joined


def warp_reduce(em: LoopEmitter, decls, kind, dtype, value: str) -> str:
    t = llvm_type(dtype)
    for mask in (16, 8, 4, 2, 1):
        value = _combine(em.low, kind, dtype, value, shuffle_xor(em.fb, decls, t, value, mask))
    return value


def block_reduce(em: LoopEmitter, decls: set, smem: str, kind, dtype, value: str, tid: str) -> str:
    """The reduction of `value` over the block, valid in the threads of warp 0 (thread 0 writes it).
    Every thread of the block must call it (it has barriers); `smem` holds 32 x i64."""
    fb, t = em.fb, llvm_type(dtype)
    mem = "i8" if t == "i1" else t
    value = warp_reduce(em, decls, kind, dtype, value)
    lane = fb.assign(f"and i64 {tid}, 31")
    warp = fb.assign(f"lshr i64 {tid}, 5")
    with fb.if_(fb.assign(f"icmp eq i64 {lane}, 0")):
        slot = fb.assign(f"getelementptr inbounds {mem}, ptr addrspace(3) {smem}, i64 {warp}")
        stored = fb.assign(f"zext i1 {value} to i8") if t == "i1" else value
        fb.emit(f"store {mem} {stored}, ptr addrspace(3) {slot}")
    barrier(fb, decls)
    warps = BLOCK // 32
    has = fb.assign(f"icmp ult i64 {tid}, {warps}")
    index = fb.assign(f"select i1 {has}, i64 {tid}, i64 0")
    slot = fb.assign(f"getelementptr inbounds {mem}, ptr addrspace(3) {smem}, i64 {index}")
    loaded = fb.assign(f"load {mem}, ptr addrspace(3) {slot}")
    if t == "i1":
        loaded = fb.assign(f"trunc i8 {loaded} to i1")
    barrier(fb, decls)   # the slots are free again for the next reduction of this block
    value = fb.assign(f"select i1 {has}, {t} {loaded}, {t} {_identity(kind, dtype)}")
    return warp_reduce(em, decls, kind, dtype, value)


class Team:
    """The threads that share one work item (an output, a row): a warp when the item is short
    (`WARP_ITEM_MAX` elements: no block barriers, eight items per block in flight), else the block."""

    def __init__(self, gm: GpuModule, fb: FunctionBuilder, name: str, warp: bool):
        self.gm, self.fb, self.warp = gm, fb, warp
        decls = gm.declarations
        tid = wide(fb, sreg(fb, decls, "tid.x"))
        bid, nbid = wide(fb, sreg(fb, decls, "ctaid.x")), wide(fb, sreg(fb, decls, "nctaid.x"))
        if warp:
            per_block = BLOCK // 32
            self.size, self.rank = 32, fb.assign(f"and i64 {tid}, 31")
            self.first = fb.assign(f"add nsw i64 {fb.assign(f'mul nsw i64 {bid}, {per_block}')}, "
                                   f"{fb.assign(f'lshr i64 {tid}, 5')}")
            self.count = fb.assign(f"mul nsw i64 {nbid}, {per_block}")
        else:
            self.size, self.rank, self.first, self.count = BLOCK, tid, bid, nbid
            self.smem = gm.shared(f"{name}_red", "i64", 32, 8)

    def items(self, total: int, hint: str = "it"):
        """Team-uniform loop over work items."""
        return strided_loop(self.fb, self.first, str(total), self.count, hint)

    def elements(self, total: int, vec: int = 1, hint: str = "e"):
        """A loop function over this thread's share of [0, total), `vec` consecutive elements at a time;
        the trip count is a constant when the team divides the work evenly (so LLVM unrolls it)."""
        fb, groups = self.fb, total // vec

        def run(body):
            if groups % self.size == 0 and groups // self.size <= UNROLL_MAX:
                # straight-line: the later members of a row group then reuse this thread's loads (and
                # recomputed values such as softmax's exp) from registers instead of reading them again
                for j in range(groups // self.size):
                    index = self.rank if j == 0 else fb.assign(f"add nuw nsw i64 {self.rank}, {j * self.size}")
                    _vector(fb, index, vec, body)
            elif groups % self.size == 0:
                with fb.loop("0", str(groups // self.size), hint) as j:
                    index = fb.assign(f"add nuw nsw i64 {self.rank}, {fb.assign(f'mul nuw nsw i64 {j}, {self.size}')}")
                    _vector(fb, index, vec, body)
            else:
                with strided_loop(fb, self.rank, str(groups), str(self.size), hint) as index:
                    _vector(fb, index, vec, body)
        return run

    def members(self, start: str, stop: str, hint: str = "r"):
        """This thread's share of [start, stop): start + rank, then every team-size-th."""
        first = self.rank if start == "0" else self.fb.assign(f"add nsw i64 {start}, {self.rank}")
        return strided_loop(self.fb, first, stop, str(self.size), hint)

    def reduce(self, em: LoopEmitter, kind, dtype, value: str) -> str:
        if self.warp:
            return warp_reduce(em, self.gm.declarations, kind, dtype, value)
        return block_reduce(em, self.gm.declarations, self.smem, kind, dtype, value, self.rank)

    def sync(self):
        """Makes the team's global writes so far visible to the whole team."""
        if self.warp:
            self.gm.declarations.add("declare void @llvm.nvvm.bar.warp.sync(i32)")
            self.fb.emit("call void @llvm.nvvm.bar.warp.sync(i32 -1)")
        else:
            barrier(self.fb, self.gm.declarations)

    def leader(self):
        return self.fb.if_(self.fb.assign(f"icmp eq i64 {self.rank}, 0"))

    def grid(self, total: int) -> int:
        return max(1, min(MAX_GRID, -(-total // (BLOCK // 32)) if self.warp else total))


def finalize(fb: FunctionBuilder, kind, dtype, value: str, count: int) -> str:
    """reduce_mean divides by the number of reduced elements."""
    if kind != "mean":
        return value
    t = llvm_type(dtype)
    if dtype.is_floating:
        return fb.assign(f"fdiv {t} {value}, {literal(float(count), dtype)}")
    return fb.assign(f"sdiv {t} {value}, {max(count, 1)}")


def accumulate(em: LoopEmitter, kind, dtype, loop, element) -> str:
    """acc = identity; loop(body) calls body(index) for each index; acc = combine(acc, element(index))."""
    fb, t = em.fb, llvm_type(dtype)
    acc = fb.alloca(t)
    fb.store(t, _identity(kind, dtype), acc)
    loop(lambda index: fb.store(t, _combine(em.low, kind, dtype, fb.load(t, acc), element(index)), acc))
    return fb.load(t, acc)
