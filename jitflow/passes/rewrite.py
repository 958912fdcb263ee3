"""A helper every pass uses: replace values by others and rebuild the node list."""
from __future__ import annotations

from ..ir.core import Function


def replace_values(fn: Function, replacement: dict) -> Function:
    """Rewires operands and results through `replacement` (id(old) -> new value)."""
    if not replacement:
        return fn

    def resolve(v):
        seen = 0
        while id(v) in replacement and seen < 1000:
            v = replacement[id(v)]
            seen += 1
        return v
    for node in fn.nodes:
        node.operands = [resolve(v) for v in node.operands]
    fn.results = [resolve(v) for v in fn.results]
    return fn
