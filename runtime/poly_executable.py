"""PolyExecutable: an Executable whose schedule has symbolic dims (jitflow/ir/symdim.py), so one
compiled entry point serves every value >= 2 of each symbol (shape-polymorphic runs, jitflow/shape_poly.py).

A call reads each symbol's value from the fed arrays (the first fed dim that is that bare
symbol), sizes the outputs and the workspace from it, and writes the values after the slot array's
detail word, where the entry point reads them into the module global `@jf.dims` that the kernels
read (codegen/symdims.py). That global is shared by every caller of the one loaded module, so
calls of one PolyExecutable are serialized by a lock (concurrent calls of distinct executables,
concrete or polymorphic, still run in parallel).
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np

from jitflow import errors
from jitflow.errors import UnsupportedError
from jitflow.codegen.symdims import schedule_symbols
from jitflow.ir.kernel_plan import PARAM
from jitflow.ir.symdim import MIN_VALUE, SymDim, evaluate, evaluate_shape, is_symbolic

from .executable import Executable


def executable_class(schedule):
    return PolyExecutable if schedule_symbols(schedule) else Executable


class PolyExecutable(Executable):
    def __init__(self, schedule, loaded, n_results: int, llvm_ir=None, optimized_ir=None, blas=False):
        super().__init__(schedule, loaded, n_results, llvm_ir, optimized_ir, blas)
        self.n_symbols = schedule_symbols(schedule)
        found: dict[int, tuple] = {}
        for buf in schedule.buffers:
            if buf.kind == PARAM:
                for axis, d in enumerate(buf.shape):
                    if isinstance(d, SymDim) and len(d.terms) == 1 and d.terms[0][1] == 1 \
                            and len(d.terms[0][0]) == 1:
                        found.setdefault(d.terms[0][0][0], (buf.ref, axis))
        missing = [i for i in range(self.n_symbols) if i not in found]
        if missing:
            raise UnsupportedError(f"shape-polymorphic executable: symbol s{missing[0]} is not the dim of a feed")
        self._symbol_sources = [found[i] for i in range(self.n_symbols)]
        self._outputs = [(index, slot, buf_shape, dtype, False)
                         for index, slot, buf_shape, dtype, _ in self._outputs]
        self._call_lock = threading.Lock()       # @jf.dims is shared state of the loaded module
        self.symbolic = True

    def symbol_values(self, feeds) -> list:
        """The symbols' values in this call (read from the fed arrays' shapes)."""
        return [feeds[index].shape[axis] for index, axis in self._symbol_sources]

    def _poly_slots(self, workspace_bytes: int):
        local = self._local
        slots = getattr(local, "slots", None)
        if slots is None:
            slots = (ctypes.c_void_p * (self.n_slots + 1 + self.n_symbols))()
            for slot, pointer in self._fixed.items():
                slots[slot] = pointer
            local.slots, local.address, local.capacity = slots, ctypes.addressof(slots), -1
        if self._workspace_slot is not None and workspace_bytes > local.capacity:
            capacity = max(workspace_bytes, 64)
            try:
                workspace = np.empty(capacity + 64, np.uint8)
            except MemoryError:
                raise errors.ResourceExhaustedError(
                    None, None, f"OOM when allocating a workspace of {capacity} bytes: not enough free memory") from None
            address = workspace.ctypes.data
            slots[self._workspace_slot] = address + (-address) % 64
            local.workspace, local.capacity = workspace, capacity
        return slots

    def __call__(self, feeds, states) -> list:
        values = self.symbol_values(feeds)
        if any(v < MIN_VALUE for v in values):
            raise ValueError(f"a shape-polymorphic executable serves dims >= {MIN_VALUE}, got {values}")
        slots = self._poly_slots(evaluate(self.workspace_bytes, values))
        for index, slot in self._param_slots:
            slots[slot] = id(feeds[index])
        for index, slot in self._state_slots:
            slots[slot] = id(states[index])
        for i, value in enumerate(values):
            slots[self.n_slots + 1 + i] = value
        outputs = [None] * self.n_results
        for index, slot, shape, dtype, _ in self._outputs:
            if is_symbolic(shape):
                shape = evaluate_shape(shape, values)
            try:
                out = np.empty(shape, dtype)
            except MemoryError:
                raise errors.ResourceExhaustedError(
                    None, None, f"OOM when allocating an output of shape {list(shape)} and type "
                                f"{np.dtype(dtype).name}: not enough free memory") from None
            outputs[index] = out
            slots[slot] = id(out)
        with self._call_lock:
            status = self._entry(self._local.address)
        if self.upgrade is not None:      # after the call: a starting background compile never delays it
            self.upgrade.tick(self)
        return self._finish(status, slots, outputs)

