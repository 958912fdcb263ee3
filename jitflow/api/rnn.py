"""TF 1.x recurrent drivers: tf.nn.static_rnn, tf.nn.static_bidirectional_rnn, tf.nn.dynamic_rnn and
tf.nn.bidirectional_dynamic_rnn.

The static ones unroll the cell over a Python list of inputs, as TF does. The dynamic ones are
built as the same unrolled computation when the time dimension is known when the graph is built
(the results, gradients and variable names are TF's: `rnn/<cell>/kernel`). When it is unknown
(`[None, None, depth]` inputs), they build TF's `_dynamic_rnn_loop`: one `tf.while_loop` over time
(a native loop, jitflow/api/control_flow.py) whose body calls the cell once, reading step t of the
inputs from a `tf.TensorArray` and writing its output to another (jitflow/api/tensor_array.py); the
loop is bounded by `maximum_iterations=tf.shape(inputs)[time]`, static once a run is specialized, so
gradients flow through it (jitflow/passes/autodiff_regions.py). Two details of jitflow's loops:
- loop regions are pure, so the cell's variables are created before the loop by one call of the
  cell outside it (its results unused and pruned by Session.run); the call inside the loop reuses
  them, under the same names;
- a DropoutWrapper inside the loop draws its masks for all steps before the loop (one
  random_uniform of [time, batch, size] per dropout site) and uses row t at step t: the same
  distribution as TF's per-step draws.
`parallel_iterations` and `swap_memory` are TF's scheduling / memory hints for its while loop;
they do not change results (the unrolled graph has nothing to tune with them).

With `sequence_length`, steps at or past a row's length output zeros and carry the state of the
row's last valid step (TF's `_rnn_step`), so the final state is the state at each row's length; the
loop stops after max(sequence_length) steps, as TF's.

A plain LSTMCell / BasicLSTMCell over a known number of steps runs as one fused `lstm_block` op
instead of the unrolled cell (jitflow/api/lstm_fast.py: the same variables and results, the input
projection of all steps as one matmul, one native recurrence forward and backward); its `steps` is
static, so an unknown time dimension takes the loop.
"""
from __future__ import annotations

import contextlib
import numbers

from ..errors import UnsupportedError
from ..framework.graph import Tensor, get_default_graph
from ..framework.shapes import TensorShape
from ..ir.types import int32
from ..pytree import flatten, unflatten
from . import lstm_fast
from . import math_ops as m
from .array_ops import concat, expand_dims, shape, stack, transpose, unstack, zeros, zeros_like
from .control_flow import while_loop
from .convert import convert_to_tensor
from .gather_api import gather, reverse_sequence
from .rnn_cells import DropoutWrapper, MultiRNNCell
from .tensor_array import TensorArray
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
    if steps is None and len(dims) != 3:
        raise UnsupportedError(f"{fn}: inputs of rank {len(dims)} (more than one depth dimension) with an unknown "
                               f"time dimension are not supported by jitflow; reshape them to [batch, time, depth]")
    return x, None if steps is None else int(steps)


def dynamic_rnn(cell, inputs, sequence_length=None, initial_state=None, dtype=None, parallel_iterations=None,
                swap_memory=False, time_major=False, scope=None):
    """(outputs [batch, time, output_size] (time-major when time_major), final state), as TF 1.x."""
    x, steps = _time_steps(inputs, time_major, "dynamic_rnn")
    with variable_scope(scope or "rnn"):
        dims = list(x.shape.dims)
        if steps is None and not lstm_fast.eligible_for(cell, dims if time_major else [dims[1], dims[0]] + dims[2:],
                                                        x.dtype):
            # the time dimension is known only at run time: TF's while loop (a plain LSTM cell takes the
            # fused lstm_block below, whose number of steps comes from the specialized shape)
            x_tm = x if time_major else transpose(x, [1, 0, 2])
            outputs, state = _dynamic_loop(cell, x_tm, initial_state, dtype, sequence_length,
                                           parallel_iterations, swap_memory)
            return (outputs if time_major else transpose(outputs, [1, 0, 2])), state
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


def _lengths(sequence_length):
    """sequence_length as an int32 vector (TF casts it so)."""
    lengths = convert_to_tensor(sequence_length)
    if lengths.shape.dims is not None and len(lengths.shape.dims) != 1:
        raise ValueError(f"sequence_length must be a vector of length batch_size, but saw shape: {lengths.shape}")
    if not lengths.dtype.is_integer:
        raise TypeError(f"sequence_length must be an integer vector, got {lengths.dtype.name}")
    return lengths if lengths.dtype == int32 else m.cast(lengths, int32)


def _dropout_wrappers(cell):
    """The DropoutWrappers in `cell` (through wrappers and MultiRNNCell layers)."""
    found, stack_ = [], [cell]
    while stack_:
        c = stack_.pop()
        if isinstance(c, DropoutWrapper):
            found.append(c)
            stack_.append(c._cell)
        elif isinstance(c, MultiRNNCell):
            stack_.extend(c._cells)
    return found


@contextlib.contextmanager
def _premasked_dropout(cell, outer, time_steps, batch, step):
    """While the loop body is traced, each DropoutWrapper of `cell` drops with masks drawn before the
    loop, in `outer`: one random_uniform [time, batch, size] per dropout site, row `step[0]` used at
    that step (random ops cannot run inside a loop region)."""
    wrappers = _dropout_wrappers(cell)

    def make(wrapper):
        def dropout(x, keep):
            if isinstance(keep, numbers.Real) and not isinstance(keep, Tensor) and float(keep) == 1.0:
                return x
            dims = x.shape.dims
            if dims is None or len(dims) != 2 or dims[1] is None:
                raise UnsupportedError(f"dynamic_rnn: DropoutWrapper on a value of shape {x.shape} inside the "
                                       f"time loop (jitflow draws [batch, size] masks before the loop)")
            from .random_ops import random_uniform
            with outer.as_default(), outer.name_scope("dropout_masks"):
                keep_t = convert_to_tensor(keep, dtype=x.dtype)
                noise = random_uniform([time_steps, batch if dims[0] is None else dims[0], dims[1]],
                                       dtype=x.dtype, seed=wrapper._seed)
            mask = m.cast(m.less(gather(noise, step[0]), keep_t), x.dtype)
            out = m.multiply(m.truediv(x, keep_t), mask)
            out.set_shape(x.shape)
            return out
        return dropout

    saved = [w.__dict__.get("_dropout") for w in wrappers]
    for w in wrappers:
        w._dropout = make(w)
    try:
        yield
    finally:
        for w, old in zip(wrappers, saved):
            if old is None:
                del w._dropout
            else:
                w._dropout = old


def _dynamic_loop(cell, x_tm, initial_state, dtype, sequence_length, parallel_iterations, swap_memory):
    """TF's `_dynamic_rnn_loop`: (outputs [time, batch, output_size], final state) of `cell` over
    time-major `x_tm` whose time dimension is unknown when the graph is built; one tf.while_loop."""
    graph = get_default_graph()
    dims = x_tm.shape.dims
    if dims[2] is None:
        raise ValueError(f"dynamic_rnn: the depth of inputs must be known when the graph is built, got shape "
                         f"{x_tm.shape}")
    time_steps = shape(x_tm)[0]
    batch = dims[1] if dims[1] is not None else shape(x_tm)[1]
    if initial_state is not None:
        state = initial_state
    else:
        if dtype is None:
            raise ValueError("If no initial_state is provided, dtype must be specified")
        state = cell.zero_state(batch, dtype)
    state_leaves, state_tree = flatten(state)
    state_leaves = [convert_to_tensor(v) for v in state_leaves]
    state = unflatten(state_tree, state_leaves)
    with graph.name_scope("cell_probe"):     # creates the cell's variables outside the loop (see docstring)
        probe, probe_state = cell(zeros([batch, dims[2]], dtype=x_tm.dtype), state)
    out_leaves, _ = flatten(probe)
    if len(out_leaves) != 1:
        raise UnsupportedError("dynamic_rnn: cells with nested outputs are not supported")
    probe = convert_to_tensor(out_leaves[0])
    if probe.shape.dims is None or len(probe.shape.dims) != 2 or probe.shape.dims[1] is None:
        raise UnsupportedError(f"dynamic_rnn: the cell's output must be [batch, units] with known units, got "
                               f"{probe.shape}")
    if len(flatten(probe_state)[0]) != len(state_leaves):
        raise ValueError(f"dynamic_rnn: the cell returned a state of {len(flatten(probe_state)[0])} tensors for an "
                         f"initial state of {len(state_leaves)}")
    units = probe.shape.dims[1]
    lengths = None
    loop_bound = time_steps
    if sequence_length is not None:
        seq = _lengths(sequence_length)
        lengths = expand_dims(seq, 1)
        loop_bound = m.minimum(time_steps, m.maximum(1, m.reduce_max(seq)))    # TF stops at the longest row
    inputs_ta = TensorArray(x_tm.dtype, size=time_steps, tensor_array_name="dynamic_rnn_input").unstack(x_tm)
    output_ta = TensorArray(probe.dtype, size=time_steps, tensor_array_name="dynamic_rnn_output").unstack(
        zeros([time_steps, batch, units], dtype=probe.dtype))
    step = [None]

    def body(time, out_ta, state):
        step[0] = time
        output, new_state = cell(inputs_ta.read(time), state)
        output = convert_to_tensor(flatten(output)[0][0])
        if lengths is not None:
            valid = m.less(time, lengths)
            output = m.where(valid, output, zeros_like(output))
            new_state = _select_rows(valid, new_state, state)
        return time + 1, out_ta.write(time, output), unflatten(state_tree, flatten(new_state)[0])

    invariants = [TensorShape([]), TensorShape([None, batch if isinstance(batch, int) else None, units])] + \
        [TensorShape(v.shape.dims) for v in state_leaves]
    with _premasked_dropout(cell, graph, time_steps, batch, step):
        _, output_ta, state = while_loop(
            lambda time, out_ta, state: m.less(time, loop_bound), body,
            (convert_to_tensor(0, dtype=int32), output_ta, state), shape_invariants=invariants,
            parallel_iterations=parallel_iterations or 32, swap_memory=swap_memory,
            maximum_iterations=time_steps, name="while")
    outputs = output_ta.stack()
    outputs.set_shape([None, dims[1], units])
    return outputs, state


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

