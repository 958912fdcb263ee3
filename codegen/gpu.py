"""GPU code generation: a scheduled function -> one NVPTX module (a `ptx_kernel`
per fused kernel) and its launch plan -> PTX. The counterpart of codegen/cpu.py:
the same Schedule, the same kernels, in the same order; the runtime
(runtime/gpu_executable.py) launches the plan's steps on one stream.
"""
from __future__ import annotations

from jitflow.ir.schedule import Schedule

from . import ptx, ptx_array, ptx_checks, ptx_library
from .ptx_kernels import emit_concat, emit_loop, emit_reduce, emit_rows, emit_scatter
from .ptx_threads import GpuModule, GpuPlan
from jitflow.errors import UnsupportedError
from jitflow.ops.checks import status_code


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
        elif kernel.kind == "concat":
            emit_concat(gm, name, schedule, kernel)
        elif kernel.kind == "scatter":
            emit_scatter(gm, name, schedule, kernel)
        elif kernel.kind == "random":
            ptx_library.emit_random(gm, name, schedule, kernel)
        elif kernel.kind == "check":       # run-time checks (jitflow/ops/checks.py)
            code = status_code(next(i for i, k in enumerate(schedule.kernels) if k is kernel))
            ptx_checks.emit_check(gm, name, schedule, kernel, code)
        elif ptx_array.has_kernel(kernel.root.node):
            ptx_array.emit(gm, name, schedule, kernel)
        elif kernel.root.node.op == "matmul":
            ptx_library.emit_matmul(gm, name, schedule, kernel)
        elif kernel.root.node.op == "matrix_inverse":
            ptx_library.emit_inverse(gm, name, schedule, kernel)
        else:
            raise UnsupportedError(f"no GPU kernel for {kernel.root.node.describe()}")
    return gm.render(), gm.plan


def compile_schedule(schedule: Schedule, arch: str | None = None) -> tuple[ptx.CompiledPtx, GpuPlan]:
    """Schedule -> (PTX and the IR it came from, launch plan)."""
    text, plan = generate_llvm_ir(schedule)
    return ptx.compile_ptx(text, plan.kernels, arch), plan
