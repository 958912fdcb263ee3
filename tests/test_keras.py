"""jitflow.keras: the Keras workflow of the seed notes (Sequential, Flatten, Dense,
compile, fit with validation and verbose 0/1/2, evaluate, predict, save, load in a
new process) on scikit-learn's digits, plus each loss against numpy, BatchNormalization
and Dropout semantics, regularizers, callbacks, summary() and the one-executable-per-step
guarantee (runtime.stats)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import jitflow as tf
from jitflow import keras
from jitflow.runtime import stats
from jitflow.train import safetensors_format

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def digits():
    (x_train, y_train), (x_test, y_test) = tf.datasets.digits.load_data(test_split=0.2, seed=0)
    return (x_train / 16.0, y_train), (x_test / 16.0, y_test)


def digits_model():
    return keras.Sequential([keras.layers.Flatten(input_shape=(8, 8)),
                             keras.layers.Dense(128, activation="relu"),
                             keras.layers.Dense(10, activation="softmax")])


@pytest.fixture(scope="module")
def trained(digits):
    """The seed's flow: build, compile (adam + sparse_categorical_crossentropy + accuracy), fit."""
    (x_train, y_train), _ = digits
    keras.utils.set_random_seed(7)
    model = digits_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=20, batch_size=32, validation_split=0.1, verbose=0)
    return model, history


def test_tf_keras_names():
    assert tf.keras is keras
    assert keras.models.Sequential is keras.Sequential
    assert keras.models.load_model is keras.models.load_model
    assert keras.datasets.mnist.load_data is tf.datasets.mnist.load_data


def test_digits_reach_95_percent(trained, digits):
    model, history = trained
    (x_train, y_train), (x_test, y_test) = digits
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(v) == 20 for v in history.history.values())
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.95
    probabilities = model.predict(x_test, batch_size=64)
    assert probabilities.shape == (len(x_test), 10) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(probabilities.argmax(axis=1) == y_test) == pytest.approx(accuracy)
    nll = -np.mean(np.log(probabilities[np.arange(len(y_test)), y_test]))
    assert loss == pytest.approx(nll, rel=1e-4)
    assert model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"] == pytest.approx(accuracy)


def test_fit_verbose_outputs(digits, capsys):
    (x_train, y_train), (x_test, y_test) = digits
    keras.utils.set_random_seed(1)
    model = digits_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=1, batch_size=32, validation_data=(x_test, y_test), verbose=0)
    assert capsys.readouterr().out == ""

    model.fit(x_train, y_train, epochs=1, batch_size=32, validation_data=(x_test, y_test), verbose=1)
    out = capsys.readouterr().out
    steps = -(-len(x_train) // 32)
    assert out.startswith("Epoch 1/1\n")
    assert "\r" in out and f"{steps}/{steps} [==============================]" in out
    final = out.split("\r")[-1]
    for part in ("/step", " - loss: ", " - accuracy: ", " - val_loss: ", " - val_accuracy: "):
        assert part in final

    model.fit(x_train, y_train, epochs=2, batch_size=32, validation_split=0.2, verbose=2)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "\r" not in out and "[" not in out
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    steps = -(-int(len(x_train) * 0.8) // 32)
    assert lines[1].startswith(f"{steps}/{steps} - ") and "/step - loss: " in lines[1] and "val_accuracy" in lines[1]

    model.evaluate(x_test, y_test, verbose=1)
    assert " - loss: " in capsys.readouterr().out.split("\r")[-1]


def test_save_and_load_model_in_new_process(trained, digits, tmp_path):
    model, _ = trained
    _, (x_test, y_test) = digits
    path = tmp_path / "digits_model"
    model.save(path)
    assert sorted(os.listdir(path)) == ["config.json", "model.safetensors", "optimizer.safetensors"]
    config = json.loads((path / "config.json").read_text())
    assert [layer["class_name"] for layer in config["model"]["config"]["layers"]] == ["Flatten", "Dense", "Dense"]
    assert config["compile"]["loss"]["class_name"] == "SparseCategoricalCrossentropy"
    tensors, metadata = safetensors_format.read(path / "model.safetensors")
    names = [layer.name for layer in model.layers]
    assert sorted(tensors) == sorted(f"{names[i]}/{w}" for i in (1, 2) for w in ("kernel", "bias"))
    assert metadata["format"] == "jitflow.keras"

    expected = model.predict(x_test)
    np.save(tmp_path / "x.npy", x_test)
    script = ("import sys, numpy as np; from jitflow import keras; "
              "m = keras.models.load_model(sys.argv[1]); "
              "np.save(sys.argv[3], m.predict(np.load(sys.argv[2])))")
    subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "x.npy"), str(tmp_path / "p.npy")],
                   check=True, env=dict(os.environ))
    # Not bit-for-bit: this module's earlier tests fed the model other batch sizes, so here its batches of
    # 32 run the shape-polymorphic executable (one BLAS call per GEMM) while the new process runs the
    # specialized one (GEMMs split across threads by rows or columns): OpenBLAS rounds them differently.
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, rtol=1e-5, atol=1e-6)

    loaded = keras.models.load_model(path)           # compiled again, optimizer state restored at fit
    assert loaded.evaluate(x_test, y_test, verbose=0) == pytest.approx(model.evaluate(x_test, y_test, verbose=0))
    saved_state, restored_state = model.optimizer_state(), loaded.optimizer_state()
    assert sorted(saved_state) == sorted(restored_state) and "beta1_power" in saved_state
    for key, value in saved_state.items():
        np.testing.assert_array_equal(restored_state[key], value)
    loaded.fit(x_test[:64], y_test[:64], epochs=1, verbose=0)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_every_layer_type_saves_and_loads(tmp_path):
    L = keras.layers
    keras.utils.set_random_seed(13)
    model = keras.Sequential()                                    # the seed's style: Sequential() then add()
    model.add(keras.Input(shape=(4, 3)))
    model.add(L.Dense(5, activation="tanh", kernel_initializer=keras.initializers.RandomNormal(stddev=0.3),
                      bias_initializer="ones", kernel_regularizer=keras.regularizers.l1_l2(0.01, 0.02)))
    model.add(L.BatchNormalization(momentum=0.8, gamma_initializer="random_uniform"))
    model.add(L.Reshape((-1,)))
    model.add(L.Dropout(0.3, seed=1))
    model.add(L.Activation("elu"))
    model.add(L.Dense(6, kernel_initializer="he_normal", activation="softplus"))
    model.add(L.Reshape((2, 3)))
    model.add(L.Flatten())
    model.add(L.Dense(2, activation="sigmoid", use_bias=False))
    model.compile(keras.optimizers.RMSprop(0.01, momentum=0.5), "binary_crossentropy", metrics=["accuracy", "mse"])
    x = np.random.default_rng(0).random((40, 4, 3)).astype(np.float32)
    y = (np.random.default_rng(1).random((40, 2)) > 0.5).astype(np.float32)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert model.output_shape == (None, 2) and model.layers[1].output_shape == (None, 4, 5)
    model.save(tmp_path / "m")
    loaded = keras.models.load_model(tmp_path / "m")
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]
    assert loaded.layers[1].get_config() == model.layers[1].get_config()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert loaded.metrics_names == ["loss", "accuracy", "mse"]


def test_save_weights_roundtrip(tmp_path):
    keras.utils.set_random_seed(3)
    a = keras.Sequential([keras.layers.Dense(3, input_shape=(2,)), keras.layers.BatchNormalization()])
    b = keras.Sequential([keras.layers.Dense(3, input_shape=(2,), name=a.layers[0].name),
                          keras.layers.BatchNormalization(name=a.layers[1].name)])
    a.save_weights(tmp_path / "w.safetensors")
    b.load_weights(tmp_path / "w.safetensors")
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def _run(graph_fn, *arrays):
    graph = tf.Graph()
    with graph.as_default():
        placeholders = [tf.placeholder(tf.as_dtype(a.dtype), a.shape) for a in arrays]
        outputs = graph_fn(*placeholders)
        with tf.Session(graph=graph) as sess:
            return sess.run(outputs, dict(zip(placeholders, arrays)))


def test_losses_match_numpy_formulas():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)).astype(np.float32) * 2
    probs_with_zero = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs_with_zero[0] = [0.0, 1.0, 0.0, 0.0]                 # exercises the clip to [1e-7, 1 - 1e-7]
    labels = rng.integers(0, 4, size=6).astype(np.int32)
    labels[0] = 0
    onehot = np.eye(4, dtype=np.float32)[labels]
    binary = rng.integers(0, 2, size=(6, 4)).astype(np.float32)
    sig_with_edges = (1 / (1 + np.exp(-logits))).astype(np.float32)
    sig_with_edges[0, :2] = [0.0, 1.0]
    target = rng.normal(size=(6, 4)).astype(np.float32)
    L = keras.losses

    def graph(lg, prz, lab, oh, bi, sge, tg):
        return [L.get("mse")(tg, lg), L.MeanAbsoluteError()(tg, lg),
                L.get("binary_crossentropy")(bi, sge), L.BinaryCrossentropy(from_logits=True)(bi, lg),
                L.get("categorical_crossentropy")(oh, prz), L.CategoricalCrossentropy(from_logits=True)(oh, lg),
                L.get("sparse_categorical_crossentropy")(lab, prz),
                L.SparseCategoricalCrossentropy(from_logits=True)(lab, lg),
                # per-sample functions; softmax/sigmoid outputs are computed from their logits
                L.sparse_categorical_crossentropy(lab, keras.activations.softmax(lg)),
                L.binary_crossentropy(bi, keras.activations.sigmoid(lg))]
    got = _run(graph, logits, probs_with_zero, labels, onehot, binary, sig_with_edges, target)
    eps = 1e-7
    clip = lambda p: np.clip(p, eps, 1 - eps)  # noqa: E731
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    bce = -np.mean(binary * np.log(clip(sig_with_edges)) + (1 - binary) * np.log(1 - clip(sig_with_edges)), -1)
    bce_logits = np.mean(np.maximum(logits, 0) - logits * binary + np.log1p(np.exp(-np.abs(logits))), -1)
    cce = -np.sum(onehot * np.log(clip(probs_with_zero / probs_with_zero.sum(1, keepdims=True))), axis=1)
    sparse_logits = -log_softmax[np.arange(6), labels]
    expected = [np.mean((logits - target) ** 2), np.mean(np.abs(logits - target)), bce.mean(), bce_logits.mean(),
                cce.mean(), np.mean(-np.sum(onehot * log_softmax, 1)), cce.mean(), sparse_logits.mean()]
    np.testing.assert_allclose(got[:8], expected, rtol=2e-5)
    np.testing.assert_allclose(got[8], sparse_logits, rtol=2e-5)
    np.testing.assert_allclose(got[9], bce_logits, rtol=2e-5)
    assert got[4] * 6 - cce[1:].sum() == pytest.approx(-np.log(eps), rel=1e-4)   # p = 0 clipped to 1e-7
    assert bce[0] > 0 and np.isfinite(bce).all()
    assert isinstance(L.get("mean_squared_error"), L.MeanSquaredError) and isinstance(L.get(L.mse), L.MeanSquaredError)


def test_loss_and_identical_metric_in_one_step():
    keras.utils.set_random_seed(12)
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse", metrics=["mse", "mae"])
    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    history = model.fit(x, x[:, 0], epochs=2, verbose=0)
    assert history.history["loss"] == history.history["mse"]
    loss, mse, mae = model.evaluate(x, x[:, 0], verbose=0)
    assert loss == mse and mae > 0


def test_batch_normalization_train_vs_inference():
    x = (np.random.default_rng(0).normal(size=(64, 3)) * 2 + 5).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.BatchNormalization(input_shape=(3,), momentum=0.9)])
    model.compile(keras.optimizers.SGD(learning_rate=0.0), "mse")
    mean, var = x.mean(0), x.var(0)
    batch_normalized = (x - mean) / np.sqrt(var + 1e-3)
    # training normalizes with the batch statistics: the target is matched exactly
    assert model.train_on_batch(x, batch_normalized) == pytest.approx(0.0, abs=1e-9)
    gamma, beta, moving_mean, moving_var = model.get_weights()
    np.testing.assert_allclose(moving_mean, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(moving_var, 0.9 + 0.1 * var, rtol=1e-5)
    model.train_on_batch(x, batch_normalized)          # a second update in the same executable
    _, _, moving_mean, moving_var = model.get_weights()
    np.testing.assert_allclose(moving_mean, 0.19 * mean, rtol=1e-5)
    np.testing.assert_allclose(moving_var, 0.81 + 0.19 * var, rtol=1e-5)
    # inference normalizes with the moving statistics and does not update them
    expected = (x - moving_mean) / np.sqrt(moving_var + 1e-3) * gamma + beta
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-5)
    assert model.evaluate(x, batch_normalized, verbose=0) > 0.1
    np.testing.assert_array_equal(model.get_weights()[2], moving_mean)
    bn = model.layers[0].name
    assert [w.name for w in model.non_trainable_weights] == [f"{bn}/moving_mean:0", f"{bn}/moving_variance:0"]
    assert [w.name for w in model.trainable_weights] == [f"{bn}/gamma:0", f"{bn}/beta:0"]


def test_dropout_only_in_training():
    model = keras.Sequential([keras.layers.Dense(4, kernel_initializer="ones", use_bias=False, input_shape=(4,)),
                              keras.layers.Dropout(0.5)])
    model.compile(keras.optimizers.SGD(learning_rate=0.0), "mse")
    x, zeros = np.ones((512, 4), np.float32), np.zeros((512, 4), np.float32)
    first, second = model.predict(x), model.predict(x)
    np.testing.assert_array_equal(first, np.full((512, 4), 4.0, np.float32))
    np.testing.assert_array_equal(first, second)
    assert model.evaluate(x, zeros, verbose=0) == pytest.approx(16.0)
    # training: each output is 0 or 4 / 0.5 = 8, so the mean square is ~64 * 0.5, never 16
    train_losses = [model.train_on_batch(x, zeros) for _ in range(2)]
    assert all(28 < loss < 36 for loss in train_losses) and train_losses[0] != train_losses[1]


def test_regularizers_add_to_the_loss():
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.layers.Dense(3, input_shape=(2,), kernel_regularizer=keras.regularizers.l2(0.1),
                                                 bias_initializer=keras.initializers.Constant(0.5),
                                                 bias_regularizer=keras.regularizers.l1(0.2)),
                              keras.layers.Dense(1, kernel_regularizer=keras.regularizers.l1_l2(l1=0.01, l2=0.02))])
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32)
    y = np.random.default_rng(1).normal(size=(10,)).astype(np.float32)
    k1, b1, k2, b2 = model.get_weights()
    prediction = (x @ k1 + b1) @ k2 + b2
    penalty = 0.1 * np.sum(k1 ** 2) + 0.2 * np.sum(np.abs(b1)) + 0.01 * np.sum(np.abs(k2)) + 0.02 * np.sum(k2 ** 2)
    assert penalty > 0.3
    expected = np.mean((prediction[:, 0] - y) ** 2) + penalty
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)
    assert model.train_on_batch(x, y) == pytest.approx(expected, rel=1e-5)   # the value before the update


def test_early_stopping_stops():
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile(keras.optimizers.SGD(learning_rate=0.0), "mse")   # the loss never improves
    x = np.ones((8, 2), np.float32)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2)
    history = model.fit(x, np.zeros(8), epochs=20, validation_data=(x, np.ones(8)), callbacks=[stopper], verbose=0)
    assert len(history.history["val_loss"]) == 3 and stopper.stopped_epoch == 2 and model.stop_training


def test_early_stopping_restores_best_weights():
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(1,))])
    model.compile(keras.optimizers.SGD(learning_rate=5.0), "mse")    # each step overshoots: the loss grows
    x = np.linspace(-1, 1, 16).reshape(-1, 1).astype(np.float32)
    snapshots = []
    remember = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights()))
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    history = model.fit(x, 3 * x, epochs=30, batch_size=16, shuffle=False, callbacks=[remember, stopper], verbose=0)
    best = int(np.argmin(history.history["loss"]))
    assert len(history.history["loss"]) == 2 and best == 0 and stopper.stopped_epoch == 1
    for restored, saved in zip(model.get_weights(), snapshots[best]):
        np.testing.assert_array_equal(restored, saved)


def test_model_checkpoint_writes_files(tmp_path):
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,), activation="softmax")])
    model.compile(keras.optimizers.SGD(learning_rate=0.0), "categorical_crossentropy", metrics=["acc"])
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    y = keras.utils.to_categorical(np.arange(20) % 2, 2)
    every = keras.callbacks.ModelCheckpoint(str(tmp_path / "model-{epoch:02d}-{loss:.2f}"), monitor="loss")
    best = keras.callbacks.ModelCheckpoint(str(tmp_path / "best-{epoch}.safetensors"), monitor="val_loss",
                                           save_best_only=True, save_weights_only=True)
    history = model.fit(x, y, epochs=3, validation_split=0.25, callbacks=[every, best], verbose=0)
    assert sorted(history.history) == ["acc", "loss", "val_acc", "val_loss"]
    names = sorted(os.listdir(tmp_path))
    loss = history.history["loss"][0]
    assert [n for n in names if n.startswith("model-")] == [f"model-{e:02d}-{loss:.2f}" for e in (1, 2, 3)]
    assert names.count("best-1.safetensors") == 1 and not any(n.startswith("best-2") for n in names)
    restored = keras.models.load_model(tmp_path / "model-03-{:.2f}".format(loss))
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))


def test_summary_counts_parameters(capsys):
    model = keras.Sequential([keras.Input(shape=(8, 8)), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"), keras.layers.BatchNormalization(),
                              keras.layers.Dropout(0.2), keras.layers.Dense(10)])
    model.summary()
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f'Model: "{model.name}"' and "Layer (type)" in lines[2] and "Output Shape" in lines[2]
    rows = {line.split()[0]: line for line in lines if "(None" in line}
    names = [layer.name for layer in model.layers]
    assert rows[names[0]].split()[-1] == "0" and "(None, 64)" in rows[names[0]]
    assert rows[names[1]].split()[-1] == "2080"                          # 64 * 32 + 32
    assert rows[names[2]].split()[-1] == "128"                           # gamma, beta, moving mean, variance
    assert rows[names[4]].split()[-1] == "330" and "(None, 10)" in rows[names[4]]
    assert "Total params: 2,538" in out and "Trainable params: 2,474" in out and "Non-trainable params: 64" in out
    assert model.count_params() == 2538
    single = keras.Sequential([keras.layers.Dense(10, input_shape=(64,))])
    assert single.count_params() == 650


def test_no_recompile_and_one_launch_per_training_batch(digits):
    (x_train, y_train), _ = digits
    keras.utils.set_random_seed(8)
    model = digits_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=1, batch_size=50, verbose=0)       # compiles (full + partial batch)
    before = stats()
    model.fit(x_train, y_train, epochs=1, batch_size=50, verbose=0)
    after = stats()
    for key in ("compiles", "executables", "memory_cache_hits", "disk_hits"):
        assert after[key] == before[key], key
    assert after["launches"] - before["launches"] == -(-len(x_train) // 50)


def test_learning_rate_change_needs_no_compile():
    keras.utils.set_random_seed(9)
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(1,))])
    model.compile(keras.optimizers.SGD(learning_rate=0.0), "mse")
    x = np.ones((4, 1), np.float32)
    model.train_on_batch(x, x)
    frozen = model.get_weights()
    model.train_on_batch(x, x)
    np.testing.assert_array_equal(model.get_weights()[0], frozen[0])
    before = stats()["compiles"]
    model.optimizer.learning_rate = 0.1
    model.train_on_batch(x, x)
    assert stats()["compiles"] == before and not np.array_equal(model.get_weights()[0], frozen[0])


@pytest.mark.parametrize("optimizer", ["sgd", keras.optimizers.RMSprop(learning_rate=0.02),
                                       keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                                       keras.optimizers.Adam(learning_rate=0.05)])
def test_optimizers_reduce_a_regression_loss(optimizer):
    keras.utils.set_random_seed(10)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(3,))])
    model.compile(optimizer, "mse", metrics=["mae"])
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert "mae" in history.history


def test_optimizer_names_and_defaults():
    opt = keras.optimizers.get("rmsprop")
    assert isinstance(opt, keras.optimizers.RMSprop) and opt.learning_rate == 0.001 and opt.rho == 0.9
    assert keras.optimizers.get("adam").get_config() == {"name": "Adam", "learning_rate": 0.001, "beta_1": 0.9,
                                                         "beta_2": 0.999, "epsilon": 1e-7}
    sgd = keras.optimizers.get("sgd")
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov) == (0.01, 0.0, False)


def test_binary_classification_accuracy_and_callback_order():
    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 2)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    events = []

    class Recorder(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            events.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            events.append(f"epoch_begin {epoch}")

        def on_batch_end(self, batch, logs=None):
            events.append("batch")

        def on_epoch_end(self, epoch, logs=None):
            events.append(f"epoch_end {epoch} {sorted(logs)}")

        def on_train_end(self, logs=None):
            events.append("train_end")
    model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid", input_shape=(2,))])
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=100, callbacks=[Recorder()], initial_epoch=1, verbose=0)
    assert events == ["train_begin", "epoch_begin 1", "batch", "batch", "epoch_end 1 ['accuracy', 'loss']",
                      "epoch_begin 2", "batch", "batch", "epoch_end 2 ['accuracy', 'loss']", "train_end"]
    assert history.epoch == [1, 2]
    model.fit(x, y, epochs=10, batch_size=20, verbose=0)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    p = model.predict(x)[:, 0]
    assert accuracy > 0.9 and accuracy == pytest.approx(np.mean((p > 0.5) == (y > 0.5)))


def test_clear_errors():
    model = keras.Sequential([keras.layers.Dense(10, activation="softmax")])
    with pytest.raises(ValueError, match="not yet been built"):
        model.summary()
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.zeros((4, 3)), np.zeros(4), verbose=0)
    model.compile("adam", "categorical_crossentropy")
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.fit(np.zeros((4, 3)), np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match="incompatible"):
        model.predict(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="Unknown activation"):
        keras.layers.Dense(3, activation="relux")
    with pytest.raises(TypeError, match="not understood"):
        keras.layers.Dense(3, units_typo=4)


def test_history_plot(tmp_path, monkeypatch):
    history = keras.callbacks.History()
    history.history = {"loss": [1.0, 0.5], "accuracy": [0.5, 0.8], "val_loss": [1.1, 0.7], "val_accuracy": [0.4, 0.7]}
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        path = history.plot(tmp_path / "curves.png")
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.delitem(sys.modules, "matplotlib.figure", raising=False)
    monkeypatch.delitem(sys.modules, "matplotlib.backends.backend_agg", raising=False)
    with pytest.raises(ImportError, match=r"pip install jitflow\[plot\]"):
        history.plot(tmp_path / "other.png")
