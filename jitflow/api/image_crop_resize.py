"""tf.image.crop_and_resize (TF 1.x CropAndResize), composed of gathers and arithmetic.

Boxes are run-time values ([num_boxes, 4] normalized y1, x1, y2, x2); the sample coordinates follow TF's
kernel: in_y = y1 * (h - 1) + i * ((y2 - y1) * (h - 1) / (crop_h - 1)) (or the box center when crop_h == 1),
samples outside [0, h - 1] take extrapolation_value; bilinear (floor/ceil/lerp) or nearest (roundf).
crop_size must be known when the graph is built. The output is float32 [num_boxes, crop_h, crop_w, depth];
gradients reach the image (through the gathers) and the boxes (through the lerp weights).
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..framework.graph import Tensor
from ..ir.types import float32, int32
from . import math_ops as m
from .array_ops import constant, expand_dims, stack, unstack
from .convert import convert_to_tensor
from .gather_api import gather, gather_nd
from .math_extra import ceil, floor
from .static_args import name_scope as _scope


def _coords(lo, hi, size, crop):
    """[num_boxes, crop] sample coordinates and their in-range mask along one axis."""
    span = float(size - 1)
    if crop > 1:
        scale = m.divide(m.multiply(m.subtract(hi, lo), span), float(crop - 1))
        steps = constant(np.arange(crop, dtype=np.float32))
        at = m.add(expand_dims(m.multiply(lo, span), 1), m.multiply(expand_dims(scale, 1), steps))
    else:
        at = expand_dims(m.multiply(m.multiply(m.add(lo, hi), 0.5), span), 1)
    valid = m.logical_and(m.greater_equal(at, 0.0), m.less_equal(at, span))
    return at, valid


def _index(v, size):
    """Clamped int32 indices (out-of-range samples are masked afterwards)."""
    return m.cast(m.minimum(m.maximum(v, 0.0), float(size - 1)), int32)


def _rows(image, box_ind, rows):
    """image[box_ind[b], rows[b, i]] -> [num_boxes, crop_h, w, depth]."""
    batch = m.add(expand_dims(box_ind, 1), m.multiply(rows, 0))
    return gather_nd(image, stack([batch, rows], axis=-1))


def _cols(x, cols):
    """x[b, i, cols[b, j]] for x [num_boxes, crop_h, w, depth] -> [num_boxes, crop_h, crop_w, depth]."""
    return gather(x, cols, axis=2, batch_dims=1)


def crop_and_resize(image, boxes, box_ind, crop_size, method="bilinear", extrapolation_value=0, name=None):
    x = convert_to_tensor(image, name="image")
    if x.shape.dims is None or len(x.shape.dims) != 4:
        raise ValueError(f"crop_and_resize: input image must be 4-D, got shape {x.shape}")
    if method not in ("bilinear", "nearest"):
        raise ValueError(f"crop_and_resize: method must be 'bilinear' or 'nearest', got {method!r}")
    if isinstance(crop_size, Tensor) and crop_size.op._op != "const":
        raise UnsupportedError(f"crop_and_resize: `crop_size` must be known when the graph is built; the tensor "
                               f"{crop_size.name} is not supported")
    size = np.asarray(crop_size.op.attrs["value"] if isinstance(crop_size, Tensor) else crop_size).reshape(-1)
    if size.shape != (2,) or np.any(size <= 0):
        raise ValueError(f"crop_and_resize: crop_size must be two positive ints, got {crop_size!r}")
    crop_h, crop_w = int(size[0]), int(size[1])
    h, w = x.shape.dims[1], x.shape.dims[2]
    if h is None or w is None:
        raise UnsupportedError(f"crop_and_resize: the image's height and width must be known when the graph is "
                               f"built, got shape {x.shape}")
    boxes = convert_to_tensor(boxes, dtype=float32, name="boxes")
    box_ind = convert_to_tensor(box_ind, dtype=int32, name="box_ind")
    if boxes.shape.dims is not None and (len(boxes.shape.dims) != 2 or boxes.shape.dims[1] not in (None, 4)):
        raise ValueError(f"crop_and_resize: boxes must be 2-D [num_boxes, 4], got shape {boxes.shape}")
    if box_ind.shape.dims is not None and len(box_ind.shape.dims) != 1:
        raise ValueError(f"crop_and_resize: box_ind must be 1-D [num_boxes], got shape {box_ind.shape}")
    with _scope(name or "CropAndResize"):
        img = m.cast(x, float32) if x.dtype != float32 else x
        y1, x1, y2, x2 = unstack(boxes, num=4, axis=1)
        in_y, valid_y = _coords(y1, y2, int(h), crop_h)
        in_x, valid_x = _coords(x1, x2, int(w), crop_w)
        if method == "nearest":
            rows = _rows(img, box_ind, _index(floor(m.add(in_y, 0.5)), int(h)))
            out = _cols(rows, _index(floor(m.add(in_x, 0.5)), int(w)))
        else:
            fy, fx = floor(in_y), floor(in_x)
            top = _rows(img, box_ind, _index(fy, int(h)))
            bottom = _rows(img, box_ind, _index(ceil(in_y), int(h)))
            left, right = _index(fx, int(w)), _index(ceil(in_x), int(w))
            ly = expand_dims(expand_dims(m.subtract(in_y, fy), 2), 3)        # [nb, ch, 1, 1]
            lx = expand_dims(expand_dims(m.subtract(in_x, fx), 1), 3)        # [nb, 1, cw, 1]
            tl, tr = _cols(top, left), _cols(top, right)
            bl, br = _cols(bottom, left), _cols(bottom, right)
            upper = m.add(tl, m.multiply(m.subtract(tr, tl), lx))
            lower = m.add(bl, m.multiply(m.subtract(br, bl), lx))
            out = m.add(upper, m.multiply(m.subtract(lower, upper), ly))
        mask = m.logical_and(expand_dims(expand_dims(valid_y, 2), 3), expand_dims(expand_dims(valid_x, 1), 3))
        return m.where_v2(mask, out, constant(np.float32(extrapolation_value)), name="CropAndResize")
