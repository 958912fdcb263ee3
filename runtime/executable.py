"""Executable: one compiled entry point plus the plan to call it. A call fills
the slot array (feeds, variables and fresh outputs as numpy objects, constants
and a per-thread workspace as raw pointers), makes ONE native call (the GIL is
released while it runs) and returns the outputs as numpy arrays."""
from __future__ import annotations

import ctypes
import os
import sys
import threading

import numpy as np

from jitflow import errors
from jitflow.envvars import env_int
from jitflow.ir.kernel_plan import CONST, OUTPUT, PARAM, VAR
from jitflow.ir.symdim import is_symbolic

from .checks import check_error, is_check_status
from .counters import _counters as _COUNTERS
from .object_layout import BOXED_KINDS, NDARRAY_DATA_OFFSET

_ENTRY_TYPE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p)
STATUS_MESSAGES = {1: "Input is not invertible.", 2: "indices are out of range: an index is not in [0, size of the gathered axis)"}
REUSE_MIN_BYTES = 1 << 20   # outputs at least this large are recycled when the caller dropped them


def _check_array_layout() -> bool:
    """True when numpy's array object keeps its data pointer where codegen reads it."""
    samples = [np.ones(3, np.float32), np.zeros((), np.int64), np.arange(12.0).reshape(3, 4)[1:]]
    return all(ctypes.c_void_p.from_address(id(a) + NDARRAY_DATA_OFFSET).value == a.ctypes.data for a in samples)


if not _check_array_layout():   # pragma: no cover - would need a numpy with another object layout
    raise ImportError("jitflow: this numpy's array object layout differs from the one jitflow's calling "
                      "convention reads (data pointer at offset 16); please report your numpy version")


def memory_limit_bytes() -> int:
    """The memory one run may use: physical memory, or the cgroup limit when lower
    (JITFLOW_MEMORY_LIMIT_BYTES overrides both)."""
    explicit = env_int("JITFLOW_MEMORY_LIMIT_BYTES", 0, minimum=0)
    if explicit:
        return explicit
    limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            limit = min(limit, int(text))
    return limit


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"   # pragma: no cover


def check_memory(schedule):
    """Raises ResourceExhaustedError (a MemoryError) before anything is allocated or compiled
    when a run's buffers (outputs + workspace + variables + constants) exceed memory_limit_bytes()."""
    parts = {"outputs": 0, "workspace": schedule.workspace_bytes, "variables": 0, "constants": 0}
    for buf in schedule.buffers:
        key = {OUTPUT: "outputs", VAR: "variables", CONST: "constants"}.get(buf.kind)
        if key is not None:
            parts[key] += buf.nbytes
    total, limit = sum(parts.values()), memory_limit_bytes()
    if is_symbolic(total):      # a shape-polymorphic run: its calls size (and fail) allocations per call
        return
    if total <= limit:
        return
    largest = max(schedule.buffers, key=lambda b: b.nbytes)
    producer = next((k.root.node for k in schedule.kernels if k.out is largest and k.root.node is not None), None)
    where = ""
    if producer is not None:
        where = f" for node '{producer.scope or producer.op}' ({producer.op})"
        if producer.loc is not None:
            where += f", created at {producer.loc}"
    shape = ",".join(str(d) for d in largest.shape)
    detail = ", ".join(f"{k} {_fmt_bytes(v)}" for k, v in parts.items() if v)
    raise errors.ResourceExhaustedError(
        None, None, f"OOM when allocating tensor with shape [{shape}] and type {largest.dtype.name}{where}: "
                    f"the run needs {_fmt_bytes(total)} ({detail}) but this machine has "
                    f"{_fmt_bytes(limit)} of memory (JITFLOW_MEMORY_LIMIT_BYTES overrides the limit)")


class Executable:
    def __init__(self, schedule, loaded, n_results: int, llvm_ir=None, optimized_ir=None, blas=False):
        self._loaded = loaded                       # keeps the machine code alive
        self._entry = _ENTRY_TYPE(loaded.entry_address)
        self._retired = []                          # quick-tier code replaced by optimized code (tiered_build.py)
        self.upgrade = None                         # a pending tiered_build.Upgrade, until installed
        self.n_slots = len(schedule.slots)
        self.workspace_bytes = schedule.workspace_bytes
        self._llvm_ir = llvm_ir
        self._optimized_ir = optimized_ir
        self._blas = blas
        self.schedule = schedule
        self.n_results = n_results
        self._consts = []
        self._fixed = {}                            # slot -> raw pointer (constants)
        self._param_slots, self._state_slots, self._outputs = [], [], []
        self._workspace_slot = None
        for slot, buf in enumerate(schedule.slots):
            if buf is None:
                self._workspace_slot = slot
            elif buf.kind == CONST:
                array = np.asarray(buf.ref, dtype=buf.dtype.np, order="C")
                self._consts.append(array)
                self._fixed[slot] = array.ctypes.data
            elif buf.kind == PARAM:
                self._param_slots.append((buf.ref, slot))
            elif buf.kind == VAR:
                self._state_slots.append((buf.ref, slot))
            elif buf.kind == OUTPUT:
                self._outputs.append((buf.ref, slot, buf.shape, buf.dtype.np,
                                      not is_symbolic(buf.shape) and buf.nbytes >= REUSE_MIN_BYTES))
        assert {PARAM, VAR, OUTPUT} == set(BOXED_KINDS)
        self._aliases = sorted(schedule.output_aliases.items())
        self._local = threading.local()
        # what holding this executable costs beyond its code: the constants it owns
        self.resident_bytes = sum(a.nbytes for a in self._consts)

    @property
    def ir_text(self) -> str:
        """The IR after passes, as text (with source locations)."""
        from jitflow.ir.printer import print_function
        return print_function(self.function)

    @property
    def llvm_ir(self) -> str:
        """The generated LLVM IR (regenerated when the code came from the disk cache)."""
        if self._llvm_ir is None:
            from jitflow.codegen import cpu
            self._llvm_ir, _ = cpu.generate_llvm_ir(self.schedule, blas=self._blas)
        return self._llvm_ir

    def install_optimized(self, loaded, optimized_ir: str):
        """Replaces the quick-tier code by the optimized code (same results, bit for bit); calls already
        running keep running the old code, which stays loaded."""
        self._retired.append((self._loaded, self._entry))
        self._loaded, self._entry = loaded, _ENTRY_TYPE(loaded.entry_address)
        self._optimized_ir = optimized_ir
        self.upgrade = None

    def wait_optimized(self, timeout: float | None = None):
        """Blocks until this executable runs its optimized code (tiered compilation)."""
        upgrade = self.upgrade
        if upgrade is not None:
            upgrade.wait(self, timeout)

    @property
    def optimized_ir(self) -> str:
        self.wait_optimized()
        if self._optimized_ir is None:
            from jitflow.codegen import cpu
            self._optimized_ir = cpu.compile_llvm_ir(self.llvm_ir, ()).optimized_ir
        return self._optimized_ir

    def _thread_slots(self):
        """A slot array per thread, with constants and the workspace filled in once."""
        slots = (ctypes.c_void_p * (self.n_slots + 1))()   # + the detail word of failed checks (cpu.DETAIL)
        for slot, pointer in self._fixed.items():
            slots[slot] = pointer
        if self._workspace_slot is not None:
            workspace = np.empty(max(self.workspace_bytes, 64) + 64, np.uint8)
            address = workspace.ctypes.data
            slots[self._workspace_slot] = address + (-address) % 64
            self._local.workspace = workspace
        self._local.slots = slots
        self._local.recycled = [None] * self.n_results
        self._local.address = ctypes.addressof(slots)
        return slots

    def __call__(self, feeds, states) -> list:
        """feeds: C-contiguous arrays of the tensor params (right dtypes); states: the !var arrays."""
        local = self._local
        try:
            slots = local.slots
        except AttributeError:
            slots = self._thread_slots()
        for index, slot in self._param_slots:
            slots[slot] = id(feeds[index])
        for index, slot in self._state_slots:
            slots[slot] = id(states[index])
        outputs = [None] * self.n_results
        recycled = local.recycled
        for index, slot, shape, dtype, reusable in self._outputs:
            out = recycled[index] if reusable else None
            # a large output of the previous call that nobody else references any more is reused:
            # its pages are already mapped, so no first-touch page faults (which cost more than
            # the arithmetic for a fresh 64 MB result)
            if out is None or sys.getrefcount(out) > 3:
                try:
                    out = np.empty(shape, dtype)
                except MemoryError:
                    raise errors.ResourceExhaustedError(
                        None, None, f"OOM when allocating an output of shape {list(shape)} and type "
                                    f"{np.dtype(dtype).name}: not enough free memory") from None
            if reusable:
                recycled[index] = out
            outputs[index] = out
            slots[slot] = id(out)
        status = self._entry(local.address)
        if self.upgrade is not None:      # after the call: a starting background compile never delays it
            self.upgrade.tick(self)
        return self._finish(status, slots, outputs)

    def _finish(self, status: int, slots, outputs) -> list:
        """After the native call: a failed status becomes TF's error; aliased results are copied."""
        _COUNTERS["launches"] += 1
        if status:
            if is_check_status(status):
                raise check_error(self.schedule, status, ctypes.c_int64(slots[self.n_slots] or 0).value)
            from .status_errors import library_status_error      # names the node and the user's line
            raise library_status_error(self.schedule, status)
        for index, source in self._aliases:
            outputs[index] = outputs[source].copy()
        return outputs
