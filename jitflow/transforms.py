"""`jitflow.grad`, `jitflow.value_and_grad` and `jitflow.jvp`: function transformations built
on the autodiff requests (reverse mode: tf.gradients; forward mode: a `jvp_request`, both fulfilled
in the IR by jitflow/passes/autodiff_*.py). The transformed function is itself a JitFunction: called
with arrays it compiles and caches per signature; called with Tensors (inside
`jit` or another `grad`) it builds the gradient inline, so `jit(grad(f))`,
`grad(jit(f))` and `grad(grad(f))` all work."""
from __future__ import annotations

import weakref

from . import pytree
from .api.convert import convert_to_tensor
from .autodiff import gradients
from .jit import JitFunction


def _argnums(argnums):
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def _value_and_grads(fn, argnums, has_aux, args, kwargs):
    out = fn(*args, **kwargs)
    if has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError("has_aux=True needs the function to return a pair (value, aux)")
        value, aux = out
    else:
        value, aux = out, None
    value = convert_to_tensor(value)
    name = getattr(fn, "__name__", "function")
    if value.shape.dims != ():
        raise TypeError(f"grad requires a function with a scalar output; {name} returned shape {value.shape}")
    if not value.dtype.is_floating:
        raise TypeError(f"grad requires a real-valued (float) output; {name} returned {value.dtype.name}")
    nums = _argnums(argnums)
    trees = []
    for i in nums:
        if i >= len(args):
            raise TypeError(f"argnums {i} is out of range for {len(args)} positional arguments")
        leaves, treedef = pytree.flatten(args[i])
        leaves = [convert_to_tensor(x) for x in leaves]
        for leaf in leaves:
            if not leaf.dtype.is_floating:
                raise TypeError(f"grad requires real-valued inputs for argnums; argument {i} has dtype "
                                f"{leaf.dtype.name}")
        trees.append((leaves, treedef))
    flat = [leaf for leaves, _ in trees for leaf in leaves]
    grads = gradients(value, flat) if flat else []
    from .api.array_ops import zeros_like
    grads = [zeros_like(x) if g is None else g for g, x in zip(grads, flat)]
    results, start = [], 0
    for leaves, treedef in trees:
        results.append(pytree.unflatten(treedef, grads[start:start + len(leaves)]))
        start += len(leaves)
    grad_value = results[0] if isinstance(argnums, int) else tuple(results)
    return (value, aux) if has_aux else value, grad_value


def value_and_grad(fn, argnums=0, has_aux=False):
    def traced(*args, **kwargs):
        return _value_and_grads(fn, argnums, has_aux, args, kwargs)
    traced.__name__ = f"value_and_grad({getattr(fn, '__name__', 'function')})"
    return JitFunction(traced, name=traced.__name__)


def grad(fn, argnums=0, has_aux=False):
    def traced(*args, **kwargs):
        value, grad_value = _value_and_grads(fn, argnums, has_aux, args, kwargs)
        return (grad_value, value[1]) if has_aux else grad_value
    traced.__name__ = f"grad({getattr(fn, '__name__', 'function')})"
    return JitFunction(traced, name=traced.__name__)


def _jvp_traced(fn):
    def traced(primals, tangents):
        from .api.convert import convert_to_tensor as as_tensor
        from .framework.graph import get_default_graph
        out = fn(*primals)
        leaves, treedef = pytree.flatten(out)
        ys = [as_tensor(y) for y in leaves]
        xs = [as_tensor(x) for x in pytree.flatten(list(primals))[0]]
        ts = [as_tensor(t) for t in pytree.flatten(list(tangents))[0]]
        if len(xs) != len(ts):
            raise TypeError(f"jvp: primals and tangents must have the same structure ({len(xs)} vs {len(ts)} leaves)")
        for x, t in zip(xs, ts):
            if x.dtype != t.dtype or x.shape.dims != t.shape.dims:
                raise TypeError(f"jvp: a tangent must have its primal's dtype and shape: primal "
                                f"{x.dtype.name}{x.shape}, tangent {t.dtype.name}{t.shape}")
        if not ys:
            return out, out
        graph = get_default_graph()
        with graph.name_scope("jvp"):
            request = graph.create_op("jvp_request", ys + xs + ts, {"n_ys": len(ys), "n_xs": len(xs)},
                                      name="JVP", output_types=[y._type for y in ys])
        return out, pytree.unflatten(treedef, list(request.outputs))
    traced.__name__ = f"jvp({getattr(fn, '__name__', 'function')})"
    return traced


_JVP_FUNCTIONS = weakref.WeakKeyDictionary()     # fn -> its compiled jvp (JitFunction)


def jvp(fn, primals, tangents):
    """Forward mode, as `jax.jvp`: returns (fn(*primals), J(primals) . tangents). `primals` and
    `tangents` are tuples (or lists) of the same structure. Called with arrays it compiles and caches
    per function and signature (as `jit`); called with Tensors (inside `jit`) it builds inline. The
    tangents are computed by the IR's forward-mode transform (jitflow/passes/autodiff_forward.py)."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples or lists of arguments")
    if len(primals) != len(tangents):
        raise TypeError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    try:
        compiled = _JVP_FUNCTIONS.get(fn)
    except TypeError:                   # not weakly referenceable: compile for this call only
        compiled = None
    if compiled is None:
        traced = _jvp_traced(fn)
        compiled = JitFunction(traced, name=traced.__name__)
        try:
            _JVP_FUNCTIONS[fn] = compiled
        except TypeError:
            pass
    return compiled(tuple(primals), tuple(tangents))
