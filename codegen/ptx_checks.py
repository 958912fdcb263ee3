"""GPU kernels of the run-time checks (jitflow/ops/checks.py), the counterpart of
codegen/checks.py: a grid-stride loop writes the checked value; a thread whose
element fails stores the check's status code in the run's status word and the
failing value (i64) in the detail word 8 bytes after it. The runtime
(runtime/gpu_executable.py) reads both after the run and runtime/checks.py names
the op. Unlike the CPU entry, the GPU plan does not stop at a failed check: later
kernels of the run still execute before the error is raised (a while loop stops
repeating its chunks); the first failure to store its status is the one reported
(`report_status`), its value one failing element, not necessarily the first.
"""
from __future__ import annotations

from jitflow.ir.kernel_plan import Schedule
from jitflow.ir.types import num_elements

from .checks import _as_i64, prepare
from .loops import LoopEmitter, _ptr_table
from .ptx_module import GpuModule, grid_elements, grid_for, report_status, set_vars


def emit_check(gm: GpuModule, name: str, schedule: Schedule, kernel, code: int):
    shape, expr, out_affine, buffers, groups = prepare(schedule, kernel)
    fb = gm.kernel(name, buffers, ["ptr %status"])
    em = gm.lowering_for(LoopEmitter(fb, gm.declarations, _ptr_table(buffers), shape, groups))

    def report(em, ok, x, dtype):
        with em.fb.if_(em.fb.assign(f"xor i1 {ok}, true")):
            report_status(em.fb, str(code), _as_i64(em.fb, x, dtype))

    em.on_check = report

    def element(e):
        set_vars(em, fb, list(range(len(groups))), e)
        em.memo.clear()
        em.store(kernel.out, out_affine, em.value(expr))
    total = num_elements(shape)
    grid_elements(fb, gm.declarations, total, element)
    gm.functions.append(fb.render())
    gm.plan.has_status = True
    gm.launch(name, buffers, grid_for(total), extra=[["status", 0]])
