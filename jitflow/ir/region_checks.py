"""Where a failing check inside a cond / while region (jitflow/passes/region_schedule.py) is
reported: a schedule's region kernels (kernels with `subs`, their sub-schedules) contribute their
check kernels to one table, so statuses stay unique across nesting levels. Used by codegen
(codegen/control_flow.py) to renumber a region's status and by the runtime (runtime/checks.py)
to find the check's node."""
from __future__ import annotations


def check_table(schedule) -> list:
    """The check kernels inside the regions of `schedule` (nested ones included), in a fixed order:
    a failing check there makes the run return status CHECK_STATUS_BASE + len(schedule.kernels) +
    its index here (codegen/control_flow.py translates the region's own status), so the runtime
    names the op as for a check at the top level (runtime/checks.py)."""
    table = []
    for kernel in schedule.kernels:
        if getattr(kernel, "subs", None):
            for sub in kernel.subs:
                table.extend(k for k in sub.kernels if k.kind == "check")
                table.extend(check_table(sub))      # recursion per nesting level of regions only
    return table


def status_map(schedule, kernel, r: int) -> dict:
    """{status offset region r's entry returns for a failing check: offset the outer entry returns}
    (offsets from CHECK_STATUS_BASE, jitflow/ops/checks.py)."""
    offset = len(schedule.kernels)
    for k in schedule.kernels:
        if k is kernel:
            break
        if getattr(k, "subs", None):
            offset += sum(sum(1 for x in s.kernels if x.kind == "check") + len(check_table(s)) for s in k.subs)
    for s in kernel.subs[:r]:
        offset += sum(1 for x in s.kernels if x.kind == "check") + len(check_table(s))
    sub = kernel.subs[r]
    codes = [q for q, k in enumerate(sub.kernels) if k.kind == "check"]
    codes += [len(sub.kernels) + t for t in range(len(check_table(sub)))]
    return {q: offset + i for i, q in enumerate(codes)}
