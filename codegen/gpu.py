"""GPU code generation: a scheduled function -> one NVPTX module (a `ptx_kernel`
per fused kernel) and its launch plan -> PTX. The counterpart of codegen/cpu.py:
the same Schedule, the same kernels, in the same order; the runtime
(runtime/gpu_executable.py) launches the plan's steps on one stream. cond / while regions
become guarded launches (codegen/ptx_control_flow.py).
"""
from __future__ import annotations

from jitflow.ir.kernel_plan import Schedule

from . import ptx, ptx_checks, ptx_control_flow, ptx_library
from .kernel_table import register_gpu_kernels
from .ptx_kernels import emit_loop, emit_reduce, emit_rows
from .ptx_module import GpuModule, GpuPlan
from jitflow.errors import UnsupportedError
from jitflow.ops.checks import status_code
from jitflow.ops.registry import kernel_emitter

register_gpu_kernels()      # library kernels: the registry's kernel table (codegen/kernel_table.py)


def generate_llvm_ir(schedule: Schedule) -> tuple[str, GpuPlan]:
    gm = GpuModule()
    emit_schedule(gm, schedule, "", status_code)
    return gm.render(), gm.plan


def emit_schedule(gm: GpuModule, schedule: Schedule, prefix: str, code_of, guard=None):
    """Adds the kernels and launches of `schedule` to `gm`, each kernel's name starting with `prefix`.
    code_of(position) is the status a failing check at that position reports; `guard` (a launch
    argument) is set for a region's sub-schedule: its kernels run only while that flag byte is nonzero."""
    kernels = list(schedule.kernels)
    position = {id(k): i for i, k in enumerate(kernels)}
    index = -1
    while kernels:
        kernel = kernels.pop(0)
        index += 1
        name = f"{prefix}k{index}_{kernel.kind}"
        functions, launches = len(gm.functions), len(gm.plan.launches)
        if kernel.kind in ptx_control_flow.KINDS:      # cond / while: guards its own kernels
            ptx_control_flow.emit(gm, name, schedule, kernel, code_of, guard)
            continue
        if kernel.group is not None:
            members = [kernel]
            while kernels and kernels[0].group == kernel.group:
                members.append(kernels.pop(0))
            emit_rows(gm, f"{prefix}k{index}_rows", schedule, members)
        elif kernel.kind == "loop":
            emit_loop(gm, name, schedule, kernel)
        elif kernel.kind == "reduce":
            emit_reduce(gm, name, schedule, kernel)
        elif kernel.kind == "random":
            ptx_library.emit_random(gm, name, schedule, kernel)
        elif kernel.kind == "check":       # run-time checks (jitflow/ops/checks.py)
            ptx_checks.emit_check(gm, name, schedule, kernel, code_of(position[id(kernel)]))
        elif (emitter := kernel_emitter(kernel.root.node, "gpu")) is not None:
            emitter(gm, name, schedule, kernel)     # a library kernel, by its record's extra["kernel"]
        else:
            raise UnsupportedError(f"no GPU kernel for {kernel.root.node.describe()}")
        if guard is not None:
            ptx_control_flow.guard_new(gm, functions, launches, guard)


def compile_schedule(schedule: Schedule, arch: str | None = None) -> tuple[ptx.CompiledPtx, GpuPlan]:
    """Schedule -> (PTX and the IR it came from, launch plan)."""
    text, plan = generate_llvm_ir(schedule)
    return ptx.compile_ptx(text, plan.kernels, arch), plan
