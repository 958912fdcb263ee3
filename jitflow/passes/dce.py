"""Dead-code elimination: drops nodes no result depends on. Stateful nodes stay
live through the effect chain the function returns."""
from __future__ import annotations

from ..ir.core import Function


def eliminate_dead_code(fn: Function) -> Function:
    live = {id(v) for v in fn.results}
    kept = []
    for node in reversed(fn.nodes):
        if any(id(r) in live for r in node.results):
            kept.append(node)
            live.update(id(v) for v in node.operands)
    fn.nodes = kept[::-1]
    return fn
