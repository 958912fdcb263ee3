"""`tf.cond`, `tf.case` and `tf.while_loop` on the IR's structured control flow
(jitflow/ir/regions.py): branch, condition and body functions are traced into sub-graphs
(jitflow/framework/func_graph.py) that capture the outer tensors they read as explicit inputs;
the `cond` / `while` graph op owns them and the compiled code runs only the taken branch and
loops natively.

A branch that updates variables or draws random numbers cannot be a region (regions are pure);
such a `tf.cond` falls back to computing both branches and selecting the result with `select`
(`_select_cond`, with variable updates of the untaken branch rewritten to keep the old value).
"""
from __future__ import annotations

import numpy as np

from .. import pytree
from ..errors import UnsupportedError
from ..framework.func_graph import ImpureRegion, finish_regions, trace
from ..framework.graph import Tensor, get_default_graph
from ..framework.shapes import TensorShape
from ..ir.types import TensorType, bool_
from . import array_ops, math_ops
from .convert import convert_to_tensor


def _check_pred(pred, what="cond"):
    pred = convert_to_tensor(pred)
    if pred.dtype != bool_:
        raise TypeError(f"{what}: pred must be a bool tensor, got {pred.dtype.name}")
    if pred.shape.dims not in (None, ()):
        raise ValueError(f"{what}: pred must be a scalar, got shape {pred.shape}")
    return pred


def _flat_outputs(fn, strict):
    """fn() flattened to tensors (converted in the current graph), plus its structure."""
    out = fn()
    if not strict and isinstance(out, (list, tuple)) and not hasattr(out, "_fields") and len(out) == 1:
        out = out[0]                   # TF 1.x: singleton lists are unpacked unless strict=True
    leaves, tree = pytree.flatten(out)
    return [convert_to_tensor(x) for x in leaves], tree


def _merged_shape(a, b):
    if a is None or b is None or len(a) != len(b):
        return None
    return tuple(x if x == y else None for x, y in zip(a, b))


def cond(pred, true_fn=None, false_fn=None, strict=False, name=None, fn1=None, fn2=None):
    true_fn = true_fn or fn1
    false_fn = false_fn or fn2
    if not callable(true_fn) or not callable(false_fn):
        raise TypeError("cond needs callables true_fn and false_fn")
    pred = _check_pred(pred)
    graph = get_default_graph()
    with graph.name_scope(name or "cond"):
        try:
            t_graph, _, (t_leaves, t_tree) = trace(graph, "then", lambda: _flat_outputs(true_fn, strict))
            f_graph, _, (f_leaves, f_tree) = trace(graph, "else", lambda: _flat_outputs(false_fn, strict))
        except ImpureRegion:
            return _select_cond(graph, pred, true_fn, false_fn, strict)
        if t_tree != f_tree:
            raise ValueError("cond: true_fn and false_fn must return the same structure")
        types = []
        for t, f in zip(t_leaves, f_leaves):
            if t.dtype != f.dtype:
                raise TypeError(f"cond: branches return different dtypes: {t.dtype.name} vs {f.dtype.name}")
            types.append(TensorType(t.dtype, _merged_shape(t._type.shape, f._type.shape)))
        if not types:
            raise UnsupportedError("tf.cond with branches that return no tensors (only side effects) is not "
                                   "supported by jitflow")
        captures, regions = finish_regions([(t_graph, [], t_leaves), (f_graph, [], f_leaves)], 0)
        op = graph.create_op("cond", [pred] + captures, {"_regions": regions},
                             name="If", output_types=types)
    return pytree.unflatten(t_tree, list(op.outputs))


def _select_cond(graph, pred, true_fn, false_fn, strict):
    """Both branches computed, the result selected (branches with side effects)."""
    with graph.name_scope("true"), graph._cond_branch(pred, True):
        true_leaves, true_tree = _flat_outputs(true_fn, strict)
    with graph.name_scope("false"), graph._cond_branch(pred, False):
        false_leaves, false_tree = _flat_outputs(false_fn, strict)
    if true_tree != false_tree:
        raise ValueError("cond: true_fn and false_fn must return the same structure")
    merged = []
    for t, f in zip(true_leaves, false_leaves):
        if t.dtype != f.dtype:
            raise TypeError(f"cond: branches return different dtypes: {t.dtype.name} vs {f.dtype.name}")
        merged.append(math_ops.where(pred, t, f))
    return pytree.unflatten(true_tree, merged)


def case(pred_fn_pairs, default=None, exclusive=False, strict=False, name="case"):
    """TF 1.x `tf.case`: the first pair whose predicate is true runs (nested conds); with
    `exclusive=True` more than one true predicate is an error."""
    if isinstance(pred_fn_pairs, dict):
        pred_fn_pairs = list(pred_fn_pairs.items())
    pairs = list(pred_fn_pairs)
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2 or not callable(pair[1]):
            raise TypeError(f"case: pred_fn_pairs must be (predicate, callable) pairs, got {pair!r}")
    if not pairs:
        if default is None:
            raise ValueError("case: no pairs and no default")
        return default()
    if default is None:                 # TF: the last pair's function is the default
        *pairs, (_, default) = pairs
        if not pairs:
            return default()
    graph = get_default_graph()
    with graph.name_scope(name):
        preds = [_check_pred(p, "case") for p, _ in pairs]
        if exclusive and len(preds) > 1:
            raise UnsupportedError("tf.case(exclusive=True): the run-time check that at most one predicate is "
                                   "true is not implemented by jitflow; pass exclusive=False")

        def chain(k):
            if k == len(pairs):
                return default()
            return cond(preds[k], pairs[k][1], lambda: chain(k + 1), strict=strict)
        return chain(0)


def while_loop(cond, body, loop_vars, shape_invariants=None, parallel_iterations=10, back_prop=True,
               swap_memory=False, name=None, maximum_iterations=None, return_same_structure=False):
    if not callable(cond) or not callable(body):
        raise TypeError("while_loop: cond and body must be callable")
    if not isinstance(parallel_iterations, int) or parallel_iterations < 1:
        raise ValueError("while_loop: parallel_iterations must be a positive integer")
    del swap_memory       # a host-memory hint; everything lives in host memory on the CPU path
    graph = get_default_graph()
    single = not isinstance(loop_vars, (list, tuple))
    leaves, tree = pytree.flatten(loop_vars)
    with graph.name_scope(name or "while"):
        leaves = [convert_to_tensor(x) for x in leaves]
        if not leaves:
            raise ValueError("while_loop: loop_vars must not be empty")
        inv = _invariants(shape_invariants, leaves, tree)
        limit, counter = _max_iterations(maximum_iterations)
        param_types = [TensorType(x.dtype, s) for x, s in zip(leaves, inv)]
        if counter is not None:            # a run-time bound: an extra carried counter, checked by cond
            param_types = [TensorType(counter.dtype, ())] + param_types
            leaves = [array_ops.zeros_like(counter)] + leaves

        def call(fn, args):
            args = args[1:] if counter is not None else args
            packed = pytree.unflatten(tree, list(args))
            return fn(packed) if single else fn(*packed)

        def cond_fn(*args):
            c = convert_to_tensor(call(cond, args))
            if c.dtype != bool_ or c.shape.dims not in (None, ()):
                raise TypeError(f"while_loop: cond must return a bool scalar, got {c.dtype.name}{c.shape}")
            if counter is not None:
                c = math_ops.logical_and(math_ops.less(args[0], graph_capture(counter)), c)
            return c

        def body_fn(*args):
            out = call(body, args)
            out_leaves, out_tree = pytree.flatten(out)
            if len(out_leaves) != len(args) - (counter is not None):
                raise ValueError(f"while_loop: body returned {len(out_leaves)} tensors for "
                                 f"{len(args) - (counter is not None)} loop variables")
            out_leaves = [convert_to_tensor(x) for x in out_leaves]
            if counter is not None:
                out_leaves = [math_ops.add(args[0], convert_to_tensor(1, dtype=counter.dtype))] + out_leaves
            return out_leaves

        try:
            c_graph, c_params, c_out = trace(graph, "cond", cond_fn, param_types)
            b_graph, b_params, b_out = trace(graph, "body", body_fn, param_types)
        except ImpureRegion as exc:
            raise UnsupportedError(f"tf.while_loop: the loop's cond/body creates a '{exc.op_name}' op (a variable "
                                   f"update, variable creation or random op); jitflow loops must be pure") from None
        _check_shapes(leaves, b_out, inv, shape_invariants is not None)
        captures, regions = finish_regions([(c_graph, c_params, [c_out]), (b_graph, b_params, b_out)], len(leaves))
        attrs = {"_regions": regions, "maximum_iterations": limit, "_back_prop": bool(back_prop)}
        if counter is not None:     # a bound from shapes becomes static when the run is specialized
            attrs["_bound_operand"] = len(leaves) + [id(t) for t in captures].index(id(counter))
        op = graph.create_op("while", leaves + captures, attrs, name="While", output_types=param_types)
    outputs = list(op.outputs[1:] if counter is not None else op.outputs)
    result = pytree.unflatten(tree, outputs)
    if not return_same_structure and isinstance(result, (list, tuple)) and len(outputs) == 1 \
            and not hasattr(result, "_fields") and len(result) == 1:
        return result[0]
    return result


def graph_capture(tensor):
    return get_default_graph().capture(tensor)


def _invariants(shape_invariants, leaves, tree):
    if shape_invariants is None:
        return [x._type.shape for x in leaves]
    inv_leaves, inv_tree = pytree.flatten(shape_invariants)
    if len(inv_leaves) != len(leaves):
        raise ValueError(f"while_loop: shape_invariants has {len(inv_leaves)} shapes for {len(leaves)} loop variables")
    shapes = []
    for x, s in zip(leaves, inv_leaves):
        s = TensorShape(s)
        if not _compatible(x._type.shape, s.dims):
            raise ValueError(f"while_loop: the shape invariant {s} is not compatible with the initial value "
                             f"{x.name} of shape {x.shape}")
        shapes.append(s.dims)
    return shapes


def _max_iterations(maximum_iterations):
    """(static bound or -1, run-time bound tensor or None)."""
    if maximum_iterations is None:
        return -1, None
    if isinstance(maximum_iterations, Tensor):
        if maximum_iterations.dtype.name not in ("int32", "int64") or maximum_iterations.shape.dims not in ((), None):
            raise TypeError("while_loop: maximum_iterations must be an integer scalar")
        if maximum_iterations.op._op != "const":
            return -1, maximum_iterations     # a run-time value: counted in the loop
        maximum_iterations = int(maximum_iterations.op.attrs["value"])
    if isinstance(maximum_iterations, np.integer):
        maximum_iterations = int(maximum_iterations)
    if not isinstance(maximum_iterations, int) or isinstance(maximum_iterations, bool):
        raise TypeError(f"while_loop: maximum_iterations must be an int or an integer scalar tensor, "
                        f"got {maximum_iterations!r}")
    if maximum_iterations < 0:
        raise ValueError(f"while_loop: maximum_iterations must be non-negative, got {maximum_iterations}")
    return maximum_iterations, None


def _check_shapes(leaves, outputs, inv, has_invariants):
    start = len(leaves) - len(inv)
    for x, y, s in zip(leaves[start:], outputs[start:], inv):
        if x.dtype != y.dtype:
            raise TypeError(f"while_loop: loop variable {x.name} enters the loop as {x.dtype.name} and "
                            f"leaves the body as {y.dtype.name}")
        if not _compatible(s, y._type.shape) or (
                not has_invariants and s is not None and (y._type.shape is None or any(
                    a is not None and b is None for a, b in zip(s, y._type.shape)))):
            raise ValueError(
                f"Input tensor '{x.name}' enters the loop with shape {TensorShape(s)}, but has shape {y.shape} "
                f"after one iteration. To allow the shape to vary across iterations, use the `shape_invariants` "
                f"argument of tf.while_loop to specify a less-specific shape.")


def _compatible(a, b) -> bool:
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))
