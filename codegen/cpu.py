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

from jitflow.ir.kernel_plan import Schedule

from . import checks, library, loops, symdims, thread_pool
from .kernel_table import register_cpu_kernels
from .llvm_worker import object_images
from . import control_flow
from .loops import PHASE_FINISH, PHASE_INIT, PHASE_MAIN
from .scalar_llvm import exp_f32_helper, ipow_helper
from jitflow.errors import UnsupportedError
from jitflow.ops.checks import status_code
from jitflow.ops.registry import kernel_emitter
from jitflow.runtime.object_layout import BOXED_KINDS, NDARRAY_DATA_OFFSET  # the runtime's calling convention

ENTRY = "jf_entry"
DETAIL = "detail"    # a call's returns_status when it also gets the run's detail word (checks)
_init_lock = threading.Lock()
_state: dict = {}
_library_ids = itertools.count()
register_cpu_kernels()      # library kernels: the registry's kernel table (codegen/kernel_table.py)


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


def quick_target_machine():
    """This host's target at code-generation level 0 (llvm_worker._quick_target_machine)."""
    from .llvm_worker import _quick_target_machine
    state = _initialize()
    return _quick_target_machine(state["cpu"], state["features"])


def prepare_jit():
    """LLVM's native target and the process's JIT, made now (runtime/warmup.py) rather than at the first load."""
    state = _initialize()
    with _init_lock:
        if "jit" not in state:
            state["jit"] = llvm.create_lljit_compiler(state["tm"])


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
        elif kernel.kind == "random":
            text, buffers = library.emit_random(name, schedule, kernel, declarations)
        elif kernel.kind in control_flow.KINDS:     # cond / while: branches and native loops
            if (region := control_flow.emit(name, schedule, kernel, declarations, blas)) is None:
                continue
            text, buffers, returns_status = region
        elif kernel.kind == "check":    # returns its status; also takes the detail word (codegen/checks.py)
            code = status_code(next(i for i, k in enumerate(schedule.kernels) if k is kernel))
            text, buffers = checks.emit_check_kernel(name, schedule, kernel, declarations, code)
            returns_status = DETAIL
        elif (emitter := kernel_emitter(kernel.root.node, "cpu")) is not None:
            # a library kernel, by its op record's extra["kernel"] (the registry's kernel table)
            text, buffers, returns_status, info = emitter(name, schedule, kernel, declarations, blas)
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
    functions, entry = symdims.define_module_dims(schedule, functions, entry, parts)   # polymorphic runs
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
    return _with_vector_width(control_flow.unique_declares("\n".join(parts + functions + [entry]))), \
        tuple(sorted(imports))


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
            lines.extend(symdims.threads_at_run_time(n, name, args, info, PARALLEL_MIN_WORK,  # symbolic work
                                                     _parallel_call(n, name, buffers, pointers, info, threads)))
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
        lines += [thread_pool.declaration(), ""]
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
        x.id == y.id or (x.kind == y.kind == "temp" and symdims.fixed_offsets(x, y)) for x, y in zip(a[1], b[1]))


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
    if info is None or not info.splittable or symdims.below(info.work, PARALLEL_MIN_WORK):
        return 1    # symbolic work (shape-polymorphic): whether threads pay is decided at run time (symdims.py)
    return num_threads() if symdims.is_symbolic(info.work) else max(1, min(num_threads(), info.extent))


def _chunk_function(name: str, buffers) -> str:
    """`void name_chunk(ptr header, i64 start, i64 stop)`: one slice of the outer loop, run by the pool."""
    x86 = _initialize()["triple"].startswith("x86_64")
    return thread_pool.chunk_function(name, buffers, x86, FLUSH_DENORMALS, PHASE_MAIN)


def _parallel_call(n: int, name: str, buffers, pointers, info, threads: int) -> list:
    """Init phase here; the outer loop as one job of the persistent pool (codegen/thread_pool.py:
    the caller and up to threads - 1 workers claim chunks; no worker: it runs inline), then the
    finish phase."""
    return thread_pool.parallel_call(n, name, buffers, pointers, info, threads, PHASE_INIT, PHASE_FINISH)


def compile_llvm_ir(text: str, imports: tuple, worker_only: bool = False, quick: bool = False) -> CompiledModule:
    """-O3 and object emission, in a recycled worker process: llvmlite's pass manager leaks native
    memory on every run (codegen/llvm_worker.py, codegen/compile_pool.py). `worker_only`: never
    in this process (background compiles, runtime/tiered_build.py). `quick`: a quick-tier module,
    its unoptimized functions emitted at code-generation level 0 (llvm_worker.quick_objects)."""
    from . import compile_pool
    state = _initialize()
    start = time.perf_counter()
    optimized_ir, object_code = compile_pool.optimize(text, state["cpu"], state["features"], worker_only, quick)
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
        builder = llvm.JITLibraryBuilder()
        for image in object_images(object_code):        # a quick-tier module may be two objects
            builder.add_object_img(image)
        builder.add_current_process()
        for name, address in symbol_addresses.items():
            builder.import_symbol(name, address)
        if thread_pool.needs_pool(object_code):      # the persistent pool, linked once per process
            builder.import_symbol(thread_pool.RUN_SYMBOL, thread_pool.run_address())
        builder.export_symbol(ENTRY)
        with _init_lock:
            self.library = f"jf_lib{next(_library_ids)}"
            self._tracker = builder.link(state["jit"], self.library)
            _live_libraries[0] += 1
        self.entry_address = self._tracker[ENTRY]
        weakref.finalize(self, _unloaded, self._tracker)
