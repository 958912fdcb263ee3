"""Scheduling of structured control-flow ops (jitflow/ir/regions.py).

A region op becomes one kernel of kind "region" in its function's schedule. Each of its
regions is scheduled on its own (`schedule_function`, recursively per nesting level) into a
sub-schedule; codegen (codegen/control_flow.py) compiles a sub-schedule like a whole run and
calls it from a branch or a native loop, passing the outer buffers through a slot table:

- the region's parameters read the op's operand buffers (a while loop's carried values read
  the loop's state buffers, which are the op's result buffers);
- the region's results write the op's result buffers (cond), the loop's flag (while: cond
  region) or the loop's next-state buffers (while: body region), copied to the state after
  each iteration;
- a sub-schedule's temps live in one workspace temp of the outer schedule; its constants
  become constants of the outer schedule (so the runtime passes them as for any kernel).

On the GPU (codegen/ptx_control_flow.py) the regions' kernels are launched guarded by flags in
the region's 16-byte `control` temp instead: only the taken branch's kernels and the iterations
that run do any work.

Results after the first get a kernel of kind "region_result" each: it computes nothing (the
region kernel fills every result), but it owns the result's buffer, so a fetched result is
written straight into its output buffer like any kernel's root.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UnsupportedError
from ..ir.kernel_plan import CONST, OUTPUT, PARAM, Buffer, Kernel, Schedule
from ..ir.types import TensorType, bool_, uint8
from ..ops.registry import has_trait


@dataclass
class RegionKernel(Kernel):
    """The kernel of a cond/while node. `result_kernels[k].out` is result k's buffer (read at
    codegen time: fetched results are re-homed to output buffers after planning)."""
    subs: list = field(default_factory=list)             # one Schedule per region
    result_kernels: list = field(default_factory=list)
    next_state: list = field(default_factory=list)       # while: the body's result buffers
    flag: Buffer | None = None                           # while: the cond region's bool result
    workspaces: list = field(default_factory=list)       # one temp (uint8) per sub-schedule
    consts: dict = field(default_factory=dict)           # id(sub CONST buffer) -> outer CONST buffer
    control: Buffer | None = None                        # GPU only: flags and trip counter (codegen/ptx_control_flow.py)


def plan_region_node(planner, position: int, node) -> None:
    """Adds the kernels and buffers of region op `node` to `planner` (jitflow/passes/fusion.py)."""
    from .fusion import schedule_function     # the same scheduler, one level down
    for region in node.regions:
        for inner in region.nodes:
            if has_trait(inner, "reads_var") or has_trait(inner, "update") or any(
                    not isinstance(p.type, TensorType) for p in region.params):
                raise UnsupportedError(f"{node.describe()}: a region reads or updates a variable "
                                       f"({inner.describe()}); regions must be pure")
    if not node.results:
        raise UnsupportedError(f"{node.describe()}: a control-flow op without results")
    homes = []
    for v in node.results:
        buf = planner.new_buffer("temp", v.type)
        planner.home[id(v)] = buf
        homes.append(buf)
    kernel = RegionKernel("region", node.results[0], homes[0], expr=node.results[0])
    kernel.result_kernels = [kernel] + [Kernel("region_result", v, buf, expr=v)
                                        for v, buf in zip(node.results[1:], homes[1:])]
    kernel.subs = [schedule_function(region) for region in node.regions]
    for sub in kernel.subs:
        if any(b.kind not in (PARAM, CONST, OUTPUT, "temp") for b in sub.buffers):
            raise UnsupportedError(f"{node.describe()}: a region uses state (variables or random ops)")
        kernel.workspaces.append(planner.new_buffer("temp", TensorType(uint8, (max(1, sub.workspace_bytes),))))
        for buf in sub.buffers:
            if buf.kind == CONST:
                kernel.consts[id(buf)] = planner.new_buffer(CONST, TensorType(buf.dtype, buf.shape), ref=buf.ref)
    kernel.control = planner.new_buffer("temp", TensorType(uint8, (16,)))
    if has_trait(node, "loop"):     # while (its record's extra["loop"])
        kernel.next_state = [planner.new_buffer("temp", v.type) for v in node.results]
        kernel.flag = planner.new_buffer("temp", TensorType(bool_, ()))
    for k in kernel.result_kernels:
        planner.kernels.append((position, k))


def sub_schedules(schedule: Schedule) -> list:
    """The sub-schedules of every region kernel of `schedule`, nested ones included (iterative)."""
    found, stack = [], [schedule]
    while stack:
        for kernel in stack.pop().kernels:
            if isinstance(kernel, RegionKernel):
                found.extend(kernel.subs)
                stack.extend(kernel.subs)
    return found

