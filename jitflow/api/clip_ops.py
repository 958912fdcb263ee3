"""`tf.clip_by_value`, `tf.clip_by_global_norm`, `tf.global_norm` (`tf.clip_by_norm` is in array_extra.py)."""
from __future__ import annotations

from ..framework.graph import get_default_graph
from . import math_ops as m
from .convert import convert_to_tensor


def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    t = convert_to_tensor(t)
    with get_default_graph().name_scope(name or "clip_by_value"):
        return m.minimum(m.maximum(t, clip_value_min), clip_value_max)


def global_norm(t_list, name=None):
    tensors = [convert_to_tensor(t) for t in t_list if t is not None]
    with get_default_graph().name_scope(name or "global_norm"):
        return m.sqrt(m.add_n([m.reduce_sum(m.square(t)) for t in tensors]))


def clip_by_global_norm(t_list, clip_norm, use_norm=None, name=None):
    """Scales all tensors by clip_norm / max(global_norm, clip_norm); returns (list, global_norm).
    A non-finite global norm makes every result NaN (TF 1.x)."""
    with get_default_graph().name_scope(name or "clip_by_global_norm"):
        norm = global_norm(t_list) if use_norm is None else convert_to_tensor(use_norm)
        clip = convert_to_tensor(clip_norm, dtype=norm.dtype)
        # (norm - norm) is 0 for a finite norm and NaN otherwise: as TF 1.x, an inf/NaN global norm
        # turns every clipped tensor into NaN instead of silently zeroing it
        scale = m.add(m.truediv(clip, m.maximum(norm, clip)), m.subtract(norm, norm))
        clipped = [None if t is None else m.multiply(convert_to_tensor(t), m.cast(scale, convert_to_tensor(t).dtype))
                   for t in t_list]
        return clipped, norm
