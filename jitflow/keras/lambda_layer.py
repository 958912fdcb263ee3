"""Keras `Lambda(function, output_shape=None, mask=None, arguments=None)`: wraps a Python function of graph
tensors as a layer (`function(inputs, **arguments)`, built into the model's compiled graph). Saving a model
with a Lambda raises UnsupportedError naming it: its config would need the Python function itself."""
from __future__ import annotations

from ..errors import UnsupportedError
from .base_layer import Layer


class Lambda(Layer):
    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda: `function` must be callable, got {function!r}")
        if mask is not None:
            raise UnsupportedError("Lambda: the `mask` argument is not supported by jitflow.keras (no masking)")
        if arguments is not None and not isinstance(arguments, dict):
            raise TypeError(f"Lambda: `arguments` must be a dict, got {arguments!r}")
        self.function = function
        self.arguments = dict(arguments or {})
        self._output_shape = output_shape

    def call(self, inputs, training=False):
        from ..api.convert import convert_to_tensor
        return convert_to_tensor(self.function(inputs, **self.arguments))

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            raise UnsupportedError(f"Lambda layer {self.name}: compute_output_shape needs `output_shape` "
                                   f"(jitflow infers it only when the layer is built into a model)")
        if callable(self._output_shape):
            return tuple(self._output_shape(tuple(input_shape)))
        return (input_shape[0],) + tuple(self._output_shape)

    def get_config(self):
        raise UnsupportedError(f"Lambda layer {self.name}: saving a Lambda layer (its Python function) is not "
                               f"supported by jitflow.keras; save the weights with save_weights instead")


LAYER_CLASSES = {"Lambda": Lambda}
