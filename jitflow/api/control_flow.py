"""`tf.cond`: both branches are built and compiled; the result is selected at
run time with `select`. Variable updates made inside a branch are rewritten to
write the old value when the branch is not taken, so their effects are those
of the taken branch only. (Random ops inside a branch still advance their run
counter either way.)"""
from __future__ import annotations

from .. import pytree
from ..framework.graph import get_default_graph
from ..ir.types import bool_
from . import math_ops
from .convert import convert_to_tensor


def cond(pred, true_fn=None, false_fn=None, strict=False, name=None, fn1=None, fn2=None):
    true_fn = true_fn or fn1
    false_fn = false_fn or fn2
    if not callable(true_fn) or not callable(false_fn):
        raise TypeError("cond needs callables true_fn and false_fn")
    pred = convert_to_tensor(pred)
    if pred.dtype != bool_:
        raise TypeError(f"cond: pred must be a bool tensor, got {pred.dtype.name}")
    if pred.shape.dims not in (None, ()):
        raise ValueError(f"cond: pred must be a scalar, got shape {pred.shape}")
    graph = get_default_graph()
    with graph.name_scope(name or "cond"):
        with graph.name_scope("true"), graph._cond_branch(pred, True):
            true_out = true_fn()
        with graph.name_scope("false"), graph._cond_branch(pred, False):
            false_out = false_fn()
        true_leaves, true_tree = pytree.flatten(true_out)
        false_leaves, false_tree = pytree.flatten(false_out)
        if true_tree != false_tree:
            raise ValueError("cond: true_fn and false_fn must return the same structure")
        merged = []
        for t, f in zip(true_leaves, false_leaves):
            t, f = convert_to_tensor(t), convert_to_tensor(f)
            if t.dtype != f.dtype:
                raise TypeError(f"cond: branches return different dtypes: {t.dtype.name} vs {f.dtype.name}")
            merged.append(math_ops.where(pred, t, f))
    return pytree.unflatten(true_tree, merged)
