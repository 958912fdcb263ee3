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
from dataclasses import dataclass

import llvmlite
import llvmlite.binding as llvm

from jitflow.ir.schedule import Schedule

from . import library, loops
from .scalar_llvm import exp_f32_helper, ipow_helper

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
           f"llvm {'.'.join(map(str, llvm.llvm_version_info))}"


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
    for index, kernel in enumerate(schedule.kernels):
        name = f"k{index}_{kernel.kind}"
        returns_status = False
        if kernel.kind == "loop":
            text, buffers = loops.emit_loop_kernel(name, schedule, kernel, declarations)
        elif kernel.kind == "reduce":
            text, buffers = loops.emit_reduce_kernel(name, schedule, kernel, declarations)
        elif kernel.kind == "concat":
            text, buffers = loops.emit_concat_kernel(name, schedule, kernel, declarations)
        elif kernel.kind == "scatter":
            text, buffers = loops.emit_scatter_kernel(name, schedule, kernel, declarations)
        elif kernel.kind == "random":
            text, buffers = library.emit_random(name, schedule, kernel, declarations)
        elif kernel.root.node.op == "matmul":
            text, buffers = library.emit_matmul(name, schedule, kernel, declarations, blas)
        elif kernel.root.node.op == "matrix_inverse":
            text, buffers = library.emit_inverse(name, schedule, kernel, declarations)
            returns_status = True
        else:
            raise NotImplementedError(f"no CPU kernel for {kernel.root.node.describe()}")
        functions.append(text)
        calls.append((name, buffers, returns_status))
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
            if "@jf_cblas_" in decl:
                imports.append(decl.split("@")[1].split("(")[0])
    return "\n".join(parts + functions + [entry]), tuple(sorted(imports))


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
    for n, (name, buffers, returns_status) in enumerate(calls):
        args = ", ".join(f"ptr {pointers[b.id]}" for b in buffers)
        if returns_status:
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
    return "\n".join(lines)


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
    pass_builder = llvm.create_pass_builder(state["tm"], tuning)
    pass_builder.getModulePassManager().run(module, pass_builder)
    object_code = state["tm"].emit_object(module)
    return CompiledModule(text, str(module), object_code, time.perf_counter() - start, imports)


def native_assembly(optimized_ir: str) -> str:
    state = _initialize()
    module = llvm.parse_assembly(optimized_ir)
    return state["tm"].emit_assembly(module)


class LoadedCode:
    """Object code linked into the process; freed when this object is collected."""

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
            self._tracker = builder.link(state["jit"], f"jf_lib{next(_library_ids)}")
        self.entry_address = self._tracker[ENTRY]
