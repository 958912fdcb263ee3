"""Keras layers around the recurrent ones (tf.keras of TF 1.15): `Embedding` (token ids -> vectors,
weight `embeddings`; float ids from a Sequential model's input are cast to int32, an id out of range
raises InvalidArgumentError when the run executes), `Bidirectional` (a forward and a go_backwards copy
of a recurrent layer, merged by concat / sum / mul / ave) and `TimeDistributed` (a layer applied to
every time step: the steps are folded into the batch).

A wrapper owns its inner layers' weights under its own name (`bidirectional/forward_lstm/kernel`,
`time_distributed/dense/kernel`), so they are saved, loaded, counted by summary() and trained with it.
"""
from __future__ import annotations

from ..api import math_ops as m
from ..api.array_extra import reverse
from ..api.array_ops import concat, reshape, shape
from ..api.gather_api import gather
from ..errors import UnsupportedError
from ..framework.graph import Tensor, get_default_graph
from ..ir.types import int32, int64
from . import initializers, regularizers
from .base_layer import Layer


class Embedding(Layer):
    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 activity_regularizer=None, embeddings_constraint=None, mask_zero=False, input_length=None,
                 **kwargs):
        for name, value in (("activity_regularizer", activity_regularizer),
                            ("embeddings_constraint", embeddings_constraint)):
            if value is not None:
                raise UnsupportedError(f"Embedding: {name} is not supported by jitflow.keras")
        if mask_zero:
            raise UnsupportedError("Embedding: mask_zero=True needs mask propagation to the next layers, which "
                                   "jitflow.keras does not have; pad with an id the model can learn instead")
        if "input_shape" not in kwargs and "batch_input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,) if input_length else (None,)
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        if self.input_dim <= 0 or self.output_dim <= 0:
            raise ValueError(f"Embedding: input_dim and output_dim must be positive, got {input_dim}, {output_dim}")
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.input_length = input_length
        self.mask_zero = False

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer, self.embeddings_regularizer)

    def call(self, inputs, training=False):
        ids = inputs if inputs.dtype in (int32, int64) else m.cast(inputs, int32)
        return gather(self.embeddings, ids)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        return dict(super().get_config(), input_dim=self.input_dim, output_dim=self.output_dim,
                    embeddings_initializer=initializers.serialize(self.embeddings_initializer) or "uniform",
                    embeddings_regularizer=regularizers.serialize(self.embeddings_regularizer),
                    mask_zero=False, input_length=self.input_length)


def _layer_config(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def _layer_from_config(entry, **overrides):
    from .layers import LAYER_CLASSES
    cls = LAYER_CLASSES.get(entry["class_name"])
    if cls is None:
        raise ValueError(f"Unknown layer class {entry['class_name']!r} inside a wrapper")
    return cls.from_config(dict(entry["config"], **overrides))


class _Wrapper(Layer):
    def _adopt(self, inner, graph, input_shape):
        """Builds `inner` under this wrapper's scope and takes over its weights."""
        with graph.name_scope(f"{self.name}/{inner.name}/"):
            inner.build(input_shape)
        inner.built = True
        self._weights += [(f"{inner.name}/{short}", var, trainable) for short, var, trainable in inner._weights]
        self.losses += inner.losses

    def _run(self, inner, inputs, training, **kwargs):
        with inputs.graph.name_scope(f"{self.name}/{inner.name}/"):
            return inner.call(inputs, training=training, **kwargs)


class Bidirectional(_Wrapper):
    MERGE_MODES = ("concat", "sum", "mul", "ave", None)

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if weights is not None or backward_layer is not None:
            raise UnsupportedError("Bidirectional: `weights` and `backward_layer` are not supported by jitflow.keras")
        if merge_mode not in self.MERGE_MODES:
            raise ValueError(f'Invalid merge mode. Merge mode should be one of {{"sum", "mul", "ave", "concat", '
                             f'None}}, got {merge_mode!r}')
        if not hasattr(layer, "go_backwards"):
            raise ValueError(f"Bidirectional wraps a recurrent layer (SimpleRNN, LSTM, GRU), got {layer!r}")
        if "input_shape" not in kwargs and "batch_input_shape" not in kwargs and layer._batch_input_shape:
            kwargs["batch_input_shape"] = layer._batch_input_shape
        super().__init__(**kwargs)
        config = dict(layer.get_config())
        config.pop("batch_input_shape", None)
        self.forward_layer = type(layer).from_config(dict(config, name="forward_" + layer.name))
        self.backward_layer = type(layer).from_config(dict(config, name="backward_" + layer.name,
                                                           go_backwards=not config["go_backwards"]))
        self.merge_mode = merge_mode
        self.return_sequences, self.return_state = layer.return_sequences, layer.return_state

    def build(self, input_shape):
        graph = get_default_graph()
        self._adopt(self.forward_layer, graph, input_shape)
        self._adopt(self.backward_layer, graph, input_shape)

    def call(self, inputs, training=False, initial_state=None):
        fw_state = bw_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fw_state, bw_state = initial_state[:half], initial_state[half:]
        y = self._run(self.forward_layer, inputs, training, initial_state=fw_state)
        y_rev = self._run(self.backward_layer, inputs, training, initial_state=bw_state)
        states = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = reverse(y_rev, [1])
        if self.merge_mode == "concat":
            output = concat([y, y_rev], -1)
        elif self.merge_mode == "sum":
            output = m.add(y, y_rev)
        elif self.merge_mode == "ave":
            output = m.multiply(m.add(y, y_rev), 0.5)
        elif self.merge_mode == "mul":
            output = m.multiply(y, y_rev)
        else:
            output = [y, y_rev]
        if self.return_state:
            return (output if isinstance(output, list) else [output]) + states
        return output

    def __call__(self, inputs, initial_state=None, training=False):
        if not isinstance(inputs, Tensor):
            raise TypeError(f"{self.name}: call the layer on a graph tensor, got {inputs!r}")
        if not self.built:
            with inputs.graph.name_scope(self.name + "/"):
                self.build(tuple(inputs.shape.dims))
            self.built = True
        return self.call(inputs, training=training, initial_state=initial_state)

    def _call_in_graph(self, inputs, training):
        if self.return_state or self.merge_mode is None:
            raise ValueError(f"{self.name}: return_state=True or merge_mode=None gives several outputs, which a "
                             f"Sequential model cannot pass on; call the layer on a tensor instead")
        return super()._call_in_graph(inputs, training)

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        return tuple(shape[:-1]) + (shape[-1] * 2,) if self.merge_mode == "concat" else shape

    def get_config(self):
        inner = _layer_config(self.forward_layer)
        inner["config"] = dict(inner["config"], name=self.forward_layer.name[len("forward_"):])
        return dict(super().get_config(), layer=inner, merge_mode=self.merge_mode)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layer = _layer_from_config(config.pop("layer"))
        return cls(layer, **config)


class TimeDistributed(_Wrapper):
    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"TimeDistributed wraps a keras layer, got {layer!r}")
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"{self.name}: TimeDistributed needs inputs (batch, time, ...), got {input_shape}")
        self._adopt(self.layer, get_default_graph(), (None,) + tuple(input_shape[2:]))

    def call(self, inputs, training=False):
        """The steps folded into the batch; a dimension unknown when the graph is built (the time, say)
        comes from the run's shapes."""
        def dims_of(t, start):
            return [int(d) if d is not None else shape(t)[i] for i, d in enumerate(t.shape.dims[start:], start)]
        steps = dims_of(inputs, 1)[0]
        flat = reshape(inputs, [-1] + dims_of(inputs, 2))
        out = self._run(self.layer, flat, training)
        return reshape(out, [-1, steps] + dims_of(out, 1))

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def get_config(self):
        return dict(super().get_config(), layer=_layer_config(self.layer))

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(_layer_from_config(config.pop("layer")), **config)


LAYER_CLASSES = {cls.__name__: cls for cls in (Embedding, Bidirectional, TimeDistributed)}
