"""`tf.layers`: dense (with its kernel and bias variables), dropout, flatten."""
from __future__ import annotations

from ..framework.graph import get_default_graph
from . import math_ops as m
from .array_ops import reshape
from .convert import convert_to_tensor
from .init_ops import glorot_uniform_initializer, zeros_initializer
from .variables import Variable


def _activation(fn):
    if fn is None or callable(fn):
        return fn
    from . import nn_ops
    return {"relu": m.relu, "sigmoid": m.sigmoid, "tanh": m.tanh, "softmax": nn_ops.softmax}[fn]


def dense(inputs, units, activation=None, use_bias=True, kernel_initializer=None, bias_initializer=None,
          kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
          bias_constraint=None, trainable=True, name=None, reuse=None):
    """inputs @ kernel + bias, then activation; variables `<name>/kernel` and `<name>/bias`."""
    x = convert_to_tensor(inputs)
    in_dim = x.shape.dims[-1] if x.shape.dims is not None else None
    if in_dim is None:
        raise ValueError(f"The last dimension of the inputs to `dense` should be defined. Found `None`: {x}")
    graph = get_default_graph()
    with graph.name_scope(name or "dense"):
        kernel_init = kernel_initializer or glorot_uniform_initializer()
        kernel = Variable(lambda: kernel_init((in_dim, int(units)), x.dtype), name="kernel", trainable=trainable)
        outputs = m.matmul(x, kernel, name="MatMul") if len(x.shape.dims) == 2 else \
            reshape(m.matmul(reshape(x, [-1, in_dim]), kernel), list(x.shape.dims[:-1]) + [int(units)])
        if use_bias:
            bias_init = bias_initializer or zeros_initializer()
            bias = Variable(lambda: bias_init((int(units),), x.dtype), name="bias", trainable=trainable)
            outputs = m.add(outputs, bias, name="BiasAdd")
        act = _activation(activation)
        if act is not None:
            outputs = act(outputs)
        return outputs


def flatten(inputs, name=None):
    x = convert_to_tensor(inputs)
    dims = x.shape.dims
    size = 1
    for d in dims[1:]:
        size *= d
    return reshape(x, [-1, size], name=name or "flatten")


def dropout(inputs, rate=0.5, noise_shape=None, seed=None, training=False, name=None):
    if not training:
        return convert_to_tensor(inputs)
    from .nn_ops import dropout as nn_dropout
    return nn_dropout(inputs, rate=rate, seed=seed, name=name)
