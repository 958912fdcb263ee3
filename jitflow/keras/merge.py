"""Keras merge layers `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`, `Concatenate(axis)` and
their functions `add`, `subtract`, `multiply`, `average`, `maximum`, `minimum`, `concatenate`.

They are called on a list of graph tensors (TF 1.x style: `tf.keras.layers.add([a, b])` inside a graph returns
a tensor). jitflow.keras has no functional `Model(inputs, outputs)` API, so a merge layer cannot take several
`keras.Input`s of a model: calling one on them raises UnsupportedError, and a Sequential model (one input per
layer) refuses them too."""
from __future__ import annotations

from ..api import math_ops as m
from ..api.array_ops import concat, expand_dims
from ..api.convert import convert_to_tensor
from ..errors import UnsupportedError
from ..framework.graph import get_default_graph
from .base_layer import Layer
from .layers import InputLayer


class _Merge(Layer):
    _min_inputs = 2

    def __call__(self, inputs, **kwargs):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError("A merge layer should be called on a list of inputs.")
        if any(isinstance(x, InputLayer) for x in inputs):
            raise UnsupportedError(f"{type(self).__name__}: merging keras.Input tensors needs the functional "
                                   f"Model(inputs, outputs) API, which jitflow.keras does not support")
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected call arguments {', '.join(kwargs)}")
        tensors = [convert_to_tensor(x) for x in inputs]
        self._check_count(len(tensors))
        shapes = [None if t.shape.dims is None else tuple(t.shape.dims) for t in tensors]
        self._check_shapes(shapes)
        graph = tensors[0].graph if hasattr(tensors[0], "graph") else get_default_graph()
        with graph.name_scope(self.name + "/"):
            outputs = self._merge(tensors)
        self.built = True
        self.input_shape = shapes
        self.output_shape = None if outputs.shape.dims is None else tuple(outputs.shape.dims)
        return outputs

    def call(self, inputs, training=False):
        if not isinstance(inputs, (list, tuple)):
            raise UnsupportedError(f"{type(self).__name__}: a merge layer needs several inputs; a Sequential "
                                   f"model gives each layer one (jitflow.keras has no functional Model API)")
        return self(inputs)

    def _check_count(self, count):
        if count < self._min_inputs:
            raise ValueError(f"A merge layer should be called on a list of at least 2 inputs. Got {count} inputs.")

    def _check_shapes(self, shapes):
        """Keras' elementwise merge check: non-batch dimensions broadcast (equal, 1, or unknown)."""
        known = [s for s in shapes if s is not None]
        for a in known:
            for b in known:
                for da, db in zip(reversed(a[1:]), reversed(b[1:])):
                    if da is not None and db is not None and da != db and 1 not in (da, db):
                        raise ValueError(f"Operands could not be broadcast together with shapes {a} {b}")

    def _same_rank(self, tensors):
        """Keras' rule for inputs of different ranks: add axes after the batch axis to the lower-rank ones."""
        ranks = [len(t.shape.dims) if t.shape.dims is not None else None for t in tensors]
        if None in ranks:
            return tensors
        top = max(ranks)
        out = []
        for t, rank in zip(tensors, ranks):
            for _ in range(top - rank):
                t = expand_dims(t, 1)
            out.append(t)
        return out

    _combine = None      # the elementwise op folding the inputs (each merge layer names its own)

    def _merge(self, tensors):
        tensors = self._same_rank(tensors)
        out = tensors[0]
        for t in tensors[1:]:
            out = self._combine(out, t)
        return out


class Add(_Merge):
    _combine = staticmethod(m.add)


class Multiply(_Merge):
    _combine = staticmethod(m.multiply)


class Maximum(_Merge):
    _combine = staticmethod(m.maximum)


class Minimum(_Merge):
    _combine = staticmethod(m.minimum)


class Average(_Merge):
    def _merge(self, tensors):
        tensors = self._same_rank(tensors)
        out = tensors[0]
        for t in tensors[1:]:
            out = m.add(out, t)
        return m.truediv(out, float(len(tensors)))


class Subtract(_Merge):
    def _check_count(self, count):
        if count != 2:
            raise ValueError(f"A `Subtract` layer should be called on exactly 2 inputs. Got {count} inputs.")

    _combine = staticmethod(m.subtract)


class Concatenate(_Merge):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _check_shapes(self, shapes):
        known = [s for s in shapes if s is not None]
        if not known:
            return
        if len({len(s) for s in known}) != 1:
            raise ValueError(f"A `Concatenate` layer requires inputs with matching shapes except for the concat "
                             f"axis. Got inputs shapes: {shapes}")
        rank = len(known[0])
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 0 <= axis < rank:
            raise ValueError(f"Concatenate: axis {self.axis} is out of range for inputs of rank {rank}")
        for i in range(rank):
            if i == axis:
                continue
            sizes = {s[i] for s in known if s[i] is not None}
            if len(sizes) > 1:
                raise ValueError(f"A `Concatenate` layer requires inputs with matching shapes except for the "
                                 f"concat axis. Got inputs shapes: {shapes}")

    def _merge(self, tensors):
        return concat(tensors, axis=self.axis)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis)


def add(inputs, **kwargs):
    """`Add()(inputs)`: the elementwise sum of a list of tensors."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """`Subtract()([a, b])`: a - b."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)


LAYER_CLASSES = {cls.__name__: cls for cls in (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate)}
