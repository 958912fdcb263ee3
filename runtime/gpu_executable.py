"""GPU executables and device-resident state.

`GpuExecutable` has the CPU Executable's call shape, `(feeds, states) -> outputs`:
it copies the feeds into device buffers it owns, launches the plan's kernels on
its own stream, and copies the outputs back (a device-to-host copy on the legacy
default stream waits for the kernels). The launches are recorded once as a CUDA
graph and replayed with one driver call per run (recorded again when the state
arrays it is given live at other device addresses, i.e. another Session's;
`JITFLOW_CUDA_GRAPHS=0` launches kernel by kernel). Constants are uploaded once; temps live in one device
workspace, as on the CPU. Calls are serialized per executable (its device
buffers are shared).

State (variables and the run counters of random ops) lives on the device
between runs. `DeviceMirror` keeps a device copy of each host state array,
keyed by the array object (freed with it), with two flags:

- `device_valid`: the device copy holds the current value. Cleared when the host
  may have written the array; the next GPU run uploads it again.
- `host_valid`: the host array holds the current value. Cleared when a GPU run
  wrote the state (an assignment, a GEMM into a variable, a random op's counter);
  the host array is refreshed from the device only when someone asks for it.

So a training loop on the GPU moves only feeds and fetches across the bus. The
host side asks through `SyncedVariables`, which a Session installs as its
variable store the first time it runs on the GPU: reading a value from it
(Saver, a CPU run of the same Session, `sess._variables[name]`) first copies a
newer device value back, and hands the array out as writable, so the device
copy is marked stale. GPU runs take the arrays with `for_device`, which neither
syncs nor invalidates. `jit(device='gpu')` keeps its random counters the same way.
"""
from __future__ import annotations

import ctypes
import os
import threading
import weakref

import numpy as np

from jitflow import errors
from jitflow.ir.kernel_plan import CONST, OUTPUT, PARAM, VAR

from . import counters, cuda
from .checks import check_error, is_check_status

STATUS_BYTES = 16
STATUS_MESSAGES = {1: "Input is not invertible.", 2: "indices are out of range: an index is not in [0, size of the gathered axis)"}


class _Entry:
    __slots__ = ("ref", "pointer", "nbytes", "device_valid", "host_valid")


class DeviceMirror:
    """Device copies of host state arrays (see the module docstring)."""

    def __init__(self, driver):
        self.driver = driver
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()

    def _entry(self, array) -> _Entry | None:
        entry = self._entries.get(id(array))
        return entry if entry is not None and entry.ref() is array else None

    def device_pointer(self, array: np.ndarray) -> int:
        """The device copy of `array`, uploaded if the device does not hold its current value."""
        entry = self._entry(array)
        if entry is None:
            with self._lock:
                entry = _Entry()
                entry.nbytes = array.nbytes
                entry.pointer = self.driver.alloc(array.nbytes)
                entry.ref = weakref.ref(array)
                entry.device_valid, entry.host_valid = False, True
                self._entries[id(array)] = entry
                weakref.finalize(array, _free, self, id(array), entry.pointer)
        if not entry.device_valid:
            self.driver.to_device(entry.pointer, array.ctypes.data, entry.nbytes)
            entry.device_valid = True
            counters.bump("gpu_state_uploads")
        return entry.pointer

    def device_wrote(self, array):
        entry = self._entry(array)
        if entry is not None:
            entry.host_valid = False

    def to_host(self, array):
        """Brings the host array up to date (a no-op unless a GPU run wrote it since)."""
        entry = self._entry(array)
        if entry is not None and not entry.host_valid:
            self.driver.make_current()
            self.driver.to_host(array.ctypes.data, entry.pointer, entry.nbytes)
            entry.host_valid = True
            counters.bump("gpu_state_downloads")

    def host_access(self, array):
        """The host is about to read and maybe write `array`: sync it, then distrust the device copy."""
        entry = self._entry(array)
        if entry is not None:
            self.to_host(array)
            entry.device_valid = False

    def __len__(self):
        return len(self._entries)


def _free(mirror: DeviceMirror, key: int, pointer: int):
    entry = mirror._entries.get(key)
    if entry is not None and entry.pointer == pointer:
        del mirror._entries[key]
    try:
        mirror.driver.free(pointer)
    except Exception:   # noqa: BLE001 - interpreter shutdown or a lost context: nothing to give back
        pass


_mirrors: dict = {}


def mirror() -> DeviceMirror:
    driver = cuda.require()
    if "mirror" not in _mirrors:
        _mirrors["mirror"] = DeviceMirror(driver)
    return _mirrors["mirror"]


class SyncedVariables(dict):
    """A Session's variable store once it has run on the GPU (see the module docstring)."""

    def __init__(self, values, device_mirror: DeviceMirror):
        super().__init__(values)
        self.mirror = device_mirror

    def __getitem__(self, name):
        array = dict.__getitem__(self, name)
        self.mirror.host_access(array)
        return array

    def get(self, name, default=None):
        return self[name] if name in self else default

    def values(self):
        return [self[name] for name in self]

    def items(self):
        return [(name, self[name]) for name in self]

    def for_device(self, names) -> list:
        return [dict.__getitem__(self, name) for name in names]


class GpuExecutable:
    def __init__(self, schedule, plan, ptx: str, n_results: int, llvm_ir=None, optimized_ir=None):
        self.driver = cuda.require()
        self.mirror = mirror()
        self.schedule = schedule
        self.plan = plan
        self.ptx = ptx
        self.n_results = n_results
        self._llvm_ir, self._optimized_ir = llvm_ir, optimized_ir
        self.device = "gpu"
        d = self.driver
        self._module = d.load_module(ptx)
        self._functions = {name: d.function(self._module, name) for name in plan.kernels}
        self._owned: list[int] = []
        self._pointer: dict[int, int] = {}       # buffer id -> device pointer (all but variables)
        workspace = self._alloc(schedule.workspace_bytes) if schedule.workspace_bytes else None
        self._params, self._states, self._outputs = [], [], []
        for buf in schedule.buffers:
            if buf.kind == "temp":
                self._pointer[buf.id] = workspace + buf.offset
            elif buf.kind == CONST:
                array = np.ascontiguousarray(buf.ref, dtype=buf.dtype.np)
                self._pointer[buf.id] = self._alloc(array.nbytes)
                d.to_device(self._pointer[buf.id], array.ctypes.data, array.nbytes)
            elif buf.kind == PARAM:
                self._pointer[buf.id] = self._alloc(buf.nbytes)
                self._params.append((buf.ref, self._pointer[buf.id], buf.nbytes))
            elif buf.kind == VAR:
                self._states.append((buf.ref, buf.id))
            elif buf.kind == OUTPUT:
                self._pointer[buf.id] = self._alloc(buf.nbytes)
                self._outputs.append((buf.ref, self._pointer[buf.id], buf.shape, buf.dtype.np, buf.nbytes))
        self._scratch = self._alloc(plan.scratch_bytes) if plan.scratch_bytes else 0
        # status word (i32), then the detail word (i64 at +8: a failed check's value, ptx_checks.py)
        self._status = self._alloc(STATUS_BYTES) if plan.has_status else 0
        if self._status:
            d.memset(self._status, STATUS_BYTES)
        written = {k.out.id for k in schedule.kernels if k.out.kind == VAR}
        written |= {schedule.value_buffer[id(k.root.node.operands[0])].id for k in schedule.kernels
                    if k.kind == "random"}
        self._written_states = [index for index, buf_id in self._states if buf_id in written]
        self._stream = d.stream()
        self._segments, self._state_cells = self._prepare_steps()
        self._steps = [x for seg in self._segments for x in seg[1]]
        self._graphs, self._graph_states = None, None
        self._use_graphs = os.environ.get("JITFLOW_CUDA_GRAPHS", "1") != "0"
        self._lock = threading.Lock()

    def _alloc(self, nbytes: int) -> int:
        pointer = self.driver.alloc(nbytes)
        self._owned.append(pointer)
        return pointer

    def _prepare_steps(self):
        """Per launch: its function, grid, block and argument block; variables' cells are filled per call.
        A plan's "repeat" step (a while loop without a static bound, codegen/ptx_control_flow.py) splits
        the steps into segments: ("plain", steps) | ("repeat", steps, flag pointer)."""
        steps, state_cells = [], {}
        state_ids = {buf_id for _, buf_id in self._states}
        for launch in self.plan.launches:
            if launch.op == "memset":
                steps.append(("memset", self._arg_pointer(launch.args[0]), launch.nbytes))
                continue
            if launch.op == "repeat":
                steps.append(("repeat", self._arg_pointer(launch.args[0]), launch.nbytes))
                continue
            values = (ctypes.c_uint64 * max(1, len(launch.args)))()
            for i, arg in enumerate(launch.args):
                kind, ref = arg[0], arg[1]
                if kind == "buf" and ref in state_ids:
                    state_cells.setdefault(ref, []).append((values, i))
                elif kind in ("buf", "at"):
                    values[i] = self._arg_pointer(arg)
                elif kind == "i64":
                    values[i] = ref
                elif kind == "scratch":
                    values[i] = self._scratch + ref
                elif kind == "status":
                    values[i] = self._status
            params = (ctypes.c_void_p * max(1, len(launch.args)))(
                *[ctypes.addressof(values) + 8 * i for i in range(len(launch.args))])
            # cuLaunchKernel's arguments, ready to call (the arrays stay alive in the tuple)
            steps.append(("launch", (self._functions[launch.kernel], *launch.grid, *launch.block, 0, self._stream,
                                     params, None), launch.kernel, values))
        segments, i = [], 0
        while i < len(steps):
            if steps[i][0] == "repeat":
                segments.append(("repeat", steps[i + 1:i + 1 + steps[i][2]], steps[i][1]))
                i += 1 + steps[i][2]
                continue
            if not segments or segments[-1][0] != "plain":
                segments.append(("plain", [], None))
            segments[-1][1].append(steps[i])
            i += 1
        return segments, state_cells

    def _arg_pointer(self, arg) -> int:
        """The device address of a launch argument ["buf", id] or ["at", id, byte offset] (not a variable)."""
        return self._pointer[arg[1]] + (arg[2] if arg[0] == "at" else 0)

    @property
    def llvm_ir(self) -> str:
        if self._llvm_ir is None:
            from jitflow.codegen import gpu
            self._llvm_ir, _ = gpu.generate_llvm_ir(self.schedule)
        return self._llvm_ir

    @property
    def optimized_ir(self) -> str:
        if self._optimized_ir is None:
            from jitflow.codegen import ptx
            self._optimized_ir = ptx.compile_ptx(self.llvm_ir, self.plan.kernels, self.driver.arch).optimized_ir
        return self._optimized_ir

    def _bind_states(self, states) -> tuple:
        pointers = []
        for index, buf_id in self._states:
            pointer = self.mirror.device_pointer(states[index])
            pointers.append(pointer)
            for values, i in self._state_cells.get(buf_id, ()):
                values[i] = pointer
        return tuple(pointers)

    def _enqueue(self, steps):
        """`steps` on this executable's stream."""
        d = self.driver
        launch = d.lib.cuLaunchKernel
        for step in steps:
            if step[0] == "launch":
                code = launch(*step[1])
                if code:
                    d.check(code, "cuLaunchKernel", f"kernel {step[2]}")
            else:
                d.memset_async(step[1], step[2], self._stream)

    def launch_all(self, state_pointers: tuple):
        """Runs the plan: each segment as a CUDA graph recorded at the first call (one driver call per
        run instead of one per kernel), recorded again when the state arrays live elsewhere (another
        Session). A "repeat" segment (a while loop's chunk of trips) is replayed until the loop's flag
        reads zero, or a check failed."""
        d = self.driver
        if self._use_graphs and (self._graphs is None or self._graph_states != state_pointers):
            self._destroy_graphs()
            graphs = []
            try:
                for segment in self._segments:
                    graphs.append(d.capture(self._stream, lambda steps=segment[1]: self._enqueue(steps)))
                self._graphs, self._graph_states = graphs, state_pointers
            except errors.OpError:   # a driver without graph capture: launch one by one
                for graph in graphs:
                    d.destroy_graph(graph)
                self._use_graphs = False
        for index, (kind, steps, flag) in enumerate(self._segments):
            while True:
                if self._use_graphs:
                    d.launch_graph(self._graphs[index], self._stream)
                else:
                    self._enqueue(steps)
                if kind == "plain" or not self._loop_goes_on(flag):
                    break

    def _loop_goes_on(self, flag: int) -> bool:
        word = np.zeros(STATUS_BYTES // 4, np.int32)
        if self._status:     # a failed check stops the loop (the status is raised after the run)
            self.driver.to_host(word.ctypes.data, self._status, 4)
            if word[0]:
                return False
        self.driver.to_host(word.ctypes.data, flag, 1)     # waits for the chunk
        counters.bump("gpu_loop_chunks")
        return bool(word.view(np.uint8)[0])

    def _destroy_graphs(self):
        for graph in self._graphs or ():
            self.driver.destroy_graph(graph)
        self._graphs = None

    def profile(self, feeds, states, repeat: int = 20) -> list[tuple[str, float]]:
        """(kernel, seconds per run) for each launch of the plan, by CUDA events around each one (a while
        loop's repeated chunk of trips is timed once per run)."""
        d = self.driver
        with self._lock:
            d.make_current()
            for index, pointer, nbytes in self._params:
                d.to_device(pointer, feeds[index].ctypes.data, nbytes)
            self._bind_states(states)
            events = [d.event() for _ in range(len(self._steps) + 1)]
            totals = [0.0] * len(self._steps)
            for _ in range(repeat):
                d.record(events[0], self._stream)
                for i, step in enumerate(self._steps):
                    if step[0] == "launch":
                        d.check(d.lib.cuLaunchKernel(*step[1]), "cuLaunchKernel")
                    else:
                        d.memset_async(step[1], step[2], self._stream)
                    d.record(events[i + 1], self._stream)
                d.synchronize()
                for i in range(len(self._steps)):
                    totals[i] += d.elapsed_ms(events[i], events[i + 1]) / 1e3
            for event in events:
                d.destroy_event(event)
            for index in self._written_states:
                self.mirror.device_wrote(states[index])
        names = [step[2] if step[0] == "launch" else "memset" for step in self._steps]
        return [(name, total / repeat) for name, total in zip(names, totals)]

    def __call__(self, feeds, states) -> list:
        """feeds: C-contiguous arrays of the tensor params (right dtypes); states: the !var host arrays."""
        d = self.driver
        with self._lock:
            d.make_current()
            for index, pointer, nbytes in self._params:
                d.to_device(pointer, feeds[index].ctypes.data, nbytes)
            self.launch_all(self._bind_states(states))
            counters.launched()
            for index in self._written_states:
                self.mirror.device_wrote(states[index])
            outputs = [None] * self.n_results
            for index, pointer, shape, dtype, nbytes in self._outputs:
                out = np.empty(shape, dtype)
                d.to_host(out.ctypes.data, pointer, nbytes)   # waits for the kernels
                outputs[index] = out
            if not self._outputs:
                d.synchronize()
            if self._status:
                self._check_status()
        return outputs

    def _check_status(self):
        status = np.zeros(STATUS_BYTES // 4, np.int32)
        self.driver.to_host(status.ctypes.data, self._status, STATUS_BYTES)
        if status[0]:
            self.driver.memset(self._status, STATUS_BYTES)
            if is_check_status(int(status[0])):
                raise check_error(self.schedule, int(status[0]), int(status[2:4].view(np.int64)[0]))
            from .status_errors import library_status_error      # names the node and the user's line
            raise library_status_error(self.schedule, int(status[0]))

    def time_kernels(self, feeds, states, repeat: int = 20) -> float:
        """Seconds per run of the kernels alone (inputs already on the device, no copies), by CUDA events."""
        d = self.driver
        with self._lock:
            d.make_current()
            for index, pointer, nbytes in self._params:
                d.to_device(pointer, feeds[index].ctypes.data, nbytes)
            pointers = self._bind_states(states)
            self.launch_all(pointers)
            start, stop = d.event(), d.event()
            d.record(start, self._stream)
            for _ in range(repeat):
                self.launch_all(pointers)
            d.record(stop, self._stream)
            seconds = d.elapsed_ms(start, stop) / 1e3 / repeat
            d.destroy_event(start)
            d.destroy_event(stop)
            for index in self._written_states:
                self.mirror.device_wrote(states[index])
        return seconds

    def __del__(self):
        try:
            self._destroy_graphs()
            self.driver.lib.cuStreamDestroy_v2(self._stream)
            for pointer in self._owned:
                self.driver.free(pointer)
            self.driver.unload_module(self._module)
        except Exception:   # noqa: BLE001 - interpreter shutdown
            pass
