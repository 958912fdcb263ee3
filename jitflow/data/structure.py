"""Element structures of tf.data: nested tuples, namedtuples and dicts whose
leaves are components (arrays, tensors, dtypes or shapes). Lists are leaves,
as in TF 1.x (`from_tensor_slices([1, 2])` slices one tensor). A structure is
a hashable tree description plus the flat list of its leaves."""
from __future__ import annotations

LEAF = ("leaf",)


def flatten(value):
    """(leaves, tree) of a nested element; dict keys are sorted, as TF does."""
    leaves: list = []
    return leaves, _flatten(value, leaves)


def _flatten(value, leaves):
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return ("namedtuple", type(value), tuple(_flatten(v, leaves) for v in value))
    if isinstance(value, tuple):
        return ("tuple", tuple(_flatten(v, leaves) for v in value))
    if isinstance(value, dict):
        keys = tuple(sorted(value))
        return ("dict", keys, tuple(_flatten(value[k], leaves) for k in keys))
    leaves.append(value)
    return LEAF


def flatten_as(tree, value, what="value"):
    """Leaves of `value`, which must have the structure `tree` (its leaves may themselves be anything)."""
    leaves: list = []
    _flatten_as(tree, value, leaves, what)
    return leaves


def _flatten_as(tree, value, leaves, what):
    kind = tree[0]
    if kind == "leaf":
        leaves.append(value)
        return
    if kind == "dict":
        if not isinstance(value, dict) or sorted(value) != list(tree[1]):
            raise TypeError(f"{what} does not match the element structure {describe(tree)}")
        for key, child in zip(tree[1], tree[2]):
            _flatten_as(child, value[key], leaves, what)
        return
    children = tree[-1]
    if not isinstance(value, (tuple, list)) or len(value) != len(children):
        raise TypeError(f"{what} does not match the element structure {describe(tree)}")
    for child, item in zip(children, value):
        _flatten_as(child, item, leaves, what)


def pack(tree, leaves):
    """The nested element of structure `tree` holding `leaves`."""
    iterator = iter(leaves)
    return _pack(tree, iterator)


def _pack(tree, iterator):
    kind = tree[0]
    if kind == "leaf":
        return next(iterator)
    if kind == "tuple":
        return tuple(_pack(t, iterator) for t in tree[1])
    if kind == "namedtuple":
        return tree[1](*[_pack(t, iterator) for t in tree[2]])
    return {k: _pack(t, iterator) for k, t in zip(tree[1], tree[2])}


def count(tree) -> int:
    if tree[0] == "leaf":
        return 1
    return sum(count(t) for t in tree[-1])


def describe(tree) -> str:
    kind = tree[0]
    if kind == "leaf":
        return "."
    if kind == "dict":
        return "{" + ", ".join(f"{k!r}: {describe(t)}" for k, t in zip(tree[1], tree[2])) + "}"
    return "(" + ", ".join(describe(t) for t in tree[-1]) + ")"
