"""`tf.summary`: scalar, histogram and image (jitflow/summary_image.py) summaries, merging, and `FileWriter`,
which writes TensorBoard event files (see `jitflow.tensorboard_proto` for the
encoding).

Summaries are host-side. `tf.summary.scalar('MSE', mse)` adds a graph op
(type ScalarSummary, no outputs, so it shows in the graph and never reaches
codegen: its lowering emits nothing) and returns a `SummaryTensor`, a small
Python object that stands for the op's serialized `Summary` string.
`Session.run` expands each SummaryTensor fetch into its value tensors, runs the
compiled function, and serializes those values on the host into the Summary
protobuf bytes, which is what TF returns from `sess.run(summary)`; see
`expand_summary_fetches`.
"""
from __future__ import annotations

import os
import re
import socket
import time

import numpy as np

from . import errors
from .framework.graph import GraphKeys, get_default_graph
from .framework.shapes import TensorShape
from .ir.types import string
from .ops import summary_ops  # noqa: F401  (the summary ops' records)
from .tensorboard_proto import Event, HistogramProto, NodeDef, Summary, encode_graph_def, tfrecord

__all__ = ["scalar", "histogram", "image", "merge", "merge_all", "FileWriter", "SummaryTensor", "Summary", "Event",
           "HistogramProto", "graph_def_bytes", "expand_summary_fetches"]


# the graph ops (scalar_summary, histogram_summary, merge_summary): records in jitflow/ops/summary_ops.py

_INVALID_TAG_CHARS = re.compile(r"[^-/\w\.]")


def _clean_tag(name: str) -> str:
    """TF's rule: invalid characters become '_', leading slashes are dropped."""
    cleaned = _INVALID_TAG_CHARS.sub("_", name).lstrip("/")
    return cleaned or "summary"


class _Entry:
    __slots__ = ("kind", "tag", "tensor", "op")

    def __init__(self, kind, tag, tensor, op):
        self.kind, self.tag, self.tensor, self.op = kind, tag, tensor, op


class SummaryTensor:
    """What `tf.summary.scalar/histogram/merge` return: stands for the serialized
    `Summary` protobuf (a tf.string scalar in TF). Fetch it with `sess.run` or
    `.eval()`; the result is bytes for `FileWriter.add_summary`."""

    def __init__(self, op, entries):
        self.op = op
        self._entries = tuple(entries)
        self._tensors = tuple(e.tensor for e in self._entries)

    @property
    def graph(self):
        return self.op.graph

    @property
    def name(self) -> str:
        return self.op.name + ":0"

    @property
    def dtype(self):
        return string                       # tf.string, as in TF

    @property
    def shape(self) -> TensorShape:
        return TensorShape(())

    def get_shape(self) -> TensorShape:
        return self.shape

    @property
    def tags(self) -> tuple:
        return tuple(e.tag for e in self._entries)

    def eval(self, feed_dict=None, session=None) -> bytes:
        from .session import _session_for
        return _session_for(session, self.graph).run(self, feed_dict)

    def serialize(self, values) -> bytes:
        """The Summary protobuf bytes for the fetched values of the value tensors."""
        out = []
        for e, v in zip(self._entries, values):
            made = _summary_value(e, v)
            out.extend(made if isinstance(made, list) else [made])
        return Summary(out).SerializeToString()

    def __repr__(self):
        return f"<tf.Tensor '{self.name}' shape=() dtype=string (summary of {', '.join(self.tags)})>"


def expand_summary_fetches(leaves):
    """The Session.run hook. Returns (leaves, None) when no leaf is a SummaryTensor;
    otherwise (leaves with each SummaryTensor replaced by its value tensors, collapse),
    where collapse(values of the new leaves) -> values of the original leaves, with each
    summary's values serialized to Summary bytes on the host."""
    if not any(type(x) is SummaryTensor for x in leaves):
        return leaves, None
    plan, expanded = [], []
    for x in leaves:
        if type(x) is SummaryTensor:
            plan.append((x, len(expanded), len(x._tensors)))
            expanded.extend(x._tensors)
        else:
            plan.append((None, len(expanded), 1))
            expanded.append(x)

    def collapse(values):
        return [values[start] if s is None else s.serialize(values[start:start + n]) for s, start, n in plan]
    return expanded, collapse


def _summary_value(entry, value):
    array = np.asarray(value)
    if entry.kind == "scalar":
        if array.ndim != 0:
            raise errors.InvalidArgumentError(
                None, entry.op, f"tags and values not the same shape: [] != {list(array.shape)} (tag '{entry.tag}')"
                f"\n  {errors.describe_op(entry.op)}")
        return Summary.Value(tag=entry.tag, simple_value=float(array))
    if entry.kind == "image":
        from .summary_image import image_values
        return image_values(entry.tag, array, entry.op.attrs["max_outputs"])
    return Summary.Value(tag=entry.tag, histo=_histogram(entry, array))


def _default_bucket_limits():
    """TF's default histogram buckets: +-1e-12 growing by 10% to 1e20, 0, and +-DBL_MAX."""
    positive, v = [], 1.0e-12
    while v < 1.0e20:
        positive.append(v)
        v *= 1.1
    positive.append(np.finfo(np.float64).max)
    return np.array([-x for x in reversed(positive)] + [0.0] + positive)


_BUCKET_LIMITS = _default_bucket_limits()


def histogram_buckets(values: np.ndarray):
    """(bucket limits, counts) as TF's `Histogram::EncodeToProto` writes them, for a float64 array.

    Vectorized: bucket i counts the values in [limit[i-1], limit[i]) (TF's std::upper_bound),
    values beyond the last limit (+inf) land in the last bucket; then each run of empty buckets
    collapses into its last bucket (preserve_zero_buckets=false)."""
    limits = _BUCKET_LIMITS
    index = np.searchsorted(limits, values, side="right")
    np.minimum(index, len(limits) - 1, out=index)
    counts = np.bincount(index, minlength=len(limits))
    nonempty = counts > 0
    keep = nonempty.copy()
    keep[:-1] |= nonempty[1:]
    keep[-1] = True
    return limits[keep], counts[keep].astype(np.float64)


def _histogram(entry, array) -> HistogramProto:
    values = np.asarray(array, np.float64).ravel()
    if values.size and not np.isfinite(values.sum()) and not np.all(np.isfinite(values)):
        raise errors.InvalidArgumentError(None, entry.op, f"Nan in summary histogram for: {entry.tag}"
                                          f"\n  {errors.describe_op(entry.op)}")
    limits, counts = histogram_buckets(values)
    if values.size:
        lo, hi = float(values.min()), float(values.max())
    else:
        lo, hi = float(_BUCKET_LIMITS[-1]), float(-_BUCKET_LIMITS[-1])
    return HistogramProto(min=lo, max=hi, num=float(values.size), sum=float(values.sum()),
                          sum_squares=float(np.dot(values, values)), bucket_limit=limits.tolist(),
                          bucket=counts.tolist())


# ------------------------------------------------------------------------------- the API
def _summary_op(kind, op_name, name, tensor, collections, family):
    from .api.convert import convert_to_tensor
    tensor = convert_to_tensor(tensor)
    graph = tensor.graph
    if not (tensor.dtype.is_floating or tensor.dtype.is_integer):
        raise TypeError(f"tf.summary.{kind} needs a real-number tensor, got {tensor.dtype.name} ({tensor.name})")
    name = _clean_tag(name)
    family = _clean_tag(family) if family else None
    if family:
        name = family + "/" + name
    if kind == "scalar" and tensor.shape.dims is not None and len(tensor.shape.dims) != 0:
        raise ValueError(f"tf.summary.scalar('{name}') needs a scalar (shape []), got {tensor.shape} "
                         f"({tensor.name}); reduce it (e.g. tf.reduce_mean) or use tf.summary.histogram")
    with graph.name_scope(name) as scope:
        tag = scope[:-1] if not family else f"{family}/{scope[:-1]}"     # TF's summary_scope
        op = graph.create_op(op_name, [tensor], {"tag": tag}, name=scope)
    summary = SummaryTensor(op, [_Entry(kind, tag, tensor, op)])
    for key in (collections if collections is not None else [GraphKeys.SUMMARIES]):
        graph.add_to_collection(key, summary)
    return summary


def scalar(name, tensor, collections=None, family=None) -> SummaryTensor:
    """A Summary with one `simple_value`; the tag is the op's scoped name (as in TF)."""
    return _summary_op("scalar", "scalar_summary", name, tensor, collections, family)


def histogram(name, values, collections=None, family=None) -> SummaryTensor:
    """A Summary with one histogram (TF's default exponential buckets) of all elements of `values`."""
    return _summary_op("histogram", "histogram_summary", name, values, collections, family)


def image(name, tensor, max_outputs=3, collections=None, family=None) -> SummaryTensor:
    """Up to `max_outputs` images of a [batch, height, width, channels] tensor (channels 1, 3 or 4;
    uint8 or float, floats rescaled per image) as PNG; tags `<name>/image/<i>` (`<name>/image` for one)."""
    from .api.convert import convert_to_tensor
    tensor = convert_to_tensor(tensor)
    dims = tensor.shape.dims
    if dims is not None and (len(dims) != 4 or dims[3] not in (None, 1, 3, 4)):
        raise ValueError(f"Tensor must be 4-D with last dim 1, 3, or 4, not {tensor.shape} ({tensor.name})")
    if tensor.dtype.name not in ("uint8", "float16", "float32", "float64"):
        raise TypeError(f"tf.summary.image needs a uint8 or float tensor, got {tensor.dtype.name} ({tensor.name})")
    if int(max_outputs) < 1:
        raise ValueError(f"max_outputs must be positive, got {max_outputs}")
    summary = _summary_op("image", "image_summary", name, tensor, collections, family)
    summary.op.attrs["max_outputs"] = int(max_outputs)
    return summary


def merge(inputs, collections=None, name=None) -> SummaryTensor:
    """One Summary with the values of all `inputs` (SummaryTensors); tags must be distinct."""
    inputs = list(inputs)
    if not inputs:
        raise ValueError("tf.summary.merge needs at least one summary")
    for s in inputs:
        if not isinstance(s, SummaryTensor):
            raise TypeError(f"tf.summary.merge takes the results of tf.summary.scalar/histogram/merge, got {s!r}")
    graph = inputs[0].graph
    if any(s.graph is not graph for s in inputs):
        raise ValueError("tf.summary.merge: all summaries must be from the same graph")
    entries, seen = [], set()
    for s in inputs:
        for e in s._entries:
            if e.tag in seen:
                raise ValueError(f"Duplicate tag {e.tag} found in summary inputs of tf.summary.merge")
            seen.add(e.tag)
            entries.append(e)
    # no data inputs (the summary ops have no outputs): control edges show where the values come from
    with graph.name_scope(name or "Merge"), graph.control_dependencies([s.op for s in inputs]):
        op = graph.create_op("merge_summary", [], {}, name="MergeSummary")
    summary = SummaryTensor(op, entries)
    for key in (collections or []):
        graph.add_to_collection(key, summary)
    return summary


def merge_all(key=GraphKeys.SUMMARIES, scope=None, name=None):
    """Merges the summaries in collection `key` (of the default graph); None if there are none."""
    summaries = get_default_graph().get_collection(key, scope)
    if not summaries:
        return None
    return merge(summaries, name=name)


# ------------------------------------------------------------------------------- GraphDef
def graph_def_bytes(graph) -> bytes:
    """A serialized minimal GraphDef: every op with its name, type, inputs, device and output shapes."""
    nodes = []
    for op in graph.get_operations():
        inputs = [t.op.name if t.value_index == 0 else f"{t.op.name}:{t.value_index}" for t in op.inputs]
        inputs += ["^" + c.name for c in op.control_inputs]
        shapes = [getattr(t._type, "shape", None) for t in op.outputs]
        nodes.append(NodeDef(op.name, op.type, inputs, op.attrs.get("_device", ""), shapes))
    return encode_graph_def(nodes)


# ------------------------------------------------------------------------------- FileWriter
class FileWriter:
    """Writes TensorBoard event files `events.out.tfevents.<time>.<hostname>` in `logdir`.

    Events are written synchronously and flushed to the OS every `flush_secs`, on
    `flush()` and on `close()`. As in TF, events added after `close()` are dropped
    until `reopen()`.
    """

    def __init__(self, logdir, graph=None, max_queue=10, flush_secs=120, graph_def=None, filename_suffix=None,
                 session=None):
        self._logdir = os.fspath(logdir)
        self._flush_secs = flush_secs
        self._suffix = filename_suffix or ""
        self._file = None
        self._closed = True
        self.reopen()
        if graph is not None or graph_def is not None:
            self.add_graph(graph, graph_def=graph_def)

    def get_logdir(self) -> str:
        return self._logdir

    def reopen(self):
        """Opens a new event file (after `close()`); a no-op while open."""
        if not self._closed:
            return
        os.makedirs(self._logdir, exist_ok=True)
        base = os.path.join(self._logdir, f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}")
        path, n = base + self._suffix, 0
        while os.path.exists(path):       # two writers in the same second: keep both files
            n += 1
            path = f"{base}.{os.getpid()}.{n}{self._suffix}"
        self._file = open(path, "xb")
        self._path = path
        self._closed = False
        self._last_flush = time.monotonic()
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()

    @property
    def event_file_path(self) -> str:
        return self._path

    def add_event(self, event):
        """Writes an Event (a `tf.summary.Event` or its serialized bytes)."""
        if self._closed:
            return
        self._write(event)
        if time.monotonic() - self._last_flush >= self._flush_secs:
            self.flush()

    def add_summary(self, summary, global_step=None):
        """Writes a Summary: the bytes `sess.run(summary)` returns, or a `tf.summary.Summary`."""
        if isinstance(summary, SummaryTensor):
            raise TypeError("add_summary takes the evaluated summary (the bytes from sess.run(summary) or "
                            "summary.eval()), not the summary tensor")
        if isinstance(summary, (bytes, bytearray)):
            summary = bytes(summary)
        elif not hasattr(summary, "SerializeToString"):
            raise TypeError(f"add_summary needs Summary bytes or a tf.summary.Summary, got {summary!r}")
        self.add_event(Event(wall_time=time.time(), step=int(global_step or 0), summary=summary))

    def add_graph(self, graph=None, global_step=None, graph_def=None):
        """Writes the graph structure (a GraphDef) for TensorBoard's Graphs tab."""
        if graph_def is None:
            if graph is None:
                raise ValueError("add_graph needs a graph or a graph_def")
            graph_def = graph_def_bytes(graph)
        elif hasattr(graph_def, "SerializeToString"):
            graph_def = graph_def.SerializeToString()
        self.add_event(Event(wall_time=time.time(), step=int(global_step or 0), graph_def=bytes(graph_def)))

    def _write(self, event):
        data = event if isinstance(event, (bytes, bytearray)) else event.SerializeToString()
        self._file.write(tfrecord(bytes(data)))

    def flush(self):
        if not self._closed:
            self._file.flush()
            self._last_flush = time.monotonic()

    def close(self):
        if not self._closed:
            self.flush()
            self._file.close()
            self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001  (interpreter shutdown)
            pass



from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.summary")  # PEP 562: a missing name says so
