"""Tensors <-> safetensors bytes, through the `safetensors` package (a jitflow dependency).

The file layout (https://github.com/huggingface/safetensors) is an 8-byte little-endian header
length, a JSON header ``{"<name>": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}``
and the tensors' little-endian bytes. The package writes it (ordering, alignment padding,
byte-swapping of big-endian arrays) and validates it on reading (header size limit, known
dtypes, offsets that tile the buffer with no holes, overlaps or trailing bytes, metadata
that maps strings to strings); this module only adapts numpy values to it and its errors to
`SafetensorsError`. Checkpoint atomicity, the index and its checksums live around it in
`checkpoint_files.py` and `keras/saving.py`.

What is still hand-written here, and why: reading ``__metadata__`` from bytes held in memory.
The package reads metadata only through `safe_open` on a path, while jitflow validates a
checkpoint's bytes against the sha256 in its index and must decode exactly the bytes it
checked; so after `safetensors.deserialize` has validated the layout, the (already
validated) JSON header is parsed here for its ``__metadata__`` entry (`_metadata`).

No pickle, no code execution: reading a file parses JSON and copies bytes.
"""
from __future__ import annotations

import json
import struct
from typing import BinaryIO, Mapping

import numpy as np
import safetensors
import safetensors.numpy as st_numpy

METADATA_KEY = "__metadata__"

# numpy dtypes with a safetensors equivalent (F16..F64, I8..I64, U8..U64, BOOL)
_DTYPES = frozenset(["float16", "float32", "float64", "int8", "int16", "int32", "int64",
                     "uint8", "uint16", "uint32", "uint64", "bool"])


class SafetensorsError(ValueError):
    """A file (or a value to write) that does not follow the safetensors format."""


def _prepare(tensors: Mapping[str, np.ndarray]) -> dict:
    """{name: C-contiguous array}: the package reads each array's memory through its pointer."""
    out = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or name == METADATA_KEY:
            raise SafetensorsError(f"invalid tensor name {name!r}")
        array = np.asarray(value)
        if array.dtype.name not in _DTYPES:
            raise SafetensorsError(f"dtype {array.dtype} has no safetensors equivalent")
        out[name] = np.asarray(array, order="C")   # (np.ascontiguousarray would make a scalar shape (1,))
    return out


def serialize(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """The safetensors bytes of `tensors` ({name: array}) with optional str -> str `metadata`."""
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise SafetensorsError(f"__metadata__ must map str to str, got {key!r}: {value!r}")
    arrays = _prepare(tensors)
    try:
        return st_numpy.save(arrays, metadata=dict(metadata) if metadata else None)
    except (safetensors.SafetensorError, ValueError, TypeError) as exc:
        raise SafetensorsError(f"cannot serialize to safetensors: {exc}") from None


def write(fileobj: BinaryIO, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> int:
    """Writes `tensors` to a binary file object; returns the bytes written."""
    data = serialize(tensors, metadata)
    fileobj.write(data)
    return len(data)


def _metadata(data: bytes) -> dict:
    """The header's __metadata__ of bytes the package has already validated (see the module doc)."""
    (size,) = struct.unpack("<Q", data[:8])
    metadata = json.loads(data[8:8 + size].decode("utf-8")).get(METADATA_KEY) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise SafetensorsError("__metadata__ must map str to str")
    return metadata


def deserialize(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({name: native-endian, writable, C-contiguous numpy array}, metadata); raises SafetensorsError."""
    data = bytes(data)
    try:
        views = st_numpy.load(data)          # read-only little-endian views of `data`
    except (safetensors.SafetensorError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise SafetensorsError(f"not a valid safetensors file: {exc}") from None
    tensors = {name: np.array(view, dtype=view.dtype.newbyteorder("="), order="C")
               for name, view in views.items()}
    return tensors, _metadata(data)


def read(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    with open(path, "rb") as f:
        return deserialize(f.read())
