"""Keras Conv1D: values against a numpy 1-D convolution with the layer's weights, summary shapes, the
config round trip through model.save / load_model, and the padding it refuses."""
import numpy as np
import pytest

from jitflow import keras
from jitflow.errors import UnsupportedError
from test_conv1d import conv1d_reference


def test_conv1d_values_save_and_load(tmp_path):
    model = keras.Sequential([keras.layers.Conv1D(8, 3, activation="relu", input_shape=(12, 4)),
                              keras.layers.Conv1D(4, 2, strides=2, padding="same", dilation_rate=1)])
    assert model.output_shape == (None, 5, 4)
    x = np.random.default_rng(0).standard_normal((3, 12, 4)).astype(np.float32)
    k1, b1, k2, b2 = model.get_weights()
    assert k1.shape == (3, 4, 8) and k2.shape == (2, 8, 4)
    hidden = np.maximum(conv1d_reference(x.astype(np.float64), k1, 1, "VALID") + b1, 0)
    want = conv1d_reference(hidden, k2, 2, "SAME") + b2
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-4, atol=1e-5)
    path = str(tmp_path / "conv1d.h5")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.layers[1].get_config()["kernel_size"] == [2]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_conv1d_refuses_causal_padding_and_wrong_rank():
    with pytest.raises(UnsupportedError, match="causal"):
        keras.layers.Conv1D(2, 3, padding="causal")
    with pytest.raises(ValueError, match="expected ndim=3"):
        keras.layers.Conv1D(2, 3).build((None, 4, 4, 1))
