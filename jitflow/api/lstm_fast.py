"""The fused LSTM path of dynamic_rnn / static_rnn (jitflow/api/rnn.py), as TF's LSTMBlockCell and
cuDNN split the work: the whole recurrence as one
`lstm_block` op (per step [x_t, h_{t-1}] @ kernel and the fused gate math; jitflow/ops/lstm_block.py),
whose gradient is one backward-recurrence op plus ONE matmul for the kernel and bias gradients.

Used when the cell is exactly an LSTMCell or BasicLSTMCell computing TF's plain LSTM: no peepholes,
cell_clip, num_proj (LSTMCell), tanh activation, a float32/float64 input of known depth, inputs
[time, batch, depth], and no GPU device scope (the op has no GPU kernel). Anything else takes the
composite path (the cell called step by step), as does everything while `use_fused_lstm(False)` is
in effect or JITFLOW_FUSED_LSTM=0. Variables, their names and the results are the composite path's:
`<scope>/lstm_cell/kernel` [depth + units, 4 units] and `bias`, gates i, j, f, o, forget_bias
added to f; with sequence_length, outputs past a row's length are 0 and its state is carried
through, so the final state is the state at each row's length.
"""
from __future__ import annotations

import contextlib
import os

from ..framework.graph import get_default_graph
from ..ir.types import FLOATS
from ..placement import parse_device
from . import math_ops as m
from .array_extra import slice as slice_
from .array_ops import expand_dims, reshape, shape, transpose
from .convert import convert_to_tensor
from .rnn_cells import BasicLSTMCell, LSTMCell, LSTMStateTuple

_enabled = [os.environ.get("JITFLOW_FUSED_LSTM", "1").strip() != "0"]


@contextlib.contextmanager
def use_fused_lstm(enabled: bool):
    """Within the block, dynamic_rnn/static_rnn take the fused path (True) or never (False)."""
    saved = _enabled[0]
    _enabled[0] = bool(enabled)
    try:
        yield
    finally:
        _enabled[0] = saved


def enabled() -> bool:
    """Whether the fused path may be taken now (use_fused_lstm / JITFLOW_FUSED_LSTM)."""
    return _enabled[0]


def eligible_for(cell, dims, dtype) -> bool:
    """Whether `cell` over time-major inputs of `dims` [T, B, depth] and `dtype` can run as one
    lstm_block (asked before any op is built, so the composite path's graph is unchanged)."""
    if not _enabled[0] or type(cell) not in (LSTMCell, BasicLSTMCell):
        return False
    if type(cell) is LSTMCell and (cell._use_peepholes or cell._cell_clip is not None or cell._num_proj is not None):
        return False
    if cell._activation is not m.tanh:
        return False
    if dims is None or len(dims) != 3 or dims[0] == 0 or dims[2] is None or dtype not in FLOATS:
        return False
    if cell.dtype is not None and cell.dtype != dtype:
        return False
    return _on_cpu()


def _on_cpu() -> bool:
    """No GPU device scope is open (the fused kernels are CPU-only)."""
    stack = getattr(get_default_graph(), "_device_stack", None) or []
    spec = stack[-1] if stack else None
    try:
        return not (spec and parse_device(spec) and parse_device(spec)[0] == "gpu")
    except ValueError:
        return False


def _state_parts(cell, state, n):
    if cell._state_is_tuple:
        c, h = state
        return convert_to_tensor(c), convert_to_tensor(h)
    state = convert_to_tensor(state)
    return slice_(state, [0, 0], [-1, n]), slice_(state, [0, n], [-1, n])


def run(cell, x, state, sequence_length):
    """(outputs [T, B, units] time-major, final state) of `cell` over time-major `x` from `state`;
    call only when `eligible_for(cell, ...)`. Runs inside the caller's variable scope (e.g. `rnn`)."""
    n = cell._num_units
    with cell._built_scope(x.shape[1:], x.dtype):
        kernel, bias = convert_to_tensor(cell._kernel), convert_to_tensor(cell._bias)
        c0, h0 = _state_parts(cell, state, n)
        outputs, c_last, h_last = block(x, kernel, bias, c0, h0, sequence_length, cell._forget_bias)
        if cell._state_is_tuple:
            final = LSTMStateTuple(c_last, h_last)
        else:
            from .array_ops import concat
            final = concat([c_last, h_last], 1)
    return outputs, final


def block(x, kernel, bias, c0, h0, sequence_length=None, forget_bias=1.0, gate_activation="sigmoid"):
    """(outputs [T, B, N], c_T, h_T) of one lstm_block over time-major x [T, B, depth] with the TF-layout
    kernel [depth + N, 4N] (gates i, j, f, o) and bias [4N]."""
    steps, _, depth = x.shape.dims
    n = int(kernel.shape.dims[1]) // 4
    operands = [reshape(x, [-1, depth]) if steps is not None else x, kernel, bias, c0, h0]
    lengths = None
    if sequence_length is not None:
        lengths = convert_to_tensor(sequence_length)
        if lengths.shape.dims is not None and len(lengths.shape.dims) != 1:
            raise ValueError(f"sequence_length must be a vector of length batch_size, but saw shape: "
                             f"{lengths.shape}")
        operands.append(lengths)
    attrs = {"steps": None if steps is None else int(steps), "forget_bias": float(forget_bias),
             "gate_activation": gate_activation}    # steps None: T from x's shape once the run is specialized
    rec = get_default_graph().create_op("lstm_block", operands, attrs, name="lstm_block").outputs[0]
    outputs = slice_(rec, [0, 0, 5 * n], [-1, -1, n])
    if lengths is not None:         # steps at or past a row's length output zeros
        outputs = m.multiply(outputs, _step_mask(lengths, steps if steps is not None else shape(x)[0], x.dtype))
    c_last, h_last = rec[-1, :, 4 * n:5 * n], rec[-1, :, 5 * n:]
    return outputs, c_last, h_last


def _step_mask(lengths, steps, dtype):
    """[T, B, 1] of 1 where t < lengths[b], else 0."""
    from .gather_api import sequence_mask
    mask = sequence_mask(lengths, steps, dtype=dtype)            # [B, T]
    return expand_dims(transpose(mask, [1, 0]), 2)
