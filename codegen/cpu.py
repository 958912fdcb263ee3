"""CPU code generation: a scheduled function -> one LLVM module -> object code
for the host CPU (its widest SIMD), and loading object code with ORC LLJIT.

The module has one exported entry point, `jf_entry(ptr slots) -> i32`: it
reads each buffer pointer from the slot array (arrays passed as numpy objects,
temps as offsets into the workspace slot), calls the kernels in schedule order and returns a status
(0 = ok, 1 = a matrix was not invertible).
"""
from __future__ import annotations

import itertools
import threading
import time
import weakref
from dataclasses import dataclass

import llvmlite
import llvmlite.binding as llvm

from jitflow.ir.schedule import Schedule

from . import array_kernels, library, loops
from .loops import PHASE_FINISH, PHASE_INIT, PHASE_MAIN
from .scalar_llvm import exp_f32_helper, ipow_helper
from jitflow.errors import UnsupportedError

ENTRY = "jf_entry"
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
            text, buffers, info = loops.emit_loop_kernel(name, schedule, kernel, declarations)
        elif kernel.kind == "reduce":
            text, buffers, *rest = loops.emit_reduce_kernel(name, schedule, kernel, declarations)
            info = rest[0] if rest else None
        elif kernel.kind == "concat":
            text, buffers = loops.emit_concat_kernel(name, schedule, kernel, declarations)
        elif kernel.kind == "scatter":
            text, buffers = loops.emit_scatter_kernel(name, schedule, kernel, declarations)
        elif kernel.kind == "random":
            text, buffers = library.emit_random(name, schedule, kernel, declarations)
        elif array_kernels.has_kernel(kernel.root.node):
            text, buffers, returns_status = array_kernels.emit(name, schedule, kernel, declarations)
        elif kernel.root.node.op == "matmul":
            text, buffers = library.emit_matmul(name, schedule, kernel, declarations, blas)
        elif kernel.root.node.op == "matrix_inverse":
            text, buffers = library.emit_inverse(name, schedule, kernel, declarations)
            returns_status = True
        else:
            raise UnsupportedError(f"no CPU kernel for {kernel.root.node.describe()}")
        functions.append(text)
        threads = _threads_for(info)
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
    uses_threads = False
    for n, (name, buffers, returns_status, info, threads) in enumerate(calls):
        args = ", ".join(f"ptr {pointers[b.id]}" for b in buffers)
        if info is not None and threads > 1:
            lines.extend(_parallel_call(n, name, buffers, pointers, info, threads))
            uses_threads = True
        elif info is not None:
            lines.append(f"  call void @{name}({args}, i64 0, i64 {info.extent}, i32 7)")
        elif returns_status:
            lines.append(f"  %st{n} = call i32 @{name}({args})")
            lines.append(f"  %bad{n} = icmp ne i32 %st{n}, 0")
            lines.append(f"  br i1 %bad{n}, label %fail{n}, label %ok{n}")
            lines.append(f"fail{n}:")
            lines.extend(restore)
            lines.append(f"  ret i32 %st{n}")
            lines.append(f"ok{n}:")
        else:
            lines.append(f"  call void @{name}({args})")
    lines += restore + ["  ret i32 0", "}", ""]
    if x86:
        lines += ["declare void @llvm.x86.sse.stmxcsr(ptr)", "declare void @llvm.x86.sse.ldmxcsr(ptr)", ""]
    if uses_threads:
        lines += ["declare i32 @pthread_create(ptr, ptr, ptr, ptr)", "declare i32 @pthread_join(i64, ptr)", ""]
    return "\n".join(lines)


# ---- threads: large loops are split across the cores ------------------------------------------
PARALLEL_MIN_WORK = 1 << 18   # innermost iterations below which a thread costs more than it saves


def num_threads() -> int:
    """Worker count for parallel loops: JITFLOW_NUM_THREADS, else the CPUs this process may use."""
    import os
    explicit = os.environ.get("JITFLOW_NUM_THREADS")
    if explicit:
        return max(1, int(explicit))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _threads_for(info) -> int:
    if info is None or not info.splittable or info.work < PARALLEL_MIN_WORK:
        return 1
    return max(1, min(num_threads(), info.extent))


def _args_type(buffers) -> str:
    return f"{{ [{len(buffers)} x ptr], i64, i64 }}"


def _chunk_function(name: str, buffers) -> str:
    """`ptr name_chunk(ptr args)`: the pthread start routine running one slice of the outer loop."""
    at = _args_type(buffers)
    x86 = _initialize()["triple"].startswith("x86_64")
    lines = [f"define internal ptr @{name}_chunk(ptr %args) nounwind {{", "entry:"]
    if x86:
        lines += ["  %mx = alloca i32, align 4", "  call void @llvm.x86.sse.stmxcsr(ptr %mx)",
                  "  %mx.v = load i32, ptr %mx", f"  %mx.f = or i32 %mx.v, {FLUSH_DENORMALS}",
                  "  store i32 %mx.f, ptr %mx", "  call void @llvm.x86.sse.ldmxcsr(ptr %mx)"]
    args = []
    for i, buf in enumerate(buffers):
        lines.append(f"  %p{i}.a = getelementptr inbounds {at}, ptr %args, i32 0, i32 0, i32 {i}")
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
    """Init phase here, the outer loop split in `threads` slices (the caller runs the first), join, finish."""
    at = _args_type(buffers)
    args = ", ".join(f"ptr {pointers[b.id]}" for b in buffers)
    lines = [f"  call void @{name}({args}, i64 0, i64 {info.extent}, i32 {PHASE_INIT})",
             f"  %tids{n} = alloca [{threads} x i64], align 8",
             f"  %argv{n} = alloca [{threads} x {at}], align 8",
             f"  %spawned{n} = alloca [{threads} x i32], align 4"]
    bounds = [info.extent * t // threads for t in range(threads + 1)]
    for t in range(threads):
        a = f"%a{n}_{t}"
        lines.append(f"  {a} = getelementptr inbounds [{threads} x {at}], ptr %argv{n}, i32 0, i32 {t}")
        for i, buf in enumerate(buffers):
            lines.append(f"  %a{n}_{t}_{i} = getelementptr inbounds {at}, ptr {a}, i32 0, i32 0, i32 {i}")
            lines.append(f"  store ptr {pointers[buf.id]}, ptr %a{n}_{t}_{i}")
        for field, value in ((1, bounds[t]), (2, bounds[t + 1])):
            lines.append(f"  %a{n}_{t}_f{field} = getelementptr inbounds {at}, ptr {a}, i32 0, i32 {field}")
            lines.append(f"  store i64 {value}, ptr %a{n}_{t}_f{field}")
    for t in range(1, threads):
        tid = f"%tid{n}_{t}"
        lines += [f"  {tid} = getelementptr inbounds [{threads} x i64], ptr %tids{n}, i32 0, i32 {t}",
                  f"  %rc{n}_{t} = call i32 @pthread_create(ptr {tid}, ptr null, ptr @{name}_chunk, ptr %a{n}_{t})",
                  f"  %sp{n}_{t} = getelementptr inbounds [{threads} x i32], ptr %spawned{n}, i32 0, i32 {t}",
                  f"  store i32 %rc{n}_{t}, ptr %sp{n}_{t}",
                  f"  %failed{n}_{t} = icmp ne i32 %rc{n}_{t}, 0",
                  f"  br i1 %failed{n}_{t}, label %inline{n}_{t}, label %next{n}_{t}",
                  f"inline{n}_{t}:",   # no thread: run the slice here
                  f"  %in{n}_{t} = call ptr @{name}_chunk(ptr %a{n}_{t})",
                  f"  br label %next{n}_{t}",
                  f"next{n}_{t}:"]
    lines.append(f"  %own{n} = call ptr @{name}_chunk(ptr %a{n}_0)")
    for t in range(1, threads):
        lines += [f"  %spv{n}_{t} = load i32, ptr %sp{n}_{t}",
                  f"  %dojoin{n}_{t} = icmp eq i32 %spv{n}_{t}, 0",
                  f"  br i1 %dojoin{n}_{t}, label %join{n}_{t}, label %joined{n}_{t}",
                  f"join{n}_{t}:",
                  f"  %tidv{n}_{t} = load i64, ptr %tid{n}_{t}",
                  f"  %jr{n}_{t} = call i32 @pthread_join(i64 %tidv{n}_{t}, ptr null)",
                  f"  br label %joined{n}_{t}",
                  f"joined{n}_{t}:"]
    lines.append(f"  call void @{name}({args}, i64 0, i64 {info.extent}, i32 {PHASE_FINISH})")
    return lines


def compile_llvm_ir(text: str, imports: tuple) -> CompiledModule:
    state = _initialize()
    start = time.perf_counter()
    module = llvm.parse_assembly(text)
    module.triple = state["triple"]
    module.data_layout = str(state["tm"].target_data)
    module.verify()
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    tuning.loop_interleaving = True     # several vector accumulators per loop (reductions need them)
    tuning.loop_unrolling = False       # unrolling tripled object size and compile time for no speed gain
    pass_builder = llvm.create_pass_builder(state["tm"], tuning)
    pass_builder.getModulePassManager().run(module, pass_builder)
    object_code = state["tm"].emit_object(module)
    return CompiledModule(text, str(module), object_code, time.perf_counter() - start, imports)


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
