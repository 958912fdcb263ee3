"""`keras.layers.RepeatVector(n)`: (batch, features) -> (batch, n, features), the encoder-to-decoder
bridge of the Keras seq2seq examples."""
from __future__ import annotations

from ..api.array_extra import tile
from ..api.array_ops import expand_dims
from .base_layer import Layer


class RepeatVector(Layer):
    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, inputs, training=False):
        dims = inputs.shape.dims
        if dims is not None and len(dims) != 2:
            raise ValueError(f"Input 0 of layer {self.name} is incompatible with the layer: expected ndim=2, "
                             f"found ndim={len(dims)}. Full shape received: {tuple(dims)}")
        return tile(expand_dims(inputs, 1), [1, self.n, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        return dict(super().get_config(), n=self.n)


LAYER_CLASSES = {"RepeatVector": RepeatVector}
