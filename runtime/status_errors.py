"""Turns a library kernel's status word into the TF-named error that names the node and the
user's line: 1 = a matrix was not invertible (matrix_inverse, codegen/library.py), 2 = a gather
index out of range (codegen/array_kernels.py). A status does not say which kernel returned it,
so the message names the only node of that op in the run, or lists them when there are several.
(Run-time checks, status >= CHECK_STATUS_BASE, are runtime/checks.py's.)
Used by runtime/executable.py (CPU) and runtime/gpu_executable.py.
"""
from __future__ import annotations

from types import SimpleNamespace

from jitflow import errors
from jitflow.ops import get_op

# status -> (registry op names whose kernels return it, TF's message)
LIBRARY_STATUS = {
    1: (("matrix_inverse",), "Input is not invertible."),
    2: (("gather",), "indices are out of range: an index is not in [0, size of the gathered axis)"),
}


def _describe(node) -> str:
    opdef = get_op(node.op)
    where = SimpleNamespace(name=node.scope or node.op, type=node.attrs.get("op_type") or opdef.tf_name or node.op,
                            loc=node.loc)
    return errors.describe_op(where)


def library_status_error(schedule, status: int) -> errors.InvalidArgumentError:
    ops, message = LIBRARY_STATUS.get(status, ((), f"kernel status {status}"))
    nodes = []
    for kernel in getattr(schedule, "kernels", ()):
        node = getattr(getattr(kernel, "root", None), "node", None)
        if node is not None and node.op in ops and all(node is not seen for seen in nodes):
            nodes.append(node)
    if len(nodes) == 1:
        message += f"\n  {_describe(nodes[0])}"
    elif nodes:
        message += "\n  in one of:\n  " + "\n  ".join(_describe(n) for n in nodes)
    return errors.InvalidArgumentError(None, None, message)
