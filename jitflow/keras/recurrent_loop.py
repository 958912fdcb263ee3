"""The Keras recurrent layers (jitflow/keras/recurrent.py) over a time dimension known only at run time:
one `tf.while_loop` over time whose body calls the layer's `step` once.

Built like tf.nn.dynamic_rnn's loop (jitflow/api/rnn.py `_dynamic_loop`), with what Keras layers make
simpler: their weights exist before the loop (created in build()), and their variable reads are hoisted
out of the loop region. Before the loop, in the layer's graph:
- the inputs go time-major ([time, batch, depth]; reversed in time for go_backwards);
- the input projections of all steps (x_t @ kernel + input bias) are one matrix product, with the
  input dropout masks applied when there are some;
- the dropout masks themselves are drawn (random ops cannot run inside a loop region). Keras
  (implementation 1) draws one [batch, size] mask per gate for the whole sequence and uses it at every
  step, so drawing them before the loop is exactly Keras's semantics (and the unrolled path's).
The loop reads step t of the projections from a `tf.TensorArray`, writes the step's output into another
one (when the sequence is returned) and carries the states and the last output; its trip count is
`maximum_iterations=tf.shape(inputs)[1]`, static once a run is specialized, so gradients flow through it
(jitflow/passes/autodiff_regions.py). The results equal the unrolled path's for the same weights.
"""
from __future__ import annotations

from ..api import math_ops as m
from ..api.array_extra import reverse, split
from ..api.array_ops import concat, reshape, shape, transpose, zeros
from ..api.control_flow import while_loop
from ..api.convert import convert_to_tensor
from ..api.tensor_array import TensorArray
from ..framework.shapes import TensorShape
from ..ir.types import int32


def _projections(layer, x_tm, batch, depth, masks):
    """[time, batch, G*units]: x_t @ kernel (+ input bias) for every step, computed before the loop."""
    width = layer.gates * layer.units
    if masks is None:
        flat = m.matmul(reshape(x_tm, [-1, depth]), layer.kernel)
    else:      # one mask per gate, the same at every step: [time, batch, depth] * [batch, depth]
        kernels = split(layer.kernel, layer.gates, axis=1)
        flat = concat([m.matmul(reshape(m.multiply(x_tm, mask), [-1, depth]), k)
                       for mask, k in zip(masks, kernels)], 1)
    bias = layer.input_bias()
    if bias is not None:
        flat = m.add(flat, bias)
    return reshape(flat, [-1, batch, width])


def dynamic_call(layer, inputs, training, initial_state):
    """`layer.call` for inputs [batch, None, depth]: the same outputs (and states) as the unrolled path."""
    if layer.unroll:
        raise ValueError("Cannot unroll a RNN if the time dimension is undefined. \n- If using a Sequential model, "
                         "specify the time dimension by passing an `input_shape` or `batch_input_shape` argument "
                         "to your first layer. If your first layer is an Embedding, you can also use the "
                         "`input_length` argument.\n- If using the functional API, specify the time dimension by "
                         "passing a `shape` or `batch_shape` argument to your Input layer.")
    dims = inputs.shape.dims
    depth = int(dims[2])
    batch = dims[0] if dims[0] is not None else shape(inputs)[0]
    x_tm = transpose(inputs, [1, 0, 2])
    if layer.go_backwards:
        x_tm = reverse(x_tm, [0])
    time_steps = shape(x_tm)[0]
    masks = layer._masks(zeros([batch, depth], dtype=inputs.dtype), layer.dropout, training)
    states = list(initial_state) if initial_state is not None else layer.initial_states(inputs)
    if len(states) != layer.state_count:
        raise ValueError(f"{layer.name}: expected {layer.state_count} initial state tensors, got {len(states)}")
    states = [convert_to_tensor(s, dtype=inputs.dtype) for s in states]
    recurrent_masks = layer._masks(states[0], layer.recurrent_dropout, training)
    projections = _projections(layer, x_tm, batch, depth, masks)
    inputs_ta = TensorArray(projections.dtype, size=time_steps, tensor_array_name="projections").unstack(projections)
    units = layer.units
    keep = layer.return_sequences
    output_ta = TensorArray(inputs.dtype, size=time_steps, tensor_array_name="outputs").unstack(
        zeros([time_steps, batch, units], dtype=inputs.dtype)) if keep else None

    def step(time, states):
        output, new_states = layer.step(inputs_ta.read(time), list(states), recurrent_masks)
        return output, [reshape(s, [-1, units]) if s.shape.dims is None else s for s in new_states]

    static_batch = batch if isinstance(batch, int) else None
    invariants = [TensorShape([static_batch, units])] + [TensorShape(s.shape.dims) for s in states]
    start = convert_to_tensor(0, dtype=int32)
    if keep:
        def body(time, out_ta, states):
            output, states = step(time, states)
            return time + 1, out_ta.write(time, output), states
        _, output_ta, states = while_loop(
            lambda time, *rest: m.less(time, time_steps), body, (start, output_ta, states),
            shape_invariants=[TensorShape([]), TensorShape([None, static_batch, units])] + invariants[1:],
            maximum_iterations=time_steps, name="while")
        result = transpose(output_ta.stack(), [1, 0, 2])
        result.set_shape([dims[0], None, units])
    else:
        def body(time, last, states):
            output, states = step(time, states)
            return time + 1, output, states
        last = zeros([batch, units], dtype=inputs.dtype)
        _, result, states = while_loop(
            lambda time, *rest: m.less(time, time_steps), body, (start, last, states),
            shape_invariants=[TensorShape([])] + invariants, maximum_iterations=time_steps, name="while")
    states = list(states)
    return [result] + states if layer.return_state else result
