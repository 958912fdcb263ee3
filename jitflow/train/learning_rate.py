"""Learning-rate schedules of `tf.train` (TF 1.x `learning_rate_decay`): each builds graph ops
of the global step, so the decayed rate is computed by the compiled step, and any optimizer takes
the resulting tensor as its `learning_rate`.

Formulas (p = global_step / decay_steps, floored when `staircase`):
  exponential_decay   lr * decay_rate ** p
  natural_exp_decay   lr * exp(-decay_rate * p)
  inverse_time_decay  lr / (1 + decay_rate * p)
  polynomial_decay    (lr - end) * (1 - min(step, decay_steps) / decay_steps) ** power + end
                      (cycle: decay_steps *= ceil(step / decay_steps), 1 at step 0)
  cosine_decay        lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps)) + alpha)
  piecewise_constant  values[i] for boundaries[i-1] < x <= boundaries[i]
"""
from __future__ import annotations

import math

from ..api import math_ops as m
from ..api.convert import convert_to_tensor
from ..framework.graph import Tensor, get_default_graph


def _require_step(global_step, fn):
    if global_step is None:
        raise ValueError(f"global_step is required for {fn}.")


def _float_tensor(value, dtype=None, name=None):
    """A tensor of `value` (Python numbers become `dtype`, default float32); tensors are cast."""
    if type(value) in (int, float):                   # numpy scalars keep their dtype, as in TF
        return convert_to_tensor(float(value), dtype=dtype, name=name)
    tensor = convert_to_tensor(value, name=name)
    return m.cast(tensor, dtype) if dtype is not None else tensor


def _lr_and_step(learning_rate, global_step, decay_steps):
    lr = _float_tensor(learning_rate, name="learning_rate")
    if not lr.dtype.is_floating:
        lr = m.cast(lr, "float32")
    step = m.cast(convert_to_tensor(global_step), lr.dtype)
    steps = _float_tensor(decay_steps, lr.dtype)
    return lr, step, steps


def _progress(step, steps, staircase):
    p = m.truediv(step, steps)
    return m.floordiv(p, _float_tensor(1.0, p.dtype)) if staircase else p


def exponential_decay(learning_rate, global_step, decay_steps, decay_rate, staircase=False, name=None):
    """`learning_rate * decay_rate ** (global_step / decay_steps)` (integer division when `staircase`)."""
    _require_step(global_step, "exponential_decay")
    with get_default_graph().name_scope(name or "ExponentialDecay") as scope:
        lr, step, steps = _lr_and_step(learning_rate, global_step, decay_steps)
        rate = _float_tensor(decay_rate, lr.dtype)
        return m.multiply(lr, m.pow(rate, _progress(step, steps, staircase)), name=scope)


def natural_exp_decay(learning_rate, global_step, decay_steps, decay_rate, staircase=False, name=None):
    """`learning_rate * exp(-decay_rate * global_step / decay_steps)`."""
    _require_step(global_step, "natural_exp_decay")
    with get_default_graph().name_scope(name or "NaturalExpDecay") as scope:
        lr, step, steps = _lr_and_step(learning_rate, global_step, decay_steps)
        rate = _float_tensor(decay_rate, lr.dtype)
        exponent = m.exp(m.multiply(m.negative(rate), _progress(step, steps, staircase)))
        return m.multiply(lr, exponent, name=scope)


def inverse_time_decay(learning_rate, global_step, decay_steps, decay_rate, staircase=False, name=None):
    """`learning_rate / (1 + decay_rate * global_step / decay_steps)`."""
    _require_step(global_step, "inverse_time_decay")
    with get_default_graph().name_scope(name or "InverseTimeDecay") as scope:
        lr, step, steps = _lr_and_step(learning_rate, global_step, decay_steps)
        rate = _float_tensor(decay_rate, lr.dtype)
        denominator = m.add(_float_tensor(1.0, lr.dtype), m.multiply(rate, _progress(step, steps, staircase)))
        return m.truediv(lr, denominator, name=scope)


def polynomial_decay(learning_rate, global_step, decay_steps, end_learning_rate=0.0001, power=1.0,
                     cycle=False, name=None):
    """`(lr - end) * (1 - step / decay_steps) ** power + end`, the step clipped at decay_steps or,
    with `cycle`, decay_steps stretched to the next multiple above the step."""
    _require_step(global_step, "polynomial_decay")
    with get_default_graph().name_scope(name or "PolynomialDecay") as scope:
        lr, step, steps = _lr_and_step(learning_rate, global_step, decay_steps)
        end = _float_tensor(end_learning_rate, lr.dtype)
        power = _float_tensor(power, lr.dtype)
        one = _float_tensor(1.0, lr.dtype)
        if cycle:
            ratio = m.truediv(step, steps)
            ceil = m.negative(m.floordiv(m.negative(ratio), one))          # ceil(x) = -floor(-x)
            multiplier = m.where(m.equal(step, _float_tensor(0.0, lr.dtype)), one, ceil)
            steps = m.multiply(steps, multiplier)
        else:
            step = m.minimum(step, steps)
        fraction = m.truediv(step, steps)
        return m.add(m.multiply(m.subtract(lr, end), m.pow(m.subtract(one, fraction), power)), end,
                     name=scope)


def cosine_decay(learning_rate, global_step, decay_steps, alpha=0.0, name=None):
    """`lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps)) + alpha)`."""
    _require_step(global_step, "cosine_decay")
    with get_default_graph().name_scope(name or "CosineDecay") as scope:
        lr, step, steps = _lr_and_step(learning_rate, global_step, decay_steps)
        alpha = _float_tensor(alpha, lr.dtype)
        one = _float_tensor(1.0, lr.dtype)
        fraction = m.truediv(m.minimum(step, steps), steps)
        cosine = m.multiply(_float_tensor(0.5, lr.dtype), m.add(one, _cos_pi(fraction)))
        decayed = m.add(m.multiply(m.subtract(one, alpha), cosine), alpha)
        return m.multiply(lr, decayed, name=scope)


def _cos_pi(fraction: Tensor) -> Tensor:
    """cos(pi * fraction)."""
    from ..api.math_extra import cos
    return cos(m.multiply(_float_tensor(math.pi, fraction.dtype), fraction))


def piecewise_constant(x, boundaries, values, name=None):
    """`values[0]` for x <= boundaries[0], `values[i]` for boundaries[i-1] < x <= boundaries[i],
    `values[-1]` beyond the last boundary."""
    if len(boundaries) != len(values) - 1:
        raise ValueError("The length of boundaries should be 1 less than the length of values")
    with get_default_graph().name_scope(name or "PiecewiseConstant") as scope:
        x = convert_to_tensor(x)
        values = [convert_to_tensor(v) for v in values]
        boundaries = [convert_to_tensor(b) for b in boundaries]
        for b in boundaries:
            if b.dtype != x.dtype:
                if b.dtype.name == "int32" and x.dtype.name == "int64":
                    continue                                   # TF casts int32 boundaries to int64 x
                raise ValueError(f"Boundaries ({b.dtype.name}) must have the same dtype as x ({x.dtype.name}).")
        for v in values[1:]:
            if v.dtype != values[0].dtype:
                raise ValueError(f"Values must have elements all with the same dtype "
                                 f"({values[0].dtype.name} vs {v.dtype.name}).")
        result = values[-1]
        for boundary, value in zip(reversed(boundaries), reversed(values[:-1])):
            result = m.where(m.less_equal(x, m.cast(boundary, x.dtype)), value, result)
        return m.identity(result, name=scope)
