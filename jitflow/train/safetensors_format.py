"""A small, dependency-free reader and writer of the safetensors file format.

Layout of a ``.safetensors`` file (https://github.com/huggingface/safetensors)::

    [8 bytes]  N, the header length: unsigned 64-bit little-endian integer
    [N bytes]  the header: UTF-8 JSON object, padded with trailing spaces (0x20)
               {"<tensor name>": {"dtype": "F32", "shape": [3, 1], "data_offsets": [begin, end]},
                ...,
                "__metadata__": {"<key>": "<string value>", ...}}       (optional)
    [rest]     the byte buffer: every tensor's elements, C order, little-endian;
               ``data_offsets`` are relative to the start of this buffer, end exclusive

Rules this module writes and checks on reading (the same the reference
implementation enforces): the header starts with ``{``; every dtype is known;
shapes are lists of non-negative integers; ``end - begin`` equals the tensor's
byte size; the tensors tile the byte buffer exactly (no holes, no overlaps, no
trailing bytes); ``__metadata__`` maps strings to strings. Scalars have shape
``[]``; size-0 tensors have ``begin == end``.

The writer orders tensors by decreasing element size, then by name, and pads
the header to a multiple of 8 bytes, so every tensor is naturally aligned in the
file. Supported dtypes: F32, F64, I32, I64, BOOL (one byte, 0 or 1), plus the
other fixed-size numeric dtypes of the format for reading.

No pickle, no code execution: reading a file only parses JSON and copies bytes.
"""
from __future__ import annotations

import json
import struct
from typing import BinaryIO, Mapping

import numpy as np

MAX_HEADER_SIZE = 100 * 1024 * 1024          # the reference implementation's limit
METADATA_KEY = "__metadata__"

# safetensors dtype name <-> numpy dtype (little-endian)
_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {(dt.kind, dt.itemsize): name for name, dt in _DTYPES.items()}


class SafetensorsError(ValueError):
    """A file (or a value to write) that does not follow the safetensors format."""


def dtype_name(dtype) -> str:
    """The safetensors dtype name ("F32", ...) of a numpy dtype."""
    dtype = np.dtype(dtype)
    try:
        return _NAMES[(dtype.kind, dtype.itemsize)]
    except KeyError:
        raise SafetensorsError(f"dtype {dtype} has no safetensors equivalent") from None


def numpy_dtype(name: str) -> np.dtype:
    """The (little-endian) numpy dtype of a safetensors dtype name."""
    try:
        return _DTYPES[name]
    except (KeyError, TypeError):
        raise SafetensorsError(f"unsupported safetensors dtype {name!r}") from None


def _prepare(tensors: Mapping[str, np.ndarray]):
    """(name, little-endian C-contiguous array) pairs in file order."""
    items = []
    for name, value in tensors.items():
        if not isinstance(name, str) or name == METADATA_KEY:
            raise SafetensorsError(f"invalid tensor name {name!r}")
        array = np.asarray(value)
        dtype_name(array.dtype)                                   # validates the dtype
        little = array.dtype.newbyteorder("<") if array.dtype.itemsize > 1 else array.dtype
        # (np.ascontiguousarray would turn a scalar into shape (1,))
        items.append((name, np.asarray(array, dtype=little, order="C")))
    items.sort(key=lambda item: (-item[1].dtype.itemsize, item[0]))
    return items


def _header_bytes(items, metadata: Mapping[str, str] | None) -> bytes:
    header: dict = {}
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise SafetensorsError(f"__metadata__ must map str to str, got {key!r}: {value!r}")
        header[METADATA_KEY] = dict(metadata)
    offset = 0
    for name, array in items:
        header[name] = {"dtype": dtype_name(array.dtype), "shape": [int(d) for d in array.shape],
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return text + b" " * (-(8 + len(text)) % 8)


def write(fileobj: BinaryIO, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> int:
    """Writes `tensors` ({name: array}) to a binary file object; returns the bytes written."""
    items = _prepare(tensors)
    header = _header_bytes(items, metadata)
    fileobj.write(struct.pack("<Q", len(header)))
    fileobj.write(header)
    total = 8 + len(header)
    for _, array in items:
        if array.size:
            fileobj.write(memoryview(array.reshape(-1)).cast("B"))
            total += array.nbytes
    return total


def serialize(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    import io
    buffer = io.BytesIO()
    write(buffer, tensors, metadata)
    return buffer.getvalue()


def parse_header(data: bytes) -> tuple[dict, dict, int]:
    """({name: {"dtype", "shape", "data_offsets"}}, metadata, start of the byte buffer).

    Validates the whole layout against the file size; raises SafetensorsError."""
    if len(data) < 8:
        raise SafetensorsError(f"file too small ({len(data)} bytes) to hold the 8-byte header length")
    (size,) = struct.unpack("<Q", data[:8])
    if size > MAX_HEADER_SIZE:
        raise SafetensorsError(f"header length {size} exceeds the {MAX_HEADER_SIZE}-byte limit")
    if 8 + size > len(data):
        raise SafetensorsError(f"header length {size} runs past the end of the file ({len(data)} bytes)")
    raw = data[8:8 + size]
    if not raw.startswith(b"{"):
        raise SafetensorsError("header does not start with '{'")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SafetensorsError(f"header is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    metadata = header.pop(METADATA_KEY, None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise SafetensorsError("__metadata__ must map str to str")
    buffer_size = len(data) - 8 - size
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict):
            raise SafetensorsError(f"tensor {name!r}: entry is not an object")
        dtype = numpy_dtype(info.get("dtype"))
        shape = info.get("shape")
        offsets = info.get("data_offsets")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise SafetensorsError(f"tensor {name!r}: invalid shape {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int for o in offsets) or not 0 <= offsets[0] <= offsets[1]):
            raise SafetensorsError(f"tensor {name!r}: invalid data_offsets {offsets!r}")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise SafetensorsError(f"tensor {name!r}: data_offsets {offsets} span {offsets[1] - offsets[0]} "
                                   f"bytes, but dtype {info['dtype']} and shape {shape} need {nbytes}")
        spans.append((offsets[0], offsets[1], name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise SafetensorsError(f"tensor {name!r}: data_offsets {[begin, end]} leave a hole or overlap "
                                   f"(expected begin {position})")
        position = end
    if position != buffer_size:
        raise SafetensorsError(f"the tensors cover {position} bytes of data, but the file holds {buffer_size} "
                               f"(truncated or trailing bytes)")
    return header, metadata, 8 + size


def deserialize(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({name: native-endian, writable, C-contiguous numpy array}, metadata)."""
    header, metadata, start = parse_header(data)
    tensors = {}
    for name, info in header.items():
        dtype = numpy_dtype(info["dtype"])
        begin, end = info["data_offsets"]
        count = (end - begin) // dtype.itemsize
        flat = np.frombuffer(data, dtype=np.uint8 if dtype.kind == "b" else dtype, count=count,
                             offset=start + begin)
        flat = flat != 0 if dtype.kind == "b" else flat.astype(dtype.newbyteorder("="), copy=True)
        tensors[name] = flat.reshape(tuple(info["shape"]))
    return tensors, metadata


def read(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    with open(path, "rb") as f:
        return deserialize(f.read())
