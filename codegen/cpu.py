"""CPU code generation: a scheduled function -> one LLVM module -> object code
for the host CPU (its widest SIMD), and loading object code with ORC LLJIT.

The module has one exported entry point, `jf_entry(ptr slots) -> i32`: it
reads each buffer pointer from the slot array (arrays passed as numpy objects,
temps as offsets into the workspace slot), calls the kernels in schedule order and returns a status
(0 = ok, 1 = a matrix was not invertible, 2 = a gather index out of range, >= CHECK_STATUS_BASE: a
run-time check failed, jitflow/ops/checks.py; it returns at once and leaves the failing value in
the slot after the last one, the detail word).
"""
from __future__ import annotations

import itertools
import re
import threading
import time
import weakref
from dataclasses import dataclass

import llvmlite
import llvmlite.binding as llvm

from jitflow.ir.schedule import Schedule

from . import array_kernels, checks, library, loops, slab_kernels
from .loops import PHASE_FINISH, PHASE_INIT, PHASE_MAIN
from .scalar_llvm import exp_f32_helper, ipow_helper
from jitflow.errors import UnsupportedError
from jitflow.ops.checks import status_code

ENTRY = "jf_entry"
DETAIL = "detail"    # a call's returns_status when it also gets the run's detail word (checks)
_init_lock = threading.Lock()
_state: dict = {}
_library_ids = itertools.count()


def _initialize():
    with _init_lock:
        if "tm" not in _state:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            target = llvm.Target.from_default_triple()
            _state["cpu"] = llvm.get_host_cpu_name()
            _state["features"] = llvm.get_host_cpu_features().flatten()
            _state["tm"] = target.create_target_machine(cpu=_state["cpu"], features=_state["features"],
                                                        opt=3, jit=True)
            _state["triple"] = llvm.get_process_triple()
    return _state


def target_fingerprint() -> str:
    state = _initialize()
    return f"{state['triple']}|{state['cpu']}|{state['features']}|llvmlite {llvmlite.__version__}|" \
           f"llvm {'.'.join(map(str, llvm.llvm_version_info))}|threads {num_threads()}"


@dataclass
class CompiledModule:
    llvm_ir: str
    optimized_ir: str
    object_code: bytes
    compile_seconds: float
    imports: tuple


def generate_llvm_ir(schedule: Schedule, blas: bool) -> tuple[str, tuple]:
    declarations: set = set()
    functions, calls = [], []
    compiled: dict = {}     # canonical kernel text -> the function that has it
    emitted: dict = {}      # loop kernel signature (loops.loop_kernel_signature) -> (function, info, threads)
    kernels = list(schedule.kernels)
    index = -1
    while kernels:
        kernel = kernels.pop(0)
        index += 1
        name = f"k{index}_{kernel.kind}"
        returns_status = False
        info = None
        if kernel.group is not None:
            members = [kernel]
            while kernels and kernels[0].group == kernel.group:
                members.append(kernels.pop(0))
            name = f"k{index}_rows"
            text, buffers, info = loops.emit_row_group(name, schedule, members, declarations)
        elif kernel.kind == "loop":
            prepared = loops.prepare_loop_kernel(schedule, kernel)
            signature = loops.loop_kernel_signature(kernel, prepared)
            if signature in emitted:    # the same code over other buffers: no new LLVM text at all
                same_name, same_info, same_threads = emitted[signature]
                calls.append((same_name, prepared[2], False, same_info, same_threads))
                continue
            text, buffers, info = loops.emit_loop_kernel(name, schedule, kernel, declarations, prepared)
        elif kernel.kind == "reduce":
            text, buffers, *rest = loops.emit_reduce_kernel(name, schedule, kernel, declarations)
            info = rest[0] if rest else None
        elif kernel.kind == "concat":
            text, buffers = slab_kernels.emit_concat_kernel(name, schedule, kernel, declarations)
        elif kernel.kind == "scatter":
            text, buffers = slab_kernels.emit_scatter_kernel(name, schedule, kernel, declarations)
        elif kernel.kind == "random":
            text, buffers = library.emit_random(name, schedule, kernel, declarations)
        elif kernel.kind == "check":    # returns its status; also takes the detail word (codegen/checks.py)
            code = status_code(next(i for i, k in enumerate(schedule.kernels) if k is kernel))
            text, buffers = checks.emit_check_kernel(name, schedule, kernel, declarations, code)
            returns_status = DETAIL
        elif array_kernels.has_kernel(kernel.root.node):
            text, buffers, returns_status = array_kernels.emit(name, schedule, kernel, declarations)
        elif kernel.root.node.op == "matmul":
            text, buffers = library.emit_matmul(name, schedule, kernel, declarations, blas)
        elif kernel.root.node.op == "matrix_inverse":
            text, buffers = library.emit_inverse(name, schedule, kernel, declarations)
            returns_status = True
        else:
            raise UnsupportedError(f"no CPU kernel for {kernel.root.node.describe()}")
        threads = _threads_for(info)
        text = _canonical_kernel(text, name, buffers)
        key = (text, returns_status, repr(info), threads)
        if key in compiled:         # the same code over other buffers: call the one function again
            calls.append((compiled[key], buffers, returns_status, info, threads))
            if kernel.kind == "loop" and kernel.group is None:
                emitted[signature] = (compiled[key], info, threads)
            continue
        compiled[key] = name
        if kernel.kind == "loop" and kernel.group is None:
            emitted[signature] = (name, info, threads)
        functions.append(text.replace(f"@{KERNEL_NAME}(", f"@{name}("))
        if threads > 1:
            functions.append(_chunk_function(name, buffers))
        calls.append((name, buffers, returns_status, info, threads))
    entry = _entry_function(schedule, calls)
    parts, imports = [], []
    for decl in sorted(declarations, key=str):
        if isinstance(decl, tuple) and decl[0] == "helper" and decl[1] == "jf_exp":
            helper = exp_f32_helper()
            parts.append("\n".join(line for line in helper.splitlines()
                                    if not (line.startswith("declare") and line in declarations)))
        elif isinstance(decl, tuple) and decl[0] == "helper":
            from jitflow.ir.types import as_dtype
            parts.append(ipow_helper(as_dtype(decl[2])))
        elif isinstance(decl, tuple) and decl[0] == "philox":
            parts.append(library.philox_function())
        else:
            parts.append(decl)
            if "@jf_cblas_" in decl:   # resolved to the runtime's BLAS addresses at load time
                imports.append(decl.split("@")[1].split("(")[0])
    return _with_vector_width("\n".join(parts + functions + [entry])), tuple(sorted(imports))


KERNEL_NAME = "jf.kernel"
_BUFFER_PARAM = re.compile(r"%b(\d+)(?![\w.])")


def _canonical_kernel(text: str, name: str, buffers) -> str:
    """A kernel function's text modulo its name and its buffers' identities (parameters renamed by
    position), so structurally identical kernels (every layer of an MLP, every piece of a long
    chain) compare equal and are compiled once; marked noinline so that the optimizer sees many
    small functions, never one giant entry."""
    position = {b.id: i for i, b in enumerate(buffers)}

    def rename(match):
        i = position.get(int(match.group(1)))
        return match.group(0) if i is None else f"%jf.arg{i}"
    head, _, body = text.partition("\n")
    head = head.replace(f"@{name}(", f"@{KERNEL_NAME}(", 1)
    if ") nounwind {" in head:
        head = head.replace(") nounwind {", ") noinline nounwind {", 1)
    return _BUFFER_PARAM.sub(rename, head + "\n" + body)


def _with_vector_width(text: str) -> str:
    """On AVX-512 hosts, ask for 512-bit vectors: LLVM's tuning for several Intel cores
    otherwise prefers 256 bits, and the design promises the host's widest SIMD."""
    if "+avx512f" not in _initialize()["features"]:
        return text
    return "\n".join(line.replace(" nounwind {", ' nounwind "prefer-vector-width"="512" {')
                     if line.startswith("define ") else line for line in text.split("\n"))


# Slots of these kinds hold a numpy array object (its address, `id(array)`); the entry
# reads the data pointer from the object, which saves ~1 us per array per call compared
# with `array.ctypes.data`. runtime.executable checks the layout once at start-up.
BOXED_KINDS = ("param", "var", "output")
NDARRAY_DATA_OFFSET = 16   # PyArrayObject: PyObject_HEAD (refcount, type), then `char *data`
FLUSH_DENORMALS = 0x8040   # MXCSR flush-to-zero and denormals-are-zero, as TensorFlow and XLA run


def _entry_function(schedule: Schedule, calls) -> str:
    """Entry point; on x86 it runs the kernels with denormals flushed (a denormal
    in a softmax tail otherwise costs 100x per operation) and restores MXCSR."""
    x86 = _initialize()["triple"].startswith("x86_64")
    lines = [f"define i32 @{ENTRY}(ptr %slots) nounwind {{", "entry:"]
    if x86:
        lines += ["  %mxcsr.old.p = alloca i32, align 4", "  %mxcsr.new.p = alloca i32, align 4",
                  "  call void @llvm.x86.sse.stmxcsr(ptr %mxcsr.old.p)",
                  "  %mxcsr.old = load i32, ptr %mxcsr.old.p",
                  f"  %mxcsr.new = or i32 %mxcsr.old, {FLUSH_DENORMALS}",
                  "  store i32 %mxcsr.new, ptr %mxcsr.new.p",
                  "  call void @llvm.x86.sse.ldmxcsr(ptr %mxcsr.new.p)"]
    restore = ["  call void @llvm.x86.sse.ldmxcsr(ptr %mxcsr.old.p)"] if x86 else []
    pointers: dict[int, str] = {}
    workspace = None
    for buf in schedule.buffers:
        if buf.kind == "temp":
            if workspace is None:
                lines.append(f"  %ws.p = getelementptr inbounds ptr, ptr %slots, i64 {buf.slot}")
                lines.append("  %ws = load ptr, ptr %ws.p")
                workspace = "%ws"
            lines.append(f"  %buf{buf.id} = getelementptr inbounds i8, ptr %ws, i64 {buf.offset}")
        elif buf.kind in BOXED_KINDS:
            lines.append(f"  %slot{buf.id} = getelementptr inbounds ptr, ptr %slots, i64 {buf.slot}")
            lines.append(f"  %obj{buf.id} = load ptr, ptr %slot{buf.id}")
            lines.append(f"  %data{buf.id} = getelementptr inbounds i8, ptr %obj{buf.id}, i64 {NDARRAY_DATA_OFFSET}")
            lines.append(f"  %buf{buf.id} = load ptr, ptr %data{buf.id}")
        else:
            lines.append(f"  %slot{buf.id} = getelementptr inbounds ptr, ptr %slots, i64 {buf.slot}")
            lines.append(f"  %buf{buf.id} = load ptr, ptr %slot{buf.id}")
        pointers[buf.id] = f"%buf{buf.id}"
    if any(call[2] == DETAIL for call in calls):
        # the slot after the last one: an i64 where a failing check leaves the failing value
        lines.append(f"  %detail = getelementptr inbounds ptr, ptr %slots, i64 {len(schedule.slots)}")
    uses_threads = False
    tables: list[str] = []
    n = 0
    while n < len(calls):
        name, buffers, returns_status, info, threads = calls[n]
        period, repeats = _call_run(calls, n)
        if repeats > 1:          # one loop over a table of buffer offsets instead of period * repeats calls
            lines.extend(_table_loop(n, calls[n:n + period], repeats, calls[n:n + period * repeats], pointers,
                                     tables))
            n += period * repeats
            continue
        args = ", ".join(f"ptr {pointers[b.id]}" for b in buffers)
        if info is not None and threads > 1:
            lines.extend(_parallel_call(n, name, buffers, pointers, info, threads))
            uses_threads = True
        elif info is not None:
            lines.append(f"  call void @{name}({args}, i64 0, i64 {info.extent}, i32 7)")
        elif returns_status:
            if returns_status == DETAIL:
                args += ", ptr %detail"
            lines.append(f"  %st{n} = call i32 @{name}({args})")
            lines.append(f"  %bad{n} = icmp ne i32 %st{n}, 0")
            lines.append(f"  br i1 %bad{n}, label %fail{n}, label %ok{n}")
            lines.append(f"fail{n}:")
            lines.extend(restore)
            lines.append(f"  ret i32 %st{n}")
            lines.append(f"ok{n}:")
        else:
            lines.append(f"  call void @{name}({args})")
        n += 1
    lines += restore + ["  ret i32 0", "}", ""] + tables
    if x86:
        lines += ["declare void @llvm.x86.sse.stmxcsr(ptr)", "declare void @llvm.x86.sse.ldmxcsr(ptr)", ""]
    if uses_threads:
        lines += ["declare i32 @pthread_create(ptr, ptr, ptr, ptr)", "declare i32 @pthread_join(i64, ptr)", ""]
    return "\n".join(lines)


# ---- repeated groups of calls: a deep chain's entry would otherwise hold one call per kernel -----
RUN_MIN_REPEATS = 16    # a group of calls repeated this often becomes a loop over an offset table
RUN_MAX_PERIOD = 4      # groups of up to this many calls (a chain step is often 2 kernels)


def _call_shape(call):
    """What must match for two calls to share a loop: function, kind of call, extent."""
    name, buffers, returns_status, info, threads = call
    if returns_status or (info is not None and threads > 1):
        return None
    return name, len(buffers), None if info is None else info.extent


def _same_call_but_temps(a, b) -> bool:
    """b runs a's function the same way; arguments differ only where both pass workspace temps."""
    return _call_shape(a) is not None and _call_shape(a) == _call_shape(b) and all(
        x.id == y.id or (x.kind == "temp" and y.kind == "temp") for x, y in zip(a[1], b[1]))


def _call_run(calls, start) -> tuple:
    """(period, repeats) of the longest repetition of a group of calls starting at `start`."""
    best = (1, 1)
    for period in range(1, RUN_MAX_PERIOD + 1):
        repeats = 1
        while start + (repeats + 1) * period <= len(calls) and all(
                _same_call_but_temps(calls[start + i], calls[start + repeats * period + i]) for i in range(period)):
            repeats += 1
        if repeats >= RUN_MIN_REPEATS and period * repeats > best[0] * best[1]:
            best = (period, repeats)
    return best


def _table_loop(n, group, repeats, calls, pointers, tables) -> list:
    """`for r in range(repeats): <the group's calls with ws + offsets[r][j]>`, the offsets in a
    constant table (emitted after the function into `tables`). Keeps the entry small, LLVM linear."""
    period = len(group)
    varying = [(i, k) for i, call in enumerate(group) for k in range(len(call[1]))
               if any(calls[r * period + i][1][k].id != call[1][k].id for r in range(repeats))]
    row_type = f"[{len(varying)} x i64]"
    table = f"@jf.run{n}"
    rows = ", ".join(f"{row_type} [" + ", ".join(f"i64 {calls[r * period + i][1][k].offset}" for i, k in varying)
                     + "]" for r in range(repeats))
    tables.append(f"{table} = private unnamed_addr constant [{repeats} x {row_type}] [{rows}]")
    lines = [f"  %ctr{n} = alloca i64", f"  store i64 0, ptr %ctr{n}", f"  br label %run{n}", f"run{n}:",
             f"  %i{n} = load i64, ptr %ctr{n}"]
    for j, _ in enumerate(varying):
        lines += [f"  %o{n}.{j}.p = getelementptr inbounds [{repeats} x {row_type}], ptr {table}, i64 0, "
                  f"i64 %i{n}, i64 {j}",
                  f"  %o{n}.{j} = load i64, ptr %o{n}.{j}.p",
                  f"  %a{n}.{j} = getelementptr inbounds i8, ptr %ws, i64 %o{n}.{j}"]
    for i, (name, buffers, _, info, _) in enumerate(group):
        args = [f"ptr %a{n}.{varying.index((i, k))}" if (i, k) in varying else f"ptr {pointers[b.id]}"
                for k, b in enumerate(buffers)]
        tail = f", i64 0, i64 {info.extent}, i32 7" if info is not None else ""
        lines.append(f"  call void @{name}({', '.join(args)}{tail})")
    lines += [f"  %i{n}.next = add i64 %i{n}, 1", f"  store i64 %i{n}.next, ptr %ctr{n}",
              f"  %done{n} = icmp eq i64 %i{n}.next, {repeats}",
              f"  br i1 %done{n}, label %run{n}.end, label %run{n}", f"run{n}.end:"]
    return lines

# ---- threads: large loops are split across the cores ------------------------------------------
PARALLEL_MIN_WORK = 1 << 18   # innermost iterations below which a thread costs more than it saves


def num_threads() -> int:
    """Worker count for parallel loops: JITFLOW_NUM_THREADS (validated once: a bad value warns,
    naming the variable, and the CPU count is used), else the CPUs this process may use."""
    import os
    from jitflow.envvars import env_int
    try:
        available = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # pragma: no cover - not Linux
        available = max(1, os.cpu_count() or 1)
    return min(env_int("JITFLOW_NUM_THREADS", available), MAX_THREADS)


MAX_THREADS = 4096   # beyond this, thread creation costs more than any loop saves


def _threads_for(info) -> int:
    if info is None or not info.splittable or info.work < PARALLEL_MIN_WORK:
        return 1
    return max(1, min(num_threads(), info.extent))


# A parallel loop passes each thread ONE small record {ptr header, i64 start, i64 stop}; the header
# (the kernel's buffer pointers) is shared. Spawning and joining are loops over the thread index,
# so the code size does not depend on the thread count (it was unrolled once per thread).
_THREAD_ARGS = "{ ptr, i64, i64 }"


def _chunk_function(name: str, buffers) -> str:
    """`ptr name_chunk(ptr args)`: the pthread start routine running one slice of the outer loop."""
    at, header = _THREAD_ARGS, f"[{len(buffers)} x ptr]"
    x86 = _initialize()["triple"].startswith("x86_64")
    lines = [f"define internal ptr @{name}_chunk(ptr %args) nounwind {{", "entry:"]
    if x86:
        lines += ["  %mx = alloca i32, align 4", "  call void @llvm.x86.sse.stmxcsr(ptr %mx)",
                  "  %mx.v = load i32, ptr %mx", f"  %mx.f = or i32 %mx.v, {FLUSH_DENORMALS}",
                  "  store i32 %mx.f, ptr %mx", "  call void @llvm.x86.sse.ldmxcsr(ptr %mx)"]
    lines += [f"  %hdr.a = getelementptr inbounds {at}, ptr %args, i32 0, i32 0",
              "  %hdr = load ptr, ptr %hdr.a"]
    args = []
    for i, buf in enumerate(buffers):
        lines.append(f"  %p{i}.a = getelementptr inbounds {header}, ptr %hdr, i64 0, i64 {i}")
        lines.append(f"  %p{i} = load ptr, ptr %p{i}.a")
        args.append(f"ptr %p{i}")
    lines += [f"  %start.a = getelementptr inbounds {at}, ptr %args, i32 0, i32 1",
              "  %start = load i64, ptr %start.a",
              f"  %stop.a = getelementptr inbounds {at}, ptr %args, i32 0, i32 2",
              "  %stop = load i64, ptr %stop.a",
              f"  call void @{name}({', '.join(args)}, i64 %start, i64 %stop, i32 {PHASE_MAIN})",
              "  ret ptr null", "}", ""]
    return "\n".join(lines)


def _parallel_call(n: int, name: str, buffers, pointers, info, threads: int) -> list:
    """Init phase here; the outer loop split in `threads` slices [E*t/T, E*(t+1)/T) (threads
    1..T-1 spawned in a loop, the caller runs slice 0; a slice whose thread could not be created
    runs inline), a join loop, then the finish phase."""
    at, header = _THREAD_ARGS, f"[{len(buffers)} x ptr]"
    args = ", ".join(f"ptr {pointers[b.id]}" for b in buffers)
    extent, p = info.extent, f"%par{n}"
    lines = [f"  call void @{name}({args}, i64 0, i64 {extent}, i32 {PHASE_INIT})",
             f"  {p}.hdr = alloca {header}, align 8"]
    for i, buf in enumerate(buffers):
        lines += [f"  {p}.hp{i} = getelementptr inbounds {header}, ptr {p}.hdr, i64 0, i64 {i}",
                  f"  store ptr {pointers[buf.id]}, ptr {p}.hp{i}"]
    lines += [f"  {p}.argv = alloca {at}, i64 {threads}, align 8",
              f"  {p}.tids = alloca i64, i64 {threads}, align 8",
              f"  {p}.spawned = alloca i32, i64 {threads}, align 4",
              f"  br label %par{n}.pre",
              f"par{n}.pre:",
              f"  br label %par{n}.fill",
              f"par{n}.fill:",           # every thread's record: header, start, stop
              f"  {p}.t = phi i64 [0, %par{n}.pre], [{p}.t1, %par{n}.fill]",
              f"  {p}.a = getelementptr inbounds {at}, ptr {p}.argv, i64 {p}.t",
              f"  {p}.ah = getelementptr inbounds {at}, ptr {p}.a, i32 0, i32 0",
              f"  store ptr {p}.hdr, ptr {p}.ah",
              f"  {p}.lo.m = mul i64 {p}.t, {extent}",
              f"  {p}.lo = udiv i64 {p}.lo.m, {threads}",
              f"  {p}.t1 = add i64 {p}.t, 1",
              f"  {p}.hi.m = mul i64 {p}.t1, {extent}",
              f"  {p}.hi = udiv i64 {p}.hi.m, {threads}",
              f"  {p}.as = getelementptr inbounds {at}, ptr {p}.a, i32 0, i32 1",
              f"  store i64 {p}.lo, ptr {p}.as",
              f"  {p}.ae = getelementptr inbounds {at}, ptr {p}.a, i32 0, i32 2",
              f"  store i64 {p}.hi, ptr {p}.ae",
              f"  {p}.filled = icmp eq i64 {p}.t1, {threads}",
              f"  br i1 {p}.filled, label %par{n}.spawn.pre, label %par{n}.fill",
              f"par{n}.spawn.pre:",
              f"  br label %par{n}.spawn",
              f"par{n}.spawn:",          # threads 1..T-1
              f"  {p}.s = phi i64 [1, %par{n}.spawn.pre], [{p}.s1, %par{n}.spawn.next]",
              f"  {p}.sa = getelementptr inbounds {at}, ptr {p}.argv, i64 {p}.s",
              f"  {p}.stid = getelementptr inbounds i64, ptr {p}.tids, i64 {p}.s",
              f"  {p}.rc = call i32 @pthread_create(ptr {p}.stid, ptr null, ptr @{name}_chunk, ptr {p}.sa)",
              f"  {p}.ssp = getelementptr inbounds i32, ptr {p}.spawned, i64 {p}.s",
              f"  store i32 {p}.rc, ptr {p}.ssp",
              f"  {p}.sfail = icmp ne i32 {p}.rc, 0",
              f"  br i1 {p}.sfail, label %par{n}.inline, label %par{n}.spawn.next",
              f"par{n}.inline:",         # no thread: run the slice here
              f"  {p}.in = call ptr @{name}_chunk(ptr {p}.sa)",
              f"  br label %par{n}.spawn.next",
              f"par{n}.spawn.next:",
              f"  {p}.s1 = add i64 {p}.s, 1",
              f"  {p}.sdone = icmp eq i64 {p}.s1, {threads}",
              f"  br i1 {p}.sdone, label %par{n}.own, label %par{n}.spawn",
              f"par{n}.own:",
              f"  {p}.mine = call ptr @{name}_chunk(ptr {p}.argv)",
              f"  br label %par{n}.join",
              f"par{n}.join:",
              f"  {p}.j = phi i64 [1, %par{n}.own], [{p}.j1, %par{n}.join.next]",
              f"  {p}.jsp = getelementptr inbounds i32, ptr {p}.spawned, i64 {p}.j",
              f"  {p}.jspv = load i32, ptr {p}.jsp",
              f"  {p}.jdo = icmp eq i32 {p}.jspv, 0",
              f"  br i1 {p}.jdo, label %par{n}.join.do, label %par{n}.join.next",
              f"par{n}.join.do:",
              f"  {p}.jtid = getelementptr inbounds i64, ptr {p}.tids, i64 {p}.j",
              f"  {p}.jtidv = load i64, ptr {p}.jtid",
              f"  {p}.jr = call i32 @pthread_join(i64 {p}.jtidv, ptr null)",
              f"  br label %par{n}.join.next",
              f"par{n}.join.next:",
              f"  {p}.j1 = add i64 {p}.j, 1",
              f"  {p}.jdone = icmp eq i64 {p}.j1, {threads}",
              f"  br i1 {p}.jdone, label %par{n}.done, label %par{n}.join",
              f"par{n}.done:",
              f"  call void @{name}({args}, i64 0, i64 {extent}, i32 {PHASE_FINISH})"]
    return lines


def compile_llvm_ir(text: str, imports: tuple) -> CompiledModule:
    """-O3 and object emission, in a recycled worker process: llvmlite's pass manager leaks native
    memory on every run (codegen/llvm_worker.py, codegen/compile_pool.py)."""
    from . import compile_pool
    state = _initialize()
    start = time.perf_counter()
    optimized_ir, object_code = compile_pool.optimize(text, state["cpu"], state["features"])
    return CompiledModule(text, optimized_ir, object_code, time.perf_counter() - start, imports)


def native_assembly(optimized_ir: str) -> str:
    state = _initialize()
    module = llvm.parse_assembly(optimized_ir)
    return state["tm"].emit_assembly(module)


_live_libraries = [0]     # LoadedCode objects whose machine code is linked in (tests watch it)


def live_libraries() -> int:
    return _live_libraries[0]


def _unloaded(tracker):
    """Finalizer of a LoadedCode: removes its code from the JIT now (not whenever the tracker is
    collected), so a dropped Executable gives its memory back deterministically. No lock here:
    the garbage collector may run this while this thread holds _init_lock."""
    tracker.close()
    _live_libraries[0] -= 1


class LoadedCode:
    """Object code linked into the process; unloaded from the JIT when this object is collected."""

    def __init__(self, object_code: bytes, symbol_addresses: dict):
        state = _initialize()
        with _init_lock:
            if "jit" not in state:
                state["jit"] = llvm.create_lljit_compiler(state["tm"])
        builder = llvm.JITLibraryBuilder().add_object_img(object_code).add_current_process()
        for name, address in symbol_addresses.items():
            builder.import_symbol(name, address)
        builder.export_symbol(ENTRY)
        with _init_lock:
            self.library = f"jf_lib{next(_library_ids)}"
            self._tracker = builder.link(state["jit"], self.library)
            _live_libraries[0] += 1
        self.entry_address = self._tracker[ENTRY]
        weakref.finalize(self, _unloaded, self._tracker)
