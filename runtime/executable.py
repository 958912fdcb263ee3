"""Executable: one compiled entry point plus the plan to call it. A call fills
the slot array (feeds, variables, constants, fresh outputs, a per-thread
workspace), makes ONE native call (the GIL is released while it runs) and
returns the outputs as numpy arrays."""
from __future__ import annotations

import ctypes
import threading

import numpy as np

from jitflow import errors
from jitflow.ir.schedule import CONST, OUTPUT, PARAM, VAR

from . import counters as _stats

_ENTRY_TYPE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p)
STATUS_MESSAGES = {1: "Input is not invertible."}


class Executable:
    def __init__(self, schedule, loaded, n_results: int, llvm_ir=None, optimized_ir=None, blas=False):
        self._loaded = loaded                       # keeps the machine code alive
        self._entry = _ENTRY_TYPE(loaded.entry_address)
        self.n_slots = len(schedule.slots)
        self.workspace_bytes = schedule.workspace_bytes
        self._llvm_ir = llvm_ir
        self._optimized_ir = optimized_ir
        self._blas = blas
        self.schedule = schedule
        self._plan = []                             # (slot, kind, ref, dtype, shape)
        self._consts = []
        for slot, buf in enumerate(schedule.slots):
            if buf is None:
                self._plan.append((slot, "workspace", None, None, None))
                continue
            ref = buf.ref
            if buf.kind == CONST:
                array = np.asarray(ref, dtype=buf.dtype.np, order="C")
                self._consts.append(array)
                ref = array.ctypes.data
            self._plan.append((slot, buf.kind, ref, buf.dtype.np, buf.shape))
        self.n_results = n_results
        self._local = threading.local()

    @property
    def llvm_ir(self) -> str:
        """The generated LLVM IR (regenerated when the code came from the disk cache)."""
        if self._llvm_ir is None:
            from jitflow.codegen import cpu
            self._llvm_ir, _ = cpu.generate_llvm_ir(self.schedule, blas=self._blas)
        return self._llvm_ir

    @property
    def optimized_ir(self) -> str:
        if self._optimized_ir is None:
            from jitflow.codegen import cpu
            self._optimized_ir = cpu.compile_llvm_ir(self.llvm_ir, ()).optimized_ir
        return self._optimized_ir

    def _workspace(self):
        ws = getattr(self._local, "ws", None)
        if ws is None:
            ws = np.empty(max(self.workspace_bytes, 64) + 64, np.uint8)
            self._local.ws = ws
        address = ws.ctypes.data
        return address + (-address) % 64

    def __call__(self, feeds, states) -> list:
        """feeds: arrays of the tensor params; states: arrays of the !var params, in order."""
        slots = (ctypes.c_void_p * self.n_slots)()
        outputs = [None] * self.n_results
        for slot, kind, ref, dtype, shape in self._plan:
            if kind == PARAM:
                slots[slot] = feeds[ref].ctypes.data
            elif kind == VAR:
                slots[slot] = states[ref].ctypes.data
            elif kind == CONST:
                slots[slot] = ref
            elif kind == OUTPUT:
                out = np.empty(shape, dtype)
                outputs[ref] = out
                slots[slot] = out.ctypes.data
            else:
                slots[slot] = self._workspace()
        status = self._entry(ctypes.addressof(slots))
        _stats.bump("launches")
        if status:
            raise errors.InvalidArgumentError(None, None, STATUS_MESSAGES.get(status, f"kernel status {status}"))
        return outputs
