"""TF 1.x recurrent drivers: tf.nn.static_rnn, tf.nn.static_bidirectional_rnn, tf.nn.dynamic_rnn and
tf.nn.bidirectional_dynamic_rnn.

The static ones unroll the cell over a Python list of inputs, as TF does. The dynamic ones are
built here as the same unrolled computation when the time dimension is known when the graph is
built (the results, gradients and variable names are TF's: `rnn/<cell>/kernel`); they will move onto
the IR loop construct when it exists, and an unknown time dimension raises UnsupportedError until
then. `parallel_iterations` and `swap_memory` are TF's scheduling / memory hints for its while
loop; they do not change results and an unrolled graph has nothing to tune with them.

With `sequence_length`, steps at or past a row's length output zeros and carry the state of the
row's last valid step (TF's `_rnn_step`), so the final state is the state at each row's length.

A plain LSTMCell / BasicLSTMCell runs as one fused `lstm_block` op instead of the unrolled cell
(jitflow/api/lstm_fast.py: the same variables and results, the input projection of all steps as
one matmul, one native recurrence forward and backward).
"""
from __future__ import annotations

from ..errors import UnsupportedError
from ..pytree import flatten, unflatten
from . import lstm_fast
from . import math_ops as m
from .array_ops import concat, expand_dims, shape, stack, transpose, unstack, zeros_like
from .convert import convert_to_tensor
from .gather_api import reverse_sequence
from .variable_scope import variable_scope


def _batch_size(x):
    dims = x.shape.dims
    return dims[0] if dims and dims[0] is not None else shape(x)[0]


def _initial_state(cell, initial_state, first_input, dtype):
    if initial_state is not None:
        return initial_state
    if dtype is None:
        raise ValueError("If no initial_state is provided, dtype must be specified")
    return cell.zero_state(_batch_size(first_input), dtype)


def _select_rows(valid, new, old):
    """Row b of `new` where valid[b] ([batch, 1] bool), else row b of `old` (nested structures)."""
    new_leaves, treedef = flatten(new)
    old_leaves, _ = flatten(old)
    return unflatten(treedef, [m.where(valid, n, o) for n, o in zip(new_leaves, old_leaves)])


def _unroll(cell, inputs, state, sequence_length):
    """(outputs, final state) of the cell applied step by step (variables shared after step 0)."""
    outputs = []
    if sequence_length is not None:
        sequence_length = convert_to_tensor(sequence_length)
        if sequence_length.shape.dims is not None and len(sequence_length.shape.dims) != 1:
            raise ValueError(f"sequence_length must be a vector of length batch_size, but saw shape: "
                             f"{sequence_length.shape}")
        lengths = expand_dims(sequence_length, 1)
    for time, x in enumerate(inputs):
        output, new_state = cell(x, state)
        if sequence_length is not None:
            valid = m.less(convert_to_tensor(time, dtype=lengths.dtype), lengths)
            output = m.where(valid, output, zeros_like(output))
            new_state = _select_rows(valid, new_state, state)
        outputs.append(output)
        state = new_state
    return outputs, state


def static_rnn(cell, inputs, initial_state=None, dtype=None, sequence_length=None, scope=None):
    """Unrolls `cell` over the list `inputs` ([batch, depth] each): (list of outputs, final state)."""
    if not isinstance(inputs, (list, tuple)):
        raise TypeError("inputs must be a sequence")
    if not inputs:
        raise ValueError("inputs must not be empty")
    inputs = [convert_to_tensor(x) for x in inputs]
    with variable_scope(scope or "rnn"):
        state = _initial_state(cell, initial_state, inputs[0], dtype)
        dims = inputs[0].shape.dims
        if len({x.dtype for x in inputs}) == 1 and all(x.shape.dims is not None and len(x.shape.dims) == 2
                                                        and x.shape.dims[1] == dims[1] for x in inputs) \
                and lstm_fast.eligible_for(cell, [len(inputs)] + list(dims), inputs[0].dtype):
            outputs, state = lstm_fast.run(cell, stack(inputs), state, sequence_length)   # one lstm_block op
            return unstack(outputs, num=len(inputs)), state
        return _unroll(cell, inputs, state, sequence_length)


def _reverse_list(inputs, sequence_length):
    if sequence_length is None:
        return list(reversed(inputs))
    flipped = reverse_sequence(stack(inputs), sequence_length, seq_axis=0, batch_axis=1)
    return unstack(flipped, num=len(inputs))


def static_bidirectional_rnn(cell_fw, cell_bw, inputs, initial_state_fw=None, initial_state_bw=None, dtype=None,
                             sequence_length=None, scope=None):
    """(outputs [fw; bw concatenated per step], final fw state, final bw state); variables under
    `bidirectional_rnn/fw/` and `bidirectional_rnn/bw/`."""
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise TypeError("inputs must be a non-empty sequence")
    with variable_scope(scope or "bidirectional_rnn"):
        with variable_scope("fw") as fw_scope:
            out_fw, state_fw = static_rnn(cell_fw, inputs, initial_state_fw, dtype, sequence_length, scope=fw_scope)
        with variable_scope("bw") as bw_scope:
            reversed_inputs = _reverse_list(list(inputs), sequence_length)
            tmp, state_bw = static_rnn(cell_bw, reversed_inputs, initial_state_bw, dtype, sequence_length,
                                       scope=bw_scope)
        out_bw = _reverse_list(tmp, sequence_length)
        outputs = [concat([fw, bw], 1) for fw, bw in zip(out_fw, out_bw)]
    return outputs, state_fw, state_bw


def _time_steps(inputs, time_major, fn):
    leaves, _ = flatten(inputs)
    x = convert_to_tensor(leaves[0])
    dims = x.shape.dims
    if len(leaves) != 1:
        raise UnsupportedError(f"{fn}: nested inputs (a structure of several tensors) are not supported")
    if dims is None or len(dims) < 3:
        raise ValueError(f"{fn}: inputs must be [batch, time, depth] (or time-major), got shape {x.shape}")
    steps = dims[0 if time_major else 1]
    if steps is None:
        raise UnsupportedError(f"{fn}: the time dimension of inputs {x.name} is unknown when the graph is built "
                               f"(shape {x.shape}); jitflow unrolls the recurrence over a known number of steps "
                               f"until the IR has a loop construct: give the placeholder a fixed time size")
    return x, int(steps)


def dynamic_rnn(cell, inputs, sequence_length=None, initial_state=None, dtype=None, parallel_iterations=None,
                swap_memory=False, time_major=False, scope=None):
    """(outputs [batch, time, output_size] (time-major when time_major), final state), as TF 1.x."""
    x, steps = _time_steps(inputs, time_major, "dynamic_rnn")
    with variable_scope(scope or "rnn"):
        dims = list(x.shape.dims)
        if lstm_fast.eligible_for(cell, dims if time_major or len(dims) != 3 else [dims[1], dims[0]] + dims[2:],
                                  x.dtype):      # one fused lstm_block op (jitflow/api/lstm_fast.py)
            x_tm = x if time_major else transpose(x, [1, 0, 2])
            batch = x_tm.shape.dims[1] if x_tm.shape.dims[1] is not None else shape(x_tm)[1]
            state = initial_state
            if state is None:
                if dtype is None:
                    raise ValueError("If no initial_state is provided, dtype must be specified")
                state = cell.zero_state(batch, dtype)
            outputs, state = lstm_fast.run(cell, x_tm, state, sequence_length)
            return (outputs if time_major else transpose(outputs, [1, 0, 2])), state
        steps_list = unstack(x, num=steps, axis=0 if time_major else 1)
        state = _initial_state(cell, initial_state, steps_list[0], dtype)
        outputs, state = _unroll(cell, steps_list, state, sequence_length)
        out_leaves, treedef = flatten(outputs[0])
        if len(out_leaves) != 1:
            raise UnsupportedError("dynamic_rnn: cells with nested outputs are not supported")
        return stack(outputs, axis=0 if time_major else 1), state


def bidirectional_dynamic_rnn(cell_fw, cell_bw, inputs, sequence_length=None, initial_state_fw=None,
                              initial_state_bw=None, dtype=None, parallel_iterations=None, swap_memory=False,
                              time_major=False, scope=None):
    """((output_fw, output_bw), (state_fw, state_bw)); variables under `bidirectional_rnn/fw|bw/`."""
    x, _ = _time_steps(inputs, time_major, "bidirectional_dynamic_rnn")
    time_axis, batch_axis = (0, 1) if time_major else (1, 0)

    def reverse(t):
        if sequence_length is None:
            from .array_extra import reverse as flip
            return flip(t, [time_axis])
        return reverse_sequence(t, sequence_length, seq_axis=time_axis, batch_axis=batch_axis)

    with variable_scope(scope or "bidirectional_rnn"):
        with variable_scope("fw") as fw_scope:
            out_fw, state_fw = dynamic_rnn(cell_fw, x, sequence_length, initial_state_fw, dtype,
                                           time_major=time_major, scope=fw_scope)
        with variable_scope("bw") as bw_scope:
            tmp, state_bw = dynamic_rnn(cell_bw, reverse(x), sequence_length, initial_state_bw, dtype,
                                        time_major=time_major, scope=bw_scope)
        out_bw = reverse(tmp)
    return (out_fw, out_bw), (state_fw, state_bw)

