"""The Keras `Layer` base class: naming, weights (graph Variables created by
`add_weight` in the owning model's graph), regularization penalties, the
updates a training call produces (BatchNormalization's moving statistics),
and `get_config`/`from_config` for saving.

A layer builds its Variables once, under the absolute name scope
`<layer name>/` (so a Dense layer named "dense" owns "dense/kernel" and
"dense/bias"); every call (the training forward and the inference forward)
reads the same Variables.
"""
from __future__ import annotations

import collections
import re

import numpy as np

from ..api.variables import Variable
from ..ir.types import float32
from . import initializers, regularizers

_name_counts: collections.Counter = collections.Counter()


def unique_name(base: str) -> str:
    """'dense', 'dense_1', 'dense_2', ... (reset by keras.backend.clear_session())."""
    count = _name_counts[base]
    _name_counts[base] += 1
    return base if count == 0 else f"{base}_{count}"


def snake_case(name: str) -> str:
    """Keras' to_snake_case: 'BatchNormalization' -> 'batch_normalization', 'Conv2D' -> 'conv2d',
    'GlobalAveragePooling2D' -> 'global_average_pooling2d', 'SimpleRNN' -> 'simple_rnn'."""
    intermediate = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    snake = re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()
    return snake if snake[0] != "_" else "private" + snake


def _shape_tuple(shape):
    if shape is None:
        return None
    if isinstance(shape, int):
        return (shape,)
    return tuple(None if d is None else int(d) for d in shape)


class Layer:
    def __init__(self, trainable=True, name=None, dtype=None, input_shape=None, batch_input_shape=None,
                 input_dim=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: keyword argument not understood: {', '.join(kwargs)}")
        if dtype not in (None, "float32", float32):
            raise TypeError(f"{type(self).__name__}: jitflow.keras layers compute in float32, got dtype={dtype!r}")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.trainable = bool(trainable)
        self.built = False
        self._weights: list[tuple[str, Variable, bool]] = []
        self.losses: list = []            # regularization penalties (scalar tensors)
        self.updates: list = []           # assign ops of the latest training call
        self._engine = None               # the owning model's graph + session, set when the model builds
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (None,) + _shape_tuple(input_shape)
        self._batch_input_shape = _shape_tuple(batch_input_shape)
        self.input_shape = self.output_shape = None

    # --- to override
    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=False):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # --- weights
    def add_weight(self, name, shape, initializer="zeros", regularizer=None, trainable=True):
        init = initializers.get(initializer)
        shape = tuple(int(d) for d in shape)
        var = Variable(lambda: init(shape, float32), name=name, trainable=trainable)
        self._weights.append((name, var, trainable))
        regularizer = regularizers.get(regularizer)
        if regularizer is not None:
            graph = var.graph
            with graph.name_scope(name + "_regularizer"):
                self.losses.append(regularizer(var.value()))
        return var

    @property
    def weights(self) -> list:
        return [v for _, v, _ in self._weights]

    @property
    def trainable_weights(self) -> list:
        return [v for _, v, t in self._weights if t and self.trainable]

    @property
    def non_trainable_weights(self) -> list:
        return [v for _, v, t in self._weights if not (t and self.trainable)]

    def named_weights(self):
        """[(key, Variable)] with keys '<layer name>/<weight name>' (the saved names)."""
        return [(f"{self.name}/{short}", v) for short, v, _ in self._weights]

    def count_params(self) -> int:
        return int(sum(np.prod(v.shape.as_list(), dtype=np.int64) for v in self.weights))

    def get_weights(self) -> list:
        if not self._weights:
            return []
        self._need_engine()
        return self._engine.read(self.weights)

    def set_weights(self, weights):
        weights = list(weights)
        if len(weights) != len(self._weights):
            raise ValueError(f"Layer {self.name} expects {len(self._weights)} weights, got {len(weights)}")
        self._need_engine()
        for (short, var, _), value in zip(self._weights, weights):
            value = np.asarray(value, np.float32)
            if tuple(value.shape) != tuple(var.shape.as_list()):
                raise ValueError(f"Layer {self.name} weight '{short}' has shape {tuple(var.shape.as_list())}, "
                                 f"got a value of shape {value.shape}")
            self._engine.load(var, value)

    def _need_engine(self):
        if self._engine is None:
            raise ValueError(f"Layer {self.name} has no weights yet: it is built when its model is built "
                             f"(give the first layer input_shape=..., or call fit/predict/build).")

    # --- graph building (called by the model, inside its graph)
    def _call_in_graph(self, inputs, training):
        graph = inputs.graph
        shape = tuple(inputs.shape.dims)
        if not self.built:
            with graph.name_scope(self.name + "/"):
                self.build(shape)
            self.built = True
            self.input_shape = shape
        with graph.name_scope(self.name + "/"):
            outputs = self.call(inputs, training=training)
        self.output_shape = tuple(outputs.shape.dims)
        return outputs

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
