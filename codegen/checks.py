"""CPU kernels of the run-time checks (jitflow/ops/checks.py).

A check kernel is a loop kernel writing the checked value to its buffer, emitted as
`i32 name(ptr buffers..., ptr %detail)`. Inside the (vectorized) loop a failing
element only ORs a bit into a flag, a register after SROA, so the hot loop has no
branch. After the loop the flag is tested once; when set, a scalar pass re-evaluates
the elements, stores the first failing value (as i64) in `*detail`, and the kernel
returns its status code. The entry point (codegen/cpu.py) returns that status at once,
and runtime/checks.py names the op. Check kernels are never split across threads:
they are small (labels, divisors) and report the first failing element deterministically.
"""
from __future__ import annotations

from jitflow.ir.kernel_plan import Kernel, Schedule

from .llvm_builder import FunctionBuilder, llvm_type
from .loops import LoopEmitter, _nest, _ptr_table, prepare_loop_kernel


def _as_i64(fb, value: str, dtype) -> str:
    t = llvm_type(dtype)
    if t == "i64":
        return value
    return fb.assign(f"{'zext' if dtype.is_unsigned else 'sext'} {t} {value} to i64")


def prepare(schedule: Schedule, kernel: Kernel):
    """(shape, expr, out_affine, buffers, groups) of a check kernel (shared with codegen/ptx_checks.py):
    the elementwise kernel's preparation, with its shape."""
    expr, out_affine, buffers, groups = prepare_loop_kernel(schedule, kernel)
    return kernel.out.shape, expr, out_affine, buffers, groups


def emit_check_kernel(name: str, schedule: Schedule, kernel: Kernel, declarations: set, code: int):
    """(LLVM text, buffers): the check kernel returning `code` when an element fails, else 0."""
    shape, expr, out_affine, buffers, groups = prepare(schedule, kernel)
    fb = FunctionBuilder(name, [f"ptr noalias %b{b.id}" for b in buffers] + ["ptr noalias %detail"],
                         attrs="nounwind")
    flag = fb.alloca("i32")
    fb.store("i32", "0", flag)

    def or_into_flag(em, ok, x, dtype):
        bad = em.fb.assign(f"zext i1 {em.fb.assign(f'xor i1 {ok}, true')} to i32")
        em.fb.store("i32", em.fb.assign(f"or i32 {em.fb.load('i32', flag)}, {bad}"), flag)

    em = LoopEmitter(fb, declarations, _ptr_table(buffers), shape, groups)
    em.on_check = or_into_flag
    _nest(em, 0, lambda: em.store(kernel.out, out_affine, em.value(expr)))
    failed = fb.assign(f"icmp ne i32 {fb.load('i32', flag)}, 0")
    with fb.if_(failed):
        # the failure path only: find the first failing element, in the loop's order
        found = fb.alloca("i32")
        fb.store("i32", "0", found)

        def record_first(em, ok, x, dtype):
            first = em.fb.assign(f"icmp eq i32 {em.fb.load('i32', found)}, 0")
            take = em.fb.assign(f"and i1 {em.fb.assign(f'xor i1 {ok}, true')}, {first}")
            with em.fb.if_(take):
                em.fb.store("i64", _as_i64(em.fb, x, dtype), "%detail")
                em.fb.store("i32", "1", found)

        scan = LoopEmitter(fb, declarations, _ptr_table(buffers), shape, groups)
        scan.on_check = record_first
        _nest(scan, 0, lambda: scan.value(expr))
    fb.lines.append(f"  %status = select i1 {failed}, i32 {code}, i32 0")
    fb.lines.append("  ret i32 %status")
    return fb.render(ret="i32"), buffers
