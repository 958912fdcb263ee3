"""Reading a LevelDB-format SSTable, the container of a TensorFlow checkpoint's `.index` file
(TensorBundle V2; TF's `tensorflow/core/lib/io/table`), plus the protobuf wire-format decoding
its values need.

Table layout (all integers little-endian; "varint" is protobuf's base-128 varint)::

    [data block 1] ... [data block N] [metaindex block] [index block] [footer: 48 bytes]

- footer: the BlockHandle (varint offset, varint size) of the metaindex block, then of the index
  block, zero padding to 40 bytes, then the 8-byte magic 0xdb4775248b80fb57.
- every block is followed by a 5-byte trailer: a compression byte (0 = none; TF writes bundles
  uncompressed, anything else is refused) and the masked crc32c of the block's bytes plus that byte.
- a block is a run of entries -- varint shared-key length, varint unshared length, varint value
  length, the unshared key bytes, the value -- then uint32 restart offsets and a uint32 count of
  them (a restart entry shares nothing with the previous key).
- the index block maps (a key >= the last key of) each data block to that block's handle.

`read_table(data, name)` returns every (key, value) of the data blocks in order; any
inconsistency raises `DataLossError` naming the file.
"""
from __future__ import annotations

from .. import errors
from ..crc32c import masked_crc32c

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
TRAILER_SIZE = 5
_COMPRESSIONS = {1: "snappy", 2: "zlib", 3: "bzip2", 4: "lz4", 5: "lz4hc", 6: "xpress", 7: "zstd"}


class _Corrupt(ValueError):
    """A malformed byte string; turned into a DataLossError that names the file."""


# --------------------------------------------------------------------------- protobuf wire format

def read_varint(buf, pos: int) -> tuple[int, int]:
    """(value, position after it) of the base-128 varint at `pos`."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _Corrupt("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Corrupt("varint longer than 10 bytes")


def proto_fields(buf):
    """Yields (field number, wire type, value) of a serialized protobuf message: an int for
    varint (0), fixed64 (1) and fixed32 (5) fields, bytes for length-delimited (2) ones."""
    buf = memoryview(buf)
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise _Corrupt("truncated fixed64")
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 5:
            if pos + 4 > len(buf):
                raise _Corrupt("truncated fixed32")
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            if pos + length > len(buf):
                raise _Corrupt("truncated length-delimited field")
            value, pos = bytes(buf[pos:pos + length]), pos + length
        else:
            raise _Corrupt(f"unsupported wire type {wire} (field {number})")
        yield number, wire, value


def as_int64(value: int) -> int:
    """A varint read as a protobuf int64 (two's complement in 64 bits)."""
    return value - (1 << 64) if value >= 1 << 63 else value


# --------------------------------------------------------------------------- the table

def _handle(buf, pos: int) -> tuple[tuple[int, int], int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return (offset, size), pos


def _block(data, handle, what: str) -> memoryview:
    offset, size = handle
    end = offset + size
    if end + TRAILER_SIZE > len(data):
        raise _Corrupt(f"{what} block [{offset}, {end}) runs past the end of the file ({len(data)} bytes)")
    kind = data[end]
    if kind != 0:
        raise errors.UnsupportedError(
            f"compressed {what} block ({_COMPRESSIONS.get(kind, f'compression type {kind}')}): jitflow reads only "
            f"uncompressed TensorFlow checkpoint index files (TF writes them uncompressed)")
    stored = int.from_bytes(data[end + 1:end + 5], "little")
    if masked_crc32c(data[offset:end + 1]) != stored:
        raise _Corrupt(f"checksum mismatch in the {what} block at offset {offset}")
    return memoryview(data)[offset:end]


def _block_entries(block, what: str):
    """Yields the (key, value) entries of one block, keys rebuilt from their shared prefixes."""
    if len(block) < 4:
        raise _Corrupt(f"{what} block too short")
    restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 - 4 * restarts
    if restarts < 1 or limit < 0:
        raise _Corrupt(f"{what} block has a bad restart count {restarts}")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        value_len, pos = read_varint(block, pos)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise _Corrupt(f"bad entry in the {what} block")
        key = key[:shared] + bytes(block[pos:pos + unshared])
        pos += unshared
        yield key, bytes(block[pos:pos + value_len])
        pos += value_len


def read_table(data: bytes, name: str) -> list[tuple[bytes, bytes]]:
    """All (key, value) entries of the SSTable `data` (the contents of file `name`), in key order."""
    try:
        if len(data) < FOOTER_SIZE:
            raise _Corrupt(f"{len(data)} bytes is too short for a table")
        footer = memoryview(data)[len(data) - FOOTER_SIZE:]
        if int.from_bytes(footer[40:], "little") != TABLE_MAGIC:
            raise _Corrupt("not an sstable (bad magic number)")
        _metaindex, pos = _handle(footer, 0)
        index_handle, _ = _handle(footer, pos)
        entries: list[tuple[bytes, bytes]] = []
        last = None
        for _, handle_bytes in _block_entries(_block(data, index_handle, "index"), "index"):
            handle, _ = _handle(handle_bytes, 0)
            for key, value in _block_entries(_block(data, handle, "data"), "data"):
                if last is not None and key <= last:
                    raise _Corrupt("keys out of order")
                entries.append((key, value))
                last = key
        return entries
    except _Corrupt as exc:
        raise errors.DataLossError(None, None, f"Checkpoint index file {name} is corrupted: {exc}") from None

