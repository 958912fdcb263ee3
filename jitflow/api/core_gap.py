"""TF 1.x root and `tf.nn` names built from existing ops: `tf.strided_slice` (bit masks, on the `[]`
slicing), `tf.random_shuffle`, `tf.multinomial` / `tf.random.categorical` (Gumbel-max on random_uniform),
`tf.logical_xor`, `tf.tuple`, `tf.nn.xw_plus_b`, `tf.nn.zero_fraction`,
`tf.nn.weighted_cross_entropy_with_logits`."""
from __future__ import annotations

import builtins

import numpy as np

from ..errors import UnsupportedError
from ..framework.graph import Operation, Tensor, get_default_graph
from ..ir.types import as_dtype, float32, float64, int32, int64
from . import math_ops as m
from .array_ops import expand_dims, range_, shape as shape_of, stack, strided_slice as _getitem
from .array_ops import unstack, zeros_like
from .convert import convert_to_tensor
from .random_ops import random_uniform


# ---- tf.strided_slice -------------------------------------------------------------------------------------
def _slice_args(value, arg):
    """A list of Python ints and/or scalar int tensors for begin / end / strides."""
    from .variables import Variable
    if isinstance(value, Variable):
        value = value.value()
    if isinstance(value, Tensor):
        if value.op._op == "const":
            return [int(v) for v in np.asarray(value.op.attrs["value"]).reshape(-1)]
        if value.dtype not in (int32, int64):
            raise TypeError(f"strided_slice: `{arg}` must be int32 or int64, got {value.dtype.name}")
        if value.shape.dims is None or len(value.shape.dims) != 1 or value.shape.dims[0] is None:
            raise UnsupportedError(f"strided_slice: `{arg}` must have a length known when the graph is built, "
                                   f"got shape {value.shape}")
        return unstack(value)
    out = []
    for v in (value if isinstance(value, (list, tuple, np.ndarray)) else [value]):
        if isinstance(v, (Tensor, Variable)):
            out.append(convert_to_tensor(v))
        elif isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"strided_slice: `{arg}` must hold integers, got {value!r}")
        else:
            out.append(int(v))
    return out


def strided_slice(input_, begin, end, strides=None, begin_mask=0, end_mask=0, ellipsis_mask=0,
                  new_axis_mask=0, shrink_axis_mask=0, var=None, name=None):
    """TF's StridedSlice: bit i of a mask applies to entry i of begin/end/strides (begin_mask / end_mask:
    ignore that bound; ellipsis_mask: `...`; new_axis_mask: a new axis of size 1; shrink_axis_mask: index
    begin[i] and drop the axis). Built on the `[]` slicing, which it matches exactly; as there, tensor
    bounds must be computable from shapes when the run is specialized (tf.shape arithmetic, constants)."""
    if var is not None:
        raise UnsupportedError("strided_slice: `var` (the variable of a sliced assignment) is not supported")
    begin, end = _slice_args(begin, "begin"), _slice_args(end, "end")
    strides = [1] * len(begin) if strides is None else _slice_args(strides, "strides")
    if not len(begin) == len(end) == len(strides):
        raise ValueError(f"strided_slice: begin, end and strides must have the same length, got "
                         f"{len(begin)}, {len(end)} and {len(strides)}")
    if ellipsis_mask & (ellipsis_mask - 1):
        raise ValueError("Multiple ellipses in slice spec not allowed")
    index = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        bit = 1 << i
        if isinstance(s, int) and s == 0:
            raise ValueError(f"strided_slice: strides[{i}] must be non-zero")
        if ellipsis_mask & bit:
            index.append(Ellipsis)
        elif new_axis_mask & bit:
            index.append(None)
        elif shrink_axis_mask & bit:
            index.append(b)
        else:
            index.append(slice(None if begin_mask & bit else b, None if end_mask & bit else e,
                               None if isinstance(s, int) and s == 1 else s))
    return _getitem(input_, builtins.tuple(index), name=name or "StridedSlice")


# ---- random_shuffle / multinomial / categorical -----------------------------------------------------------
def random_shuffle(value, seed=None, name=None):
    """A random permutation of `value` along axis 0 (TF's RandomShuffle), as gather(value, argsort(u)) of
    a float64 uniform u: top_k when the length is static, rank counting (u_j < u_i, ties by index)
    when it is only known at run time. Seeds as every random op (`tf.set_random_seed`, `seed`)."""
    x = convert_to_tensor(value)
    from .gather_api import gather
    graph = get_default_graph()
    with graph.name_scope(name or "RandomShuffle") as scope:
        if x.shape.dims is not None and len(x.shape.dims) == 0:
            return m.identity(x, name=scope)
        n = x.shape.dims[0] if x.shape.dims is not None else None
        if n is not None:
            if n <= 1:
                return m.identity(x, name=scope)
            from .array_extra import top_k
            keys = random_uniform([n], dtype=float64, seed=seed)
            perm = top_k(keys, k=n).indices
        else:
            length = shape_of(x)[0]
            keys = random_uniform(stack([length]), dtype=float64, seed=seed)
            iota = range_(length)
            ki, kj = expand_dims(keys, 1), expand_dims(keys, 0)
            ii, jj = expand_dims(iota, 1), expand_dims(iota, 0)
            before = m.logical_or(m.less(kj, ki), m.logical_and(m.equal(kj, ki), m.less(jj, ii)))
            perm = m.reduce_sum(m.cast(before, int32), axis=1)
        return m.identity(gather(x, perm), name=scope)


def multinomial(logits, num_samples, seed=None, name=None, output_dtype=None):
    """`num_samples` class indices per row of 2-D `logits` [batch, classes], drawn with probabilities
    softmax(logits): argmax(logits + Gumbel noise), the noise -log(-log(u)) of a float64 uniform u."""
    output_dtype = int64 if output_dtype is None else as_dtype(output_dtype)
    if output_dtype not in (int32, int64):
        raise TypeError(f"multinomial: output_dtype must be int32 or int64, got {output_dtype.name}")
    logits = convert_to_tensor(logits)
    if not logits.dtype.is_floating:
        raise TypeError(f"multinomial: logits must be a float tensor, got {logits.dtype.name}")
    dims = logits.shape.dims
    if dims is not None and len(dims) != 2:
        raise ValueError(f"logits should be a matrix, got shape {logits.shape}")
    if isinstance(num_samples, (int, np.integer)) and num_samples < 0:
        raise ValueError(f"num_samples should be nonnegative, got {num_samples}")
    graph = get_default_graph()
    with graph.name_scope(name or "multinomial") as scope:
        if dims is not None and None not in dims and isinstance(num_samples, (int, np.integer)):
            noise_shape = [dims[0], int(num_samples), dims[1]]
        else:
            dynamic = shape_of(logits)
            rows = dims[0] if dims is not None and dims[0] is not None else dynamic[0]
            cols = dims[1] if dims is not None and dims[1] is not None else dynamic[1]
            noise_shape = stack([rows, m.cast(convert_to_tensor(num_samples), int32), cols])
        u = random_uniform(noise_shape, minval=np.finfo(np.float64).tiny, maxval=1.0, dtype=float64, seed=seed)
        gumbel = m.negative(m.log(m.negative(m.log(u))))
        scores = m.add(expand_dims(m.cast(logits, float64), 1), gumbel)
        return m.argmax(scores, axis=2, output_type=output_dtype, name=scope)


def categorical(logits, num_samples, dtype=None, seed=None, name=None):
    """`tf.random.categorical`: `tf.multinomial` with the output dtype named `dtype` (int64 by default)."""
    return multinomial(logits, num_samples, seed=seed, name=name or "categorical", output_dtype=dtype)


# ---- logical_xor / tuple ----------------------------------------------------------------------------------
def logical_xor(x, y, name="LogicalXor"):
    """x XOR y = (x | y) & ~(x & y), elementwise on bool tensors with broadcasting (as TF builds it)."""
    x, y = convert_to_tensor(x), convert_to_tensor(y)
    for t in (x, y):
        if t.dtype.name != "bool":
            raise TypeError(f"logical_xor: expected bool tensors, got {t.dtype.name}")
    return m.logical_and(m.logical_or(x, y), m.logical_not(m.logical_and(x, y)), name=name)


def tuple(tensors, name=None, control_inputs=None):  # noqa: A001
    """The tensors, each passed through an identity that waits for all of them (and `control_inputs`):
    reading any output guarantees every input has been computed. None entries stay None; Operations
    come back as `group`s gated the same way."""
    from .variables import group
    graph = get_default_graph()
    tensors = list(tensors)
    gating = []
    for t in tensors:
        if t is None:
            continue
        op = t if isinstance(t, Operation) else convert_to_tensor(t).op
        if op not in gating:
            gating.append(op)
    for c in control_inputs or ():
        if isinstance(c, Tensor):
            c = c.op
        if not isinstance(c, Operation):
            raise TypeError(f"Control input must be Operation or Tensor: {c}")
        if c not in gating:
            gating.append(c)
    if not gating:
        raise ValueError(f"Must have at least one Tensor: {tensors}")
    with graph.name_scope(name or "tuple"):
        gate = group(*gating)
        out = []
        for t in tensors:
            if t is None:
                out.append(None)
            elif isinstance(t, Operation):
                with graph.control_dependencies([gate]):
                    out.append(group(t))
            else:
                with graph.control_dependencies([gate]):
                    out.append(m.identity(convert_to_tensor(t)))
    return out


# ---- tf.nn ------------------------------------------------------------------------------------------------
def xw_plus_b(x, weights, biases, name=None):
    """matmul(x, weights) + biases (bias_add)."""
    from .nn_ops import bias_add
    with get_default_graph().name_scope(name or "xw_plus_b") as scope:
        return bias_add(m.matmul(x, weights), biases, name=scope)


def zero_fraction(value, name=None):
    """The fraction of entries of `value` equal to zero, a float32 scalar."""
    x = convert_to_tensor(value)
    with get_default_graph().name_scope(name or "zero_fraction") as scope:
        return m.reduce_mean(m.cast(m.equal(x, zeros_like(x)), float32), name=scope)


def weighted_cross_entropy_with_logits(labels=None, logits=None, pos_weight=None, name=None, targets=None):
    """pos_weight * labels * -log(sigmoid(logits)) + (1 - labels) * -log(1 - sigmoid(logits)), in TF's
    stable form: (1 - z) * x + (1 + (q - 1) * z) * (log1p(exp(-|x|)) + max(-x, 0))."""
    if targets is not None:
        if labels is not None:
            raise ValueError("Only one of `labels` and `targets` may be given")
        labels = targets
    if labels is None or logits is None or pos_weight is None:
        raise ValueError("weighted_cross_entropy_with_logits needs labels, logits and pos_weight")
    from .math_extra import log1p
    logits = convert_to_tensor(logits)
    labels = convert_to_tensor(labels, dtype=logits.dtype)
    a, b = logits.shape.dims, labels.shape.dims
    if a is not None and b is not None:
        if len(a) != len(b) or any(p is not None and q is not None and p != q for p, q in zip(a, b)):
            raise ValueError(f"logits and labels must have the same shape ({logits.shape} vs {labels.shape})")
    with get_default_graph().name_scope(name or "logistic_loss") as scope:
        pos_weight = convert_to_tensor(pos_weight, dtype=logits.dtype)
        log_weight = m.add(m.multiply(m.subtract(pos_weight, 1.0), labels), 1.0)
        softplus = m.add(log1p(m.exp(m.negative(m.abs(logits)))), m.relu(m.negative(logits)))
        return m.add(m.multiply(m.subtract(1.0, labels), logits), m.multiply(log_weight, softplus), name=scope)
