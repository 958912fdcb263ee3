"""The CUDA driver API through ctypes (`libcuda`): device discovery, the primary
context, device memory, copies, PTX modules, launches, events. Every call is
checked; CUDA errors become jitflow errors (out of memory ->
ResourceExhaustedError, anything else -> InternalError) naming the call and the
driver's error name and text.

`driver()` loads and initializes the driver once per process and returns None
(with the reason in `unavailable_reason()`) when there is no usable GPU, so the
CPU-only path never needs CUDA. All work goes to the context's legacy default
stream; each thread that uses the device makes the primary context current.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading

from jitflow import errors

CUDA_SUCCESS = 0
CUDA_ERROR_OUT_OF_MEMORY = 2
ATTR_MAX_THREADS_PER_BLOCK = 1
ATTR_MULTIPROCESSOR_COUNT = 16
ATTR_MEMORY_CLOCK_RATE = 36          # kHz
ATTR_GLOBAL_MEMORY_BUS_WIDTH = 37    # bits
ATTR_COMPUTE_CAPABILITY_MAJOR = 75
ATTR_COMPUTE_CAPABILITY_MINOR = 76
JIT_INFO_LOG_BUFFER, JIT_INFO_LOG_BUFFER_SIZE_BYTES = 3, 4
JIT_ERROR_LOG_BUFFER, JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 5, 6
LOG_BYTES = 1 << 14
CAPTURE_MODE_THREAD_LOCAL = 1

_lock = threading.Lock()
_state: dict = {}
_current = threading.local()


class CudaError(errors.InternalError):
    """A CUDA driver call failed."""


class CudaOutOfMemoryError(errors.ResourceExhaustedError):
    """cuMemAlloc could not get the memory."""


def _load_library():
    names = ["libcuda.so.1", "libcuda.so", ctypes.util.find_library("cuda"), "nvcuda.dll"]
    problems = []
    for name in names:
        if not name:
            continue
        try:
            return ctypes.CDLL(name), None
        except OSError as exc:
            problems.append(str(exc))
    return None, f"the CUDA driver library could not be loaded ({problems[0] if problems else 'libcuda not found'})"


class Driver:
    """One initialized driver with device 0's primary context."""

    def __init__(self, lib, ordinal: int = 0):
        self.lib = lib
        self._declare()
        self.check(lib.cuInit(0), "cuInit")
        count = ctypes.c_int()
        self.check(lib.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
        self.device_count = count.value
        if self.device_count == 0:
            raise CudaError(None, None, "no CUDA device is present (cuDeviceGetCount returned 0)")
        self.device = ctypes.c_int()
        self.check(lib.cuDeviceGet(ctypes.byref(self.device), ordinal), "cuDeviceGet")
        self.context = ctypes.c_void_p()
        self.check(lib.cuDevicePrimaryCtxRetain(ctypes.byref(self.context), self.device), "cuDevicePrimaryCtxRetain")
        self.make_current()
        name = ctypes.create_string_buffer(256)
        self.check(lib.cuDeviceGetName(name, 256, self.device), "cuDeviceGetName")
        self.name = name.value.decode(errors="replace")
        major, minor = self.attribute(ATTR_COMPUTE_CAPABILITY_MAJOR), self.attribute(ATTR_COMPUTE_CAPABILITY_MINOR)
        self.compute_capability = (major, minor)
        self.arch = f"sm_{major}{minor}"
        self.multiprocessors = self.attribute(ATTR_MULTIPROCESSOR_COUNT)
        total = ctypes.c_size_t()
        self.check(lib.cuDeviceTotalMem_v2(ctypes.byref(total), self.device), "cuDeviceTotalMem")
        self.total_memory = total.value

    def _declare(self):
        lib, vp, sz, ui, i = self.lib, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int
        signatures = {
            "cuInit": [ui], "cuDeviceGetCount": [vp], "cuDeviceGet": [vp, i], "cuDeviceGetName": [vp, i, i],
            "cuDeviceGetAttribute": [vp, i, i], "cuDeviceTotalMem_v2": [vp, i],
            "cuDevicePrimaryCtxRetain": [vp, i], "cuCtxSetCurrent": [vp], "cuCtxSynchronize": [],
            "cuMemAlloc_v2": [vp, sz], "cuMemFree_v2": [ctypes.c_uint64],
            "cuMemcpyHtoD_v2": [ctypes.c_uint64, vp, sz], "cuMemcpyDtoH_v2": [vp, ctypes.c_uint64, sz],
            "cuMemcpyDtoD_v2": [ctypes.c_uint64, ctypes.c_uint64, sz],
            "cuMemsetD8_v2": [ctypes.c_uint64, ctypes.c_ubyte, sz],
            "cuMemGetInfo_v2": [vp, vp],
            "cuModuleLoadDataEx": [vp, ctypes.c_char_p, ui, vp, vp], "cuModuleUnload": [vp],
            "cuModuleGetFunction": [vp, vp, ctypes.c_char_p],
            "cuLaunchKernel": [vp, ui, ui, ui, ui, ui, ui, ui, vp, vp, vp],
            "cuEventCreate": [vp, ui], "cuEventRecord": [vp, vp], "cuEventSynchronize": [vp],
            "cuEventElapsedTime": [vp, vp, vp], "cuEventDestroy_v2": [vp],
            "cuGetErrorName": [i, vp], "cuGetErrorString": [i, vp],
            "cuStreamCreate": [vp, ui], "cuStreamDestroy_v2": [vp], "cuStreamSynchronize": [vp],
            "cuMemsetD8Async": [ctypes.c_uint64, ctypes.c_ubyte, sz, vp],
            "cuStreamBeginCapture_v2": [vp, i], "cuStreamEndCapture": [vp, vp],
            "cuGraphInstantiateWithFlags": [vp, vp, ctypes.c_ulonglong], "cuGraphLaunch": [vp, vp],
            "cuGraphExecDestroy": [vp], "cuGraphDestroy": [vp],
        }
        for name, argtypes in signatures.items():
            fn = getattr(lib, name)
            fn.argtypes = argtypes
            fn.restype = ctypes.c_int

    # --- errors
    def error_text(self, code: int) -> str:
        name, text = ctypes.c_char_p(), ctypes.c_char_p()
        self.lib.cuGetErrorName(code, ctypes.byref(name))
        self.lib.cuGetErrorString(code, ctypes.byref(text))
        return f"{(name.value or b'CUDA_ERROR_UNKNOWN').decode()}: {(text.value or b'unknown error').decode()}"

    def check(self, code: int, call: str, detail: str = ""):
        if code == CUDA_SUCCESS:
            return
        message = f"CUDA driver call {call} failed with {self.error_text(code)}"
        if detail:
            message += f"\n{detail}"
        if code == CUDA_ERROR_OUT_OF_MEMORY:
            raise CudaOutOfMemoryError(None, None, message)
        raise CudaError(None, None, message)

    # --- context and device
    def make_current(self):
        if getattr(_current, "context", None) != self.context.value:
            self.check(self.lib.cuCtxSetCurrent(self.context), "cuCtxSetCurrent")
            _current.context = self.context.value

    def attribute(self, which: int) -> int:
        value = ctypes.c_int()
        self.check(self.lib.cuDeviceGetAttribute(ctypes.byref(value), which, self.device), "cuDeviceGetAttribute")
        return value.value

    def peak_bandwidth(self) -> float | None:
        """Theoretical DRAM bandwidth in bytes/s from the memory clock and bus width (None if unknown)."""
        clock_khz, bus_bits = self.attribute(ATTR_MEMORY_CLOCK_RATE), self.attribute(ATTR_GLOBAL_MEMORY_BUS_WIDTH)
        if not clock_khz or not bus_bits:
            return None
        return 2.0 * clock_khz * 1e3 * bus_bits / 8

    def synchronize(self):
        self.make_current()
        self.check(self.lib.cuCtxSynchronize(), "cuCtxSynchronize")

    # --- memory
    def alloc(self, nbytes: int) -> int:
        self.make_current()
        pointer = ctypes.c_uint64()
        self.check(self.lib.cuMemAlloc_v2(ctypes.byref(pointer), max(int(nbytes), 256)), "cuMemAlloc",
                   f"while allocating {nbytes} bytes of device memory")
        return pointer.value

    def free(self, pointer: int):
        self.make_current()
        self.check(self.lib.cuMemFree_v2(pointer), "cuMemFree")

    def to_device(self, pointer: int, host_address: int, nbytes: int):
        if nbytes:
            self.check(self.lib.cuMemcpyHtoD_v2(pointer, host_address, nbytes), "cuMemcpyHtoD")

    def to_host(self, host_address: int, pointer: int, nbytes: int):
        if nbytes:
            self.check(self.lib.cuMemcpyDtoH_v2(host_address, pointer, nbytes), "cuMemcpyDtoH")

    def copy(self, dst: int, src: int, nbytes: int):
        if nbytes:
            self.check(self.lib.cuMemcpyDtoD_v2(dst, src, nbytes), "cuMemcpyDtoD")

    def memset(self, pointer: int, nbytes: int, value: int = 0):
        if nbytes:
            self.check(self.lib.cuMemsetD8_v2(pointer, value, nbytes), "cuMemsetD8")

    def memory_info(self) -> tuple[int, int]:
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self.check(self.lib.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)), "cuMemGetInfo")
        return free.value, total.value

    # --- modules and launches
    def load_module(self, ptx: str):
        """A CUmodule from PTX text (the driver JIT-compiles it for this device)."""
        self.make_current()
        module = ctypes.c_void_p()
        log = ctypes.create_string_buffer(LOG_BYTES)
        options = (ctypes.c_int * 2)(JIT_ERROR_LOG_BUFFER, JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
        values = (ctypes.c_void_p * 2)(ctypes.cast(log, ctypes.c_void_p), ctypes.c_void_p(LOG_BYTES))
        code = self.lib.cuModuleLoadDataEx(ctypes.byref(module), ptx.encode() + b"\0", 2, options, values)
        self.check(code, "cuModuleLoadDataEx", log.value.decode(errors="replace"))
        return module

    def unload_module(self, module):
        self.make_current()
        self.check(self.lib.cuModuleUnload(module), "cuModuleUnload")

    def function(self, module, name: str):
        fn = ctypes.c_void_p()
        self.check(self.lib.cuModuleGetFunction(ctypes.byref(fn), module, name.encode()), "cuModuleGetFunction",
                   f"kernel {name}")
        return fn

    def launch(self, fn, grid, block, params, shared_bytes: int = 0, stream=None):
        """params: a ctypes array of void* pointing at each argument's value."""
        self.check(self.lib.cuLaunchKernel(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2],
                                           shared_bytes, stream, params, None), "cuLaunchKernel")

    # --- streams and graphs (a run's launches recorded once, replayed with one call)
    def stream(self):
        """A new stream that synchronizes with the legacy default stream (where the copies go)."""
        self.make_current()
        stream = ctypes.c_void_p()
        self.check(self.lib.cuStreamCreate(ctypes.byref(stream), 0), "cuStreamCreate")
        return stream

    def memset_async(self, pointer: int, nbytes: int, stream):
        if nbytes:
            self.check(self.lib.cuMemsetD8Async(pointer, 0, nbytes, stream), "cuMemsetD8Async")

    def capture(self, stream, record) -> object:
        """A CUgraphExec of what `record()` enqueues on `stream` (thread-local capture mode)."""
        self.check(self.lib.cuStreamBeginCapture_v2(stream, CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture")
        graph = ctypes.c_void_p()
        try:
            record()
        finally:
            code = self.lib.cuStreamEndCapture(stream, ctypes.byref(graph))
        self.check(code, "cuStreamEndCapture")
        executable = ctypes.c_void_p()
        try:
            self.check(self.lib.cuGraphInstantiateWithFlags(ctypes.byref(executable), graph, 0),
                       "cuGraphInstantiateWithFlags")
        finally:
            self.lib.cuGraphDestroy(graph)
        return executable

    def launch_graph(self, executable, stream):
        self.check(self.lib.cuGraphLaunch(executable, stream), "cuGraphLaunch")

    def destroy_graph(self, executable):
        self.check(self.lib.cuGraphExecDestroy(executable), "cuGraphExecDestroy")

    # --- events (timing)
    def event(self):
        event = ctypes.c_void_p()
        self.check(self.lib.cuEventCreate(ctypes.byref(event), 0), "cuEventCreate")
        return event

    def record(self, event, stream=None):
        self.check(self.lib.cuEventRecord(event, stream), "cuEventRecord")

    def elapsed_ms(self, start, stop) -> float:
        self.check(self.lib.cuEventSynchronize(stop), "cuEventSynchronize")
        ms = ctypes.c_float()
        self.check(self.lib.cuEventElapsedTime(ctypes.byref(ms), start, stop), "cuEventElapsedTime")
        return ms.value

    def destroy_event(self, event):
        self.check(self.lib.cuEventDestroy_v2(event), "cuEventDestroy")


def driver() -> Driver | None:
    """The process's driver (device 0), or None when no CUDA GPU can be used."""
    with _lock:
        if "driver" not in _state:
            lib, reason = _load_library()
            instance = None
            if lib is not None:
                try:
                    instance = Driver(lib)
                except (errors.OpError, AttributeError, OSError) as exc:
                    reason = f"the CUDA driver did not give a usable device ({exc})"
            _state["driver"], _state["reason"] = instance, reason
        return _state["driver"]


def unavailable_reason() -> str | None:
    driver()
    return _state.get("reason")


def require() -> Driver:
    """The driver, or a RuntimeError saying why no GPU can be used."""
    instance = driver()
    if instance is None:
        raise RuntimeError(f"jitflow: no CUDA GPU is available: {unavailable_reason()}")
    return instance
