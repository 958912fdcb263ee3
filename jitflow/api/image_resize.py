"""tf.image resizing (TF 1.x): resize_images, resize_bilinear, resize_nearest_neighbor, ResizeMethod.

Built from gathers along the height and width axes with index/weight tables computed when the graph is
built (so the image's height and width and the target size must be static), plus elementwise
arithmetic; gradients follow from the gathers. Coordinate mapping is TF's: with align_corners=False
and half_pixel_centers=False (TF 1.x's default, the "legacy" mapping) src = dst * in / out; with
align_corners=True src = dst * (in - 1) / (out - 1); with half_pixel_centers=True
src = (dst + 0.5) * in / out - 0.5 (bilinear) or (dst + 0.5) * in / out (nearest). Scales and source
coordinates are float32, as in TF's kernels.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..framework.graph import Tensor
from ..ir.types import float32, int32
from . import math_ops as m
from .array_ops import constant, expand_dims, squeeze
from .convert import convert_to_tensor
from .gather_api import gather
from .static_args import name_scope as _scope


class ResizeMethod:
    """tf.image.ResizeMethod (TF 1.x values)."""
    BILINEAR = 0
    NEAREST_NEIGHBOR = 1
    BICUBIC = 2
    AREA = 3


def _static_size(size, fn):
    if isinstance(size, Tensor) and size.op._op != "const":
        raise UnsupportedError(f"{fn}: `size` must be known when the graph is built (a list or a tf.constant); "
                               f"the tensor {size.name} is not supported")
    if isinstance(size, Tensor):
        size = size.op.attrs["value"]
    arr = np.asarray(size)
    if arr.shape != (2,):
        raise ValueError("'size' must be a 1-D Tensor of 2 elements: new_height, new_width")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{fn}: `size` must hold int32 values, got {size!r}")
    h, w = int(arr[0]), int(arr[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"{fn}: output dimensions must be positive, got size {[h, w]}")
    return h, w


def _static_hw(images, fn):
    h, w = images.shape.dims[1], images.shape.dims[2]
    if h is None or w is None:
        raise UnsupportedError(f"{fn}: the input's height and width must be known when the graph is built, "
                               f"got shape {images.shape}")
    return int(h), int(w)


def _scale(in_size, out_size, align_corners):
    if align_corners and out_size > 1:
        return np.float32(in_size - 1) / np.float32(out_size - 1)
    return np.float32(in_size) / np.float32(out_size)


def _linear_table(in_size, out_size, align_corners, half_pixel):
    scale = _scale(in_size, out_size, align_corners)
    dst = np.arange(out_size, dtype=np.float32)
    src = ((dst + np.float32(0.5)) * scale - np.float32(0.5)) if half_pixel else dst * scale
    src = src.astype(np.float32)
    floor = np.floor(src)
    lower = np.maximum(floor, 0).astype(np.int32)
    upper = np.minimum(np.ceil(src), in_size - 1).astype(np.int32)
    return lower, upper, (src - floor).astype(np.float32)


def _nearest_table(in_size, out_size, align_corners, half_pixel):
    scale = _scale(in_size, out_size, align_corners)
    dst = np.arange(out_size, dtype=np.float32)
    src = ((dst + np.float32(0.5)) * scale) if half_pixel else dst * scale
    src = src.astype(np.float32)
    # roundf: half away from zero (the sources are >= 0)
    idx = np.floor(src + np.float32(0.5)) if align_corners else np.floor(src)
    idx = np.minimum(idx, in_size - 1)
    return np.maximum(idx, 0).astype(np.int32)


def _check4d(images, fn):
    x = convert_to_tensor(images, name="images")
    if x.shape.dims is None or len(x.shape.dims) != 4:
        raise ValueError(f"{fn}: input must be 4-dimensional, got shape {x.shape}")
    if not (x.dtype.is_floating or x.dtype.is_integer):
        raise TypeError(f"{fn}: images of dtype {x.dtype.name} are not supported")
    return x


def _check_centers(align_corners, half_pixel_centers):
    if align_corners and half_pixel_centers:
        raise ValueError("If half_pixel_centers is True, align_corners must be False.")


def _lerp_axis(x, axis, in_size, out_size, align_corners, half_pixel):
    lower, upper, frac = _linear_table(in_size, out_size, align_corners, half_pixel)
    if in_size == out_size and not half_pixel and not np.any(frac):
        return x
    shape = [1, 1, 1, 1]
    shape[axis] = out_size
    a = gather(x, constant(lower, dtype=int32), axis=axis)
    b = gather(x, constant(upper, dtype=int32), axis=axis)
    return a + (b - a) * constant(frac.reshape(shape), dtype=float32)


def resize_bilinear(images, size, align_corners=False, name=None, half_pixel_centers=False):
    """tf.image.resize_bilinear (TF 1.x ResizeBilinear): 4-D input of any real dtype, float32 output."""
    _check_centers(align_corners, half_pixel_centers)
    x = _check4d(images, "resize_bilinear")
    out_h, out_w = _static_size(size, "resize_bilinear")
    in_h, in_w = _static_hw(x, "resize_bilinear")
    with _scope(name or "ResizeBilinear"):
        x = m.cast(x, float32) if x.dtype != float32 else x
        y = _lerp_axis(x, 1, in_h, out_h, align_corners, half_pixel_centers)
        y = _lerp_axis(y, 2, in_w, out_w, align_corners, half_pixel_centers)
        return m.identity(y, name="ResizeBilinear") if y is x else y


def resize_nearest_neighbor(images, size, align_corners=False, name=None, half_pixel_centers=False):
    """tf.image.resize_nearest_neighbor (TF 1.x ResizeNearestNeighbor): 4-D input, same dtype out."""
    _check_centers(align_corners, half_pixel_centers)
    x = _check4d(images, "resize_nearest_neighbor")
    out_h, out_w = _static_size(size, "resize_nearest_neighbor")
    in_h, in_w = _static_hw(x, "resize_nearest_neighbor")
    with _scope(name or "ResizeNearestNeighbor"):
        rows = _nearest_table(in_h, out_h, align_corners, half_pixel_centers)
        cols = _nearest_table(in_w, out_w, align_corners, half_pixel_centers)
        y = gather(x, constant(rows, dtype=int32), axis=1)
        return gather(y, constant(cols, dtype=int32), axis=2)


def resize_images(images, size, method=ResizeMethod.BILINEAR, align_corners=False, preserve_aspect_ratio=False,
                  name=None):
    """tf.image.resize_images (TF 1.x): 3-D [h,w,c] or 4-D [n,h,w,c]; returns the input unchanged when the
    size already matches (as TF 1.x); BICUBIC and AREA raise UnsupportedError."""
    x = convert_to_tensor(images, name="images")
    if x.shape.dims is None:
        raise ValueError("'images' contains no shape.")
    rank = len(x.shape.dims)
    if rank not in (3, 4):
        raise ValueError("'images' must have either 3 or 4 dimensions.")
    if method not in (ResizeMethod.BILINEAR, ResizeMethod.NEAREST_NEIGHBOR):
        if method in (ResizeMethod.BICUBIC, ResizeMethod.AREA):
            raise UnsupportedError(f"resize_images: method={method} (BICUBIC/AREA) is not supported by jitflow; "
                                   f"use ResizeMethod.BILINEAR or ResizeMethod.NEAREST_NEIGHBOR")
        raise ValueError("Resize method is not implemented.")
    with _scope(name or "resize_images"):
        x4 = expand_dims(x, 0) if rank == 3 else x
        out_h, out_w = _static_size(size, "resize_images")
        in_h, in_w = _static_hw(x4, "resize_images")
        if preserve_aspect_ratio:
            factor = min(np.float32(out_h) / np.float32(in_h), np.float32(out_w) / np.float32(in_w))
            out_h = int(np.round(np.float32(in_h) * np.float32(factor)))
            out_w = int(np.round(np.float32(in_w) * np.float32(factor)))
        if (in_h, in_w) == (out_h, out_w):
            return x
        if method == ResizeMethod.BILINEAR:
            y = resize_bilinear(x4, [out_h, out_w], align_corners=align_corners)
        else:
            y = resize_nearest_neighbor(x4, [out_h, out_w], align_corners=align_corners)
        return squeeze(y, axis=[0]) if rank == 3 else y
