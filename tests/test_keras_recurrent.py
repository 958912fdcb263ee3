"""Keras recurrent layers (tf.keras of TF 1.15): SimpleRNN, LSTM, GRU (return_sequences, return_state,
go_backwards, reset_after), Embedding, Bidirectional, TimeDistributed. Values against numpy
implementations with Keras' gate order and TF 1.15 defaults (hard_sigmoid, unit_forget_bias,
orthogonal recurrent kernel), gradients against finite differences, save/load, summary, and the
row-LSTM digits example."""
import numpy as np
import pytest

import jitflow as tf
from jitflow import keras
from jitflow.errors import UnsupportedError


def hard_sigmoid(x):
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


def np_lstm(x, kernel, rec, bias, backwards=False):
    u = rec.shape[0]
    h, c, outs = np.zeros((x.shape[0], u)), np.zeros((x.shape[0], u)), []
    steps = range(x.shape[1] - 1, -1, -1) if backwards else range(x.shape[1])
    for t in steps:
        z = x[:, t] @ kernel + h @ rec + bias
        i, f, cc, o = (z[:, k * u:(k + 1) * u] for k in range(4))
        c = hard_sigmoid(f) * c + hard_sigmoid(i) * np.tanh(cc)
        h = hard_sigmoid(o) * np.tanh(c)
        outs.append(h)
    return np.stack(outs, 1), h, c


def np_gru(x, kernel, rec, bias, reset_after):
    u = rec.shape[0]
    h, outs = np.zeros((x.shape[0], u)), []
    for t in range(x.shape[1]):
        in_bias, rec_bias = (bias[0], bias[1]) if reset_after else (bias, np.zeros(3 * u))
        xz, xr, xh = np.split(x[:, t] @ kernel + in_bias, 3, axis=1)
        if reset_after:
            rz, rr, rh = np.split(h @ rec + rec_bias, 3, axis=1)
            z, r = hard_sigmoid(xz + rz), hard_sigmoid(xr + rr)
            hh = np.tanh(xh + r * rh)
        else:
            z = hard_sigmoid(xz + h @ rec[:, :u])
            r = hard_sigmoid(xr + h @ rec[:, u:2 * u])
            hh = np.tanh(xh + (r * h) @ rec[:, 2 * u:])
        h = z * h + (1 - z) * hh
        outs.append(h)
    return np.stack(outs, 1), h


@pytest.fixture(autouse=True)
def fresh():
    tf.reset_default_graph()
    keras.backend.clear_session()


def _init_and_read(sess, variables):
    sess.run(tf.global_variables_initializer())
    return sess.run(variables)


def test_lstm_values_defaults_states_and_gradient():
    x = tf.placeholder(tf.float32, [None, 5, 3])
    layer = keras.layers.LSTM(4, return_sequences=True, return_state=True)
    seq, h, c = layer(x)
    backwards = keras.layers.LSTM(4, go_backwards=True)
    last = backwards(x)
    data = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    loss = tf.reduce_sum(tf.square(seq)) + tf.reduce_sum(c)
    with tf.Session() as sess:
        kernel, rec, bias = _init_and_read(sess, [layer.kernel, layer.recurrent_kernel, layer.bias])
        assert [v.name for v in layer.weights] == ["lstm/kernel:0", "lstm/recurrent_kernel:0", "lstm/bias:0"]
        np.testing.assert_array_equal(bias, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])   # unit_forget_bias
        np.testing.assert_allclose(rec @ rec.T, np.eye(4), atol=1e-5)                        # orthogonal
        out, h_out, c_out, back = sess.run([seq, h, c, last], {x: data})
        want, wh, wc = np_lstm(data, kernel, rec, bias)
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(h_out, wh, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(c_out, wc, rtol=1e-4, atol=1e-6)
        bk, brec, bb = sess.run([backwards.kernel, backwards.recurrent_kernel, backwards.bias])
        np.testing.assert_allclose(back, np_lstm(data, bk, brec, bb, backwards=True)[1], rtol=1e-4, atol=1e-6)
        grad = sess.run(tf.gradients(loss, layer.kernel)[0], {x: data})
        eps = 1e-2
        for idx in [(0, 0), (1, 5), (2, 9), (0, 14)]:
            shifted = kernel.copy()
            shifted[idx] += eps
            layer.kernel.load(shifted, sess)
            up = sess.run(loss, {x: data})
            shifted[idx] -= 2 * eps
            layer.kernel.load(shifted, sess)
            down = sess.run(loss, {x: data})
            np.testing.assert_allclose((up - down) / (2 * eps), grad[idx], rtol=3e-2, atol=2e-3)
    assert layer.get_config()["recurrent_activation"] == "hard_sigmoid"


@pytest.mark.parametrize("reset_after", [False, True])
def test_gru_values(reset_after):
    x = tf.placeholder(tf.float32, [2, 4, 3])
    layer = keras.layers.GRU(5, return_sequences=True, reset_after=reset_after, bias_initializer="random_normal")
    seq = layer(x)
    data = np.random.default_rng(1).normal(size=(2, 4, 3)).astype(np.float32)
    with tf.Session() as sess:
        kernel, rec, bias = _init_and_read(sess, [layer.kernel, layer.recurrent_kernel, layer.bias])
        assert bias.shape == ((2, 15) if reset_after else (15,))
        np.testing.assert_allclose(sess.run(seq, {x: data}), np_gru(data, kernel, rec, bias, reset_after)[0],
                                   rtol=1e-4, atol=1e-6)


def test_simple_rnn_values():
    x = tf.placeholder(tf.float32, [2, 3, 2])
    layer = keras.layers.SimpleRNN(3, return_state=True, activation="relu")
    out, state = layer(x)
    data = np.random.default_rng(2).normal(size=(2, 3, 2)).astype(np.float32)
    with tf.Session() as sess:
        kernel, rec, bias = _init_and_read(sess, [layer.kernel, layer.recurrent_kernel, layer.bias])
        got, got_state = sess.run([out, state], {x: data})
    h = np.zeros((2, 3))
    for t in range(3):
        h = np.maximum(data[:, t] @ kernel + h @ rec + bias, 0)
    np.testing.assert_allclose(got, h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_state, h, rtol=1e-5, atol=1e-6)


def test_embedding_bidirectional_time_distributed_fit_save_load_summary(tmp_path, capsys):
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 20, size=(48, 6)).astype(np.float32)
    labels = (ids[:, 0] > 9).astype(np.int32)
    model = keras.Sequential([keras.layers.Embedding(20, 4, input_length=6),
                              keras.layers.Bidirectional(keras.layers.GRU(3, return_sequences=True)),
                              keras.layers.TimeDistributed(keras.layers.Dense(2)),
                              keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(ids, labels, epochs=1, verbose=0)
    names = [name for layer in model.layers for name, _ in layer.named_weights()]
    assert names[:4] == ["embedding/embeddings", "bidirectional/forward_gru/kernel",
                         "bidirectional/forward_gru/recurrent_kernel", "bidirectional/forward_gru/bias"]
    assert "time_distributed/dense/kernel" in names
    model.summary()
    text = capsys.readouterr().out
    assert "bidirectional (Bidirectional)" in text and "(None, 6, 6)" in text and "Total params: 264" in text
    # the merged fw/bw sequence: backward outputs are re-aligned with the forward steps
    model.save(str(tmp_path / "m"))
    loaded = keras.models.load_model(str(tmp_path / "m"))
    np.testing.assert_allclose(loaded.predict(ids), model.predict(ids), rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"= 20 is not in \[0, 20\)"):
        model.predict(np.full((1, 6), 20.0, np.float32))


def test_refused_arguments_are_named():
    with pytest.raises(UnsupportedError, match="stateful"):
        keras.layers.LSTM(3, stateful=True)
    with pytest.raises(UnsupportedError, match="mask_zero"):
        keras.layers.Embedding(5, 2, mask_zero=True)
    model = keras.Sequential([keras.layers.LSTM(3, return_state=True, input_shape=(4, 2))])
    with pytest.raises(ValueError, match="return_state"):
        model.predict(np.zeros((1, 4, 2), np.float32))


def test_row_lstm_on_digits_reaches_97_percent_in_keras():
    pytest.importorskip("sklearn")
    from examples import lstm_digits_rows
    assert lstm_digits_rows.keras(n_epochs=30, verbose=False) >= 0.97
