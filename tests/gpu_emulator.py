"""A CPU-emulated CUDA driver for tests: the real `GpuExecutable` (runtime/gpu_executable.py) runs
unchanged on top of `EmulatedDriver`, which has the interface of runtime/cuda.py `Driver`.

- Device memory is host memory (256-byte aligned, at least 256 bytes, filled with 0xA5 so reads of
  uninitialized memory show up); device pointers are host addresses.
- Kernels: the driver cannot run PTX, so `emulated_gpu` wraps `jitflow.codegen.ptx.compile_ptx` to
  remember the LLVM IR each PTX text came from. `load_module` rewrites that IR for the host
  (`host_ir`): every PTX special register (tid/ctaid/ntid/nctaid .x/.y/.z) becomes a kernel
  parameter, and each kernel gets a `<name>__grid` wrapper that runs every thread of every block in
  turn. Kernels that synchronize (`llvm.nvvm.barrier0`, `bar.warp.sync`, `shfl.sync.*` warp
  shuffles, shared memory) cannot run one thread after another: they run with one host thread per
  GPU thread of a block (blocks in turn), the barriers and shuffles calling back into Python.
  Any other NVPTX intrinsic makes `load_module` raise `EmulationError` naming the kernel.
- Launches run at once (the stream is synchronous). While `capture` records, launches and memsets
  are collected (kernel arguments copied at capture time, as CUDA graphs do) and replayed by
  `launch_graph`. `launches`, `graph_launches`, `memsets` count what ran.

`emulated_gpu(monkeypatch)` installs the driver for one test; the `emulated_gpu` pytest fixture in
tests/test_gpu_emulator.py wraps it.
"""
from __future__ import annotations

import contextlib
import ctypes
import re
import sys
import threading
import time

import llvmlite.binding as llvm

from jitflow.runtime import cuda

GARBAGE = 0xA5
ALIGN = 256
SREGS = [f"{reg}.{axis}" for reg in ("tid", "ctaid", "ntid", "nctaid") for axis in "xyz"]
_SREG_CALL = re.compile(r"call i32 @llvm\.nvvm\.read\.ptx\.sreg\.(tid|ctaid|ntid|nctaid)\.([xyz])\(\)")
_KERNEL = re.compile(r"^define ptx_kernel void @([\w.$]+)\((.*?)\)(.*)\{$")
_LIBDEVICE = re.compile(r"@__nv_(\w+)")
_SYNC = {"@llvm.nvvm.barrier0": "@__emu_barrier", "@llvm.nvvm.bar.warp.sync": "@__emu_warp_sync"}
_SYNC_ARGS = {"@__emu_barrier": "", "@__emu_warp_sync": "i32"}
_SHUFFLE = re.compile(r"@llvm\.nvvm\.shfl\.sync\.(bfly|idx|down|up)\.(i32|f32)")
BARRIER_TIMEOUT_S = 60.0


class EmulationError(RuntimeError):
    """A kernel uses something the CPU emulation cannot honor."""


# ---- IR for the host ------------------------------------------------------------------------------
def _split_params(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def host_ir(text: str) -> tuple[str, dict, set]:
    """NVPTX LLVM IR -> (host LLVM IR, {kernel: [parameter types]}, the kernels that need real threads).

    Each `ptx_kernel` gets the 12 special registers as trailing i32 parameters (SREGS order) and a
    wrapper `<name>__grid(ptr args, i32 gx, gy, gz, bx, by, bz)` that reads the kernel's arguments as
    i64s from `args` and calls it for every (block, thread), x fastest. Libdevice calls become libm
    calls, shared memory becomes ordinary globals, barriers and shuffles host callbacks."""
    kernels: dict[str, list[str]] = {}
    synced: set = set()
    lines, current = [], None
    for line in text.splitlines():
        if line.startswith("!") or line.startswith("declare i32 @llvm.nvvm.read.ptx.sreg"):
            continue
        match = _KERNEL.match(line)
        if match:
            name, params, attrs = match.groups()
            kernels[name] = [p.split()[0] for p in _split_params(params)]
            extra = ", ".join(f"i32 %__emu_{r.replace('.', '_')}" for r in SREGS)
            line = f"define void @{name}({params}{', ' if params.strip() else ''}{extra}){attrs}{{"
            current = name
        elif line.startswith("define "):
            current = None
        if _SREG_CALL.search(line):
            if current is None:
                raise EmulationError(f"a PTX special register is read outside a kernel: {line.strip()}")
            line = _SREG_CALL.sub(lambda m: f"add i32 %__emu_{m.group(1)}_{m.group(2)}, 0", line)
        line = line.replace(" addrspace(3)", "")
        for old, new in _SYNC.items():
            line = line.replace(old + "(", new + "(")
        line = _SHUFFLE.sub(lambda m: f"@__emu_shfl_{m.group(1)}_{m.group(2)}", line)
        line = _LIBDEVICE.sub(lambda m: "@" + m.group(1), line)
        if current is not None and "@__emu_" in line:
            synced.add(current)
        lines.append(line)
    declared, kept = set(), []
    for line in lines:    # the libm names may now be declared twice
        if line.startswith("declare "):
            if line in declared or "@__emu_" in line:
                continue
            declared.add(line)
        kept.append(line)
    host = "\n".join(kept)
    declares = [f"declare void {new}({_SYNC_ARGS[new]})" for new in _SYNC.values() if new + "(" in host]
    for kind, t in sorted(set(re.findall(r"@__emu_shfl_(\w+?)_(i32|f32)", host))):
        lt = "float" if t == "f32" else "i32"
        declares.append(f"declare {lt} @__emu_shfl_{kind}_{t}(i32, {lt}, i32, i32)")
    host = "\n".join([host] + declares)
    for name, types in kernels.items():
        host += "\n" + _grid_wrapper(name, types)
    return host + "\n", kernels, synced


def _grid_wrapper(name: str, types: list[str]) -> str:
    body = ["entry:"]
    args = []
    for i, t in enumerate(types):
        body.append(f"  %p{i} = getelementptr i64, ptr %args, i64 {i}")
        body.append(f"  %v{i} = load i64, ptr %p{i}")
        if t == "ptr":
            body.append(f"  %a{i} = inttoptr i64 %v{i} to ptr")
        elif t == "i64":
            body.append(f"  %a{i} = add i64 %v{i}, 0")
        elif t in ("i32", "i16", "i8", "i1"):
            body.append(f"  %a{i} = trunc i64 %v{i} to {t}")
        else:
            raise EmulationError(f"kernel {name}: cannot pass a parameter of type {t}")
        args.append(f"{t} %a{i}")
    dims = ["gx", "gy", "gz", "bx", "by", "bz"]
    for d in dims:
        body.append(f"  %w{d} = zext i32 %{d} to i64")
    body += ["  %t1 = mul i64 %wbx, %wby", "  %threads = mul i64 %t1, %wbz", "  %t2 = mul i64 %wgx, %wgy",
             "  %t3 = mul i64 %t2, %wgz", "  %total = mul i64 %t3, %threads"]
    body.append("  br label %head")
    body.append("head:")
    body.append("  %i = phi i64 [ 0, %entry ], [ %next, %body ]")
    body.append("  %more = icmp ult i64 %i, %total")
    body.append("  br i1 %more, label %body, label %done")
    body.append("body:")
    rest = "%i"
    coords = {}
    for k, d in enumerate(["bx", "by", "bz", "gx", "gy", "gz"]):   # thread index fastest, then block
        body.append(f"  %c{d} = urem i64 {rest}, %w{d}")
        body.append(f"  %r{d} = udiv i64 {rest}, %w{d}")
        body.append(f"  %n{d} = trunc i64 %c{d} to i32")
        coords[d] = f"%n{d}"
        rest = f"%r{d}"
    regs = [coords["bx"], coords["by"], coords["bz"], coords["gx"], coords["gy"], coords["gz"],
            "%bx", "%by", "%bz", "%gx", "%gy", "%gz"]
    call_args = args + [f"i32 {r}" for r in regs]
    body.append(f"  call void @{name}({', '.join(call_args)})")
    body.append("  %next = add i64 %i, 1")
    body.append("  br label %head")
    body.append("done:")
    body.append("  ret void")
    head = f"define void @{name}__grid(ptr %args, {', '.join(f'i32 %{d}' for d in dims)}) {{"
    return "\n".join([head] + body + ["}"]) + "\n"


# ---- kernels ------------------------------------------------------------------------------------------
class _Block:
    """What the threads of one block running together share: barriers and shuffle slots."""

    def __init__(self, threads: int):
        self.threads = threads
        self.barrier = threading.Barrier(threads, timeout=BARRIER_TIMEOUT_S)
        warps = -(-threads // 32)
        self.warp_barriers = [threading.Barrier(min(32, threads - 32 * w), timeout=BARRIER_TIMEOUT_S)
                              for w in range(warps)]
        self.slots = ([0] * (warps * 32), [0] * (warps * 32))
        self.failure: list[str] = []


class _Callbacks:
    """The host functions the rewritten IR calls for barriers and warp shuffles (module-wide: the
    MCJIT symbol table is process-wide, so one set serves every emulated module)."""

    local = threading.local()
    _made = None

    @classmethod
    def install(cls):
        if cls._made is not None:
            return
        void = ctypes.CFUNCTYPE(None)
        made = {"__emu_barrier": void(cls.barrier),
                "__emu_warp_sync": ctypes.CFUNCTYPE(None, ctypes.c_int32)(cls.warp_sync)}
        for kind in ("bfly", "idx", "down", "up"):
            made[f"__emu_shfl_{kind}_i32"] = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
                                                              ctypes.c_int32, ctypes.c_int32)(cls.shuffle(kind))
            made[f"__emu_shfl_{kind}_f32"] = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_int32, ctypes.c_float,
                                                              ctypes.c_int32, ctypes.c_int32)(cls.shuffle(kind))
        for name, fn in made.items():
            llvm.add_symbol(name, ctypes.cast(fn, ctypes.c_void_p).value)
        cls._made = made

    @classmethod
    def _wait(cls, barrier):
        block = cls.local.block
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            block.failure.append("a barrier was not reached by every thread (divergent barrier or timeout)")

    @classmethod
    def barrier(cls):
        cls._wait(cls.local.block.barrier)

    @classmethod
    def warp_sync(cls, mask=-1):
        cls._wait(cls.local.block.warp_barriers[cls.local.tid // 32])

    @classmethod
    def shuffle(cls, kind):
        def run(mask, value, b, c):
            block, tid = cls.local.block, cls.local.tid
            lane, warp = tid % 32, tid // 32
            width = 32 - ((c >> 8) & 31)          # PTX c = ((32 - width) << 8) | clamp
            base = lane - lane % width
            if kind == "bfly":
                src = lane ^ b
            elif kind == "idx":
                src = base + (b % width)
            elif kind == "down":
                src = lane + b
            else:
                src = lane - b
            if not base <= src < base + width:
                src = lane
            # double-buffered slots: one barrier per shuffle (a lane writes a buffer again only after
            # every lane has passed the next shuffle's barrier, i.e. has read this one)
            phase = cls.local.phase = 1 - getattr(cls.local, "phase", 0)
            slots = block.slots[phase]
            slots[tid] = value
            cls._wait(block.warp_barriers[warp])
            return slots[warp * 32 + src]
        return run


class EmulatedKernel:
    """One kernel of a loaded module: `launch(grid, block, values)` runs it on the host."""

    def __init__(self, module: "EmulatedModule", name: str):
        self.module, self.name = module, name
        types = module.kernels[name]
        self.arity = len(types)
        engine = module.engine
        self._grid = ctypes.CFUNCTYPE(None, ctypes.c_void_p, *[ctypes.c_uint32] * 6)(
            engine.get_function_address(name + "__grid"))
        self._thread = ctypes.CFUNCTYPE(None, *[ctypes.c_uint64] * (self.arity + 12))(
            engine.get_function_address(name))

    def launch(self, grid, block, values: list[int]):
        if len(values) != self.arity:
            raise EmulationError(f"kernel {self.name} takes {self.arity} arguments, got {len(values)}")
        if self.name not in self.module.sync:
            args = (ctypes.c_uint64 * max(1, self.arity))(*values)
            self._grid(ctypes.addressof(args), *grid, *block)
            return
        threads = block[0] * block[1] * block[2]
        blocks = [(bx, by, bz) for bz in range(grid[2]) for by in range(grid[1]) for bx in range(grid[0])]
        states = [_Block(threads) for _ in blocks]
        between = threading.Barrier(threads, timeout=BARRIER_TIMEOUT_S)   # blocks run one after another
        workers = [threading.Thread(target=self._run_thread, daemon=True,
                                    args=(states, t, block, blocks, grid, values, between))
                   for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        failures = [f for state in states for f in state.failure]
        if failures:
            raise EmulationError(f"kernel {self.name}: {failures[0]}")

    def _run_thread(self, states, t, block, blocks, grid, values, between):
        """GPU thread `t` of each block in turn (all threads of a block run at once)."""
        tid = (t % block[0], t // block[0] % block[1], t // (block[0] * block[1]))
        _Callbacks.local.tid = t
        for state, ctaid in zip(states, blocks):
            _Callbacks.local.block = state
            self._thread(*values, *tid, *ctaid, *block, *grid)
            try:
                between.wait()
            except threading.BrokenBarrierError:
                state.failure.append("a thread did not finish its block")
                return


class EmulatedModule:
    """A PTX module's kernels compiled for the host from the LLVM IR the PTX came from."""

    def __init__(self, llvm_ir: str):
        from jitflow.codegen.cpu import _initialize
        self.text, self.kernels, self.sync = host_ir(llvm_ir)
        leftover = re.search(r"@llvm\.nvvm\.[\w.]+", self.text)
        if leftover:
            owner = _function_using(self.text, leftover.group(0))
            raise EmulationError(f"kernel {owner} uses {leftover.group(0)}, which the CPU GPU emulator "
                                 f"cannot run")
        _initialize()
        _Callbacks.install()
        module = llvm.parse_assembly(self.text)
        module.triple = llvm.get_process_triple()
        module.verify()
        self.engine = llvm.create_mcjit_compiler(module, llvm.Target.from_default_triple().create_target_machine())
        self.engine.finalize_object()
        self._functions = {}

    def function(self, name: str) -> EmulatedKernel:
        if name not in self.kernels:
            raise cuda.CudaError(None, None, f"CUDA driver call cuModuleGetFunction failed with "
                                             f"CUDA_ERROR_NOT_FOUND: named symbol not found\nkernel {name}")
        if name not in self._functions:
            self._functions[name] = EmulatedKernel(self, name)
        return self._functions[name]


def _function_using(text: str, symbol: str) -> str:
    owner = "?"
    for line in text.splitlines():
        match = re.match(r"define [^@]*@([\w.$]+)\(", line)
        if match:
            owner = match.group(1)
        elif symbol in line and not line.startswith("declare"):
            return owner
    return owner


# ---- the driver -------------------------------------------------------------------------------------------
class _Lib:
    """The raw entry points GpuExecutable calls directly on `driver.lib`."""

    def __init__(self, driver: "EmulatedDriver"):
        self._driver = driver

    def cuLaunchKernel(self, fn, gx, gy, gz, bx, by, bz, shared, stream, params, extra):  # noqa: N802
        return self._driver._launch(fn, (gx, gy, gz), (bx, by, bz), params)

    def cuStreamDestroy_v2(self, stream):  # noqa: N802
        return cuda.CUDA_SUCCESS


class _Event:
    __slots__ = ("time",)

    def __init__(self):
        self.time = None


class EmulatedDriver:
    """runtime/cuda.py `Driver`'s interface over host memory and host-compiled kernels."""

    ATTRIBUTES = {cuda.ATTR_MAX_THREADS_PER_BLOCK: 1024, cuda.ATTR_MULTIPROCESSOR_COUNT: 132,
                  cuda.ATTR_MEMORY_CLOCK_RATE: 2_619_000, cuda.ATTR_GLOBAL_MEMORY_BUS_WIDTH: 5120,
                  cuda.ATTR_COMPUTE_CAPABILITY_MAJOR: 9, cuda.ATTR_COMPUTE_CAPABILITY_MINOR: 0}

    def __init__(self, total_memory: int = 1 << 30):
        self.lib = _Lib(self)
        self.device_count = 1
        self.device = ctypes.c_int(0)
        self.context = ctypes.c_void_p(1)
        self.name = "jitflow CPU-emulated GPU"
        self.compute_capability = (9, 0)
        self.arch = "sm_90"
        self.multiprocessors = self.ATTRIBUTES[cuda.ATTR_MULTIPROCESSOR_COUNT]
        self.total_memory = total_memory
        self.ir_by_ptx: dict[str, str] = {}       # filled by emulated_gpu's compile_ptx wrapper
        self._buffers: dict[int, tuple] = {}      # device pointer -> (host buffer, bytes)
        self._capturing: list | None = None
        self.launches = 0            # kernels run (each replayed graph node counts)
        self.graph_launches = 0      # launch_graph calls
        self.captures = 0
        self.memsets = 0
        self.kernel_names: list[str] = []   # every kernel run, in order
        self.threaded: list[str] = []       # those run with a host thread per GPU thread (they synchronize)
        self.modules_loaded = 0
        self._lock = threading.RLock()

    # --- errors
    def error_text(self, code: int) -> str:
        names = {0: "CUDA_SUCCESS: no error", 1: "CUDA_ERROR_INVALID_VALUE: invalid argument",
                 2: "CUDA_ERROR_OUT_OF_MEMORY: out of memory"}
        return names.get(code, f"CUDA_ERROR_UNKNOWN: unknown error ({code})")

    def check(self, code: int, call: str, detail: str = ""):
        if code == cuda.CUDA_SUCCESS:
            return
        message = f"CUDA driver call {call} failed with {self.error_text(code)}"
        if detail:
            message += f"\n{detail}"
        if code == cuda.CUDA_ERROR_OUT_OF_MEMORY:
            raise cuda.CudaOutOfMemoryError(None, None, message)
        raise cuda.CudaError(None, None, message)

    # --- context and device
    def make_current(self):
        pass

    def attribute(self, which: int) -> int:
        return self.ATTRIBUTES.get(which, 0)

    def peak_bandwidth(self) -> float | None:
        clock_khz = self.attribute(cuda.ATTR_MEMORY_CLOCK_RATE)
        bus_bits = self.attribute(cuda.ATTR_GLOBAL_MEMORY_BUS_WIDTH)
        return 2.0 * clock_khz * 1e3 * bus_bits / 8

    def synchronize(self):
        pass

    # --- memory
    def allocated_bytes(self) -> int:
        return sum(nbytes for _, nbytes in self._buffers.values())

    def alloc(self, nbytes: int) -> int:
        nbytes = -(-max(int(nbytes), 256) // ALIGN) * ALIGN
        with self._lock:
            if self.allocated_bytes() + nbytes > self.total_memory:
                self.check(cuda.CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc",
                           f"while allocating {nbytes} bytes of device memory")
            raw = ctypes.create_string_buffer(nbytes + ALIGN)
            pointer = -(-ctypes.addressof(raw) // ALIGN) * ALIGN
            ctypes.memset(pointer, GARBAGE, nbytes)
            self._buffers[pointer] = (raw, nbytes)
        return pointer

    def free(self, pointer: int):
        with self._lock:
            if self._buffers.pop(pointer, None) is None:
                self.check(1, "cuMemFree", f"{pointer:#x} is not an allocation")

    def _check_range(self, pointer: int, nbytes: int, call: str):
        for start, (_, size) in self._buffers.items():
            if start <= pointer and pointer + nbytes <= start + size:
                return
        self.check(1, call, f"[{pointer:#x}, +{nbytes}) is not inside one device allocation")

    def to_device(self, pointer: int, host_address: int, nbytes: int):
        if nbytes:
            self._check_range(pointer, nbytes, "cuMemcpyHtoD")
            ctypes.memmove(pointer, host_address, nbytes)

    def to_host(self, host_address: int, pointer: int, nbytes: int):
        if nbytes:
            self._check_range(pointer, nbytes, "cuMemcpyDtoH")
            ctypes.memmove(host_address, pointer, nbytes)

    def copy(self, dst: int, src: int, nbytes: int):
        if nbytes:
            self._check_range(dst, nbytes, "cuMemcpyDtoD")
            self._check_range(src, nbytes, "cuMemcpyDtoD")
            ctypes.memmove(dst, src, nbytes)

    def memset(self, pointer: int, nbytes: int, value: int = 0):
        if nbytes:
            self._check_range(pointer, nbytes, "cuMemsetD8")
            ctypes.memset(pointer, value, nbytes)
            self.memsets += 1

    def memory_info(self) -> tuple[int, int]:
        return self.total_memory - self.allocated_bytes(), self.total_memory

    # --- modules and launches
    def load_module(self, ptx: str):
        source = self.ir_by_ptx.get(ptx)
        if source is None:
            raise EmulationError("load_module: this PTX was not compiled while the emulator was installed "
                                 "(no LLVM IR is known for it; is JITFLOW_CACHE=0?)")
        self.modules_loaded += 1
        return EmulatedModule(source)

    def unload_module(self, module):
        pass

    def function(self, module, name: str):
        return module.function(name)

    def _launch(self, fn, grid, block, params) -> int:
        values = [ctypes.c_uint64.from_address(params[i]).value for i in range(fn.arity)]
        if self._capturing is not None:
            self._capturing.append(("launch", fn, tuple(grid), tuple(block), values))
        else:
            self._run_launch(fn, grid, block, values)
        return cuda.CUDA_SUCCESS

    def _run_launch(self, fn, grid, block, values):
        fn.launch(grid, block, values)
        self.launches += 1
        self.kernel_names.append(fn.name)
        if fn.name in fn.module.sync:
            self.threaded.append(fn.name)

    def launch(self, fn, grid, block, params, shared_bytes: int = 0, stream=None):
        self.check(self.lib.cuLaunchKernel(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2],
                                           shared_bytes, stream, params, None), "cuLaunchKernel")

    # --- streams and graphs
    def stream(self):
        return ctypes.c_void_p(0)

    def memset_async(self, pointer: int, nbytes: int, stream):
        if not nbytes:
            return
        if self._capturing is not None:
            self._check_range(pointer, nbytes, "cuMemsetD8Async")
            self._capturing.append(("memset", pointer, nbytes))
        else:
            self.memset(pointer, nbytes)

    def capture(self, stream, record) -> list:
        if self._capturing is not None:
            self.check(1, "cuStreamBeginCapture", "already capturing")
        self._capturing = []
        try:
            record()
            graph = self._capturing
        finally:
            self._capturing = None
        self.captures += 1
        return graph

    def launch_graph(self, executable, stream):
        self.graph_launches += 1
        for step in executable:
            if step[0] == "launch":
                self._run_launch(*step[1:])
            else:
                self.memset(step[1], step[2])

    def destroy_graph(self, executable):
        executable.clear()

    # --- events
    def event(self):
        return _Event()

    def record(self, event, stream=None):
        event.time = time.perf_counter()

    def elapsed_ms(self, start, stop) -> float:
        return (stop.time - start.time) * 1e3

    def destroy_event(self, event):
        pass


# ---- installing it ----------------------------------------------------------------------------------------
def _forget_gpu_executables(driver=None):
    """Drops GPU executables (all, or those on `driver`) from the process-wide executable cache."""
    from jitflow.runtime import build
    with build._lock:
        for cache in (build._memory_cache, build._recent):
            for key, exe in list(cache.items()):
                if getattr(exe, "device", None) == "gpu" and (driver is None or getattr(exe, "driver", None) is driver):
                    exe_bytes = getattr(exe, "resident_bytes", 0)
                    del cache[key]
                    if cache is build._recent:
                        build._recent_bytes[0] -= exe_bytes


@contextlib.contextmanager
def emulated_gpu(monkeypatch):
    """Installs an EmulatedDriver as the process's CUDA driver for the duration (yields it)."""
    from jitflow.codegen import ptx
    from jitflow.runtime import gpu_executable

    driver = EmulatedDriver()
    real_compile = ptx.compile_ptx

    def compile_ptx(text, kernels, arch=None):
        compiled = real_compile(text, kernels, arch)
        driver.ir_by_ptx[compiled.ptx] = compiled.llvm_ir
        return compiled

    _forget_gpu_executables()
    monkeypatch.setenv("JITFLOW_CACHE", "0")
    monkeypatch.setattr(ptx, "compile_ptx", compile_ptx)   # codegen/gpu.py calls it as ptx.compile_ptx
    for name, module in list(sys.modules.items()):         # ... and any module that imported the function
        if name.startswith("jitflow.") and module is not ptx and getattr(module, "compile_ptx", None) is real_compile:
            monkeypatch.setattr(module, "compile_ptx", compile_ptx)
    monkeypatch.setitem(cuda._state, "driver", driver)
    monkeypatch.setitem(cuda._state, "reason", None)
    monkeypatch.setitem(gpu_executable._mirrors, "mirror", gpu_executable.DeviceMirror(driver))
    try:
        yield driver
    finally:
        _forget_gpu_executables(driver)
