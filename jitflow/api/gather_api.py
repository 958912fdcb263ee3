"""TF 1.x gather-family functions: tf.gather, tf.gather_nd, tf.nn.embedding_lookup (sharded params with
the "mod" and "div" partition strategies, max_norm), tf.scatter_nd, tf.unsorted_segment_sum,
tf.sequence_mask and tf.reverse_sequence.

Indices that are not constants known to be in range go through a `check_index` op
(jitflow/ops/gather_ops.py), so a bad index makes the run raise InvalidArgumentError naming the op
and the index, as TF's CPU kernels do, before any kernel reads with it. Gradients of the gathers are
segment sums: duplicate indices add up.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..framework.graph import Tensor
from ..ir.types import as_dtype, bool_, int32, int64
from . import math_ops as m
from .convert import convert_to_tensor
from .math_ops import _make
from .run_checks import _check_inputs
from .static_args import known_dims as _dims, name_scope as _scope, static_axis as _axis
from .static_args import static_value


def _constant(t):
    return t.op.attrs["value"] if t.op._op == "const" else None


def _checked(indices, hi, op_name, op_type, what="indices", lo=0):
    """indices routed through a check op named '<op_name>/<what>' (hi: an int, or (params, axis)
    when the size is only known once the run is specialized)."""
    graph = indices.graph
    inputs = _check_inputs(graph, indices)          # [indices] or [indices, active] inside tf.cond
    if isinstance(hi, int):
        value = _constant(indices)
        if value is not None and np.all(value < hi) and (lo is None or np.all(value >= lo)):
            return indices
        with graph.name_scope(op_name + "/"):
            return graph.create_op("check_index", inputs, {"hi": hi, "lo": lo, "what": what,
                                                           "op_type": op_type}, name=what).outputs[0]
    params, axis = hi
    with graph.name_scope(op_name + "/"):
        return graph.create_op("checked_indices", [indices, params] + inputs[1:], {"axis": axis, "op_type": op_type},
                               name=what).outputs[0]


def _index_tensor(indices, fn):
    i = convert_to_tensor(indices)
    if i.dtype not in (int32, int64):
        raise TypeError(f"{fn}: indices must be int32 or int64, got {i.dtype.name}")
    _dims(i, fn)
    return i


def gather(params, indices, validate_indices=None, name=None, axis=None, batch_dims=0):
    """params[indices] along axis (batch_dims leading dims shared by params and indices, as TF); an
    out-of-range index raises InvalidArgumentError naming the op and the index (TF's CPU behaviour).
    `validate_indices` is ignored, as in TF (deprecated there)."""
    p = convert_to_tensor(params)
    i = _index_tensor(indices, "gather")
    rank = len(_dims(p, "gather"))
    if batch_dims:
        return _batched_gather(p, i, axis, int(batch_dims), name)
    axis = 0 if axis is None else _axis(axis, rank, "gather")
    graph = p.graph if p.graph is not None else i.graph
    final = graph.unique_name(name or "GatherV2")
    size = p.shape.dims[axis]
    i = _checked(i, int(size) if size is not None else (p, axis), final, "GatherV2")
    return _make("gather", [p, i], {"axis": axis}, name=final + "/")


def _batched_gather(p, i, axis, batch_dims, name):
    """TF's batch_dims: params[b..., ..., indices[b..., ...], ...] for each batch position b: the
    params axis moved next to the batch dims, then a gather_nd with (batch position, index) tuples."""
    rank, index_rank = len(p.shape.dims), len(i.shape.dims)
    b = batch_dims + index_rank if batch_dims < 0 else batch_dims
    if not 0 <= b <= index_rank:
        raise ValueError(f"gather: batch_dims={batch_dims} must be in [-{index_rank}, {index_rank}] for indices "
                         f"of rank {index_rank}")
    axis = b if axis is None else _axis(axis, rank, "gather")
    if axis < b:
        raise ValueError(f"gather: batch_dims={b} must be less than or equal to axis={axis}")
    for k in range(b):
        dp, di = p.shape.dims[k], i.shape.dims[k]
        if dp is not None and di is not None and dp != di:
            raise ValueError(f"gather: params.shape[{k}]={dp} and indices.shape[{k}]={di} must match "
                             f"(batch_dims={b})")
    from .array_ops import transpose
    with _scope(name or "GatherV2"):
        perm = list(range(b)) + [axis] + [k for k in range(b, rank) if k != axis]
        moved = transpose(p, perm) if perm != list(range(rank)) else p
        tuples = _make("batch_index_tuples", [i], {"batch_dims": b})
        out = _make("gather_nd", [moved, tuples])        # [B..., I..., P..., inner...]
        middle = axis - b                                  # the P dims go back in front of the I dims
        if middle == 0:
            return out
        n_i = index_rank - b
        order = list(range(b)) + [b + n_i + k for k in range(middle)] + [b + k for k in range(n_i)]
        order += list(range(b + n_i + middle, len(out.shape.dims)))
        return transpose(out, order)


def gather_nd(params, indices, name=None, batch_dims=0):
    """params[indices[..., 0], ..., indices[..., K-1]] (TF GatherNd); every component is checked against
    its dimension when the run executes."""
    p = convert_to_tensor(params)
    i = _index_tensor(indices, "gather_nd")
    _dims(p, "gather_nd")
    b = int(batch_dims)
    if b:
        index_rank = len(i.shape.dims)
        if not 0 < b < index_rank:
            raise ValueError(f"gather_nd: batch_dims={b} must be in [0, {index_rank - 1}) for indices of rank "
                             f"{index_rank}")
        with _scope(name or "GatherNd"):
            tuples = _make("batch_index_tuples", [i], {"batch_dims": b, "tuples": True})
            return _make("gather_nd", [p, tuples])
    return _make("gather_nd", [p, i], name=name or "GatherNd")


def scatter_nd(indices, updates, shape, name=None):
    """zeros(shape) with updates added at indices (duplicates add up, as TF's ScatterNd)."""
    i = _index_tensor(indices, "scatter_nd")
    u = convert_to_tensor(updates)
    shape = tuple(int(d) for d in static_value(shape, "shape", "scatter_nd").reshape(-1))
    if any(d < 0 for d in shape):
        raise ValueError(f"scatter_nd: shape must be non-negative, got {list(shape)}")
    return _make("scatter_nd", [i, u], {"shape": shape}, name=name or "ScatterNd")


def unsorted_segment_sum(data, segment_ids, num_segments, name=None):
    """Sums of data rows per segment id; negative ids are dropped and an id >= num_segments raises
    InvalidArgumentError when the run executes (TF 1.x CPU)."""
    x = convert_to_tensor(data)
    ids = convert_to_tensor(segment_ids)
    if ids.dtype not in (int32, int64):
        raise TypeError(f"unsorted_segment_sum: segment_ids must be int32 or int64, got {ids.dtype.name}")
    count = int(static_value(num_segments, "num_segments", "unsorted_segment_sum").reshape(()))
    final = x.graph.unique_name(name or "UnsortedSegmentSum")
    ids = _checked(ids, count, final, "UnsortedSegmentSum", what="segment_ids", lo=None)
    return _make("segment_sum", [x, ids], {"axis": 0, "num_segments": count}, name=final + "/")


def _shard_rows(params):
    rows = []
    for k, p in enumerate(params):
        dims = _dims(p, "embedding_lookup")
        if not dims or dims[0] is None:
            raise UnsupportedError(f"embedding_lookup: shard {k} of params needs a known first dimension when "
                                   f"params is a list of several tensors")
        rows.append(int(dims[0]))
    return rows


def _sharded_rows(ids, rows, strategy):
    """The row of the concatenated shards that holds each id (TF's mod / div assignment)."""
    n, total = len(rows), sum(rows)
    offsets = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(ids.dtype.np)
    np_ = convert_to_tensor(n, dtype=ids.dtype)
    if strategy == "mod":
        shard, row = m.floormod(ids, np_), m.floordiv(ids, np_)
    else:
        per, extras = total // n, total % n
        if per == 0:
            raise UnsupportedError(f"embedding_lookup: 'div' with fewer ids ({total}) than shards ({n})")
        c = (lambda v: convert_to_tensor(v, dtype=ids.dtype))
        shard = m.maximum(m.floordiv(ids, c(per + 1)), m.floordiv(m.subtract(ids, c(extras)), c(per)))
        row = m.where(m.less(shard, c(extras)), m.floormod(ids, c(per + 1)),
                      m.floormod(m.subtract(ids, c(extras)), c(per)))
    start = _make("gather", [convert_to_tensor(offsets), shard], {"axis": 0}, name="shard_offset")
    return m.add(start, row)


def embedding_lookup(params, ids, partition_strategy="mod", name=None, validate_indices=True, max_norm=None):
    """Rows of params (one tensor, or a list of shards split by `partition_strategy` as TF) for ids;
    with max_norm each looked-up embedding is clipped to that L2 norm. An id out of range raises
    InvalidArgumentError when the run executes."""
    if partition_strategy not in ("mod", "div"):
        raise ValueError(f"embedding_lookup: unknown partition_strategy {partition_strategy!r}")
    shards = [convert_to_tensor(p) for p in (params if isinstance(params, (list, tuple)) else [params])]
    if not shards:
        raise ValueError("Need at least one param")
    i = _index_tensor(ids, "embedding_lookup")
    if len(shards) == 1 and max_norm is None:
        return gather(shards[0], i, name=name or "embedding_lookup")      # TF names the gather itself so
    with _scope(name or "embedding_lookup"):
        if len(shards) == 1:
            result = gather(shards[0], i)
        else:
            rows = _shard_rows(shards)
            i = _checked(i, sum(rows), i.graph.unique_name("ids"), "GatherV2", what="ids")
            from .array_ops import concat
            table = concat(shards, 0)
            result = gather(table, _sharded_rows(i, rows, partition_strategy))
        if max_norm is not None:
            from .array_extra import clip_by_norm
            id_rank, rank = len(i.shape.dims), len(result.shape.dims)
            result = clip_by_norm(result, max_norm, axes=list(range(id_rank, rank)))
        return result


def sequence_mask(lengths, maxlen=None, dtype=bool_, name=None):
    """mask[..., j] = j < lengths[...] (TF). maxlen=None is max(lengths): known only for constant
    lengths (the result's shape would depend on the data otherwise)."""
    lengths = convert_to_tensor(lengths)
    if lengths.dtype not in (int32, int64):
        raise TypeError(f"sequence_mask: lengths must be int32 or int64, got {lengths.dtype.name}")
    if maxlen is None:
        value = _constant(lengths)
        if value is None:
            raise UnsupportedError("sequence_mask: maxlen=None (the largest of the lengths) makes the result's "
                                   "shape depend on the data; give maxlen")
        maxlen = max(0, int(np.max(value))) if value.size else 0
    if isinstance(maxlen, Tensor) and maxlen.shape.dims is not None and len(maxlen.shape.dims) != 0:
        raise ValueError("maxlen must be scalar for sequence_mask")
    with _scope(name or "SequenceMask"):
        if isinstance(maxlen, Tensor) and maxlen.op._op != "const":   # e.g. tf.shape(x)[1]: known per run
            from .array_ops import range_
            row = range_(m.cast(maxlen, lengths.dtype), name="Range")
        else:
            maxlen = int(static_value(maxlen, "maxlen", "sequence_mask").reshape(()))
            row = lengths.graph.create_op("iota", [], {"shape": (max(maxlen, 0),), "axis": 0,
                                                       "dtype": lengths.dtype}, name="Range").outputs[0]
        from .array_ops import expand_dims
        result = m.less(row, expand_dims(lengths, -1))
        dtype = as_dtype(dtype)
        return result if dtype == bool_ else m.cast(result, dtype)


def reverse_sequence(input, seq_lengths, seq_axis=None, batch_axis=None, name=None, seq_dim=None,  # noqa: A002
                     batch_dim=None):
    """Reverses the first seq_lengths[b] entries along seq_axis of each batch row b (TF); a length
    above the sequence size raises InvalidArgumentError when the run executes."""
    x = convert_to_tensor(input)
    lengths = convert_to_tensor(seq_lengths)
    if lengths.dtype not in (int32, int64):
        raise TypeError(f"reverse_sequence: seq_lengths must be int32 or int64, got {lengths.dtype.name}")
    seq = seq_dim if seq_axis is None else seq_axis
    batch = batch_dim if batch_axis is None else batch_axis
    if seq is None:
        raise ValueError("reverse_sequence: seq_axis must be given")
    rank = len(_dims(x, "reverse_sequence"))
    seq = _axis(seq, rank, "reverse_sequence", "seq_axis")
    batch = _axis(0 if batch is None else batch, rank, "reverse_sequence", "batch_axis")
    return _make("reverse_sequence", [x, lengths], {"seq_axis": seq, "batch_axis": batch},
                 name=name or "ReverseSequence")
