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

from ..ir.symdim import provably_le
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
    return provably_le(MIN_ROW_ELEMENTS, row)      # (a symbolic row: only when long for every value)


def _row_wise(planner, kernel, produced: dict, rows: int) -> bool:
    """True when every read of a group-produced value is an elementwise read of the same row.

    Iterative over the kernel's fused expression (an explicit stack, each (value, exact_rows) pair
    visited once), so a deep fused chain neither recurses nor re-walks shared subexpressions."""
    shape = iteration_shape(kernel)
    stack, seen = [(kernel.expr, True)], set()
    while stack:
        value, exact_rows = stack.pop()
        key = (id(value), exact_rows)
        if key in seen:
            continue
        seen.add(key)
        if id(value) in produced and value is not kernel.root:
            if not exact_rows or len(value.shape) != len(shape) or value.shape[0] != rows:
                return False
            continue
        if id(value) in planner.home and not (value is kernel.expr and value is kernel.root):
            continue
        node = value.node
        if node is None or get_op(node.op).extra.get("constant"):
            continue
        opdef = get_op(node.op)
        for operand in node.operands:
            if not operand.is_tensor:
                continue
            same = exact_rows and opdef.kind == ELEMENTWISE and len(operand.shape) == len(value.shape)
            if kernel.kind == "reduce" and value is kernel.root:
                same = exact_rows
            stack.append((operand, same))
    return True


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
    removed, removed_buffers, readers = set(), set(), None
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
        if readers is None:
            readers = _Readers(planner)
        member_ids = {id(k) for k in accepted}
        for kernel in accepted[:-1]:
            if _inlinable(kernel, member_ids, readers):
                del planner.home[id(kernel.root)]
                readers.inline(kernel)
                removed_buffers.add(id(kernel.out))
                removed.add(id(kernel))
    if removed_buffers:
        planner.buffers = [b for b in planner.buffers if id(b) not in removed_buffers]
    return [k for k in ordered if id(k) not in removed]


class _Readers:
    """Which kernels load which homed values (`planner.fused_leaves` of every kernel, inverted), kept
    current as temps are inlined: a reader of an inlined value then loads that value's own leaves.
    Built once per schedule, so deciding what to inline is linear in the kernels, not quadratic."""

    def __init__(self, planner):
        self.leaves: dict[int, dict[int, object]] = {}     # id(kernel) -> {id(leaf): leaf}
        self.readers: dict[int, dict[int, object]] = {}    # id(leaf) -> {id(kernel): kernel}
        for _, kernel in planner.kernels:
            leaves = {id(leaf): leaf for leaf in planner.fused_leaves(kernel.expr, kernel.root)}
            self.leaves[id(kernel)] = leaves
            for leaf_id in leaves:
                self.readers.setdefault(leaf_id, {})[id(kernel)] = kernel

    def of(self, value) -> list:
        return list(self.readers.get(id(value), {}).values())

    def inline(self, kernel):
        """`kernel.root` lost its home: its readers now evaluate it, loading its leaves instead."""
        root_id = id(kernel.root)
        inlined_leaves = self.leaves.get(id(kernel), {})
        for reader in self.readers.pop(root_id, {}).values():
            own = self.leaves[id(reader)]
            own.pop(root_id, None)
            for leaf_id, leaf in inlined_leaves.items():
                if leaf is not reader.root:
                    own[leaf_id] = leaf
                    self.readers.setdefault(leaf_id, {})[id(reader)] = reader


def _inlinable(kernel, member_ids: set, readers: _Readers) -> bool:
    """An elementwise temp that only later members of its group read."""
    if kernel.kind != "loop" or kernel.out.kind != "temp" or kernel.expr is not kernel.root:
        return False
    if get_op(kernel.root.node.op).kind != ELEMENTWISE:
        return False
    found = [k for k in readers.of(kernel.root) if k is not kernel]
    return bool(found) and all(id(k) in member_ids for k in found)
