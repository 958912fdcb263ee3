"""tf.image (TF 1.x) beyond resizing: flips (plain and seeded random), transpose_image, rot90, crops and pads
(central_crop, crop_to_bounding_box, pad_to_bounding_box, resize_image_with_crop_or_pad, random_crop),
convert_image_dtype, rgb_to_grayscale / grayscale_to_rgb, brightness and contrast (plain and random),
per_image_standardization.

All composed of existing ops (reverse, transpose, slice, pad, gather, random_uniform, casts, reductions).
Images are 3-D [h, w, c] or 4-D [n, h, w, c]; offsets, sizes and k must be known when the graph is built
(a tensor raises UnsupportedError naming the argument).
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..framework.graph import Tensor
from ..ir.types import as_dtype, float16, float32, int32
from . import math_ops as m
from .array_extra import pad, reverse, slice as _slice, tile
from .array_ops import constant, range_, transpose
from .array_ops import shape as shape_
from .convert import convert_to_tensor
from .gather_api import gather
from .random_ops import random_uniform
from .static_args import name_scope as _scope


def _image(image, fn, ranks=(3, 4), arg="image"):
    x = convert_to_tensor(image, name=arg)
    if x.shape.dims is None:
        raise ValueError(f"{fn}: '{arg}' must have a known rank, got shape {x.shape}")
    if len(x.shape.dims) not in ranks:
        raise ValueError(f"'{arg}' (shape {x.shape}) must have either 3 or 4 dimensions.")
    return x


def _int_arg(value, arg, fn):
    if isinstance(value, Tensor):
        if value.op._op != "const":
            raise UnsupportedError(f"{fn}: `{arg}` must be known when the graph is built; the tensor "
                                   f"{value.name} is not supported")
        value = value.op.attrs["value"]
    return int(np.asarray(value).reshape(()))


def _hw(x, fn):
    dims = x.shape.dims
    h, w = dims[-3], dims[-2]
    if h is None or w is None:
        raise UnsupportedError(f"{fn}: the image's height and width must be known when the graph is built, "
                               f"got shape {x.shape}")
    return int(h), int(w)


# ---- flips, transpose, rot90 ---------------------------------------------------------------------------
def _flip(image, axis3, fn):
    x = _image(image, fn)
    return reverse(x, [axis3 + len(x.shape.dims) - 3], name=fn)


def flip_left_right(image):
    return _flip(image, 1, "flip_left_right")


def flip_up_down(image):
    return _flip(image, 0, "flip_up_down")


def _random_flip(image, axis3, seed, fn):
    """TF 1.x: a 3-D image flips as a whole with probability 1/2; each image of a 4-D batch flips on its own."""
    x = _image(image, fn)
    rank = len(x.shape.dims)
    with _scope(fn):
        if rank == 3:
            flip = m.less(random_uniform([], 0, 1.0, seed=seed), 0.5)
            return m.where_v2(flip, reverse(x, [axis3]), x)
        batch = x.shape.dims[0]
        count = [int(batch)] if batch is not None else _slice(shape_(x), [0], [1])
        flip = m.less(random_uniform(count, 0, 1.0, seed=seed), 0.5)
        return m.where(flip, reverse(x, [axis3 + 1]), x)       # a vector condition selects whole images


def random_flip_left_right(image, seed=None):
    return _random_flip(image, 1, seed, "random_flip_left_right")


def random_flip_up_down(image, seed=None):
    return _random_flip(image, 0, seed, "random_flip_up_down")


def transpose_image(image):
    x = _image(image, "transpose_image")
    perm = [1, 0, 2] if len(x.shape.dims) == 3 else [0, 2, 1, 3]
    return transpose(x, perm, name="transpose_image")


def rot90(image, k=1, name=None):
    """Rotates counter-clockwise by 90 degrees k times (k known when the graph is built)."""
    x = _image(image, "rot90")
    k = _int_arg(k, "k", "rot90") % 4
    off = len(x.shape.dims) - 3
    perm = [1, 0, 2] if off == 0 else [0, 2, 1, 3]
    with _scope(name or "rot90"):
        if k == 0:
            return m.identity(x)
        if k == 1:
            return transpose(reverse(x, [off + 1]), perm)
        if k == 2:
            return reverse(x, [off, off + 1])
        return reverse(transpose(x, perm), [off + 1])


# ---- crops and pads ------------------------------------------------------------------------------------
def crop_to_bounding_box(image, offset_height, offset_width, target_height, target_width):
    x = _image(image, "crop_to_bounding_box")
    fn = "crop_to_bounding_box"
    oh, ow = _int_arg(offset_height, "offset_height", fn), _int_arg(offset_width, "offset_width", fn)
    th, tw = _int_arg(target_height, "target_height", fn), _int_arg(target_width, "target_width", fn)
    h, w = _hw(x, fn)
    if ow < 0:
        raise ValueError("offset_width must be >= 0.")
    if oh < 0:
        raise ValueError("offset_height must be >= 0.")
    if tw <= 0:
        raise ValueError("target_width must be > 0.")
    if th <= 0:
        raise ValueError("target_height must be > 0.")
    if w < tw + ow:
        raise ValueError("width must be >= target + offset.")
    if h < th + oh:
        raise ValueError("height must be >= target + offset.")
    lead = [0] * (len(x.shape.dims) - 3)
    return _slice(x, lead + [oh, ow, 0], [-1] * len(lead) + [th, tw, -1], name="crop_to_bounding_box")


def pad_to_bounding_box(image, offset_height, offset_width, target_height, target_width):
    x = _image(image, "pad_to_bounding_box")
    fn = "pad_to_bounding_box"
    oh, ow = _int_arg(offset_height, "offset_height", fn), _int_arg(offset_width, "offset_width", fn)
    th, tw = _int_arg(target_height, "target_height", fn), _int_arg(target_width, "target_width", fn)
    h, w = _hw(x, fn)
    after_w, after_h = tw - ow - w, th - oh - h
    if oh < 0:
        raise ValueError("offset_height must be >= 0")
    if ow < 0:
        raise ValueError("offset_width must be >= 0")
    if after_w < 0:
        raise ValueError("width must be <= target - offset")
    if after_h < 0:
        raise ValueError("height must be <= target - offset")
    lead = [[0, 0]] * (len(x.shape.dims) - 3)
    return pad(x, lead + [[oh, after_h], [ow, after_w], [0, 0]], name="pad_to_bounding_box")


def resize_image_with_crop_or_pad(image, target_height, target_width):
    """Centrally crops and/or zero-pads to target_height x target_width (TF 1.x offsets)."""
    x = _image(image, "resize_image_with_crop_or_pad")
    fn = "resize_image_with_crop_or_pad"
    th, tw = _int_arg(target_height, "target_height", fn), _int_arg(target_width, "target_width", fn)
    if tw <= 0:
        raise ValueError("target_width must be > 0.")
    if th <= 0:
        raise ValueError("target_height must be > 0.")
    h, w = _hw(x, fn)
    wd, hd = tw - w, th - h
    with _scope(fn):
        if (h, w) == (th, tw):
            return m.identity(x)
        cropped = x
        if hd < 0 or wd < 0:
            cropped = crop_to_bounding_box(x, max(-hd // 2, 0), max(-wd // 2, 0), min(th, h), min(tw, w))
        if hd > 0 or wd > 0:
            return pad_to_bounding_box(cropped, max(hd // 2, 0), max(wd // 2, 0), th, tw)
        return cropped


def central_crop(image, central_fraction):
    x = _image(image, "central_crop")
    fraction = float(central_fraction)
    if fraction <= 0.0 or fraction > 1.0:
        raise ValueError("central_fraction must be within (0, 1]")
    if fraction == 1.0:
        return x
    h, w = _hw(x, "central_crop")
    top = int((h - h * fraction) / 2)
    left = int((w - w * fraction) / 2)
    return crop_to_bounding_box(x, top, left, h - 2 * top, w - 2 * left)


def random_crop(value, size, seed=None, name=None):
    """Crops a random `size` window (any rank; offsets uniform per axis, seeded like TF's random ops)."""
    x = convert_to_tensor(value, name="value")
    if isinstance(size, Tensor) and size.op._op != "const":
        raise UnsupportedError(f"random_crop: `size` must be known when the graph is built; the tensor "
                               f"{size.name} is not supported")
    size = [int(v) for v in np.asarray(size.op.attrs["value"] if isinstance(size, Tensor) else size).reshape(-1)]
    dims = x.shape.dims
    if dims is None or any(d is None for d in dims):
        raise UnsupportedError(f"random_crop: the value's shape must be fully known when the graph is built, "
                               f"got {x.shape}")
    if len(size) != len(dims):
        raise ValueError(f"random_crop: size {size} must have one entry per dimension of value {x.shape}")
    if any(s > d for s, d in zip(size, dims)) or any(s < 0 for s in size):
        raise ValueError(f"Need value.shape >= size, got shape {list(dims)} and size {size}")
    with _scope(name or "random_crop"):
        limit = constant(np.array([d - s + 1 for d, s in zip(dims, size)], np.int32))
        offset = m.floormod(random_uniform([len(dims)], 0, np.iinfo(np.int32).max, dtype=int32, seed=seed), limit)
        out = x
        for axis, (d, s) in enumerate(zip(dims, size)):
            if s == d:
                continue
            index = m.add(gather(offset, axis), range_(s))
            out = gather(out, index, axis=axis)
        return m.identity(out) if out is x else out


# ---- dtype conversion ----------------------------------------------------------------------------------
def _saturate_cast(x, dtype):
    lo = max(float(x.dtype.min), float(dtype.min))
    hi = min(float(x.dtype.max), float(dtype.max))
    if lo > float(x.dtype.min) or hi < float(x.dtype.max):
        x = m.minimum(m.maximum(x, constant(x.dtype.np.type(lo), dtype=x.dtype)),
                      constant(x.dtype.np.type(hi), dtype=x.dtype))
    return m.cast(x, dtype)


def convert_image_dtype(image, dtype, saturate=False, name=None):
    """Casts with TF's rescaling: floats hold [0, 1], integers [0, MAX]; int->int shifts by the bit width."""
    x = convert_to_tensor(image, name="image")
    dtype = as_dtype(dtype)
    if not (dtype.is_floating or dtype.is_integer):
        raise AttributeError("dtype must be either floating point or integer")
    if not (x.dtype.is_floating or x.dtype.is_integer):
        raise AttributeError("image dtype must be either floating point or integer")
    if dtype == x.dtype:
        return m.identity(x, name=name)
    with _scope(name or "convert_image"):
        if x.dtype.is_integer and dtype.is_integer:
            scale_in, scale_out = int(x.dtype.max), int(dtype.max)
            if scale_in > scale_out:
                scale = (scale_in + 1) // (scale_out + 1)
                scaled = m.floordiv(x, constant(scale, dtype=x.dtype))
                return _saturate_cast(scaled, dtype) if saturate else m.cast(scaled, dtype)
            cast = _saturate_cast(x, dtype) if saturate else m.cast(x, dtype)
            return m.multiply(cast, constant((scale_out + 1) // (scale_in + 1), dtype=dtype))
        if x.dtype.is_floating and dtype.is_floating:
            return m.cast(x, dtype)
        if x.dtype.is_integer:
            return m.multiply(m.cast(x, dtype), constant(1.0 / float(x.dtype.max), dtype=dtype))
        scaled = m.multiply(x, constant(float(dtype.max) + 0.5, dtype=x.dtype))
        return _saturate_cast(scaled, dtype) if saturate else m.cast(scaled, dtype)


# ---- color ---------------------------------------------------------------------------------------------
def _to_float(x):
    return x if x.dtype in (float16, float32) else convert_image_dtype(x, float32)


def rgb_to_grayscale(images, name=None):
    x = convert_to_tensor(images, name="images")
    if x.shape.dims is None or not x.shape.dims or x.shape.dims[-1] not in (None, 3):
        raise ValueError(f"rgb_to_grayscale: the last dimension must be 3 (RGB), got shape {x.shape}")
    with _scope(name or "rgb_to_grayscale"):
        flt = convert_image_dtype(x, float32)
        gray = m.reduce_sum(m.multiply(flt, constant(np.array([0.2989, 0.5870, 0.1140], np.float32))),
                            axis=-1, keepdims=True)
        return convert_image_dtype(gray, x.dtype)


def grayscale_to_rgb(images, name=None):
    x = convert_to_tensor(images, name="images")
    if x.shape.dims is None or len(x.shape.dims) < 2:
        raise ValueError("A grayscale image must be at least two-dimensional.")
    if x.shape.dims[-1] not in (None, 1):
        raise ValueError("Last dimension of a grayscale image should be size 1.")
    with _scope(name or "grayscale_to_rgb"):
        return tile(x, [1] * (len(x.shape.dims) - 1) + [3])


def adjust_brightness(image, delta):
    x = convert_to_tensor(image, name="image")
    with _scope("adjust_brightness"):
        flt = _to_float(x)
        adjusted = m.add(flt, m.cast(convert_to_tensor(delta), flt.dtype))
        return convert_image_dtype(adjusted, x.dtype, saturate=True)


def random_brightness(image, max_delta, seed=None):
    if max_delta < 0:
        raise ValueError("max_delta must be non-negative.")
    delta = random_uniform([], -max_delta, max_delta, seed=seed)
    return adjust_brightness(image, delta)


def adjust_contrast(images, contrast_factor):
    """(x - mean) * contrast_factor + mean per image and channel (mean over height and width)."""
    x = convert_to_tensor(images, name="images")
    if x.shape.dims is not None and len(x.shape.dims) < 3:
        raise ValueError(f"'images' (shape {x.shape}) must be at least three-dimensional.")
    with _scope("adjust_contrast"):
        flt = _to_float(x)
        mean = m.reduce_mean(flt, axis=[-3, -2], keepdims=True)
        factor = m.cast(convert_to_tensor(contrast_factor), flt.dtype)
        adjusted = m.add(m.multiply(m.subtract(flt, mean), factor), mean)
        return convert_image_dtype(adjusted, x.dtype, saturate=True)


def random_contrast(image, lower, upper, seed=None):
    if upper <= lower:
        raise ValueError("upper must be > lower.")
    if lower < 0:
        raise ValueError("lower must be non-negative.")
    factor = random_uniform([], lower, upper, seed=seed)
    return adjust_contrast(image, factor)


def per_image_standardization(image):
    """(x - mean) / max(stddev, 1/sqrt(N)) per image, N = h*w*c; float32 out (TF 1.x)."""
    x = convert_to_tensor(image, name="image")
    if x.shape.dims is None or len(x.shape.dims) < 3:
        raise ValueError(f"'image' (shape {x.shape}) must be at least three-dimensional.")
    dims = x.shape.dims[-3:]
    if any(d is None for d in dims):
        raise UnsupportedError(f"per_image_standardization: the image's height, width and channels must be "
                               f"known when the graph is built, got shape {x.shape}")
    with _scope("per_image_standardization") as scope:
        flt = m.cast(x, float32)
        mean = m.reduce_mean(flt, axis=[-1, -2, -3], keepdims=True)
        variance = m.relu(m.subtract(m.reduce_mean(m.square(flt), axis=[-1, -2, -3], keepdims=True),
                                     m.square(mean)))
        min_stddev = float(1.0 / np.sqrt(np.float32(int(np.prod(dims)))))
        scale = m.maximum(m.sqrt(variance), constant(np.float32(min_stddev)))
        return m.divide(m.subtract(flt, mean), scale, name=scope)
