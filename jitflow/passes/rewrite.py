"""A helper every pass uses: replace values by others and rebuild the node list."""
from __future__ import annotations

from ..ir.core import Function


def replace_values(fn: Function, replacement: dict) -> Function:
    """Rewires operands and results through `replacement` (id(old) -> new value)."""
    if not replacement:
        return fn

    limit = len(replacement)         # a chain longer than the map would be a cycle

    def resolve(v):
        path = []
        while id(v) in replacement and len(path) <= limit:
            path.append(id(v))
            v = replacement[id(v)]
        for key in path[:-1]:
            replacement[key] = v         # path compression: a long chain is walked once
        return v
    for node in fn.nodes:
        node.operands = [resolve(v) for v in node.operands]
    fn.results = [resolve(v) for v in fn.results]
    return fn
