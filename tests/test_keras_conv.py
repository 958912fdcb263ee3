"""Keras convolution, pooling and padding layers (jitflow/keras/conv_layers.py) and BatchNormalization,
Dropout, Flatten, Reshape on feature maps: values against numpy references, Keras names, summary() output
shapes and parameter counts, save / load_model."""
import numpy as np
import pytest

from jitflow import keras
from jitflow.errors import UnsupportedError

from test_conv_layers import conv2d_ref, conv2d_transpose_ref, pool_ref

rng = np.random.RandomState(1)


@pytest.fixture(autouse=True)
def fresh_names():
    keras.backend.clear_session()
    yield


def _weights(model, layer_index):
    model.build()
    return model.layers[layer_index].get_weights()


@pytest.mark.parametrize("padding,strides", [("same", 1), ("valid", 2), ("SAME", (2, 1))])
def test_conv2d_matches_numpy(padding, strides):
    x = rng.rand(3, 7, 6, 2).astype(np.float32)
    model = keras.Sequential([keras.layers.Conv2D(4, (3, 2), strides=strides, padding=padding, activation="relu",
                                                  bias_initializer="ones", input_shape=(7, 6, 2))])
    kernel, bias = _weights(model, 0)
    assert kernel.shape == (3, 2, 2, 4) and np.all(bias == 1)
    s = (strides, strides) if isinstance(strides, int) else strides
    want = np.maximum(conv2d_ref(x, kernel, s, padding.upper()) + bias, 0)
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-5, atol=1e-5)
    assert model.output_shape == model.layers[0].compute_output_shape((None, 7, 6, 2))


def test_conv2d_transpose_matches_numpy():
    x = rng.rand(2, 3, 4, 2).astype(np.float32)
    model = keras.Sequential([keras.layers.Conv2DTranspose(3, 3, strides=2, input_shape=(3, 4, 2))])
    kernel, bias = _weights(model, 0)
    assert model.layers[0].name == "conv2d_transpose" and kernel.shape == (3, 3, 3, 2)
    assert model.output_shape == (None, 7, 9, 3)
    np.testing.assert_allclose(model.predict(x), conv2d_transpose_ref(x, kernel, (7, 9), (2, 2), "VALID") + bias,
                               rtol=1e-5, atol=1e-5)


def test_pooling_padding_and_global_layers_match_numpy():
    x = rng.randn(2, 6, 5, 3).astype(np.float32)

    def run(layer):
        keras.backend.clear_session()
        return keras.Sequential([keras.layers.InputLayer(input_shape=(6, 5, 3)), layer]).predict(x)
    np.testing.assert_allclose(run(keras.layers.MaxPooling2D()), pool_ref(x, (2, 2), (2, 2), "VALID", "max"))
    np.testing.assert_allclose(run(keras.layers.MaxPool2D(3, strides=2, padding="same")),
                               pool_ref(x, (3, 3), (2, 2), "SAME", "max"))
    np.testing.assert_allclose(run(keras.layers.AveragePooling2D((2, 3), strides=1, padding="same")),
                               pool_ref(x, (2, 3), (1, 1), "SAME", "avg"), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(run(keras.layers.GlobalAveragePooling2D()), x.mean(axis=(1, 2)), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(run(keras.layers.GlobalMaxPooling2D()), x.max(axis=(1, 2)))
    np.testing.assert_array_equal(run(keras.layers.ZeroPadding2D(((1, 2), (0, 3)))),
                                  np.pad(x, [(0, 0), (1, 2), (0, 3), (0, 0)]))
    np.testing.assert_array_equal(run(keras.layers.ZeroPadding2D(1)), np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)]))
    np.testing.assert_array_equal(run(keras.layers.Flatten()), x.reshape(2, -1))
    np.testing.assert_array_equal(run(keras.layers.Reshape((30, 3))), x.reshape(2, 30, 3))
    np.testing.assert_array_equal(run(keras.layers.Dropout(0.5)), x)        # inference: identity
    assert keras.layers.GlobalAvgPool2D is keras.layers.GlobalAveragePooling2D
    assert keras.layers.AvgPool2D is keras.layers.AveragePooling2D


def _deep_mnist_model():
    return keras.Sequential([
        keras.layers.Conv2D(32, 5, padding="same", activation="relu", input_shape=(28, 28, 1)),
        keras.layers.MaxPooling2D(2, padding="same"),
        keras.layers.Conv2D(64, 5, padding="same", activation="relu"),
        keras.layers.MaxPool2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(1024, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax")])


def test_summary_shows_keras_output_shapes_and_parameter_counts():
    model = _deep_mnist_model()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    rows = [line.split() for line in lines if line.startswith(" ") and "(" in line and "Layer" not in line]
    assert [(r[0], r[1]) for r in rows] == [
        ("conv2d", "(Conv2D)"), ("max_pooling2d", "(MaxPooling2D)"), ("conv2d_1", "(Conv2D)"),
        ("max_pooling2d_1", "(MaxPooling2D)"), ("flatten", "(Flatten)"), ("dense", "(Dense)"),
        ("dropout", "(Dropout)"), ("dense_1", "(Dense)")]
    assert [" ".join(r[2:-1]) for r in rows] == ["(None, 28, 28, 32)", "(None, 14, 14, 32)", "(None, 14, 14, 64)",
                                                 "(None, 7, 7, 64)", "(None, 3136)", "(None, 1024)", "(None, 1024)",
                                                 "(None, 10)"]
    assert [int(r[-1]) for r in rows] == [832, 0, 51264, 0, 0, 3212288, 0, 10250]
    assert "Total params: 3,274,634" in text and "Trainable params: 3,274,634" in text
    assert [w.name for w in model.layers[0].weights] == ["conv2d/kernel:0", "conv2d/bias:0"]


def test_save_and_load_model_round_trip(tmp_path):
    x = rng.rand(16, 8, 8, 1).astype(np.float32)
    y = rng.randint(0, 3, 16)
    model = keras.Sequential([
        keras.layers.ZeroPadding2D((1, 2), input_shape=(8, 8, 1)),
        keras.layers.Conv2D(4, 3, strides=(1, 2), activation="relu", kernel_regularizer="l2"),
        keras.layers.BatchNormalization(),
        keras.layers.AveragePooling2D(2, padding="same"),
        keras.layers.Conv2DTranspose(2, 2, strides=2, padding="same"),
        keras.layers.MaxPooling2D(3, strides=2),
        keras.layers.Dropout(0.25),
        keras.layers.GlobalMaxPooling2D(),
        keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    before = model.predict(x)
    model.save(str(tmp_path / "cnn"))
    keras.backend.clear_session()
    loaded = keras.models.load_model(str(tmp_path / "cnn"))
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(loaded.predict(x), before, rtol=1e-5, atol=1e-6)
    conv = loaded.layers[1]
    assert (conv.filters, conv.kernel_size, conv.strides, conv.padding) == (4, (3, 3), (1, 2), "valid")
    assert loaded.layers[0].padding == ((1, 1), (2, 2))
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)         # the optimizer state came back too


def test_batch_normalization_on_feature_maps_uses_channel_statistics():
    x = (rng.randn(8, 3, 3, 2) * [1.0, 4.0] + [1.0, -2.0]).astype(np.float32)
    model = keras.Sequential([keras.layers.BatchNormalization(momentum=0.9, input_shape=(3, 3, 2))])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    model.fit(x, np.zeros_like(x), epochs=1, batch_size=8, verbose=0, shuffle=False)
    gamma, beta, moving_mean, moving_var = model.layers[0].get_weights()
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(moving_mean, 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(moving_var, 0.9 + 0.1 * var, rtol=1e-5)
    np.testing.assert_allclose(model.predict(x), (x - moving_mean) / np.sqrt(moving_var + 1e-3), rtol=1e-4,
                               atol=1e-4)


def test_errors_name_the_argument():
    with pytest.raises(UnsupportedError, match="channels_first"):
        keras.layers.Conv2D(4, 3, data_format="channels_first")
    with pytest.raises(UnsupportedError, match="channels_first"):
        keras.layers.GlobalAveragePooling2D(data_format="channels_first")
    with pytest.raises(UnsupportedError, match="output_padding"):
        keras.layers.Conv2DTranspose(4, 3, output_padding=1)
    with pytest.raises(UnsupportedError, match="kernel_constraint"):
        keras.layers.Conv2D(4, 3, kernel_constraint=object())
    with pytest.raises(ValueError, match="padding"):
        keras.layers.MaxPooling2D(padding="causal")
    with pytest.raises(ValueError, match="padding"):
        keras.layers.ZeroPadding2D((1, 2, 3))
    with pytest.raises(ValueError, match="ndim=4"):
        keras.Sequential([keras.layers.Conv2D(2, 3, input_shape=(8, 8))]).build()
