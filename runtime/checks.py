"""Turns a failed run-time check (jitflow/ops/checks.py) into the TF-named error: the
status an entry point returned names the check kernel (CHECK_STATUS_BASE + its
position in the schedule), the detail word holds the failing value; the message is
the op's own (TF's text), followed by the node's name, the TF op it guards and the
user's source line. Used by runtime/executable.py (CPU) and runtime/gpu_executable.py.
"""
from __future__ import annotations

from types import SimpleNamespace

from jitflow import errors
from jitflow.ops import get_op
from jitflow.ops.checks import CHECK_STATUS_BASE


def is_check_status(status: int) -> bool:
    return status >= CHECK_STATUS_BASE


def check_error(schedule, status: int, detail: int | None) -> errors.InvalidArgumentError:
    position = status - CHECK_STATUS_BASE
    kernels = schedule.kernels
    if position >= len(kernels):      # a check inside a cond / while region (jitflow/passes/region_schedule.py)
        from jitflow.ir.region_checks import check_table
        kernels = list(kernels) + check_table(schedule)
    if not 0 <= position < len(kernels) or kernels[position].kind != "check":
        return errors.InvalidArgumentError(None, None, f"kernel status {status}")
    node = kernels[position].root.node
    opdef = get_op(node.op)
    message = opdef.extra["message"](node.attrs, "<unknown>" if detail is None else detail)
    where = SimpleNamespace(name=node.scope or node.op, type=node.attrs.get("op_type") or opdef.tf_name,
                            loc=node.loc)
    return errors.InvalidArgumentError(None, None, f"{message}\n  {errors.describe_op(where)}")
