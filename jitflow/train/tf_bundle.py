"""Reading checkpoints written by TensorFlow itself (TensorBundle V2, TF's default Saver format):
``<prefix>.index`` and ``<prefix>.data-<shard>-of-<num_shards>``.

- ``<prefix>.index`` is an SSTable (`jitflow.train.tf_sstable`) whose empty key holds a
  ``BundleHeaderProto`` {num_shards 1, endianness 2 (0 little, 1 big), version 3 (VersionDef:
  producer 1, min_consumer 2, bad_consumers 3)} and whose other keys are tensor names mapped to
  ``BundleEntryProto`` {dtype 1, shape 2 (TensorShapeProto: dim 2 {size 1}, unknown_rank 3),
  shard_id 3, offset 4, size 5, crc32c 6 (fixed32, masked), slices 7}. Keys that start with a
  0 byte are the slices of partitioned variables.
- a tensor's bytes are ``size`` bytes at ``offset`` of data shard ``shard_id``: the raw C-order
  elements; for tf.string, the varint length of every element, a 4-byte masked crc32c of those
  lengths (TF sums each length as a little-endian uint32, not as the varint it wrote), then the
  element bytes. ``crc32c`` is the masked CRC-32C of those bytes (for strings, again with the
  lengths as uint32s), checked on every read (`DataLossError` naming the tensor on a mismatch).

`BundleReader(prefix)` reads the index once and each tensor on demand; it is also a read-only
mapping {name: numpy array} so that `Saver.restore` can use it as it uses jitflow's own format.
A partitioned variable reads as one tensor, put together from its parts (`tf_slices` decodes
their keys), as TF's reader does; dtypes jitflow lacks raise `UnsupportedError` naming the
tensor when read. `jitflow.train.tf_bundle_writer` writes this format.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .. import errors
from ..crc32c import crc32c, masked_crc32c
from ..ir import types as ir_types
from .tf_slices import decode_slice_key, normalized, slice_extents
from .tf_sstable import _Corrupt, as_int64, proto_fields, read_table, read_varint

INDEX_SUFFIX = ".index"
MAX_CONSUMER_VERSION = 1        # TF's kTensorBundleVersion

# TF's DataType enum -> (name, numpy dtype); only the dtypes jitflow has.
TF_DTYPES = {1: ("float32", np.float32), 2: ("float64", np.float64), 3: ("int32", np.int32),
             4: ("uint8", np.uint8), 5: ("int16", np.int16), 6: ("int8", np.int8), 7: ("string", object),
             9: ("int64", np.int64), 10: ("bool", np.bool_), 19: ("float16", np.float16)}
_OTHER_DTYPES = {8: "complex64", 14: "bfloat16", 17: "uint16", 18: "complex128", 20: "resource",
                 21: "variant", 22: "uint32", 23: "uint64", 11: "qint8", 12: "quint8", 13: "qint32"}


@dataclass(frozen=True)
class BundleEntry:
    """One tensor's BundleEntryProto."""
    name: str
    dtype_enum: int
    shape: tuple | None          # None: unknown rank
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    slices: tuple = ()           # a partitioned variable's parts: ((start, length), ...) each

    @property
    def num_slices(self) -> int:
        return len(self.slices)

    @property
    def dtype_name(self) -> str:
        if self.dtype_enum in TF_DTYPES:
            return TF_DTYPES[self.dtype_enum][0]
        return _OTHER_DTYPES.get(self.dtype_enum, f"DataType {self.dtype_enum}")


def is_tf_checkpoint(prefix: str) -> bool:
    """Whether `prefix` names a TensorFlow (TensorBundle V2) checkpoint: its `.index` exists."""
    return os.path.isfile(prefix + INDEX_SUFFIX)


def data_file_name(prefix: str, shard: int, num_shards: int) -> str:
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


def _shape(buf) -> tuple | None:
    dims = []
    for number, wire, value in proto_fields(buf):
        if number == 3 and wire == 0 and value:
            return None
        if number == 2 and wire == 2:
            size = 0
            for n, w, v in proto_fields(value):
                if n == 1 and w == 0:
                    size = as_int64(v)
            dims.append(size)
    return tuple(dims)


def _entry(name: str, buf) -> BundleEntry:
    fields = {"dtype": 0, "shape": (), "shard_id": 0, "offset": 0, "size": 0, "crc32c": None, "slices": []}
    for number, wire, value in proto_fields(buf):
        if number == 1 and wire == 0:
            fields["dtype"] = value
        elif number == 2 and wire == 2:
            fields["shape"] = _shape(value)
        elif number == 3 and wire == 0:
            fields["shard_id"] = value
        elif number == 4 and wire == 0:
            fields["offset"] = as_int64(value)
        elif number == 5 and wire == 0:
            fields["size"] = as_int64(value)
        elif number == 6 and wire == 5:
            fields["crc32c"] = value
        elif number == 7 and wire == 2:
            fields["slices"].append(slice_extents(value))
    return BundleEntry(name, fields["dtype"], fields["shape"], fields["shard_id"], fields["offset"],
                       fields["size"], fields["crc32c"], tuple(fields["slices"]))


def _header(buf) -> tuple[int, int, int, int]:
    """(num_shards, endianness, producer, min_consumer) of a BundleHeaderProto."""
    num_shards, endianness, producer, min_consumer = 0, 0, 0, 0
    for number, wire, value in proto_fields(buf):
        if number == 1 and wire == 0:
            num_shards = value
        elif number == 2 and wire == 0:
            endianness = value
        elif number == 3 and wire == 2:
            for n, w, v in proto_fields(value):
                if n == 1 and w == 0:
                    producer = v
                elif n == 2 and w == 0:
                    min_consumer = v
    return num_shards, endianness, producer, min_consumer


class BundleReader(Mapping):
    """The tensors of a TensorFlow V2 checkpoint; `reader[name]` reads (and checks) one."""

    def __init__(self, prefix):
        self.prefix = os.fspath(prefix)
        self.index_path = self.prefix + INDEX_SUFFIX
        try:
            with open(self.index_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise errors.NotFoundError(
                None, None, f"Unsuccessful TensorSliceReader constructor: Failed to find any matching files "
                            f"for {self.prefix}") from None
        except OSError as exc:
            raise errors.NotFoundError(None, None, f"Cannot read checkpoint index file {self.index_path}: "
                                                   f"{exc}") from None
        table = read_table(data, self.index_path)
        try:
            if not table or table[0][0] != b"":
                raise _Corrupt("no bundle header (the entry with the empty key)")
            self.num_shards, endianness, _producer, min_consumer = _header(table[0][1])
            if endianness not in (0, 1):
                raise _Corrupt(f"unknown endianness {endianness}")
            self.byte_order = "<" if endianness == 0 else ">"
            self.entries: dict[str, BundleEntry] = {}
            self._parts: dict[tuple, BundleEntry] = {}     # (name, extents): one part of a partitioned variable
            for key, value in table[1:]:
                if key[:1] == b"\x00":
                    part_of, extents = decode_slice_key(key)
                    entry = _entry(part_of, value)
                    self._parts[(part_of, extents)] = entry
                else:
                    entry = _entry(key.decode("utf-8", "surrogateescape"), value)
                    self.entries[entry.name] = entry
                if entry.num_slices == 0 and entry.shard_id >= max(self.num_shards, 1):
                    raise _Corrupt(f"tensor {entry.name} is in shard {entry.shard_id} of {self.num_shards}")
        except _Corrupt as exc:
            raise errors.DataLossError(None, None, f"Checkpoint index file {self.index_path} is corrupted: "
                                                   f"{exc}") from None
        if min_consumer > MAX_CONSUMER_VERSION:
            raise errors.InvalidArgumentError(
                None, None, f"Checkpoint {self.prefix} needs a TensorBundle reader of version >= {min_consumer}; "
                            f"jitflow reads version {MAX_CONSUMER_VERSION}")
        self._shards: dict[int, bytes] = {}

    # --- the mapping interface (Saver.restore)
    def __getitem__(self, name):
        if name not in self.entries:
            raise KeyError(name)
        return self.get_tensor(name)

    def __iter__(self):
        return iter(self.entries)

    def __len__(self):
        return len(self.entries)

    def __contains__(self, name):
        return name in self.entries

    # --- metadata
    def shape(self, name: str) -> list | None:
        shape = self._entry(name).shape
        return None if shape is None else list(shape)

    def dtype(self, name: str):
        entry = self._entry(name)
        if entry.dtype_enum not in TF_DTYPES:
            raise errors.UnsupportedError(f"tensor {name} of checkpoint {self.prefix} has dtype "
                                          f"{entry.dtype_name}, which jitflow does not support")
        return ir_types.as_dtype(TF_DTYPES[entry.dtype_enum][0])

    def _entry(self, name: str) -> BundleEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise errors.NotFoundError(None, None, f"Key {name} not found in checkpoint {self.prefix}") from None

    def _shard(self, shard_id: int) -> bytes:
        if shard_id not in self._shards:
            path = data_file_name(self.prefix, shard_id, self.num_shards)
            try:
                with open(path, "rb") as f:
                    self._shards[shard_id] = f.read()
            except FileNotFoundError:
                raise errors.NotFoundError(None, None, f"Checkpoint data file {path} not found (index "
                                                       f"{self.index_path} exists)") from None
            except OSError as exc:
                raise errors.NotFoundError(None, None, f"Cannot read checkpoint data file {path}: {exc}") from None
        return self._shards[shard_id]

    # --- tensors
    def get_tensor(self, name: str) -> np.ndarray:
        """The value of tensor `name` as a numpy array (its crc32c checked)."""
        entry = self._entry(name)
        if entry.num_slices:
            return self._assemble(entry)
        return self._read(entry, name)

    def _assemble(self, entry: BundleEntry) -> np.ndarray:
        """A partitioned variable, its parts put together (each part's crc32c checked)."""
        name = entry.name
        if entry.shape is None or entry.dtype_enum not in TF_DTYPES:
            return self._read(entry, name)             # raises the error that says why
        out = np.empty(entry.shape, TF_DTYPES[entry.dtype_enum][1])
        covered = 0
        try:
            for extents in entry.slices:
                extents = normalized(extents, entry.shape)
                part = self._parts.get((name, extents))
                if part is None:
                    part = next((p for (n, e), p in self._parts.items()
                                 if n == name and normalized(e, entry.shape) == extents), None)
                if part is None:
                    raise _Corrupt(f"the part {list(extents)} of partitioned variable {name} is missing")
                value = self._read(part, f"{name} (part {list(extents)})")
                if part.dtype_enum != entry.dtype_enum or value.shape != tuple(n for _, n in extents):
                    raise _Corrupt(f"the part {list(extents)} of partitioned variable {name} has dtype "
                                   f"{part.dtype_name} and shape {list(value.shape)}")
                out[tuple(slice(start, start + n) for start, n in extents)] = value
                covered += value.size
        except _Corrupt as exc:
            raise errors.DataLossError(None, None, f"Checkpoint {self.prefix}: {exc}") from None
        if covered != out.size:
            raise errors.DataLossError(None, None, f"Checkpoint {self.prefix}: the parts of partitioned variable "
                                                   f"{name} do not cover its shape {list(entry.shape)} once")
        return out

    def _read(self, entry: BundleEntry, name: str) -> np.ndarray:
        """One stored tensor (a whole variable or one part of a partitioned one), checked."""
        if entry.dtype_enum not in TF_DTYPES:
            raise errors.UnsupportedError(f"tensor {name} of checkpoint {self.prefix} has dtype "
                                          f"{entry.dtype_name}, which jitflow does not support")
        if entry.shape is None:
            raise errors.DataLossError(None, None, f"tensor {name} of checkpoint {self.prefix} has an unknown "
                                                   f"rank")
        shard = self._shard(entry.shard_id)
        path = data_file_name(self.prefix, entry.shard_id, self.num_shards)
        begin, end = entry.offset, entry.offset + entry.size
        if begin < 0 or end > len(shard):
            raise errors.DataLossError(None, None, f"Checkpoint data file {path} is truncated: tensor {name} "
                                                   f"needs bytes [{begin}, {end}) of {len(shard)}")
        raw = shard[begin:end]
        count = int(np.prod(entry.shape, dtype=np.int64))
        is_string = TF_DTYPES[entry.dtype_enum][1] is object
        try:
            if is_string:
                flat, crc = _strings(raw, count)
            else:
                dtype = np.dtype(TF_DTYPES[entry.dtype_enum][1]).newbyteorder(self.byte_order)
                if len(raw) != count * dtype.itemsize:
                    raise _Corrupt(f"{len(raw)} bytes for {count} elements of {entry.dtype_name}")
                flat, crc = np.frombuffer(raw, dtype).astype(dtype.newbyteorder("=")), masked_crc32c(raw)
        except _Corrupt as exc:
            raise errors.DataLossError(None, None, f"tensor {name} of checkpoint {path} is corrupted: "
                                                   f"{exc}") from None
        if entry.crc32c is not None and crc != entry.crc32c:
            raise errors.DataLossError(None, None, f"Checksum does not match: stored {entry.crc32c:#010x} vs. "
                                                   f"calculated on the restored bytes {crc:#010x} for tensor "
                                                   f"{name} of checkpoint {path}")
        return flat.reshape(entry.shape)

    def has_tensor(self, name: str) -> bool:
        return name in self.entries


def _strings(raw: bytes, count: int) -> tuple[np.ndarray, int]:
    """The elements of a string tensor's bytes, and the masked crc32c TF records for them: TF sums
    each length as a little-endian uint32 (uint64 above 2**32 - 1), not as the varint it wrote."""
    lengths = []
    pos = 0
    for _ in range(count):
        length, pos = read_varint(raw, pos)
        lengths.append(length)
    crc = crc32c(b"".join(n.to_bytes(4 if n <= 0xFFFFFFFF else 8, "little") for n in lengths))
    if pos + 4 > len(raw) or _mask(crc) != int.from_bytes(raw[pos:pos + 4], "little"):
        raise _Corrupt("string lengths checksum mismatch")
    crc = crc32c(raw[pos:], crc)
    pos += 4
    if pos + sum(lengths) != len(raw):
        raise _Corrupt("string bytes do not add up")
    out = np.empty(count, object)
    for i, length in enumerate(lengths):
        out[i] = raw[pos:pos + length]
        pos += length
    return out, _mask(crc)


def _mask(crc: int) -> int:
    """TF's crc32c::Mask."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
