"""`tf.scan`, `tf.map_fn`, `tf.foldl`, `tf.foldr`: one `tf.while_loop` each (a native loop,
jitflow/api/control_flow.py) over the leading dimension of `elems`.

Each step reads element i with `gather` and, for scan / map_fn, writes its output into row i
of a preallocated stacked result (`select` against a row-index mask: one pass over the result
per step). The element function is traced once on placeholders first to learn its output
structure, dtypes and static shapes (TF 1.x infers them the same way when `dtype` is not given).
Gradients are those of `while_loop` (jitflow/passes/autodiff_regions.py); a static number of elements
bounds the loop (`maximum_iterations`), which the gradient's per-iteration stacks need.
"""
from __future__ import annotations

from .. import pytree
from ..errors import UnsupportedError
from ..framework.func_graph import ImpureRegion, trace
from ..framework.graph import get_default_graph
from ..ir.types import TensorType, int32
from . import array_ops, math_ops
from .control_flow import while_loop
from .convert import convert_to_tensor
from .gather_api import gather


def _elements(elems, what):
    leaves, tree = pytree.flatten(elems)
    leaves = [convert_to_tensor(x) for x in leaves]
    if not leaves:
        raise ValueError(f"{what}: elems must contain at least one tensor")
    for x in leaves:
        if x.shape.dims is None or not x.shape.dims:
            raise ValueError(f"{what}: elems must have a leading dimension, got {x.name} of shape {x.shape}")
    return leaves, tree


def _length(leaves):
    n = leaves[0].shape.dims[0]
    return n if n is not None else array_ops.shape(leaves[0])[0]


def _probe(fn, arg_types, what):
    """(leaves' TensorTypes, structure) of fn's result for arguments of `arg_types` (a pytree)."""
    leaves, tree = pytree.flatten(arg_types)

    def run(*params):
        out_leaves, out_tree = pytree.flatten(fn(pytree.unflatten(tree, list(params))))
        return [convert_to_tensor(x) for x in out_leaves], out_tree
    try:
        _, _, (outs, out_tree) = trace(get_default_graph(), "probe", run, leaves)
    except ImpureRegion as exc:
        raise UnsupportedError(f"{what}: fn creates a '{exc.op_name}' op (a variable update or random op); "
                               f"jitflow loops must be pure") from None
    return [x._type for x in outs], out_tree


def _stacked_zeros(n, t: TensorType, what):
    if t.shape is None or None in t.shape:
        raise UnsupportedError(f"{what}: fn's output has a shape known only at run time ({t}); jitflow needs "
                               f"a static per-element output shape to preallocate the stacked result")
    shape = [n] + list(t.shape)
    return array_ops.zeros(array_ops.stack(shape) if not isinstance(n, int) else shape, dtype=t.dtype)


def _write(acc, i, value, n):
    rank = len(acc.shape.dims)
    rows = array_ops.reshape(array_ops.range_(0, n, dtype=int32), [-1] + [1] * (rank - 1))
    return math_ops.where_v2(math_ops.equal(rows, i), array_ops.expand_dims(value, 0), acc)


def _loop(fn_step, elems, initializer, what, reverse, stacked, parallel_iterations, back_prop, swap_memory,
          name):
    """The shared loop: state a (pytree) folded over elements; with `stacked`, every step's output
    is also written to a stacked result. Returns (final a, stacked outputs or None)."""
    leaves, tree = _elements(elems, what)
    n = _length(leaves)
    elem_types = pytree.unflatten(tree, [TensorType(x.dtype, x._type.shape[1:]) for x in leaves])

    def element(i):
        return pytree.unflatten(tree, [gather(x, i) for x in leaves])

    start = 0
    if initializer is None:
        if not isinstance(n, int) or n == 0:
            if isinstance(n, int):
                raise ValueError(f"{what}: elems is empty and no initializer was given")
            raise UnsupportedError(f"{what} without an initializer needs a static number of elements")
        first = n - 1 if reverse else 0
        a = element(convert_to_tensor(first, dtype=int32))
        start = 1
    else:
        a = initializer
    a_leaves, a_tree = pytree.flatten(a)
    a_leaves = [convert_to_tensor(x) for x in a_leaves]
    a_types = pytree.unflatten(a_tree, [x._type for x in a_leaves])
    out_types, out_tree = _probe(lambda args: fn_step(*args)[1], (a_types, elem_types), what)
    accs = [_stacked_zeros(n, t, what) for t in out_types] if stacked else []
    if stacked and start == 1:
        first_out = pytree.flatten(a)[0]
        accs = [_write(acc, convert_to_tensor(n - 1 if reverse else 0, dtype=int32), convert_to_tensor(v), n)
                for acc, v in zip(accs, first_out)]

    def body(i, a_flat, acc_flat):
        index = (n - 1 - i) if reverse else i
        new_a, out = fn_step(pytree.unflatten(a_tree, list(a_flat)), element(index))
        new_leaves = [convert_to_tensor(x) for x in pytree.flatten(new_a)[0]]
        out_leaves = [convert_to_tensor(x) for x in pytree.flatten(out)[0]] if stacked else []
        return i + 1, new_leaves, [_write(acc, index, v, n) for acc, v in zip(acc_flat, out_leaves)]

    i0 = convert_to_tensor(start, dtype=int32)
    _, a_final, acc_final = while_loop(lambda i, a_flat, acc_flat: math_ops.less(i, n), body,
                                       [i0, a_leaves, accs], parallel_iterations=parallel_iterations,
                                       maximum_iterations=n - start if isinstance(n, int) else None,
                                       back_prop=back_prop, swap_memory=swap_memory, name=name,
                                       return_same_structure=True)
    result = pytree.unflatten(out_tree, list(acc_final)) if stacked else None
    return pytree.unflatten(a_tree, list(a_final)), result


def scan(fn, elems, initializer=None, parallel_iterations=10, back_prop=True, swap_memory=False, infer_shape=True,
         reverse=False, name=None):
    del infer_shape        # shapes are always inferred (the stacked result is preallocated)
    with get_default_graph().name_scope(name or "scan"):
        _, out = _loop(lambda a, x: _same(fn(a, x)), elems, initializer,
                       "scan", reverse, True, parallel_iterations, back_prop, swap_memory, None)
    return out


def _same(value):
    return value, value


def foldl(fn, elems, initializer=None, parallel_iterations=10, back_prop=True, swap_memory=False, name=None):
    with get_default_graph().name_scope(name or "foldl"):
        a, _ = _loop(lambda a, x: (fn(a, x), None), elems, initializer, "foldl", False, False,
                     parallel_iterations, back_prop, swap_memory, None)
    return a


def foldr(fn, elems, initializer=None, parallel_iterations=10, back_prop=True, swap_memory=False, name=None):
    with get_default_graph().name_scope(name or "foldr"):
        a, _ = _loop(lambda a, x: (fn(a, x), None), elems, initializer, "foldr", True, False,
                     parallel_iterations, back_prop, swap_memory, None)
    return a


def map_fn(fn, elems, dtype=None, parallel_iterations=None, back_prop=True, swap_memory=False, infer_shape=True,
           name=None, fn_output_signature=None):
    del infer_shape
    signature = fn_output_signature if fn_output_signature is not None else dtype
    with get_default_graph().name_scope(name or "map"):
        leaves, _ = _elements(elems, "map_fn")
        zero = convert_to_tensor(0, dtype=int32)
        _, out = _loop(lambda a, x: (a, fn(x)), elems, [zero], "map_fn", False, True,
                       parallel_iterations or 10, back_prop, swap_memory, None)
    if signature is not None:
        want = [getattr(d, "dtype", d) for d in pytree.flatten(signature)[0]]
        got = [t.dtype for t in pytree.flatten(out)[0]]
        from ..dtypes import as_dtype
        if [as_dtype(d) for d in want] != got:
            raise TypeError(f"map_fn: dtype/fn_output_signature {signature} does not match fn's output dtypes "
                            f"{[d.name for d in got]}")
    return out
