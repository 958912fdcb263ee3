"""Row-group fusion: consecutive kernels that iterate over the same leading
dimension R, whose reductions keep that dimension and which exchange data only
row by row (softmax, log-softmax, cross-entropy, batch statistics) are marked
as one group; codegen runs them inside one loop over rows, so each row is read
from memory once and its intermediates stay in cache. Elementwise temps made
and used only inside a group are not stored at all: the members that read them
recompute them (for softmax: exp(x - max) is evaluated twice instead of being
written to and read back from memory).
"""
from __future__ import annotations

from ..ops import get_op
from ..ops.registry import ELEMENTWISE

MIN_ROW_ELEMENTS = 16     # rows shorter than this gain nothing from fusion


def iteration_shape(kernel):
    if kernel.kind == "loop":
        return kernel.out.shape
    return kernel.root.node.operands[0].shape


def _candidate(kernel) -> bool:
    if kernel.kind not in ("loop", "reduce") or kernel.update != "set":
        return False
    node = kernel.root.node
    if kernel.kind == "reduce" and (get_op(node.op).reduce in ("argmax", "argmin") or 0 in node.attrs["axes"]):
        return False
    shape = iteration_shape(kernel)
    if len(shape) < 2 or shape[0] < 2 or not kernel.out.shape or kernel.out.shape[0] != shape[0]:
        return False
    row = 1
    for d in shape[1:]:
        row *= d
    return row >= MIN_ROW_ELEMENTS


def _row_wise(planner, kernel, produced: dict, rows: int) -> bool:
    """True when every read of a group-produced value is an elementwise read of the same row."""
    ok = True

    def visit(value, exact_rows):
        nonlocal ok
        if id(value) in produced and value is not kernel.root:
            if not exact_rows or len(value.shape) != len(iteration_shape(kernel)) or value.shape[0] != rows:
                ok = False
            return
        if id(value) in planner.home and not (value is kernel.expr and value is kernel.root):
            return
        node = value.node
        if node is None or node.op == "const":
            return
        opdef = get_op(node.op)
        for operand in node.operands:
            if not operand.is_tensor:
                continue
            same = exact_rows and opdef.kind == ELEMENTWISE and len(operand.shape) == len(value.shape)
            if kernel.kind == "reduce" and value is kernel.root:
                same = exact_rows
            visit(operand, same)
    visit(kernel.expr, True)
    return ok


def group_rows(planner, ordered):
    """Marks row groups on `ordered` kernels (schedule order); returns the kernels left after inlining."""
    groups, current = [], []
    for kernel in ordered:
        if _candidate(kernel) and current and iteration_shape(current[0])[0] == iteration_shape(kernel)[0]:
            current.append(kernel)
            continue
        if len(current) > 1:
            groups.append(current)
        current = [kernel] if _candidate(kernel) else []
    if len(current) > 1:
        groups.append(current)
    removed = set()
    for number, members in enumerate(groups):
        rows = iteration_shape(members[0])[0]
        produced, accepted = {}, []
        for kernel in members:
            if not _row_wise(planner, kernel, produced, rows):
                break
            produced[id(kernel.root)] = kernel
            accepted.append(kernel)
        if len(accepted) < 2 or not any(k.kind == "reduce" for k in accepted):
            continue
        for kernel in accepted:
            kernel.group = number
        for kernel in accepted[:-1]:
            if _inlinable(planner, kernel, accepted):
                del planner.home[id(kernel.root)]
                planner.buffers.remove(kernel.out)
                removed.add(id(kernel))
    return [k for k in ordered if id(k) not in removed]


def _inlinable(planner, kernel, members) -> bool:
    """An elementwise temp that only later members of its group read."""
    if kernel.kind != "loop" or kernel.out.kind != "temp" or kernel.expr is not kernel.root:
        return False
    if get_op(kernel.root.node.op).kind != ELEMENTWISE:
        return False
    readers = [k for _, k in planner.kernels if k is not kernel and any(
        leaf is kernel.root for leaf in planner.fused_leaves(k.expr, k.root))]
    return bool(readers) and all(k in members for k in readers)
