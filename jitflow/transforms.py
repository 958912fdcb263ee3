"""`jitflow.grad` and `jitflow.value_and_grad`: function transformations built
on the graph autodiff. The transformed function is itself a JitFunction: called
with arrays it compiles and caches per signature; called with Tensors (inside
`jit` or another `grad`) it builds the gradient inline, so `jit(grad(f))`,
`grad(jit(f))` and `grad(grad(f))` all work."""
from __future__ import annotations

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
