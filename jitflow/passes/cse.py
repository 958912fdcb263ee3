"""Common-subexpression elimination over pure nodes (same op, operands and
attributes compute the same value)."""
from __future__ import annotations

import hashlib

import numpy as np

from ..ir.core import Function
from ..ops import get_op
from ..ops.registry import EFFECT, RANDOM
from .rewrite import replace_values


def _attr_key(value, unique=frozenset()):
    """`unique`: ids of arrays no other array of the run could equal (alone with their dtype and
    shape): keyed by identity, so a large constant is not hashed for nothing (W8: ~1 ms a step)."""
    if isinstance(value, np.ndarray):
        if id(value) in unique:
            return ("array", value.dtype.str, value.shape, "id", id(value))
        return ("array", value.dtype.str, value.shape, hashlib.sha256(value.tobytes()).hexdigest())
    if isinstance(value, (list, tuple)):
        return tuple(_attr_key(v, unique) for v in value)
    return (type(value).__name__, repr(value))


def _unique_arrays(fn: Function) -> frozenset:
    """Ids of the top-level array attributes whose (dtype, shape) no other array attribute shares."""
    groups: dict = {}
    for node in fn.nodes:
        for value in node.attrs.values():
            if isinstance(value, np.ndarray):
                groups.setdefault((value.dtype.str, value.shape), {})[id(value)] = value
    return frozenset(i for group in groups.values() if len(group) == 1 for i in group)


def eliminate_common_subexpressions(fn: Function) -> Function:
    unique = _unique_arrays(fn)
    seen: dict = {}
    replacement: dict = {}
    kept = []
    for node in fn.nodes:
        node.operands = [replacement.get(id(v), v) for v in node.operands]
        opdef = get_op(node.op)
        if opdef.stateful or opdef.kind in (EFFECT, RANDOM):
            kept.append(node)
            continue
        key = (node.op, tuple(id(v) for v in node.operands),
               tuple(sorted((k, _attr_key(v, unique)) for k, v in node.attrs.items())))
        if key in seen:
            for old, new in zip(node.results, seen[key].results):
                replacement[id(old)] = new
            continue
        seen[key] = node
        kept.append(node)
    fn.nodes = kept
    return replace_values(fn, replacement)
