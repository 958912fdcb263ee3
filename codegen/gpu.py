"""GPU code generation: a scheduled function -> one NVPTX module (a `ptx_kernel`
per fused kernel) and its launch plan -> PTX. The counterpart of codegen/cpu.py:
the same Schedule, the same kernels, in the same order; the runtime
(runtime/gpu_executable.py) launches the plan's steps on one stream.
"""
from __future__ import annotations

from jitflow.ir.kernel_plan import Schedule

from . import ptx, ptx_checks, ptx_library
from .kernel_table import register_gpu_kernels
from .ptx_kernels import emit_loop, emit_reduce, emit_rows
from .ptx_module import GpuModule, GpuPlan
from jitflow.errors import UnsupportedError
from jitflow.ops.checks import status_code
from jitflow.ops.registry import kernel_emitter

register_gpu_kernels()      # library kernels: the registry's kernel table (codegen/kernel_table.py)


def generate_llvm_ir(schedule: Schedule) -> tuple[str, GpuPlan]:
    gm = GpuModule()
    kernels = list(schedule.kernels)
    index = -1
    while kernels:
        kernel = kernels.pop(0)
        index += 1
        name = f"k{index}_{kernel.kind}"
        if kernel.group is not None:
            members = [kernel]
            while kernels and kernels[0].group == kernel.group:
                members.append(kernels.pop(0))
            emit_rows(gm, f"k{index}_rows", schedule, members)
        elif kernel.kind == "loop":
            emit_loop(gm, name, schedule, kernel)
        elif kernel.kind == "reduce":
            emit_reduce(gm, name, schedule, kernel)
        elif kernel.kind == "random":
            ptx_library.emit_random(gm, name, schedule, kernel)
        elif kernel.kind == "check":       # run-time checks (jitflow/ops/checks.py)
            code = status_code(next(i for i, k in enumerate(schedule.kernels) if k is kernel))
            ptx_checks.emit_check(gm, name, schedule, kernel, code)
        elif (emitter := kernel_emitter(kernel.root.node, "gpu")) is not None:
            emitter(gm, name, schedule, kernel)     # a library kernel, by its record's extra["kernel"]
        else:
            raise UnsupportedError(f"no GPU kernel for {kernel.root.node.describe()}")
    return gm.render(), gm.plan


def compile_schedule(schedule: Schedule, arch: str | None = None) -> tuple[ptx.CompiledPtx, GpuPlan]:
    """Schedule -> (PTX and the IR it came from, launch plan)."""
    text, plan = generate_llvm_ir(schedule)
    return ptx.compile_ptx(text, plan.kernels, arch), plan
