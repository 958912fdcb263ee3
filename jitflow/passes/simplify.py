"""Algebraic simplification and folding of layout ops on constants: identity,
stop_gradient, casts to the same dtype, reshapes/broadcasts to the same shape
and identity transposes forward their operand; reshape/transpose/broadcast of a
constant become a new constant (data movement only; arithmetic on constants is
left to the compiled code, where LLVM folds scalar constants)."""
from __future__ import annotations

import math

import numpy as np

from ..ir.core import Function, Node
from ..ir.symdim import is_symbolic
from ..ops.registry import has_trait
from .rewrite import replace_values

# what each op is comes from its record's extra (jitflow/ops/registry.py): "forwards" (identity,
# stop_gradient), "cast", "reshape", "broadcast", "transpose", "constant"


def _forwarded(node: Node):
    if has_trait(node, "forwards"):
        return node.operands[0]
    x = node.operands[0] if node.operands else None
    if x is None or not x.is_tensor:
        return None
    if has_trait(node, "cast") and node.attrs["dtype"] == x.dtype:
        return x
    if (has_trait(node, "reshape") or has_trait(node, "broadcast")) and node.result.shape == x.shape:
        return x
    if has_trait(node, "transpose") and tuple(node.attrs["perm"]) == tuple(range(len(x.shape))):
        return x
    return None


def _folded_constant(node: Node):
    x = node.operands[0] if node.operands else None
    if x is None or not has_trait(x.node, "constant"):
        return None
    value = x.node.attrs["value"]
    if is_symbolic(node.result.shape):      # a shape-polymorphic run (jitflow/ir/symdim.py): no folding
        return None
    if has_trait(node, "reshape"):
        return value.reshape(node.result.shape)
    if has_trait(node, "transpose") and value.size <= 1 << 16:
        return np.ascontiguousarray(np.transpose(value, node.attrs["perm"]))
    if has_trait(node, "broadcast") and value.size == 1 and math.prod(node.result.shape) <= 16:   # no int64 wrap
        return np.broadcast_to(value.reshape(()), node.result.shape).copy()
    return None


def simplify(fn: Function) -> Function:
    replacement = {}
    kept = []
    for node in fn.nodes:
        node.operands = [replacement.get(id(v), v) for v in node.operands]
        forward = _forwarded(node)
        if forward is not None:
            replacement[id(node.result)] = forward
            continue
        folded = _folded_constant(node)
        if folded is not None:
            folded.setflags(write=False)
            const = Node("const", [], {"value": folded, "dtype": node.result.dtype}, [node.result.type],
                         loc=node.loc, scope=node.scope)
            const.results[0] = node.result
            node.result.node = const
            kept.append(const)
            continue
        kept.append(node)
    fn.nodes = kept
    return replace_values(fn, replacement)
