"""The slices of partitioned variables in a TensorFlow checkpoint (`jitflow.train.tf_bundle`).

A variable saved in parts (`tf.get_variable(..., partitioner=...)`) has one entry under its own
name whose `slices` list the parts (TensorSliceProto: extent 1 {start 1, length 2; no length:
the whole dimension}), and one entry per part under a key made by TF's
`EncodeTensorNameSlice`: OrderedCode's NumIncreasing(0), String(name), NumIncreasing(rank), then
SignedNumIncreasing(start), SignedNumIncreasing(length) per dimension (length -1: the whole
dimension). This module decodes those keys and those protos; `tf_bundle` assembles the parts.
"""
from __future__ import annotations

from .tf_sstable import _Corrupt, as_int64, proto_fields


def slice_extents(buf) -> tuple:
    """((start, length), ...) of a TensorSliceProto; length -1 means the whole dimension."""
    extents = []
    for number, wire, value in proto_fields(buf):
        if number == 1 and wire == 2:
            start, length = 0, -1
            for n, w, v in proto_fields(value):
                if n == 1 and w == 0:
                    start = as_int64(v)
                elif n == 2 and w == 0:
                    length = as_int64(v)
            extents.append((start, length))
    return tuple(extents)


def _num_increasing(key: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(key):
        raise _Corrupt("truncated slice key")
    n = key[pos]
    if pos + 1 + n > len(key):
        raise _Corrupt("truncated slice key")
    return int.from_bytes(key[pos + 1:pos + 1 + n], "big"), pos + 1 + n


def _string(key: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    while pos + 1 < len(key):
        a, b = key[pos], key[pos + 1]
        if a == 0x00 and b == 0x01:
            return bytes(out), pos + 2
        if a == 0x00 and b == 0xFF:
            out.append(0x00)
            pos += 2
        elif a == 0xFF and b == 0x00:
            out.append(0xFF)
            pos += 2
        else:
            out.append(a)
            pos += 1
    raise _Corrupt("unterminated name in slice key")


def _signed_num_increasing(key: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(key):
        raise _Corrupt("truncated slice key")
    negative = not key[pos] & 0x80
    flip = 0xFF if negative else 0x00
    head = ((key[pos] ^ flip) << 8) | ((key[pos + 1] ^ flip) if pos + 1 < len(key) else 0)
    length = 0
    while length < 11 and head & (0x8000 >> length):
        length += 1
    if not 1 <= length <= 10 or pos + length > len(key):
        raise _Corrupt("bad number in slice key")
    bits = 8 * length
    raw = int.from_bytes(key[pos:pos + length], "big")
    header = ((1 << length) - 1) << (bits - length)          # `length` one bits on top
    value = raw ^ header
    if negative:
        value -= 1 << bits
    return value, pos + length


def decode_slice_key(key: bytes) -> tuple[str, tuple]:
    """(variable name, ((start, length), ...)) of a slice entry's key."""
    zero, pos = _num_increasing(key, 0)
    if zero != 0:
        raise _Corrupt("bad slice key")
    name, pos = _string(key, pos)
    rank, pos = _num_increasing(key, pos)
    extents = []
    for _ in range(rank):
        start, pos = _signed_num_increasing(key, pos)
        length, pos = _signed_num_increasing(key, pos)
        extents.append((start, length))
    if pos != len(key):
        raise _Corrupt("trailing bytes in slice key")
    return name.decode("utf-8", "surrogateescape"), tuple(extents)


def normalized(extents: tuple, shape: tuple) -> tuple:
    """Extents with every "whole dimension" (length -1) spelled out against `shape`."""
    if len(extents) != len(shape):
        raise _Corrupt(f"a slice of rank {len(extents)} of a tensor of rank {len(shape)}")
    return tuple((start, dim - start) if length == -1 else (start, length)
                 for (start, length), dim in zip(extents, shape))
