"""CPU code for structured control flow: the kernels of kind "region" (cond / while, planned by
jitflow/passes/region_schedule.py).

Each region's sub-schedule is compiled like a whole run (`cpu.generate_llvm_ir`), its symbols
renamed under a prefix, its `declare`s merged into the module's; its entry reads its buffers
from a slot table. The region kernel is a driver function that fills one slot table per region
with the outer buffers (boxed slots -- params and outputs, which the runtime passes as numpy
array objects -- get a stand-in object whose data pointer is the buffer) and then runs:

- cond: `if (*pred) then_entry(slots) else else_entry(slots)` -- only the taken branch runs;
- while: copy the initial values into the state buffers, then a native loop
  `for (i = 0; i != maximum_iterations; ++i) { cond_entry(); if (!flag) break; body_entry();
  state = next_state; }` -- no per-iteration Python and no per-iteration call from Python; the
  body is compiled once whatever the trip count.

A failing status of a region (a check, a singular matrix) is returned at once, its detail word
copied to the run's.
"""
from __future__ import annotations

import re

from jitflow.errors import UnsupportedError
from jitflow.ir.kernel_plan import CONST, OUTPUT, PARAM
from jitflow.ir.region_checks import status_map
from jitflow.ops.checks import CHECK_STATUS_BASE
from jitflow.ops.registry import has_trait
from jitflow.runtime.object_layout import BOXED_KINDS, NDARRAY_DATA_OFFSET

KINDS = ("region", "region_result")
MEMCPY = "declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)"
_DEFINED = re.compile(r"^(?:define [^@]*@|@)([A-Za-z_.$][\w.$]*)[ (=]", re.M)


def emit(name: str, schedule, kernel, declarations: set, blas: bool):
    """(text, buffers, returns_status) of a region kernel, or None for a region_result kernel
    (its region kernel writes it)."""
    if kernel.kind == "region_result":
        return None
    from . import cpu
    node = kernel.root.node
    buffers: list = []           # outer buffers passed to the driver, in parameter order

    def arg(buf) -> str:
        if all(b is not buf for b in buffers):
            buffers.append(buf)
        return f"%b{buf.id}"

    operands = [schedule.value_buffer[id(v)] for v in node.operands]
    results = [k.out for k in kernel.result_kernels]
    is_loop = has_trait(node, "loop")     # while; else cond (the op record's extra["loop"])
    if not is_loop:
        io = [(operands[1:], results), (operands[1:], results)]
    else:
        carried = len(results)
        inputs = results + operands[carried:]
        io = [(inputs, [kernel.flag]), (inputs, kernel.next_state)]
    modules, body = [], []
    for r, (sub, (ins, outs)) in enumerate(zip(kernel.subs, io)):
        prefix = f"{name}.r{r}"
        text, imports = cpu.generate_llvm_ir(sub, blas)
        del imports                # the declarations merged below bring them along
        modules.append(_rename(text, prefix, declarations))
        body.append(_fill_slots(r, sub, ins, outs, kernel, arg))
    declarations.add(MEMCPY)
    entry = f"@{name}.r{{}}.{cpu.ENTRY}"
    lines = []
    if not is_loop:
        pred = arg(operands[0])
        lines += body[0] + body[1]
        lines += [f"  %p = load i8, ptr {pred}", "  %taken = icmp ne i8 %p, 0",
                  "  br i1 %taken, label %then, label %else", "then:"]
        lines += _call(0, entry.format(0), kernel.subs[0], "done", io[0][1], arg, schedule, kernel) + ["else:"]
        lines += _call(1, entry.format(1), kernel.subs[1], "done", io[1][1], arg, schedule, kernel)
        lines += ["done:", "  ret i32 0"]
    else:
        limit = int(node.attrs.get("maximum_iterations", -1))
        lines += body[0] + body[1]
        for src, dst in zip(operands[:carried], results):
            lines.append(_memcpy(arg(dst), arg(src), dst))
        lines += ["  %it = alloca i64", "  store i64 0, ptr %it", "  br label %head", "head:",
                  "  %i = load i64, ptr %it"]
        if limit >= 0:
            lines += [f"  %over = icmp sge i64 %i, {limit}", "  br i1 %over, label %done, label %test"]
        else:
            lines += ["  br label %test"]
        lines += ["test:"] + _call(0, entry.format(0), kernel.subs[0], "check", io[0][1], arg, schedule, kernel)
        lines += ["check:", f"  %f = load i8, ptr {arg(kernel.flag)}", "  %go = icmp ne i8 %f, 0",
                  "  br i1 %go, label %body, label %done", "body:"]
        lines += _call(1, entry.format(1), kernel.subs[1], "next", io[1][1], arg, schedule, kernel) + ["next:"]
        for src, dst in zip(kernel.next_state, results):
            lines.append(_memcpy(arg(dst), arg(src), dst))
        lines += ["  %i.next = add i64 %i, 1", "  store i64 %i.next, ptr %it", "  br label %head",
                  "done:", "  ret i32 0"]
    params = ", ".join(f"ptr %b{b.id}" for b in buffers)
    head = [f"define i32 @{name}({params}, ptr %detail) nounwind {{", "entry:"]
    text = "\n".join(head + lines + ["}", ""] + modules)
    return text, list(buffers), cpu.DETAIL


def _fill_slots(r, sub, ins, outs, kernel, arg) -> list:
    """Allocates region r's slot table (one extra word: the sub-run's detail) and fills it."""
    n = len(sub.slots)
    lines = [f"  %s{r} = alloca [{n + 1} x ptr], align 8"]
    for i, buf in enumerate(sub.slots):
        if buf is None:
            target = arg(kernel.workspaces[r])
        elif buf.kind == PARAM:
            target = arg(ins[buf.ref])
        elif buf.kind == OUTPUT:
            target = arg(outs[buf.ref])
        elif buf.kind == CONST:
            target = arg(kernel.consts[id(buf)])
        else:
            raise UnsupportedError(f"{kernel.root.node.describe()}: a region buffer of kind {buf.kind}")
        slot = f"%s{r}.{i}"
        lines.append(f"  {slot} = getelementptr inbounds ptr, ptr %s{r}, i64 {i}")
        if buf is not None and buf.kind in BOXED_KINDS:   # a stand-in array object: data at its offset
            words = NDARRAY_DATA_OFFSET // 8 + 1
            lines += [f"  %o{r}.{i} = alloca [{words} x ptr], align 8",
                      f"  %o{r}.{i}.d = getelementptr inbounds i8, ptr %o{r}.{i}, i64 {NDARRAY_DATA_OFFSET}",
                      f"  store ptr {target}, ptr %o{r}.{i}.d", f"  store ptr %o{r}.{i}, ptr {slot}"]
        else:
            lines.append(f"  store ptr {target}, ptr {slot}")
    return lines


def _call(r, entry, sub, then, outs, arg, schedule, kernel) -> list:
    """Runs region r's entry; a failure returns at once; a region returning one value twice
    (an output alias) gets the copy the runtime makes for a whole run."""
    n = len(sub.slots)
    codes = {CHECK_STATUS_BASE + a: CHECK_STATUS_BASE + b              # a check's status, renumbered
             for a, b in status_map(schedule, kernel, r).items()}      # for the outer schedule
    cases = " ".join(f"i32 {a}, label %map{r}.{k}" for k, a in enumerate(codes))
    lines = [f"  %st{r} = call i32 {entry}(ptr %s{r})", f"  %bad{r} = icmp ne i32 %st{r}, 0",
             f"  br i1 %bad{r}, label %fail{r}, label %ok{r}", f"fail{r}:",
             f"  %dp{r} = getelementptr inbounds ptr, ptr %s{r}, i64 {n}",
             f"  %dv{r} = load i64, ptr %dp{r}", f"  store i64 %dv{r}, ptr %detail",
             f"  switch i32 %st{r}, label %pass{r} [ {cases} ]"]
    for k, b in enumerate(codes.values()):
        lines += [f"map{r}.{k}:", f"  ret i32 {b}"]
    lines += [f"pass{r}:", f"  ret i32 %st{r}", f"ok{r}:"]
    for k, j in sorted(sub.output_aliases.items()):
        lines.append(_memcpy(arg(outs[k]), arg(outs[j]), outs[k]))
    return lines + [f"  br label %{then}"]


def unique_declares(text: str) -> str:
    """The module text with repeated `declare` lines dropped (region sub-modules declare what the
    module's entry declares too)."""
    seen, out = set(), []
    for line in text.split("\n"):
        if line.startswith("declare "):
            if line in seen:
                continue
            seen.add(line)
        out.append(line)
    return "\n".join(out)


def _memcpy(dst: str, src: str, buf) -> str:
    return f"  call void @llvm.memcpy.p0.p0.i64(ptr {dst}, ptr {src}, i64 {buf.nbytes}, i1 false)"


def _rename(text: str, prefix: str, declarations: set) -> str:
    """The sub-module with every symbol it defines renamed `@prefix.name`; its declarations move
    to the module's set (declared once)."""
    kept = []
    for line in text.split("\n"):
        if line.startswith("declare "):
            declarations.add(line)
        else:
            kept.append(line)
    text = "\n".join(kept)
    defined = set(_DEFINED.findall(text))
    return re.sub(r"@([A-Za-z_.$][\w.$]*)", lambda m: f"@{prefix}.{m.group(1)}" if m.group(1) in defined
                  else m.group(0), text)
