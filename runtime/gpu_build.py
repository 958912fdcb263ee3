"""The GPU cache-miss path: IR function -> schedule -> NVPTX module -> PTX (+ its
launch plan) -> loaded GpuExecutable. Keys come from build.key_parts with the
GPU arch as the target; the disk cache stores the PTX text in place of object
code and the launch plan in the entry's meta, so a second process skips LLVM.

`gpu_program` does everything but the loading and needs no GPU: tests and tools
use it to get (and ptxas-check) the PTX a run would execute.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from jitflow.codegen import gpu, ptx
from jitflow.codegen.ptx_module import GpuPlan
from jitflow.ir.printer import print_function
from jitflow.passes import run_pipeline
from jitflow.passes.fusion import schedule_function

from . import counters
from .kernel_cache import disk_cache, make_key


@dataclass
class GpuProgram:
    schedule: object
    ptx: str
    plan: GpuPlan
    arch: str
    llvm_ir: str | None = None
    optimized_ir: str | None = None
    cache_key: str = ""


def present_arch() -> str:
    """The arch of the GPU this process runs on; a RuntimeError when there is none."""
    from . import cuda
    return cuda.require().arch


def _compile(fn, key: str, parts: dict, arch: str) -> GpuProgram:
    start = time.perf_counter()
    schedule = schedule_function(fn)
    disk = disk_cache()
    stored = disk.load(key) if disk is not None else None
    if stored is not None and "gpu_plan" in stored[1]:
        counters.bump("disk_hits")
        return GpuProgram(schedule, stored[0].decode(), GpuPlan.from_json(stored[1]["gpu_plan"]), arch,
                          cache_key=key)
    compiled, plan = gpu.compile_schedule(schedule, arch)
    counters.bump("compiles")
    counters.bump("compile_seconds", time.perf_counter() - start)
    if disk is not None:
        counters.bump("disk_misses")
        disk.store(key, compiled.ptx.encode(), {"parts": parts, "gpu_plan": plan.to_json(), "arch": arch,
                                                "compile_seconds": round(time.perf_counter() - start, 4),
                                                "kernels": len(schedule.kernels)})
    return GpuProgram(schedule, compiled.ptx, plan, arch, compiled.llvm_ir, compiled.optimized_ir, key)


def gpu_program(fn, arch: str | None = None, verify: bool = False) -> GpuProgram:
    """PTX and launch plan for a lowered function (consumed), for `arch` (default: JITFLOW_GPU_ARCH or sm_90)."""
    from .build import key_parts
    arch = arch or ptx.default_arch()
    fn = run_pipeline(fn, verify=verify or os.environ.get("JITFLOW_VERIFY") == "1")
    parts = key_parts(print_function(fn, locations=False, canonical=True), arch)
    program = _compile(fn, make_key(parts), parts, arch)
    program.ir_text = print_function(fn)
    if program.llvm_ir is None:   # PTX from the disk cache: regenerate the (cheap) LLVM IR for dumps
        program.llvm_ir, _ = gpu.generate_llvm_ir(program.schedule)
        program.optimized_ir = ""
    return program


def build_gpu(fn, key: str, parts: dict, arch: str):
    """build.build_executable's GPU branch: `fn` has been through the passes already."""
    from .gpu_executable import GpuExecutable
    start = time.perf_counter()
    program = _compile(fn, key, parts, arch)
    n_results = sum(1 for v in fn.results if v.is_tensor)
    executable = GpuExecutable(program.schedule, program.plan, program.ptx, n_results,
                               program.llvm_ir, program.optimized_ir)
    executable.ir_text = print_function(fn)
    executable.cache_key = key
    counters.bump("executables")
    counters.bump("load_seconds", time.perf_counter() - start)
    return executable
