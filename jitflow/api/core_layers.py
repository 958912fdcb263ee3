"""`tf.layers` as in TF 1.x: the layer classes (`Dense`, `Dropout`, `Flatten`, `BatchNormalization`) and
their functional forms (`dense`, `dropout`, `flatten`, `batch_normalization`).

A layer makes its variables with `get_variable` under its own variable scope (the given name, or a unique
default `dense`, `dense_1`, ...), so variable names ignore `name_scope` exactly as TF's do, while the
layer's ops live under the enclosing name scope (`dnn/hidden1/MatMul`). Regularizer losses go to
`GraphKeys.REGULARIZATION_LOSSES`, constraints ride on the variables (optimizers apply them after each
update), and batch-norm moving-average assigns go to `GraphKeys.UPDATE_OPS`. `training` may be a Python
bool or a scalar bool tensor; with a tensor both results are built and one is selected at run time.
"""
from __future__ import annotations

from ..errors import UnsupportedError
from ..framework.graph import GraphKeys, Tensor, get_default_graph
from ..ir.types import bool_
from . import math_ops as m
from .array_ops import reshape, shape as shape_of
from .convert import convert_to_tensor
from .init_ops import ones_initializer, zeros_initializer
from .variable_scope import get_variable, variable_scope
from .variables import Variable


def _activation(fn):
    if fn is None or callable(fn):
        return fn
    from . import nn_ops
    table = {"relu": m.relu, "sigmoid": m.sigmoid, "tanh": m.tanh, "softmax": nn_ops.softmax}
    if fn not in table:
        raise ValueError(f"Unknown activation function: {fn}")
    return table[fn]


def _training_flag(training, what="training"):
    """A Python bool, or a scalar bool tensor selected at run time."""
    if isinstance(training, (bool, int)) and not isinstance(training, Tensor):
        return bool(training)
    if isinstance(training, Variable):
        training = training.value()
    t = convert_to_tensor(training)
    if t.dtype != bool_:
        raise TypeError(f"`{what}` must be a Python bool or a bool tensor, got {t.dtype.name}")
    if t.shape.dims not in (None, ()):
        raise ValueError(f"`{what}` must be a scalar, got shape {t.shape}")
    if t.shape.dims is None:           # tf.placeholder(tf.bool): TF's cond needs a scalar; keeps output shapes
        t = reshape(t, [])
    return t


def _select(flag, when_true, when_false):
    """smart_cond for side-effect-free values: a Python bool picks, a tensor selects at run time."""
    if isinstance(flag, bool):
        return when_true() if flag else when_false()
    return m.where(flag, when_true(), when_false())


class Layer:
    """TF 1.x `tf.layers.Layer`: a variable scope captured on first call and reused afterwards."""

    _base_name = "layer"

    def __init__(self, trainable=True, name=None, dtype=None, _reuse=None, activity_regularizer=None):
        self.trainable = trainable
        self.name = name
        self.dtype = dtype
        self._reuse = _reuse
        self.activity_regularizer = activity_regularizer
        self._scope = None
        self._variables: list[Variable] = []
        self.updates: list = []
        self.losses: list = []
        self.built = False

    # --- variables
    def add_weight(self, name, shape, dtype=None, initializer=None, regularizer=None, trainable=True,
                   constraint=None):
        trainable = trainable and self.trainable
        existing = set(id(v) for v in get_default_graph().get_collection(GraphKeys.REGULARIZATION_LOSSES))
        variable = get_variable(name, shape=shape, dtype=dtype or self.dtype, initializer=initializer,
                                regularizer=regularizer, trainable=trainable, constraint=constraint)
        self.losses += [x for x in get_default_graph().get_collection(GraphKeys.REGULARIZATION_LOSSES)
                        if id(x) not in existing]
        if all(v is not variable for v in self._variables):
            self._variables.append(variable)
        return variable

    add_variable = add_weight

    @property
    def variables(self):
        return list(self._variables)

    weights = variables

    @property
    def trainable_variables(self):
        trainable = {id(v) for v in get_default_graph().get_collection(GraphKeys.TRAINABLE_VARIABLES)}
        return [v for v in self._variables if id(v) in trainable]

    trainable_weights = trainable_variables

    @property
    def non_trainable_variables(self):
        ids = {id(v) for v in self.trainable_variables}
        return [v for v in self._variables if id(v) not in ids]

    non_trainable_weights = non_trainable_variables

    # --- calling
    def build(self, input_shape):
        self.built = True

    def call(self, inputs, **kwargs):
        return inputs

    def __call__(self, inputs, *args, **kwargs):
        graph = get_default_graph()
        if self._scope is None:
            scope_cm = variable_scope(self.name, default_name=self._base_name, reuse=self._reuse)
        else:
            scope_cm = variable_scope(self._scope, reuse=True)
        with scope_cm as scope:
            if self._scope is None:
                self._scope = scope
                if self.name is None:
                    self.name = scope.name.rsplit("/", 1)[-1]
            x = convert_to_tensor(inputs)
            if self.dtype is None:
                self.dtype = x.dtype
            if not self.built:
                self.build(x.shape)
                self.built = True
            outputs = self.call(x, *args, **kwargs)
            if self.activity_regularizer is not None:
                with graph.name_scope("ActivityRegularizer"):
                    penalty = self.activity_regularizer(outputs)
                    if penalty is not None:   # as TF: the penalty is averaged over the batch
                        batch = m.cast(shape_of(outputs)[0], penalty.dtype)
                        penalty = m.truediv(penalty, batch)
                if penalty is not None:
                    self.losses.append(penalty)
                    graph.add_to_collection(GraphKeys.REGULARIZATION_LOSSES, penalty)
        return outputs

    apply = __call__


class Dense(Layer):
    """outputs = activation(inputs @ kernel + bias); variables `<scope>/kernel`, `<scope>/bias`."""

    _base_name = "dense"

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer=zeros_initializer(), kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, trainable=True,
                 name=None, **kwargs):
        super().__init__(trainable=trainable, name=name, activity_regularizer=activity_regularizer,
                         **_layer_kwargs(kwargs))
        self.units = int(units)
        if self.units <= 0:
            raise ValueError(f"Dense: `units` must be positive, got {units}")
        self.activation = _activation(activation)
        self.use_bias = use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.kernel_constraint, self.bias_constraint = kernel_constraint, bias_constraint
        self.kernel = self.bias = None

    def build(self, input_shape):
        dims = input_shape.dims
        if dims is None or dims[-1] is None:
            raise ValueError("The last dimension of the inputs to `Dense` should be defined. Found `None`.")
        self.kernel = self.add_weight("kernel", (int(dims[-1]), self.units), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    def call(self, inputs):
        dims = inputs.shape.dims
        in_dim = int(self.kernel.shape.dims[0])
        if dims is not None and dims[-1] is not None and dims[-1] != in_dim:
            raise ValueError(f"Dense: input last dimension {dims[-1]} does not match the kernel's {in_dim}")
        if dims is not None and len(dims) == 2:
            outputs = m.matmul(inputs, self.kernel, name="MatMul")
        else:
            lead = list(dims[:-1]) if dims is not None else None
            flat = m.matmul(reshape(inputs, [-1, in_dim]), self.kernel, name="MatMul")
            if lead is None or sum(d is None for d in lead) > 1:   # e.g. (batch, time, features): run-time dims
                from .array_ops import concat
                target = concat([shape_of(inputs)[:-1], [self.units]], 0)
                outputs = reshape(flat, target, name="Tensordot")
            else:
                outputs = reshape(flat, [-1 if d is None else d for d in lead] + [self.units], name="Tensordot")
        if self.use_bias:
            outputs = m.add(outputs, self.bias, name="BiasAdd")
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


class Dropout(Layer):
    """Zeroes inputs with probability `rate` (scaling the rest by 1/(1-rate)) when training."""

    _base_name = "dropout"

    def __init__(self, rate=0.5, noise_shape=None, seed=None, name=None, **kwargs):
        super().__init__(name=name, **_layer_kwargs(kwargs))
        self.rate, self.noise_shape, self.seed = rate, noise_shape, seed

    def call(self, inputs, training=False):
        flag = _training_flag(training)
        from .nn_ops import dropout as nn_dropout

        def dropped():
            return nn_dropout(inputs, rate=self.rate, noise_shape=self.noise_shape, seed=self.seed)

        return _select(flag, dropped, lambda: inputs)


class Flatten(Layer):
    """Reshapes to (batch, -1)."""

    _base_name = "flatten"

    def __init__(self, data_format="channels_last", name=None, **kwargs):
        super().__init__(name=name, **_layer_kwargs(kwargs))
        if data_format not in ("channels_last", None):
            raise UnsupportedError(f"tf.layers.flatten data_format={data_format!r} is not supported by jitflow")

    def call(self, inputs):
        dims = inputs.shape.dims
        if dims is None:
            raise UnsupportedError("tf.layers.flatten of a tensor of unknown rank is not supported by jitflow")
        if len(dims) <= 1:
            return reshape(inputs, [-1 if not dims or dims[0] is None else dims[0], 1])
        rest = dims[1:]
        if all(d is not None for d in rest):
            size = 1
            for d in rest:
                size *= d
            return reshape(inputs, [-1, size])
        if dims[0] is not None:
            return reshape(inputs, [dims[0], -1])
        raise UnsupportedError(f"tf.layers.flatten with unknown batch and inner dimensions ({inputs.shape}) "
                               "is not supported by jitflow")


class BatchNormalization(Layer):
    """TF 1.x batch normalization: gamma, beta (trainable), moving_mean, moving_variance (not trainable).
    Training normalizes with the batch moments and adds `moving -= (moving - batch) * (1 - momentum)` to
    UPDATE_OPS; inference uses the moving statistics. `fused` is a performance hint only (accepted as
    None/True/False, same results)."""

    _base_name = "batch_normalization"

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer=zeros_initializer(), gamma_initializer=ones_initializer(),
                 moving_mean_initializer=zeros_initializer(), moving_variance_initializer=ones_initializer(),
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 renorm=False, renorm_clipping=None, renorm_momentum=0.99, fused=None, trainable=True,
                 virtual_batch_size=None, adjustment=None, name=None, **kwargs):
        super().__init__(trainable=trainable, name=name, **_layer_kwargs(kwargs))
        if renorm:
            raise UnsupportedError("batch_normalization(renorm=True) is not supported by jitflow")
        for arg, value in (("renorm_clipping", renorm_clipping), ("virtual_batch_size", virtual_batch_size),
                           ("adjustment", adjustment)):
            if value is not None:
                raise UnsupportedError(f"batch_normalization argument `{arg}` is not supported by jitflow")
        if fused not in (None, True, False):
            raise ValueError(f"batch_normalization: `fused` must be None, True or False, got {fused!r}")
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise UnsupportedError("batch_normalization over several axes is not supported by jitflow")
            axis = axis[0]
        self.axis = int(axis)
        self.momentum, self.epsilon, self.center, self.scale = momentum, epsilon, center, scale
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        self.beta_regularizer, self.gamma_regularizer = beta_regularizer, gamma_regularizer
        self.beta_constraint, self.gamma_constraint = beta_constraint, gamma_constraint
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def build(self, input_shape):
        dims = input_shape.dims
        if dims is None:
            raise ValueError("batch_normalization: inputs must have a known rank")
        rank = len(dims)
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 0 <= axis < rank:
            raise ValueError(f"Invalid axis: {self.axis}")
        if dims[axis] is None:
            raise ValueError(f"Input has undefined `axis` dimension. Input shape: {input_shape}")
        self._rank, self._axis = rank, axis
        size = (int(dims[axis]),)
        if self.scale:
            self.gamma = self.add_weight("gamma", size, initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer, constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight("beta", size, initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer, constraint=self.beta_constraint)
        self.moving_mean = self.add_weight("moving_mean", size, initializer=self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", size,
                                               initializer=self.moving_variance_initializer, trainable=False)
        self.built = True

    def call(self, inputs, training=False):
        flag = _training_flag(training)
        out, updates = batch_norm_core(inputs, self._axis, self.moving_mean, self.moving_variance, self.gamma,
                                       self.beta, self.momentum, self.epsilon, flag)
        graph = get_default_graph()
        for u in updates:
            self.updates.append(u)
            graph.add_to_collection(GraphKeys.UPDATE_OPS, u)
        return out


def batch_norm_core(inputs, axis, moving_mean, moving_variance, gamma, beta, momentum, epsilon, training):
    """The normalization and its moving-average updates (shared with tf.contrib.layers.batch_norm).
    training: Python bool or bool tensor. Returns (outputs, [update tensors])."""
    from .nn_ops import batch_normalization as nn_bn
    from .nn_ops import moments
    graph = get_default_graph()
    rank = len(inputs.shape.dims)
    reduction_axes = [i for i in range(rank) if i != axis]
    size = int(inputs.shape.dims[axis])
    bshape = [1] * rank
    bshape[axis] = size

    def broadcastable(t):
        return t if t is None or axis == rank - 1 else reshape(t, bshape)

    moving_m, moving_v = moving_mean.value(), moving_variance.value()
    if training is False:
        mean, variance = moving_m, moving_v
    else:
        batch_mean, batch_var = moments(inputs, reduction_axes)
        mean = _select(training, lambda: batch_mean, lambda: moving_m)
        variance = _select(training, lambda: batch_var, lambda: moving_v)
    outputs = nn_bn(inputs, broadcastable(mean), broadcastable(variance), broadcastable(beta),
                    broadcastable(gamma), epsilon)
    updates = []
    if training is not False:
        decay = 1.0 - momentum if not isinstance(momentum, Tensor) else m.subtract(1.0, momentum)
        for var, value, name in ((moving_mean, mean, "AssignMovingAvg"),
                                 (moving_variance, variance, "AssignMovingAvg_1")):
            with graph.name_scope(name):
                delta = m.multiply(m.subtract(var.value(), value), m.cast(convert_to_tensor(decay), var.dtype))
                updates.append(var.assign_sub(delta))
    return outputs, updates


def _layer_kwargs(kwargs):
    """The Layer keyword arguments TF also accepts (dtype, _reuse); anything else is an error."""
    allowed = {"dtype", "_reuse"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"Keyword argument not understood: {unknown[0]}")
    return kwargs


# --- functional forms

def dense(inputs, units, activation=None, use_bias=True, kernel_initializer=None,
          bias_initializer=zeros_initializer(), kernel_regularizer=None, bias_regularizer=None,
          activity_regularizer=None, kernel_constraint=None, bias_constraint=None, trainable=True, name=None,
          reuse=None):
    layer = Dense(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                  bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                  bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                  kernel_constraint=kernel_constraint, bias_constraint=bias_constraint, trainable=trainable,
                  name=name, _reuse=reuse)
    return layer(inputs)


def dropout(inputs, rate=0.5, noise_shape=None, seed=None, training=False, name=None):
    return Dropout(rate, noise_shape=noise_shape, seed=seed, name=name)(inputs, training=training)


def flatten(inputs, name=None, data_format="channels_last"):
    return Flatten(data_format=data_format, name=name)(inputs)


def batch_normalization(inputs, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                        beta_initializer=zeros_initializer(), gamma_initializer=ones_initializer(),
                        moving_mean_initializer=zeros_initializer(),
                        moving_variance_initializer=ones_initializer(), beta_regularizer=None,
                        gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, training=False,
                        trainable=True, name=None, reuse=None, renorm=False, renorm_clipping=None,
                        renorm_momentum=0.99, fused=None, virtual_batch_size=None, adjustment=None):
    layer = BatchNormalization(axis=axis, momentum=momentum, epsilon=epsilon, center=center, scale=scale,
                               beta_initializer=beta_initializer, gamma_initializer=gamma_initializer,
                               moving_mean_initializer=moving_mean_initializer,
                               moving_variance_initializer=moving_variance_initializer,
                               beta_regularizer=beta_regularizer, gamma_regularizer=gamma_regularizer,
                               beta_constraint=beta_constraint, gamma_constraint=gamma_constraint,
                               renorm=renorm, renorm_clipping=renorm_clipping, renorm_momentum=renorm_momentum,
                               fused=fused, trainable=trainable, virtual_batch_size=virtual_batch_size,
                               adjustment=adjustment, name=name, _reuse=reuse)
    return layer(inputs, training=training)


# conv1d: jitflow/api/conv1d_layer.py; conv2d, conv2d_transpose, max_pooling2d, average_pooling2d: jitflow/api/conv_layers.py
