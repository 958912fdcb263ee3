"""GPU code for structured control flow: the kernels of kind "region" (cond / while, planned by
jitflow/passes/region_schedule.py), the counterpart of codegen/control_flow.py.

A region's sub-schedules are emitted into the run's module like the run's own kernels (names
under the region kernel's prefix), their buffers mapped onto the outer run's: parameters to the
op's operands, results to its result / flag / next-state buffers, temps into the region's
workspace temp (launch arguments ["at", buffer, offset]). Each of their kernels takes a guard
pointer first and returns at once unless that flag byte in the region's 16-byte `control` temp
is set, so the plan stays a straight list of launches while only the
taken branch and the iterations that run do any work:

- cond: a one-thread kernel sets control[0] = active && pred and control[1] = active && !pred
  (active: the enclosing region's guard, or true at the top level); the then-branch's kernels
  are guarded by control[0], the else-branch's by control[1];
- while: a start kernel sets control[0] = active && maximum_iterations != 0 and the trip counter
  (control[8], i64) to 0, guarded copies put the initial values in the state buffers; one
  iteration is the cond region's kernels, a test kernel clearing control[0] when the predicate
  is false, the body's kernels, guarded copies next state -> state, and a kernel counting the
  trip (clearing control[0] at maximum_iterations). The iteration's launches are recorded once
  per trip the loop may take: `maximum_iterations` copies when the loop has a static bound and
  they fit in UNROLL_LAUNCHES (the whole run stays one CUDA graph, no host round trip);
  otherwise (top-level loops only) a chunk of copies behind a "repeat" step, which the runtime
  (runtime/gpu_executable.py) replays until control[0] reads zero. The kernels themselves are
  compiled once whatever the trip count.

A loop nested inside a region must be fully recorded: without a static maximum_iterations
(or with too many launches) it raises UnsupportedError naming the op.
"""
from __future__ import annotations

import re

from jitflow.errors import UnsupportedError
from jitflow.ir.kernel_plan import CONST, OUTPUT, PARAM
from jitflow.ir.region_checks import status_map
from jitflow.ops.registry import has_trait

from .ptx import KERNEL_ATTRS
from .ptx_module import BLOCK, Launch, grid_for

KINDS = ("region", "region_result")
UNROLL_LAUNCHES = 4096     # launches one loop may add to a plan when recorded trip by trip
CHUNK_TRIPS = 16           # trips per replay of a loop the runtime repeats from the host
_HEAD = re.compile(r"^define ptx_kernel void @([\w$]+)\((.*?)\) (.*)\{$", re.M)
_ALLOCA = re.compile(r"^\s+%[\w.]+ = alloca ")
NULL = ["i64", 0]          # the guard argument of a region at the top level: always active


def emit(gm, name: str, schedule, kernel, code_of, guard=None):
    """Adds a region kernel's launches (see the module docstring); a region_result adds none."""
    if kernel.kind == "region_result":
        return
    _helpers(gm)
    node = kernel.root.node
    outer = gm.resolve
    ctl = outer(kernel.control)
    flag_on, flag_off = _at(ctl, 0), _at(ctl, 1)     # control[8:16]: the trip counter (i64)
    active = guard if guard is not None else NULL
    operands = [schedule.value_buffer[id(v)] for v in node.operands]
    results = [k.out for k in kernel.result_kernels]

    def region(r, ins, outs, region_guard):
        _emit_sub(gm, f"{name}_r{r}_", schedule, kernel, r, ins, outs, region_guard, code_of)

    if not has_trait(node, "loop"):
        _one_thread(gm, f"{name}_branch", _BRANCH, [active, outer(operands[0]), ctl])
        region(0, operands[1:], results, flag_on)
        region(1, operands[1:], results, flag_off)
        return
    limit = int(node.attrs.get("maximum_iterations", -1))
    carried = len(results)
    inputs = results + operands[carried:]
    _one_thread(gm, f"{name}_start", _START.format(nonzero="true" if limit != 0 else "false"), [active, ctl])
    for src, dst in zip(operands[:carried], results):
        _copy(gm, active, outer(dst), outer(src), dst.nbytes)
    start = len(gm.plan.launches)
    region(0, inputs, [kernel.flag], flag_on)
    _one_thread(gm, f"{name}_test", _TEST, [ctl, outer(kernel.flag)])
    region(1, inputs, kernel.next_state, flag_on)
    for src, dst in zip(kernel.next_state, results):
        _copy(gm, flag_on, outer(dst), outer(src), dst.nbytes)
    _one_thread(gm, f"{name}_next", _NEXT.format(limit=limit), [ctl])
    trip = gm.plan.launches[start:]
    del gm.plan.launches[start:]
    per_trip = max(1, len(trip))
    if 0 <= limit and limit * per_trip <= UNROLL_LAUNCHES:
        copies = limit
    elif guard is None:
        copies = max(1, min(CHUNK_TRIPS, UNROLL_LAUNCHES // per_trip, limit if limit > 0 else CHUNK_TRIPS))
        gm.plan.launches.append(Launch("", [flag_on], [1, 1, 1], [1, 1, 1], "repeat", copies * len(trip)))
    else:
        bound = "no maximum_iterations" if limit < 0 else f"maximum_iterations={limit} x {per_trip} launches"
        raise UnsupportedError(
            f"{node.describe()}: a while loop nested inside a cond or while runs on the GPU only when its "
            f"trips can be recorded in the run's CUDA graph ({bound}, at most {UNROLL_LAUNCHES} launches); "
            f"give it a smaller static maximum_iterations or run it on the CPU")
    for _ in range(copies):
        gm.plan.launches.extend(_fresh(x) for x in trip)


def _emit_sub(gm, prefix, schedule, kernel, r, ins, outs, guard, code_of):
    """Region r's sub-schedule into `gm`: its buffers resolved to the outer run's, its kernels
    guarded by `guard`, its checks reporting statuses of the outer numbering."""
    from .gpu import emit_schedule
    sub = kernel.subs[r]
    outer = gm.resolve
    workspace = outer(kernel.workspaces[r])
    consts = kernel.consts
    mapping = status_map(schedule, kernel, r)

    def resolve(buf):
        if buf.kind == PARAM:
            return outer(ins[buf.ref])
        if buf.kind == OUTPUT:
            return outer(outs[buf.ref])
        if buf.kind == CONST:
            return outer(consts[id(buf)])
        if buf.kind == "temp":
            return _at(workspace, buf.offset)
        raise UnsupportedError(f"{kernel.root.node.describe()}: a region buffer of kind {buf.kind}")

    gm.resolve = resolve
    try:
        emit_schedule(gm, sub, prefix, lambda q: code_of(mapping[q]), guard)
    finally:
        gm.resolve = outer
    for k, j in sorted(sub.output_aliases.items()):   # a result that is an earlier result: a copy
        _copy(gm, guard, outer(outs[k]), outer(outs[j]), outs[k].nbytes)


def guard_new(gm, first_function: int, first_launch: int, guard):
    """The kernels added since `first_function` / the launches since `first_launch` run only while
    the byte `guard` points at is nonzero: each kernel takes the guard first and returns at once
    while it is zero; each memset becomes a guarded zero fill."""
    for i in range(first_function, len(gm.functions)):
        gm.functions[i] = _guarded(gm.functions[i])
    launches = gm.plan.launches
    for i in range(first_launch, len(launches)):
        step = launches[i]
        if step.kernel:          # a kernel launch (a region inside is recorded whole: no repeat step here)
            step.args = [list(guard)] + step.args
        else:                    # a memset
            launches[i] = _fill_launch(guard, step.args[0], step.nbytes)


def _guarded(text: str) -> str:
    """The kernel with the guard as its first parameter and a new first block returning at once
    when the guard byte is zero (allocas move to that block, so they stay static)."""
    match = _HEAD.match(text)
    if match is None:             # a device function (a library kernel's body): called, not launched
        return text
    name, params, attrs = match.groups()
    params = ", ".join(["ptr %jf.guard"] + [p for p in params.split(", ") if p])
    lines = text[match.end():].split("\n")
    allocas = [line for line in lines if _ALLOCA.match(line)]
    body = [line for line in lines if not _ALLOCA.match(line)]
    if len(body) < 2 or body[0] != "" or not body[1].endswith(":"):
        raise UnsupportedError(f"GPU kernel {name}: its first block has no label to guard")
    check = ["jf.check:"] + allocas + ["  %jf.g = load i8, ptr %jf.guard", "  %jf.on = icmp ne i8 %jf.g, 0",
                                       f"  br i1 %jf.on, label %{body[1][:-1]}, label %jf.skip", "jf.skip:",
                                       "  ret void"]
    return "\n".join([f"define ptx_kernel void @{name}({params}) {attrs}{{"] + check + body[1:])


def _at(arg, offset: int) -> list:
    """A launch argument `offset` bytes past `arg` (a buffer or a place in one)."""
    if arg[0] == "buf":
        return ["at", arg[1], offset] if offset else list(arg)
    if arg[0] == "at":
        return ["at", arg[1], arg[2] + offset]
    raise UnsupportedError(f"no byte offset into a launch argument of kind {arg[0]}")


def _fresh(step: Launch) -> Launch:
    return Launch(step.kernel, [list(a) for a in step.args], list(step.grid), list(step.block), step.op,
                  step.nbytes)


# ---- the one-thread control kernels and the guarded copy / fill helpers --------------------------
_ACTIVE = """  %isnull = icmp eq ptr %parent, null
  br i1 %isnull, label %top, label %nested
nested:
  %pv = load i8, ptr %parent
  %pon = icmp ne i8 %pv, 0
  br label %go
top:
  br label %go
go:
  %active = phi i1 [ true, %top ], [ %pon, %nested ]
"""
_BRANCH = ("(ptr %parent, ptr %pred, ptr %ctl) {\nentry:\n" + _ACTIVE +
           """  %p = load i8, ptr %pred
  %t = icmp ne i8 %p, 0
  %f = xor i1 %t, true
  %on = and i1 %active, %t
  %off = and i1 %active, %f
  %on8 = zext i1 %on to i8
  %off8 = zext i1 %off to i8
  store i8 %on8, ptr %ctl
  %ctl1 = getelementptr inbounds i8, ptr %ctl, i64 1
  store i8 %off8, ptr %ctl1
  ret void
}
""")
_START = ("(ptr %parent, ptr %ctl) {{\nentry:\n" + _ACTIVE.replace("{", "{{").replace("}", "}}") +
          """  %on = and i1 %active, {nonzero}
  %on8 = zext i1 %on to i8
  store i8 %on8, ptr %ctl
  %cp = getelementptr inbounds i8, ptr %ctl, i64 8
  store i64 0, ptr %cp
  ret void
}}
""")
_TEST = """(ptr %ctl, ptr %pred) {
entry:
  %a = load i8, ptr %ctl
  %p = load i8, ptr %pred
  %stop = icmp eq i8 %p, 0
  %on = icmp ne i8 %a, 0
  %clear = and i1 %on, %stop
  br i1 %clear, label %off, label %done
off:
  store i8 0, ptr %ctl
  br label %done
done:
  ret void
}
"""
_NEXT = """(ptr %ctl) {{
entry:
  %a = load i8, ptr %ctl
  %on = icmp ne i8 %a, 0
  br i1 %on, label %count, label %done
count:
  %cp = getelementptr inbounds i8, ptr %ctl, i64 8
  %c = load i64, ptr %cp
  %c1 = add i64 %c, 1
  store i64 %c1, ptr %cp
  %bounded = icmp sge i64 {limit}, 0
  %at = icmp sge i64 %c1, {limit}
  %last = and i1 %bounded, %at
  br i1 %last, label %off, label %done
off:
  store i8 0, ptr %ctl
  br label %done
done:
  ret void
}}
"""


def _one_thread(gm, name: str, signature_and_body: str, args: list):
    gm.plan.kernels.append(name)
    gm.functions.append(f"define ptx_kernel void @{name}{signature_and_body}")
    gm.plan.launches.append(Launch(name, [list(a) for a in args], [1, 1, 1], [1, 1, 1]))


_COPY, _FILL = "jf_region_copy", "jf_region_fill"
_GRID_STRIDE = """  %tid = call i32 @llvm.nvvm.read.ptx.sreg.tid.x()
  %bid = call i32 @llvm.nvvm.read.ptx.sreg.ctaid.x()
  %nt = call i32 @llvm.nvvm.read.ptx.sreg.ntid.x()
  %nb = call i32 @llvm.nvvm.read.ptx.sreg.nctaid.x()
  %tid64 = zext i32 %tid to i64
  %bid64 = zext i32 %bid to i64
  %nt64 = zext i32 %nt to i64
  %nb64 = zext i32 %nb to i64
  %first0 = mul i64 %bid64, %nt64
  %first = add i64 %first0, %tid64
  %step = mul i64 %nb64, %nt64
  br label %head
head:
  %i = phi i64 [ %first, %start ], [ %i.next, %body ]
  %more = icmp ult i64 %i, %n
  br i1 %more, label %body, label %done
body:
"""
_SREGS = [f"declare i32 @llvm.nvvm.read.ptx.sreg.{r}.x()" for r in ("tid", "ctaid", "ntid", "nctaid")]


def _helpers(gm):
    """The guarded copy and zero fill, by 4-byte words or by bytes (grid-stride loops over n
    elements; a null guard means always)."""
    if _COPY + "1" in gm.plan.kernels:
        return
    gm.declarations.update(_SREGS)
    for width, t in ((1, "i8"), (4, "i32")):
        for name, params, value in (
                (_COPY, "ptr %dst, ptr %src", f"  %s = getelementptr inbounds {t}, ptr %src, i64 %i\n"
                                              f"  %v = load {t}, ptr %s\n"),
                (_FILL, "ptr %dst", f"  %v = add {t} 0, 0\n")):
            gm.plan.kernels.append(f"{name}{width}")
            gm.functions.append(
                f"define ptx_kernel void @{name}{width}(ptr %parent, {params}, i64 %n) {KERNEL_ATTRS} nounwind "
                "{\nentry:\n" + _ACTIVE + "  br i1 %active, label %start, label %done\nstart:\n" + _GRID_STRIDE
                + value + f"  %d = getelementptr inbounds {t}, ptr %dst, i64 %i\n  store {t} %v, ptr %d\n"
                + "  %i.next = add i64 %i, %step\n  br label %head\ndone:\n  ret void\n}\n")


def _words(nbytes: int, *args) -> tuple[int, int]:
    """(element width, element count): 4-byte words when the size and every offset allow."""
    aligned = nbytes % 4 == 0 and all(a[0] != "at" or a[2] % 4 == 0 for a in args)
    width = 4 if aligned else 1
    return width, nbytes // width


def _copy(gm, guard, dst, src, nbytes: int):
    width, n = _words(nbytes, dst, src)
    gm.plan.launches.append(Launch(f"{_COPY}{width}", [list(guard), dst, src, ["i64", n]], [grid_for(n), 1, 1],
                                   [BLOCK, 1, 1]))


def _fill_launch(guard, dst, nbytes: int) -> Launch:
    width, n = _words(nbytes, dst)
    return Launch(f"{_FILL}{width}", [list(guard), list(dst), ["i64", n]], [grid_for(n), 1, 1], [BLOCK, 1, 1])
