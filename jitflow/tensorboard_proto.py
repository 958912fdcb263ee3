"""Hand-written protobuf encoders and TFRecord framing for TensorBoard event
files; no protobuf dependency. Why hand-written: the maintained encoders are the generated
classes of TensorBoard's own package (`tensorboard.compat.proto.event_pb2`), which brings grpcio,
werkzeug and protobuf with it, too much to require for writing five small message types; the
CRC32C of the framing does come from a maintained package (`google-crc32c`, jitflow/crc32c.py),
and tests/test_summary.py and tests/test_formats_libraries.py read the files with TensorBoard's
own readers (the `[test]` extra installs it).

Messages and field numbers (from tensorflow/core/util/event.proto,
framework/summary.proto, framework/graph.proto, node_def.proto,
attr_value.proto, tensor_shape.proto):

    Event           wall_time 1 (double), step 2 (int64), file_version 3 (string),
                    graph_def 4 (bytes: a serialized GraphDef), summary 5 (Summary)
    Summary         value 1 (repeated Value)
    Summary.Value   tag 1 (string), simple_value 2 (float), histo 5 (HistogramProto)
    HistogramProto  min 1, max 2, num 3, sum 4, sum_squares 5 (double),
                    bucket_limit 6, bucket 7 (packed repeated double)
    GraphDef        node 1 (repeated NodeDef)
    NodeDef         name 1, op 2, input 3 (repeated string: "op", "op:1", "^op"),
                    device 4, attr 5 (map<string, AttrValue>: entry key 1, value 2)
    AttrValue       list 1 (ListValue: shape 7 repeated TensorShapeProto)
    TensorShapeProto dim 2 (repeated Dim: size 1, int64, -1 if unknown),
                    unknown_rank 3 (bool)

Wire format: key = field << 3 | wire type (0 varint, 1 fixed64, 2 length-
delimited, 5 fixed32); negative int64 varints take 10 bytes. Proto3 scalars
equal to zero are omitted, except inside a oneof (Summary.Value's
simple_value/histo and Event's file_version/graph_def/summary), which are
always written when set.

TFRecord framing of one record: uint64 length (little endian), uint32 masked
CRC32C of those 8 bytes, the data, uint32 masked CRC32C of the data; masked(c)
= ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2**32).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from .crc32c import crc32c, masked_crc32c  # noqa: F401  (re-exported)

# ------------------------------------------------------------------------------- CRC32C
# (google-crc32c's C code; a numpy fallback only where its C extension is missing: jitflow/crc32c.py)


def tfrecord(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the data, the data's masked CRC."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


# ------------------------------------------------------------------------------- wire format
def _varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF         # int64 two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def f_varint(number: int, value: int) -> bytes:
    return _key(number, 0) + _varint(int(value))


def f_double(number: int, value: float) -> bytes:
    return _key(number, 1) + struct.pack("<d", float(value))


def f_float(number: int, value: float) -> bytes:
    return _key(number, 5) + struct.pack("<f", float(value))


def f_bytes(number: int, value) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return _key(number, 2) + _varint(len(value)) + bytes(value)


def f_packed_doubles(number: int, values) -> bytes:
    if not len(values):
        return b""
    return f_bytes(number, np.asarray(values, "<f8").tobytes())


# ------------------------------------------------------------------------------- messages
@dataclass
class HistogramProto:
    min: float = 0.0
    max: float = 0.0
    num: float = 0.0
    sum: float = 0.0
    sum_squares: float = 0.0
    bucket_limit: list = field(default_factory=list)
    bucket: list = field(default_factory=list)

    def SerializeToString(self) -> bytes:  # noqa: N802  (the protobuf name)
        out = b""
        for number, value in ((1, self.min), (2, self.max), (3, self.num), (4, self.sum), (5, self.sum_squares)):
            if value:
                out += f_double(number, value)
        return out + f_packed_doubles(6, self.bucket_limit) + f_packed_doubles(7, self.bucket)


@dataclass
class SummaryImage:
    """Summary.Image: an encoded (PNG) image with its size and channel count."""
    height: int = 0
    width: int = 0
    colorspace: int = 0
    encoded_image_string: bytes = b""

    def SerializeToString(self) -> bytes:  # noqa: N802
        return (f_varint(1, self.height) + f_varint(2, self.width) + f_varint(3, self.colorspace)
                + f_bytes(4, self.encoded_image_string))


@dataclass
class SummaryValue:
    tag: str
    simple_value: float | None = None
    histo: HistogramProto | None = None
    image: SummaryImage | None = None

    def SerializeToString(self) -> bytes:  # noqa: N802
        out = f_bytes(1, self.tag)
        if self.simple_value is not None:
            out += f_float(2, self.simple_value)
        if self.image is not None:
            out += f_bytes(4, self.image.SerializeToString())
        if self.histo is not None:
            out += f_bytes(5, self.histo.SerializeToString())
        return out


@dataclass
class Summary:
    """`tf.summary.Summary(value=[tf.summary.Summary.Value(tag="x", simple_value=1.0)])`."""

    value: list = field(default_factory=list)
    Value = SummaryValue

    def SerializeToString(self) -> bytes:  # noqa: N802
        return b"".join(f_bytes(1, v.SerializeToString()) for v in self.value)


@dataclass
class Event:
    """An Event record; `summary` may be a Summary or its serialized bytes."""

    wall_time: float = 0.0
    step: int = 0
    file_version: str | None = None
    graph_def: bytes | None = None
    summary: Summary | bytes | None = None

    def SerializeToString(self) -> bytes:  # noqa: N802
        out = f_double(1, self.wall_time) if self.wall_time else b""
        if self.step:
            out += f_varint(2, self.step)
        if self.file_version is not None:
            out += f_bytes(3, self.file_version)
        if self.graph_def is not None:
            out += f_bytes(4, self.graph_def)
        if self.summary is not None:
            summary = self.summary
            out += f_bytes(5, summary if isinstance(summary, (bytes, bytearray)) else summary.SerializeToString())
        return out


# ------------------------------------------------------------------------------- GraphDef
@dataclass
class NodeDef:
    name: str
    op: str
    input: list = field(default_factory=list)      # "op", "op:1", "^op" (control)
    device: str = ""
    output_shapes: list | None = None               # per output: tuple of dims (None = ?) or None (unknown rank)


def _shape_proto(shape) -> bytes:
    if shape is None:
        return f_varint(3, 1)
    return b"".join(f_bytes(2, f_varint(1, -1 if d is None else d)) for d in shape)


def encode_node_def(node: NodeDef) -> bytes:
    out = f_bytes(1, node.name) + f_bytes(2, node.op)
    out += b"".join(f_bytes(3, name) for name in node.input)
    if node.device:
        out += f_bytes(4, node.device)
    if node.output_shapes:
        shapes = b"".join(f_bytes(7, _shape_proto(s)) for s in node.output_shapes)
        attr_value = f_bytes(1, shapes)                               # AttrValue.list
        out += f_bytes(5, f_bytes(1, "_output_shapes") + f_bytes(2, attr_value))
    return out


def encode_graph_def(nodes) -> bytes:
    return b"".join(f_bytes(1, encode_node_def(n)) for n in nodes)
