"""`tf.nn.rnn_cell` of TF 1.x: RNNCell, BasicRNNCell, BasicLSTMCell, LSTMCell, GRUCell, MultiRNNCell,
DropoutWrapper and LSTMStateTuple, with TF's variable names and math.

A cell captures its variable scope on its first call (the enclosing scope plus its own name:
`rnn/basic_lstm_cell`, or exactly the `scope` argument when one is given) and reopens it with
reuse on later calls, so unrolling a cell over time shares one set of variables:

| cell          | variables (under the cell's scope)                          | math (TF 1.15)                     |
| ------------- | ----------------------------------------------------------- | ---------------------------------- |
| BasicRNNCell  | kernel [in+n, n], bias [n]                                  | h = act(W[x,h] + b)                |
| BasicLSTMCell | kernel [in+n, 4n], bias [4n]                                | i, j, f, o = split(W[x,h] + b);    |
|               |                                                             | c = c*sig(f+forget_bias)+sig(i)*act(j); h = act(c)*sig(o) |
| LSTMCell      | as BasicLSTMCell; w_f_diag, w_i_diag, w_o_diag (peepholes); | + peepholes, cell_clip,            |
|               | projection/kernel [n, num_proj]                             | num_proj, proj_clip                |
| GRUCell       | gates/kernel [in+n, 2n], gates/bias (1.0), candidate/kernel | r, u = sig(...); c = act(W[x,r*h]);|
|               | [in+n, n], candidate/bias (0.0)                             | h = u*h + (1-u)*c                  |
"""
from __future__ import annotations

import collections
import contextlib
import numbers

from ..errors import UnsupportedError
from ..framework.graph import Tensor, get_default_graph
from ..pytree import flatten, unflatten
from . import math_ops as m
from .array_extra import split
from .array_ops import concat, shape, zeros
from .clip_ops import clip_by_value
from .convert import convert_to_tensor
from .init_ops import constant_initializer, zeros_initializer
from .core_layers import _activation
from .variable_scope import get_variable, variable_scope


class LSTMStateTuple(collections.namedtuple("LSTMStateTuple", ("c", "h"))):
    """(c, h): the LSTM cell state and the hidden state / output."""
    __slots__ = ()

    @property
    def dtype(self):
        c, h = self
        if c.dtype != h.dtype:
            raise TypeError(f"Inconsistent internal state: {c.dtype} vs {h.dtype}")
        return c.dtype


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class RNNCell:
    """The TF 1.x cell interface: `output, new_state = cell(inputs, state)`, `state_size`,
    `output_size`, `zero_state(batch_size, dtype)`; variables live in the captured scope."""

    def __init__(self, trainable=True, name=None, dtype=None, _reuse=None):
        self.trainable = trainable
        self.name = name
        self.dtype = dtype
        self._reuse = _reuse
        self._scope = None
        self._variables: list = []
        self.built = False

    @property
    def state_size(self):
        raise UnsupportedError(f"{type(self).__name__} does not define state_size")

    @property
    def output_size(self):
        raise UnsupportedError(f"{type(self).__name__} does not define output_size")

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, state):
        raise UnsupportedError(f"{type(self).__name__} does not define call")

    def add_variable(self, name, shape, dtype=None, initializer=None, trainable=True):
        var = get_variable(name, shape=shape, dtype=dtype or self.dtype, initializer=initializer,
                           trainable=trainable and self.trainable)
        if all(v is not var for v in self._variables):
            self._variables.append(var)
        return var

    add_weight = add_variable

    @property
    def variables(self):
        return list(self._variables)

    weights = variables
    trainable_variables = trainable_weights = variables

    def __call__(self, inputs, state, scope=None):
        inputs = convert_to_tensor(inputs)
        with self._built_scope(inputs.shape, inputs.dtype, scope):
            return self.call(inputs, state)

    @contextlib.contextmanager
    def _built_scope(self, input_shape, dtype, scope=None):
        """Inside the cell's variable scope (captured on first use), its variables built for
        `input_shape`: what a call runs in (also the fused LSTM path, jitflow/api/lstm_fast.py)."""
        if self._scope is None:
            if scope is not None:
                cm = variable_scope(scope, reuse=self._reuse)
            else:
                cm = variable_scope(self.name, default_name=_snake(type(self).__name__), reuse=self._reuse)
        else:
            cm = variable_scope(self._scope, reuse=True)
        with cm as captured:
            if self._scope is None:
                self._scope = captured
                self.name = self.name or captured.name.rsplit("/", 1)[-1]
            if self.dtype is None:
                self.dtype = dtype
            if not self.built:
                self.build(input_shape)
                self.built = True
            yield captured

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
        if inputs is not None:
            inputs = convert_to_tensor(inputs)
            dims = inputs.shape.dims
            batch_size = dims[0] if dims and dims[0] is not None else shape(inputs)[0]
            dtype = dtype or inputs.dtype
        return self.zero_state(batch_size, dtype)

    def zero_state(self, batch_size, dtype):
        """Zeros of shape [batch_size, size] for every size in state_size (a nested structure)."""
        leaves, treedef = flatten(self.state_size)
        with get_default_graph().name_scope(type(self).__name__ + "ZeroState"):
            return unflatten(treedef, [zeros([batch_size, int(s)], dtype=dtype) for s in leaves])


def _input_depth(input_shape, cell):
    dims = input_shape.dims
    if dims is None or dims[-1] is None:
        raise ValueError(f"Expected inputs.shape[-1] to be known, saw shape: {input_shape} ({cell})")
    return int(dims[-1])


class LayerRNNCell(RNNCell):
    pass


class BasicRNNCell(LayerRNNCell):
    def __init__(self, num_units, activation=None, reuse=None, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, _reuse=reuse, **kwargs)
        self._num_units = int(num_units)
        self._activation = _activation(activation) or m.tanh

    state_size = property(lambda self: self._num_units)
    output_size = property(lambda self: self._num_units)

    def build(self, input_shape):
        depth = _input_depth(input_shape, "BasicRNNCell")
        self._kernel = self.add_variable("kernel", [depth + self._num_units, self._num_units])
        self._bias = self.add_variable("bias", [self._num_units], initializer=zeros_initializer())
        self.built = True

    def call(self, inputs, state):
        gate = m.add(m.matmul(concat([inputs, state], 1), self._kernel), self._bias)
        output = self._activation(gate)
        return output, output


class BasicLSTMCell(LayerRNNCell):
    def __init__(self, num_units, forget_bias=1.0, state_is_tuple=True, activation=None, reuse=None, name=None,
                 dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, _reuse=reuse, **kwargs)
        self._num_units = int(num_units)
        self._forget_bias = float(forget_bias)
        self._state_is_tuple = bool(state_is_tuple)
        self._activation = _activation(activation) or m.tanh

    @property
    def state_size(self):
        n = self._num_units
        return LSTMStateTuple(n, n) if self._state_is_tuple else 2 * n

    output_size = property(lambda self: self._num_units)

    def build(self, input_shape):
        depth = _input_depth(input_shape, "BasicLSTMCell")
        n = self._num_units
        self._kernel = self.add_variable("kernel", [depth + n, 4 * n])
        self._bias = self.add_variable("bias", [4 * n], initializer=zeros_initializer())
        self.built = True

    def call(self, inputs, state):
        if self._state_is_tuple:
            c, h = state
        else:
            c, h = split(state, 2, axis=1)
        gates = m.add(m.matmul(concat([inputs, h], 1), self._kernel), self._bias)
        i, j, f, o = split(gates, 4, axis=1)
        forget = m.add(f, convert_to_tensor(self._forget_bias, dtype=f.dtype))
        new_c = m.add(m.multiply(c, m.sigmoid(forget)), m.multiply(m.sigmoid(i), self._activation(j)))
        new_h = m.multiply(self._activation(new_c), m.sigmoid(o))
        new_state = LSTMStateTuple(new_c, new_h) if self._state_is_tuple else concat([new_c, new_h], 1)
        return new_h, new_state


class LSTMCell(LayerRNNCell):
    def __init__(self, num_units, use_peepholes=False, cell_clip=None, initializer=None, num_proj=None,
                 proj_clip=None, num_unit_shards=None, num_proj_shards=None, forget_bias=1.0, state_is_tuple=True,
                 activation=None, reuse=None, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, _reuse=reuse, **kwargs)
        if num_unit_shards is not None or num_proj_shards is not None:
            raise UnsupportedError("LSTMCell: num_unit_shards / num_proj_shards (deprecated variable sharding) "
                                   "are not supported by jitflow")
        self._num_units = int(num_units)
        self._use_peepholes = bool(use_peepholes)
        self._cell_clip, self._proj_clip = cell_clip, proj_clip
        self._initializer = initializer
        self._num_proj = None if num_proj is None else int(num_proj)
        self._forget_bias = float(forget_bias)
        self._state_is_tuple = bool(state_is_tuple)
        self._activation = _activation(activation) or m.tanh

    @property
    def state_size(self):
        n, p = self._num_units, self._num_proj or self._num_units
        return LSTMStateTuple(n, p) if self._state_is_tuple else n + p

    output_size = property(lambda self: self._num_proj or self._num_units)

    def build(self, input_shape):
        depth = _input_depth(input_shape, "LSTMCell")
        n, h_depth = self._num_units, self._num_proj or self._num_units
        self._kernel = self.add_variable("kernel", [depth + h_depth, 4 * n], initializer=self._initializer)
        self._bias = self.add_variable("bias", [4 * n], initializer=zeros_initializer())
        if self._use_peepholes:
            self._w_f_diag = self.add_variable("w_f_diag", [n], initializer=self._initializer)
            self._w_i_diag = self.add_variable("w_i_diag", [n], initializer=self._initializer)
            self._w_o_diag = self.add_variable("w_o_diag", [n], initializer=self._initializer)
        if self._num_proj is not None:
            self._proj_kernel = self.add_variable("projection/kernel", [n, self._num_proj],
                                                  initializer=self._initializer)
        self.built = True

    def call(self, inputs, state):
        n = self._num_units
        if self._state_is_tuple:
            c_prev, m_prev = state
        else:
            c_prev, m_prev = split(state, [n, self._num_proj or n], axis=1)
        gates = m.add(m.matmul(concat([inputs, m_prev], 1), self._kernel), self._bias)
        i, j, f, o = split(gates, 4, axis=1)
        forget = m.add(f, convert_to_tensor(self._forget_bias, dtype=f.dtype))
        if self._use_peepholes:
            forget = m.add(forget, m.multiply(self._w_f_diag, c_prev))
            i = m.add(i, m.multiply(self._w_i_diag, c_prev))
        c = m.add(m.multiply(m.sigmoid(forget), c_prev), m.multiply(m.sigmoid(i), self._activation(j)))
        if self._cell_clip is not None:
            c = clip_by_value(c, -self._cell_clip, self._cell_clip)
        if self._use_peepholes:
            o = m.add(o, m.multiply(self._w_o_diag, c))
        h = m.multiply(m.sigmoid(o), self._activation(c))
        if self._num_proj is not None:
            h = m.matmul(h, self._proj_kernel)
            if self._proj_clip is not None:
                h = clip_by_value(h, -self._proj_clip, self._proj_clip)
        new_state = LSTMStateTuple(c, h) if self._state_is_tuple else concat([c, h], 1)
        return h, new_state


class GRUCell(LayerRNNCell):
    def __init__(self, num_units, activation=None, reuse=None, kernel_initializer=None, bias_initializer=None,
                 name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, _reuse=reuse, **kwargs)
        self._num_units = int(num_units)
        self._activation = _activation(activation) or m.tanh
        self._kernel_initializer, self._bias_initializer = kernel_initializer, bias_initializer

    state_size = property(lambda self: self._num_units)
    output_size = property(lambda self: self._num_units)

    def build(self, input_shape):
        depth = _input_depth(input_shape, "GRUCell")
        n = self._num_units
        self._gate_kernel = self.add_variable("gates/kernel", [depth + n, 2 * n],
                                              initializer=self._kernel_initializer)
        self._gate_bias = self.add_variable("gates/bias", [2 * n], initializer=self._bias_initializer
                                            or constant_initializer(1.0))
        self._candidate_kernel = self.add_variable("candidate/kernel", [depth + n, n],
                                                   initializer=self._kernel_initializer)
        self._candidate_bias = self.add_variable("candidate/bias", [n], initializer=self._bias_initializer
                                                 or zeros_initializer())
        self.built = True

    def call(self, inputs, state):
        value = m.sigmoid(m.add(m.matmul(concat([inputs, state], 1), self._gate_kernel), self._gate_bias))
        r, u = split(value, 2, axis=1)
        candidate = m.add(m.matmul(concat([inputs, m.multiply(r, state)], 1), self._candidate_kernel),
                          self._candidate_bias)
        c = self._activation(candidate)
        new_h = m.add(m.multiply(u, state), m.multiply(m.subtract(1.0, u), c))
        return new_h, new_h


class MultiRNNCell(RNNCell):
    """Cells stacked in layers; cell k runs under `cell_<k>` of this cell's scope (`multi_rnn_cell`)."""

    def __init__(self, cells, state_is_tuple=True):
        super().__init__()
        if not cells:
            raise ValueError("Must specify at least one cell for MultiRNNCell.")
        if not state_is_tuple:
            raise UnsupportedError("MultiRNNCell: state_is_tuple=False (concatenated states) is not supported "
                                   "by jitflow")
        self._cells = list(cells)

    state_size = property(lambda self: tuple(cell.state_size for cell in self._cells))
    output_size = property(lambda self: self._cells[-1].output_size)

    @property
    def variables(self):
        return [v for cell in self._cells for v in cell.variables]

    weights = trainable_variables = trainable_weights = variables

    def zero_state(self, batch_size, dtype):
        return tuple(cell.zero_state(batch_size, dtype) for cell in self._cells)

    def call(self, inputs, state):
        current, new_states = inputs, []
        for k, cell in enumerate(self._cells):
            with variable_scope(f"cell_{k}"):
                current, new = cell(current, state[k])
            new_states.append(new)
        return current, tuple(new_states)


class DropoutWrapper(RNNCell):
    """Dropout on the inputs, outputs and state of a cell (keep probabilities: floats or scalar tensors).
    Adds no variable scope of its own, so the wrapped cell's variable names are unchanged."""

    def __init__(self, cell, input_keep_prob=1.0, output_keep_prob=1.0, state_keep_prob=1.0,
                 variational_recurrent=False, input_size=None, dtype=None, seed=None,
                 dropout_state_filter_visitor=None):
        super().__init__()
        if variational_recurrent:
            raise UnsupportedError("DropoutWrapper: variational_recurrent=True (one dropout mask for every time "
                                   "step) is not supported by jitflow")
        if dropout_state_filter_visitor is not None:
            raise UnsupportedError("DropoutWrapper: dropout_state_filter_visitor is not supported by jitflow")
        for name, p in (("input_keep_prob", input_keep_prob), ("output_keep_prob", output_keep_prob),
                        ("state_keep_prob", state_keep_prob)):
            if isinstance(p, numbers.Real) and not 0.0 < p <= 1.0:
                raise ValueError(f"Parameter {name} must be between 0 and 1: {p}")
        self._cell = cell
        self._input_keep_prob, self._output_keep_prob = input_keep_prob, output_keep_prob
        self._state_keep_prob, self._seed = state_keep_prob, seed

    state_size = property(lambda self: self._cell.state_size)
    output_size = property(lambda self: self._cell.output_size)
    wrapped_cell = property(lambda self: self._cell)
    variables = weights = trainable_variables = trainable_weights = property(lambda self: self._cell.variables)

    def zero_state(self, batch_size, dtype):
        return self._cell.zero_state(batch_size, dtype)

    def _dropout(self, x, keep):
        if isinstance(keep, numbers.Real) and not isinstance(keep, Tensor) and float(keep) == 1.0:
            return x
        from .nn_ops import dropout
        return dropout(x, keep_prob=keep, seed=self._seed)

    def __call__(self, inputs, state, scope=None):
        inputs = self._dropout(convert_to_tensor(inputs), self._input_keep_prob)
        output, new_state = self._cell(inputs, state, scope=scope)
        if not (isinstance(self._state_keep_prob, numbers.Real) and float(self._state_keep_prob) == 1.0):
            leaves, treedef = flatten(new_state)
            keep_c = isinstance(new_state, LSTMStateTuple)       # TF's default filter: not an LSTM's c
            dropped = [leaf if keep_c and k == 0 else self._dropout(leaf, self._state_keep_prob)
                       for k, leaf in enumerate(leaves)]
            new_state = unflatten(treedef, dropped)
        return self._dropout(output, self._output_keep_prob), new_state


__all__ = ["RNNCell", "LayerRNNCell", "BasicRNNCell", "BasicLSTMCell", "LSTMCell", "GRUCell", "MultiRNNCell",
           "DropoutWrapper", "LSTMStateTuple"]


def namespace(prefix: str):
    """The cells as a namespace (`tf.nn.rnn_cell`), whose missing names say so."""
    from ..missing_names import Namespace
    return Namespace(prefix, **{name: globals()[name] for name in __all__})
