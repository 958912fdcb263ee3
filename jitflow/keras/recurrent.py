"""Keras recurrent layers as in tf.keras of TF 1.15: `SimpleRNN`, `LSTM`, `GRU`, built as graphs
unrolled over the time dimension when it is known when the graph is built; when it is known only at
run time (`input_shape=(None, features)`, after an `Embedding` without input_length,
`keras.Input(shape=(None, f))`) as one `tf.while_loop` over time calling the same step function
(jitflow/keras/recurrent_loop.py), with the same results and gradients, so one model runs on
sequences of any length.

Weights (per layer): kernel [input_dim, G*units], recurrent_kernel [units, G*units], bias [G*units]
with gates in Keras order (LSTM: i, f, c, o; GRU: z, r, h). TF 1.15 defaults: LSTM and GRU use
recurrent_activation='hard_sigmoid', GRU reset_after=False, LSTM unit_forget_bias=True (the f
part of the bias starts at 1), recurrent_initializer='orthogonal'. `dropout` / `recurrent_dropout`
draw one mask per gate for the whole sequence, in training only (Keras implementation 1).
Without input dropout the input projections of all steps are one matrix product (with an unknown
time dimension, with dropout too; the masks are drawn before the loop). `unroll=True` with an unknown
time dimension raises Keras's ValueError. An LSTM with
tanh / (hard_)sigmoid activations and no dropout in the call runs as one fused `lstm_block` op
(jitflow/api/lstm_fast.py), with the same weights and results.

A layer can be called on a graph tensor (`LSTM(8, return_state=True)(x)`: [output, *states]) or
sit in a Sequential model (one output: `return_state` is refused there, as Keras refuses several
outputs in a Sequential model). The wrappers (`Embedding`, `Bidirectional`, `TimeDistributed`) are
in jitflow/keras/recurrent_wrappers.py.
"""
from __future__ import annotations

from ..api import math_ops as m
from ..api import nn_ops
from ..api.array_ops import concat, ones, ones_like, reshape, shape, stack, transpose, unstack, zeros
from ..api.array_extra import reverse, split
from ..errors import UnsupportedError
from ..framework.graph import Tensor
from ..ir.types import float32
from . import activations, initializers, recurrent_loop, regularizers
from .base_layer import Layer


def time_steps(inputs, layer):
    dims = inputs.shape.dims
    if dims is None or len(dims) != 3:
        raise ValueError(f"{layer.name}: expected inputs of shape (batch, time, features), got {inputs.shape}")
    if dims[2] is None:
        raise ValueError(f"{layer.name}: the feature dimension of the inputs must be known when the layer is "
                         f"built, got {inputs.shape}")
    return (None if dims[1] is None else int(dims[1])), int(dims[2])


class KerasRecurrentLayer(Layer):
    """What SimpleRNN, LSTM and GRU share: arguments, the unrolled loop, dropout masks, config."""

    gates = 1
    default_recurrent_activation = None

    def __init__(self, units, activation="tanh", recurrent_activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, dropout=0.0,
                 recurrent_dropout=0.0, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, **kwargs):
        super().__init__(**kwargs)
        if stateful:
            raise UnsupportedError(f"{type(self).__name__}: stateful=True (states kept between batches) is not "
                                   f"supported by jitflow")
        self.units = int(units)
        if self.units <= 0:
            raise ValueError(f"{type(self).__name__}: units must be a positive integer, got {units!r}")
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation or self.default_recurrent_activation) \
            if self.gates > 1 else None
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful, self.unroll = bool(go_backwards), False, bool(unroll)   # as Keras: a hint

    # --- weights
    def bias_init(self):
        return self.bias_initializer

    def bias_shape(self):
        return (self.gates * self.units,)

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"{self.name}: the last dimension of its inputs must be known, got {input_shape}")
        width = self.gates * self.units
        self.kernel = self.add_weight("kernel", (input_shape[-1], width), self.kernel_initializer,
                                      self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, width), self.recurrent_initializer,
                                                self.recurrent_regularizer)
        self.bias = self.add_weight("bias", self.bias_shape(), self.bias_init(), self.bias_regularizer) \
            if self.use_bias else None

    # --- the unrolled loop
    def _masks(self, like, rate, training):
        if not training or rate == 0.0:
            return None
        ones = ones_like(like)
        return [nn_ops.dropout(ones, rate=rate) for _ in range(self.gates)]

    def _input_projections(self, inputs, xs, depth, masks):
        """[x_t @ kernel (+ input bias)] for each step ([batch, G*units])."""
        bias = self.input_bias()
        if masks is None:
            flat = m.matmul(reshape(inputs, [-1, depth]), self.kernel)
            if bias is not None:
                flat = m.add(flat, bias)
            return unstack(reshape(flat, [-1, len(xs), self.gates * self.units]), num=len(xs), axis=1)
        kernels = split(self.kernel, self.gates, axis=1)
        out = []
        for x in xs:
            z = concat([m.matmul(m.multiply(x, mask), k) for mask, k in zip(masks, kernels)], 1)
            out.append(z if bias is None else m.add(z, bias))
        return out

    def input_bias(self):
        return self.bias

    def initial_states(self, inputs):
        batch = inputs.shape.dims[0]
        batch = batch if batch is not None else shape(inputs)[0]
        return [zeros([batch, self.units]) for _ in range(self.state_count)]

    state_count = 1

    def call(self, inputs, training=False, initial_state=None):
        steps, depth = time_steps(inputs, self)
        if steps is None:             # known at run time only: one tf.while_loop over time
            return recurrent_loop.dynamic_call(self, inputs, training, initial_state)
        xs = unstack(inputs, num=steps, axis=1)
        masks = self._masks(xs[0], self.dropout, training)
        projections = self._input_projections(inputs, xs, depth, masks)
        states = list(initial_state) if initial_state is not None else self.initial_states(inputs)
        if len(states) != self.state_count:
            raise ValueError(f"{self.name}: expected {self.state_count} initial state tensors, got {len(states)}")
        recurrent_masks = self._masks(states[0], self.recurrent_dropout, training)
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        outputs = []
        for t in order:
            output, states = self.step(projections[t], states, recurrent_masks)
            outputs.append(output)
        result = stack(outputs, axis=1) if self.return_sequences else outputs[-1]
        return [result] + list(states) if self.return_state else result

    def _recurrent(self, h, masks, k=None):
        """h @ recurrent_kernel (gate k only, or all gates), with the recurrent dropout masks."""
        kernels = split(self.recurrent_kernel, self.gates, axis=1) if masks is not None or k is not None else None
        if masks is None:
            return m.matmul(h, self.recurrent_kernel) if k is None else m.matmul(h, kernels[k])
        if k is not None:
            return m.matmul(m.multiply(h, masks[k]), kernels[k])
        return concat([m.matmul(m.multiply(h, mask), kern) for mask, kern in zip(masks, kernels)], 1)

    # --- Keras plumbing
    def __call__(self, inputs, initial_state=None, training=False):
        """Calling the layer on a graph tensor (TF 1.x graph code): builds it in that tensor's graph."""
        if not isinstance(inputs, Tensor):
            raise TypeError(f"{self.name}: call the layer on a graph tensor (tf.placeholder, ...), got {inputs!r}")
        graph = inputs.graph
        if not self.built:
            with graph.name_scope(self.name + "/"):
                self.build(tuple(inputs.shape.dims))
            self.built = True
            self.input_shape = tuple(inputs.shape.dims)
        with graph.name_scope(self.name + "/"):
            return self.call(inputs, training=training, initial_state=initial_state)

    def _call_in_graph(self, inputs, training):
        if self.return_state:
            raise ValueError(f"{self.name}: return_state=True gives several outputs, which a Sequential model "
                             f"cannot pass on; call the layer on a tensor instead")
        return super()._call_in_graph(inputs, training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.units) if self.return_sequences else (input_shape[0], self.units)

    def get_config(self):
        config = dict(super().get_config(), units=self.units, activation=activations.serialize(self.activation),
                      use_bias=self.use_bias,
                      kernel_initializer=initializers.serialize(self.kernel_initializer) or "glorot_uniform",
                      recurrent_initializer=initializers.serialize(self.recurrent_initializer) or "orthogonal",
                      bias_initializer=initializers.serialize(self.bias_initializer) or "zeros",
                      kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                      recurrent_regularizer=regularizers.serialize(self.recurrent_regularizer),
                      bias_regularizer=regularizers.serialize(self.bias_regularizer),
                      dropout=self.dropout, recurrent_dropout=self.recurrent_dropout,
                      return_sequences=self.return_sequences, return_state=self.return_state,
                      go_backwards=self.go_backwards, stateful=False, unroll=self.unroll)
        if self.recurrent_activation is not None:
            config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        return config


class SimpleRNN(KerasRecurrentLayer):
    """h = activation(x W + b + h U)."""

    def __init__(self, units, **kwargs):
        if "recurrent_activation" in kwargs:
            raise TypeError("SimpleRNN: keyword argument not understood: recurrent_activation")
        super().__init__(units, **kwargs)

    def step(self, xw, states, masks):
        h = m.add(xw, self._recurrent(states[0], masks))
        h = self.activation(h)
        return h, [h]


class _ForgetBias:
    """LSTM's unit_forget_bias: zeros, ones for the forget gate, then the bias initializer's values."""

    def __init__(self, units, init):
        self.units, self.init = units, init

    def __call__(self, shape, dtype=None, partition_info=None):
        u, dtype = self.units, dtype or float32
        return concat([self.init((u,), dtype), ones([u], dtype=dtype), self.init((2 * u,), dtype)], 0)


class LSTM(KerasRecurrentLayer):
    """i = ra(x_i + h U_i), f = ra(..), c = f c + i a(x_c + h U_c), o = ra(..), h = o a(c)."""

    gates = 4
    default_recurrent_activation = "hard_sigmoid"
    state_count = 2

    def __init__(self, units, unit_forget_bias=True, implementation=1, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        if implementation not in (1, 2):
            raise ValueError(f"LSTM: implementation must be 1 or 2, got {implementation!r}")
        self.implementation = implementation     # the same math either way (Keras: kernel layout only)

    def bias_init(self):
        return _ForgetBias(self.units, self.bias_initializer) if self.unit_forget_bias else self.bias_initializer

    def call(self, inputs, training=False, initial_state=None):
        fused = self._fused_call(inputs, training, initial_state)
        return fused if fused is not None else super().call(inputs, training, initial_state)

    def _fused_call(self, inputs, training, initial_state):
        """The layer as one fused lstm_block op (jitflow/api/lstm_fast.py) where it computes the same:
        tanh activation, sigmoid or hard_sigmoid recurrent activation, no dropout mask in this call, a
        float [batch, time, depth] input with a known depth, no GPU device scope; None otherwise (the unrolled graph).
        The Keras gate order i, f, c, o becomes the kernel's i, c, f, o by column blocks."""
        from ..api import lstm_fast
        gate = {activations.get("sigmoid"): "sigmoid", activations.get("hard_sigmoid"): "hard_sigmoid"}.get(
            self.recurrent_activation)
        dims = inputs.shape.dims
        if not lstm_fast.enabled() or type(self) is not LSTM or gate is None \
                or self.activation is not activations.get("tanh") or not lstm_fast._on_cpu() \
                or ((self.dropout or self.recurrent_dropout) and training is not False) \
                or dims is None or len(dims) != 3 or dims[1] == 0 or dims[2] is None \
                or not inputs.dtype.is_floating or inputs.dtype != self.kernel.dtype:
            return None       # (an unknown time dimension is fine: lstm_block takes it from the run's shapes)
        states = list(initial_state) if initial_state is not None else self.initial_states(inputs)
        if len(states) != self.state_count:
            raise ValueError(f"{self.name}: expected {self.state_count} initial state tensors, got {len(states)}")
        h0, c0 = states

        def tf_order(w):          # i, f, c, o -> i, c, f, o
            i, f, c, o = split(w, 4, axis=-1)
            return concat([i, c, f, o], -1)
        kernel = concat([tf_order(self.kernel), tf_order(self.recurrent_kernel)], 0)
        bias = tf_order(self.bias) if self.bias is not None else zeros([4 * self.units], dtype=inputs.dtype)
        x = transpose(inputs, [1, 0, 2])
        if self.go_backwards:
            x = reverse(x, [0])
        outputs, c, h = lstm_fast.block(x, kernel, bias, c0, h0, forget_bias=0.0, gate_activation=gate)
        result = transpose(outputs, [1, 0, 2]) if self.return_sequences else h
        return [result, h, c] if self.return_state else result

    def step(self, xw, states, masks):
        h, c = states
        z = m.add(xw, self._recurrent(h, masks))
        zi, zf, zc, zo = split(z, 4, axis=1)
        ra = self.recurrent_activation
        c = m.add(m.multiply(ra(zf), c), m.multiply(ra(zi), self.activation(zc)))
        h = m.multiply(ra(zo), self.activation(c))
        return h, [h, c]

    def get_config(self):
        return dict(super().get_config(), unit_forget_bias=self.unit_forget_bias, implementation=self.implementation)


class GRU(KerasRecurrentLayer):
    """z = ra(x_z + h U_z), r = ra(x_r + h U_r), hh = a(x_h + (r h) U_h) (reset_after: x_h + r (h U_h + b_h)),
    h = z h + (1 - z) hh."""

    gates = 3
    default_recurrent_activation = "hard_sigmoid"

    def __init__(self, units, reset_after=False, implementation=1, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)
        if implementation not in (1, 2):
            raise ValueError(f"GRU: implementation must be 1 or 2, got {implementation!r}")
        self.implementation = implementation

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def input_bias(self):
        if self.bias is None or not self.reset_after:
            return self.bias
        return reshape(split(self.bias, 2, axis=0)[0], [3 * self.units])

    def step(self, xw, states, masks):
        (h,) = states
        ra = self.recurrent_activation
        xz, xr, xh = split(xw, 3, axis=1)
        if self.reset_after:
            inner = self._recurrent(h, masks)
            if self.bias is not None:
                inner = m.add(inner, reshape(split(self.bias, 2, axis=0)[1], [3 * self.units]))
            rz, rr, rh = split(inner, 3, axis=1)
            z, r = ra(m.add(xz, rz)), ra(m.add(xr, rr))
            hh = self.activation(m.add(xh, m.multiply(r, rh)))
        else:
            z = ra(m.add(xz, self._recurrent(h, masks, 0)))
            r = ra(m.add(xr, self._recurrent(h, masks, 1)))
            kernels = split(self.recurrent_kernel, 3, axis=1)
            hr = m.multiply(r, h if masks is None else m.multiply(h, masks[2]))
            hh = self.activation(m.add(xh, m.matmul(hr, kernels[2])))
        h = m.add(m.multiply(z, h), m.multiply(m.subtract(1.0, z), hh))
        return h, [h]

    def get_config(self):
        return dict(super().get_config(), reset_after=self.reset_after, implementation=self.implementation)


LAYER_CLASSES = {cls.__name__: cls for cls in (SimpleRNN, LSTM, GRU)}
