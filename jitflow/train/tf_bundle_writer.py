"""Writing TensorFlow's checkpoint format (TensorBundle V2, the layout `jitflow.train.tf_bundle`
reads) so that a jitflow checkpoint can go back to TensorFlow: `Saver(write_version=
tf.train.SaverDef.V2)` saves ``<prefix>.index`` + ``<prefix>.data-00000-of-00001``.

What is written matches TF's own BundleWriter: one data shard holding the tensors in key order
(no alignment), each entry's masked crc32c (for strings over the uint32 lengths, the lengths'
checksum and the bytes, as TF computes it), a header {num_shards: 1, version {producer: 1}}, and
an uncompressed SSTable index with TF's block size (256 KiB) and restart interval (16; 1 in the
index block; index keys are LevelDB's shortest separators): for the same tensors the files are
byte-identical to TF's. Files go to temporary files moved into place, data first.
"""
from __future__ import annotations

import os

import numpy as np

from .. import errors
from ..crc32c import crc32c, masked_crc32c
from .tf_bundle import INDEX_SUFFIX, TF_DTYPES, data_file_name
from .tf_sstable import TABLE_MAGIC

BLOCK_SIZE = 262144
RESTART_INTERVAL = 16
PRODUCER_VERSION = 1
_DTYPE_ENUM = {np.dtype(np_type) if np_type is not object else np.dtype(object): enum
               for enum, (_, np_type) in TF_DTYPES.items()}


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --------------------------------------------------------------------------- the SSTable

class _BlockBuilder:
    def __init__(self, restart_interval: int):
        self.interval = restart_interval
        self.buf = bytearray()
        self.restarts = [0]
        self.count = 0
        self.last = b""

    def add(self, key: bytes, value: bytes):
        shared = 0
        if self.count % self.interval == 0 and self.count:
            self.restarts.append(len(self.buf))
        elif self.count:
            limit = min(len(key), len(self.last))
            while shared < limit and key[shared] == self.last[shared]:
                shared += 1
        self.buf += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        self.last = key
        self.count += 1

    def size(self) -> int:
        return len(self.buf) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        return bytes(self.buf) + b"".join(r.to_bytes(4, "little") for r in self.restarts) + \
            len(self.restarts).to_bytes(4, "little")


def build_table(entries, block_size: int = BLOCK_SIZE) -> bytes:
    """The SSTable of (key, value) pairs given in strictly increasing key order."""
    out = bytearray()

    def write_block(contents: bytes) -> bytes:
        handle = _varint(len(out)) + _varint(len(contents))
        out.extend(contents + b"\x00" + masked_crc32c(contents + b"\x00").to_bytes(4, "little"))
        return handle

    index = _BlockBuilder(1)
    block = _BlockBuilder(RESTART_INTERVAL)
    pending, block_last = None, b""     # a finished block whose index key waits for the next key
    for key, value in entries:
        if pending is not None:
            index.add(_shortest_separator(block_last, key), pending)
            pending = None
        block.add(key, value)
        if block.size() >= block_size:
            block_last, pending = block.last, write_block(block.finish())
            block = _BlockBuilder(RESTART_INTERVAL)
    if block.count:
        block_last, pending = block.last, write_block(block.finish())
    if pending is not None:
        index.add(_short_successor(block_last), pending)
    metaindex_handle = write_block(_BlockBuilder(RESTART_INTERVAL).finish())
    index_handle = write_block(index.finish())
    footer = metaindex_handle + index_handle
    out += footer + b"\x00" * (40 - len(footer)) + TABLE_MAGIC.to_bytes(8, "little")
    return bytes(out)


def _shortest_separator(start: bytes, limit: bytes) -> bytes:
    """LevelDB's BytewiseComparator::FindShortestSeparator: a short key in [start, limit)."""
    n = min(len(start), len(limit))
    i = 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i < n and start[i] < 0xFF and start[i] + 1 < limit[i]:
        return start[:i] + bytes([start[i] + 1])
    return start


def _short_successor(key: bytes) -> bytes:
    """LevelDB's FindShortSuccessor: a short key >= `key`."""
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes([byte + 1])
    return key


# --------------------------------------------------------------------------- the bundle

def _tensor_bytes(name: str, array: np.ndarray) -> tuple[int, bytes, int]:
    """(dtype enum, data bytes, masked crc32c) of one tensor."""
    dtype = array.dtype
    if dtype not in _DTYPE_ENUM:
        raise errors.UnsupportedError(f"cannot write variable {name} of dtype {dtype} in TensorFlow's format")
    if dtype == object:
        items = [x.encode("utf-8") if isinstance(x, str) else bytes(x) for x in array.reshape(-1)]
        lengths = b"".join(_varint(len(x)) for x in items)
        crc = crc32c(b"".join(len(x).to_bytes(4 if len(x) <= 0xFFFFFFFF else 8, "little") for x in items))
        checksum = _mask(crc).to_bytes(4, "little")
        body = b"".join(items)
        crc = crc32c(body, crc32c(checksum, crc))
        return _DTYPE_ENUM[dtype], lengths + checksum + body, _mask(crc)
    raw = np.ascontiguousarray(array, dtype.newbyteorder("<")).tobytes()
    return _DTYPE_ENUM[dtype], raw, masked_crc32c(raw)


def bundle_files(arrays: dict) -> tuple[bytes, bytes]:
    """(index file bytes, data file bytes) of a one-shard bundle of {name: numpy array}."""
    header = _field_varint(1, 1) + _field_bytes(3, _field_varint(1, PRODUCER_VERSION))
    entries = [(b"", header)]
    data = bytearray()
    for name in sorted(arrays, key=lambda n: n.encode("utf-8")):
        array = np.asarray(arrays[name])
        enum, raw, crc = _tensor_bytes(name, array)
        shape = b"".join(_field_bytes(2, _field_varint(1, int(d))) for d in array.shape)
        entry = (_field_varint(1, enum) + _field_bytes(2, shape) + _field_varint(4, len(data)) +
                 _field_varint(5, len(raw)) + _varint(6 << 3 | 5) + crc.to_bytes(4, "little"))
        entries.append((name.encode("utf-8"), entry))
        data += raw
    return build_table(entries), bytes(data)


def write_bundle(prefix: str, arrays: dict):
    """Writes `<prefix>.data-00000-of-00001` then `<prefix>.index` (each atomically) and removes
    jitflow-format files of the same prefix, which `restore` would otherwise prefer."""
    from .checkpoint_files import _delete_checkpoint_files, _fsync_dir, _remove, _write_temp
    index, data = bundle_files(arrays)
    data_path, index_path = data_file_name(prefix, 0, 1), prefix + INDEX_SUFFIX
    tmp_data = _write_temp(data_path, lambda f: f.write(data))
    try:
        tmp_index = _write_temp(index_path, lambda f: f.write(index))
    except BaseException:
        _remove(tmp_data)
        raise
    _delete_checkpoint_files(prefix)
    try:
        os.replace(tmp_data, data_path)
        os.replace(tmp_index, index_path)
    except BaseException:
        _remove(tmp_data)
        _remove(tmp_index)
        raise
    _fsync_dir(os.path.dirname(prefix) or ".")


def delete_bundle(prefix: str):
    """Removes a TF-format checkpoint's files (index first)."""
    from .checkpoint_files import _remove
    _remove(prefix + INDEX_SUFFIX)
    directory = os.path.dirname(prefix) or "."
    base = os.path.basename(prefix) + ".data-"
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(base) and "-of-" in name[len(base):]:
            _remove(os.path.join(directory, name))


class SaverDef:
    """`tf.train.SaverDef`: the checkpoint format versions a Saver can write."""
    LEGACY = 0
    V1 = 1
    V2 = 2
