"""`tf.einsum` and `tf.tensordot`, lowered to transpose/reshape/matmul and reductions: two-operand
equations without batch labels become a GEMM, others one fused multiply-and-sum loop; one-operand
equations cover transposes, sums and diagonals. Unsupported equations raise UnsupportedError naming them."""
from __future__ import annotations

import string

import numpy as np

from ..errors import UnsupportedError
from . import math_ops as m
from .array_ops import expand_dims, reshape, transpose
from .convert import convert_to_tensor
from .array_extra import eye
from .static_args import known_dims as _dims, name_scope as _scope, static_value


# ---- einsum / tensordot ----------------------------------------------------------------------------------
def _parse_einsum(equation, count):
    eq = equation.replace(" ", "")
    if "." in eq:
        raise UnsupportedError(f"einsum: ellipsis ('...') in equation {equation!r} is not supported")
    if "->" in eq:
        lhs, out = eq.split("->")
    else:
        lhs = eq
        letters = lhs.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    ins = lhs.split(",")
    if len(ins) != count:
        raise ValueError(f"einsum: equation {equation!r} names {len(ins)} inputs, got {count}")
    for part in ins + [out]:
        if not all(c in string.ascii_letters for c in part):
            raise ValueError(f"einsum: invalid equation {equation!r}")
    if len(set(out)) != len(out) or any(c not in lhs for c in out):
        raise ValueError(f"einsum: invalid output subscripts in {equation!r}")
    return ins, out


def _sum_out(x, labels, keep):
    """Sums away the labels of x not in `keep`."""
    axes = [k for k, c in enumerate(labels) if c not in keep]
    if not axes:
        return x, labels
    return m.reduce_sum(x, axis=axes), "".join(c for c in labels if c in keep)


def _arrange(x, labels, order):
    """x with its axes in `order` (a subsequence of which every label of x is part); missing labels
    become size-1 axes."""
    present = [c for c in order if c in labels]
    if present != list(labels):
        x = transpose(x, [labels.index(c) for c in present])
    for k, c in enumerate(order):
        if c not in labels:
            x = expand_dims(x, k)
    return x


def einsum(equation, *inputs, **kwargs):
    name = kwargs.pop("name", None)
    if kwargs:
        raise TypeError(f"einsum: unexpected keyword arguments {sorted(kwargs)}")
    if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
        inputs = tuple(inputs[0])
    if len(inputs) not in (1, 2):
        raise UnsupportedError(f"einsum: equation {equation!r} with {len(inputs)} operands is not supported "
                               f"(one or two)")
    xs = [convert_to_tensor(x) for x in inputs]
    ins, out = _parse_einsum(equation, len(xs))
    for x, labels in zip(xs, ins):
        if len(_dims(x, "einsum")) != len(labels):
            raise ValueError(f"einsum: operand of shape {x.shape} does not match subscripts {labels!r} "
                             f"in {equation!r}")
    with _scope(name or "einsum"):
        if len(xs) == 1:
            return _einsum_one(xs[0], ins[0], out, equation)
        return _einsum_two(xs, ins, out, equation)


def _einsum_one(x, labels, out, equation):
    if len(set(labels)) != len(labels):
        if len(labels) == 2 and out in ("", labels[0]):        # 'ii->i' (diagonal) and 'ii->' (trace)
            n = x.shape.dims[0] if x.shape.dims[0] is not None else x.shape.dims[1]
            if n is None:
                raise UnsupportedError(f"einsum: {equation!r} on a matrix of unknown size is not supported")
            masked = m.multiply(x, eye(n, dtype=x.dtype))
            return m.reduce_sum(masked, axis=1) if out else m.reduce_sum(masked)
        raise UnsupportedError(f"einsum: repeated subscripts in {equation!r} are not supported")
    x, labels = _sum_out(x, labels, out)
    return _arrange(x, labels, out) if labels != out else x


def _einsum_two(xs, ins, out, equation):
    (a, b), (la, lb) = xs, ins
    if len(set(la)) != len(la) or len(set(lb)) != len(lb):
        raise UnsupportedError(f"einsum: repeated subscripts within one operand in {equation!r} are not supported")
    a, la = _sum_out(a, la, lb + out)
    b, lb = _sum_out(b, lb, la + out)
    batch = [c for c in out if c in la and c in lb]
    contract = [c for c in la if c in lb and c not in out]
    free_a = [c for c in la if c not in lb]
    free_b = [c for c in lb if c not in la]
    size = {}
    for x, labels in ((a, la), (b, lb)):
        for c, d in zip(labels, x.shape.dims):
            if d is not None:
                if size.get(c, d) != d and 1 not in (size[c], d):
                    raise ValueError(f"einsum: dimension {c!r} has sizes {size[c]} and {d} in {equation!r}")
                size[c] = d if size.get(c) in (None, 1) else size[c]
    unknown_a = [c for c in free_a if c not in size]
    unknown_b = [c for c in free_b if c not in size]
    if not batch and contract and all(c in size for c in contract) and len(unknown_a) <= 1 \
            and len(unknown_b) <= 1 and not (unknown_a and unknown_b):
        # a matrix product: [free_a, contract] @ [contract, free_b]
        k = int(np.prod([size[c] for c in contract]))
        a2 = reshape(_arrange(a, la, free_a + contract), [-1 if unknown_a else int(np.prod([size[c] for c in free_a])), k])
        b2 = reshape(_arrange(b, lb, contract + free_b), [k, -1 if unknown_b else int(np.prod([size[c] for c in free_b]))])
        product = m.matmul(a2, b2)
        shape = [-1 if c not in size else size[c] for c in free_a + free_b]
        result = reshape(product, shape) if len(shape) != 2 or shape != [-1, -1] else product
        return _arrange(result, "".join(free_a + free_b), out)
    # general case: broadcast the product over every label and sum the contracted ones (one fused loop)
    order = list(out) + contract
    product = m.multiply(_arrange(a, la, order), _arrange(b, lb, order))
    if contract:
        product = m.reduce_sum(product, axis=list(range(len(out), len(order))))
    return product


def tensordot(a, b, axes, name=None):
    a, b = convert_to_tensor(a), convert_to_tensor(b)
    ra, rb = len(_dims(a, "tensordot")), len(_dims(b, "tensordot"))
    if isinstance(axes, (list, tuple)) and len(axes) == 2:
        axes_a = [int(v) for v in static_value(axes[0], "axes", "tensordot").reshape(-1)]
        axes_b = [int(v) for v in static_value(axes[1], "axes", "tensordot").reshape(-1)]
    else:
        value = static_value(axes, "axes", "tensordot")
        if value.ndim == 0:
            n = int(value)
            if n < 0 or n > min(ra, rb):
                raise ValueError(f"tensordot: axes={n} must be between 0 and the ranks {ra}, {rb}")
            axes_a, axes_b = list(range(ra - n, ra)), list(range(n))
        elif value.ndim == 2 and value.shape[0] == 2:
            axes_a, axes_b = [int(v) for v in value[0]], [int(v) for v in value[1]]
        else:
            raise ValueError(f"tensordot: invalid axes {axes!r}")
    if len(axes_a) != len(axes_b):
        raise ValueError(f"tensordot: axes {axes_a} and {axes_b} must have the same length")
    from .axis_check import check_axis
    axes_a = [check_axis(x, ra, "tensordot", "axes of a") for x in axes_a]
    axes_b = [check_axis(x, rb, "tensordot", "axes of b") for x in axes_b]
    if len(set(axes_a)) != len(axes_a) or len(set(axes_b)) != len(axes_b):
        raise ValueError(f"tensordot: axes {axes_a} and {axes_b} must not repeat a dimension")
    letters = iter(string.ascii_letters)
    la = [next(letters) for _ in range(ra)]
    lb = [next(letters) for _ in range(rb)]
    for x, y in zip(axes_a, axes_b):
        lb[y] = la[x]
    out = [c for k, c in enumerate(la) if k not in axes_a] + [c for k, c in enumerate(lb) if k not in axes_b]
    return einsum(f"{''.join(la)},{''.join(lb)}->{''.join(out)}", a, b, name=name or "Tensordot")
