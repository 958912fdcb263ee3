"""`tf.summary.image` serialization on the host: TF 1.x's ImageSummary rules (float images rescaled
per image to uint8: [0, max] -> [0, 255], or symmetrically around 128 when negative values occur;
non-finite pixels red) and a small PNG encoder (zlib, no filters)."""
from __future__ import annotations

import struct
import zlib

import numpy as np

from .tensorboard_proto import SummaryImage, SummaryValue

_PNG_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}      # gray, gray+alpha, RGB, RGBA
_BAD_COLOR = np.array([255, 0, 0, 255], np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 [height, width, channels] array (1-4 channels)."""
    height, width, channels = image.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, width * channels)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOR_TYPE[channels], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes()))
            + _chunk(b"IEND", b""))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """One [h, w, c] image as uint8, as TF's ImageSummary converts it."""
    if image.dtype == np.uint8:
        return image
    values = image.astype(np.float32)
    finite = np.isfinite(values)
    good = values[finite]
    lo = float(good.min()) if good.size else 0.0
    hi = float(good.max()) if good.size else 0.0
    if lo < 0:
        top = max(abs(lo), abs(hi))
        scale, offset = (0.0 if top < 1e-6 else 127.0 / top), 128.0
    else:
        scale, offset = (0.0 if hi < 1e-6 else 255.0 / hi), 0.0
    out = (np.where(finite, values, 0.0) * scale + offset).astype(np.uint8)
    bad = ~finite.all(axis=-1)
    if bad.any():
        out[bad] = _BAD_COLOR[:image.shape[-1]]
    return out


def image_values(tag: str, batch: np.ndarray, max_outputs: int) -> list:
    """The Summary.Values of the first `max_outputs` images: tags `tag/image` (one) or `tag/image/<i>`."""
    count = min(int(max_outputs), batch.shape[0])
    values = []
    for i in range(count):
        image = to_uint8(batch[i])
        name = f"{tag}/image" if max_outputs == 1 else f"{tag}/image/{i}"
        values.append(SummaryValue(tag=name, image=SummaryImage(height=image.shape[0], width=image.shape[1],
                                                                 colorspace=image.shape[2],
                                                                 encoded_image_string=encode_png(image))))
    return values
