"""Nested containers of arrays (tuples, lists, dicts, None) flattened to
leaves and a structure description, and rebuilt from leaves. A class with
`_pytree_flatten()` -> (children, hashable meta) and classmethod
`_pytree_unflatten(meta, children)` is a container too (tf.TensorArray)."""
from __future__ import annotations


def flatten(tree):
    """Returns (leaves, treedef); treedef is hashable and describes the nesting."""
    leaves: list = []
    treedef = _flatten(tree, leaves)
    return leaves, treedef


def _flatten(tree, leaves):
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return ("tuple", tuple(_flatten(x, leaves) for x in tree))
    if isinstance(tree, tuple):
        return ("namedtuple", type(tree), tuple(_flatten(x, leaves) for x in tree))
    if isinstance(tree, list):
        return ("list", tuple(_flatten(x, leaves) for x in tree))
    if isinstance(tree, dict):
        keys = tuple(sorted(tree, key=repr))
        return ("dict", keys, tuple(_flatten(tree[k], leaves) for k in keys))
    if tree is None:
        return ("none",)
    if hasattr(type(tree), "_pytree_flatten"):     # e.g. tf.TensorArray (its buffer), jitflow/api/tensor_array.py
        children, meta = tree._pytree_flatten()
        return ("custom", type(tree), meta, tuple(_flatten(x, leaves) for x in children))
    leaves.append(tree)
    return ("leaf",)


def unflatten(treedef, leaves):
    iterator = iter(leaves)
    return _unflatten(treedef, iterator)


def _unflatten(treedef, iterator):
    kind = treedef[0]
    if kind == "leaf":
        return next(iterator)
    if kind == "none":
        return None
    if kind == "tuple":
        return tuple(_unflatten(t, iterator) for t in treedef[1])
    if kind == "namedtuple":
        return treedef[1](*[_unflatten(t, iterator) for t in treedef[2]])
    if kind == "list":
        return [_unflatten(t, iterator) for t in treedef[1]]
    if kind == "custom":
        return treedef[1]._pytree_unflatten(treedef[2], [_unflatten(t, iterator) for t in treedef[3]])
    return {k: _unflatten(t, iterator) for k, t in zip(treedef[1], treedef[2])}
