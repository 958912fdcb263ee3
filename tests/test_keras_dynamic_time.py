"""Keras recurrent layers (SimpleRNN, GRU, LSTM) with a time dimension known only at run time: one
tf.while_loop over time (jitflow/keras/recurrent_loop.py) whose outputs, states and gradients equal
the unrolled (known-time) path for the same weights; dropout masks drawn before the loop (one per gate
for the whole sequence, as Keras); one Sequential model fit on length 5 and run on 9 and 3; Embedding
without input_length, keras.Input(shape=(None, f)), Bidirectional and TimeDistributed around them."""
import numpy as np
import pytest

import jitflow as tf
from jitflow import keras

L = keras.layers
RS = np.random.RandomState(7)


@pytest.fixture(autouse=True)
def fresh():
    tf.reset_default_graph()
    keras.backend.clear_session()


def _has_while(graph):
    return any(op.type.lower() == "while" for op in graph.get_operations())


def _recording_masks(layer):
    """Wraps layer._masks so the dropout mask tensors it draws can be fed (the same values to both paths)."""
    drawn = []
    original = layer._masks

    def masks(like, rate, training):
        out = original(like, rate, training)
        if out is not None:
            drawn.extend(out)
        return out
    layer._masks = masks
    return drawn


LAYERS = [
    (L.SimpleRNN, {}),
    (L.GRU, {}),
    (L.GRU, dict(reset_after=True)),
    (L.LSTM, dict(activation="relu")),            # not the fused lstm_block: the loop
    (L.LSTM, dict(recurrent_activation="sigmoid", activation="elu")),
]


@pytest.mark.parametrize("cls,kw", LAYERS)
@pytest.mark.parametrize("extra", [dict(), dict(return_sequences=True, go_backwards=True)])
def test_loop_equals_unrolled_forward_and_gradients(cls, kw, extra):
    x = tf.placeholder(tf.float32, [None, None, 3])
    layer = cls(4, return_state=True, **kw, **extra)
    out = layer(x)
    assert _has_while(x.graph)
    assert out[0].shape.as_list() == ([None, None, 4] if extra else [None, 4])
    weights = layer.weights
    loss = tf.reduce_sum(out[0] * np.linspace(-1, 1, 4).astype(np.float32)) + tf.reduce_sum(tf.square(out[-1]))
    grads = tf.gradients(loss, weights + [x])
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    for steps in (5, 9, 3):
        xs = tf.placeholder(tf.float32, [None, steps, 3])
        ys = layer.call(xs)                         # the unrolled path with the same weights
        loss_s = tf.reduce_sum(ys[0] * np.linspace(-1, 1, 4).astype(np.float32)) + \
            tf.reduce_sum(tf.square(ys[-1]))
        grads_s = tf.gradients(loss_s, weights + [xs])
        value = RS.randn(2, steps, 3).astype(np.float32)
        got = sess.run(list(out) + grads, {x: value})
        want = sess.run(list(ys) + grads_s, {xs: value})
        for a, b in zip(got, want):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_gradient_matches_finite_differences():
    x = tf.placeholder(tf.float32, [None, None, 2])
    out = L.GRU(3, reset_after=True, return_sequences=True)(x)
    loss = tf.reduce_sum(tf.sin(out))
    (gx,) = tf.gradients(loss, [x])
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    value = RS.randn(2, 4, 2).astype(np.float32)
    analytic = sess.run(gx, {x: value})
    eps = 1e-2
    for idx in [(0, 0, 0), (1, 3, 1), (0, 2, 1), (1, 1, 0)]:
        plus, minus = value.copy(), value.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric = (sess.run(loss, {x: plus}) - sess.run(loss, {x: minus})) / (2 * eps)
        np.testing.assert_allclose(analytic[idx], numeric, rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("cls,kw", [(L.SimpleRNN, {}), (L.GRU, {}), (L.GRU, dict(reset_after=True)), (L.LSTM, {})])
def test_dropout_masks_drawn_before_loop_equal_unrolled(cls, kw):
    """With the same dropout masks (fed), the loop and the unrolled path agree, forward and backward."""
    x = tf.placeholder(tf.float32, [None, None, 3])
    layer = cls(4, dropout=0.3, recurrent_dropout=0.4, return_sequences=True, **kw)
    drawn_dyn = _recording_masks(layer)
    out = layer(x, training=True)
    gates = layer.gates
    assert len(drawn_dyn) == 2 * gates
    xs = tf.placeholder(tf.float32, [None, 5, 3])
    del layer._masks
    drawn_static = _recording_masks(layer)
    ys = layer.call(xs, training=True)
    grads = tf.gradients(tf.reduce_sum(tf.square(out)), layer.weights)
    grads_s = tf.gradients(tf.reduce_sum(tf.square(ys)), layer.weights)
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    value = RS.randn(2, 5, 3).astype(np.float32)
    masks = [(RS.rand(2, 3) > 0.3) / 0.7 for _ in range(gates)] + [(RS.rand(2, 4) > 0.4) / 0.6 for _ in range(gates)]
    masks = [v.astype(np.float32) for v in masks]
    got = sess.run([out] + grads, {**dict(zip(drawn_dyn, masks)), x: value})
    want = sess.run([ys] + grads_s, {**dict(zip(drawn_static, masks)), xs: value})
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_dropout_distribution_and_inference():
    x = tf.placeholder(tf.float32, [None, None, 6])
    layer = L.SimpleRNN(50, dropout=0.25, recurrent_dropout=0.5, return_sequences=True)
    drawn = _recording_masks(layer)
    train_out = layer(x, training=True)
    infer_out = layer(x, training=False)
    assert len(drawn) == 2
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    value = RS.randn(400, 3, 6).astype(np.float32)
    in_mask, rec_mask = sess.run(drawn, {x: value})
    assert in_mask.shape == (400, 6) and rec_mask.shape == (400, 50)
    for mask, rate in ((in_mask, 0.25), (rec_mask, 0.5)):
        assert set(np.unique(mask)) <= {0.0, np.float32(1 / (1 - rate))}
        assert abs(np.mean(mask == 0) - rate) < 0.04
    a, b = sess.run(train_out, {x: value}), sess.run(train_out, {x: value})
    assert not np.allclose(a, b)                   # a new draw per run
    # inference: no dropout, the unrolled path's value
    xs = tf.placeholder(tf.float32, [None, 3, 6])
    np.testing.assert_allclose(sess.run(infer_out, {x: value}), sess.run(layer.call(xs), {xs: value}),
                               rtol=1e-5, atol=1e-6)


def _sequential(steps, rnn):
    return keras.Sequential([rnn(steps), L.Dense(1)])


@pytest.mark.parametrize("make", [
    lambda t: L.SimpleRNN(5, input_shape=(t, 3)),
    lambda t: L.GRU(5, reset_after=True, input_shape=(t, 3)),
    lambda t: L.LSTM(5, activation="relu", input_shape=(t, 3)),
])
def test_fit_on_five_predict_on_nine_and_three(make):
    dynamic, static = _sequential(None, make), _sequential(5, make)
    for model in (dynamic, static):
        model.compile(keras.optimizers.SGD(0.1), "mse")
    x = RS.randn(8, 5, 3).astype(np.float32)
    y = RS.randn(8, 1).astype(np.float32)
    static.predict(x[:1])
    dynamic.predict(x[:1])
    dynamic.set_weights(static.get_weights())
    h_dyn = dynamic.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False)
    h_static = static.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False)
    np.testing.assert_allclose(h_dyn.history["loss"], h_static.history["loss"], rtol=1e-5)
    for a, b in zip(dynamic.get_weights(), static.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for steps in (9, 3):
        twin = _sequential(steps, make)
        xt = RS.randn(3, steps, 3).astype(np.float32)
        twin.predict(xt[:1])
        twin.set_weights(dynamic.get_weights())
        np.testing.assert_allclose(dynamic.predict(xt), twin.predict(xt), rtol=1e-5, atol=1e-6)


def test_lstm_with_dropout_trains_and_runs_any_length():
    model = keras.Sequential([keras.Input(shape=(None, 3)), L.LSTM(6, dropout=0.2, recurrent_dropout=0.2),
                              L.Dense(1)])
    model.compile("adam", "mse")
    x = RS.randn(16, 5, 3).astype(np.float32)
    y = x.sum(axis=(1, 2))[:, None] * 0.1
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    twin = keras.Sequential([keras.Input(shape=(9, 3)), L.LSTM(6), L.Dense(1)])
    x9 = RS.randn(2, 9, 3).astype(np.float32)
    twin.predict(x9)
    twin.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(x9), twin.predict(x9), rtol=1e-5, atol=1e-6)
    assert model.predict(RS.randn(2, 3, 3)).shape == (2, 1)


def _tagger(length):
    return keras.Sequential([L.Embedding(12, 4, input_length=length),
                             L.Bidirectional(L.GRU(3, return_sequences=True)),
                             L.TimeDistributed(L.Dense(2))])


def test_embedding_bidirectional_time_distributed():
    model = _tagger(None)
    model.compile(keras.optimizers.SGD(0.05), "mse")
    ids = RS.randint(0, 12, (6, 5))
    model.fit(ids, RS.randn(6, 5, 2).astype(np.float32), epochs=1, verbose=0)
    for steps in (7, 2):
        twin = _tagger(steps)
        seq = RS.randint(0, 12, (3, steps))
        twin.predict(seq[:1])
        twin.set_weights(model.get_weights())
        got = model.predict(seq)
        assert got.shape == (3, steps, 2)
        np.testing.assert_allclose(got, twin.predict(seq), rtol=1e-5, atol=1e-6)


def test_unroll_with_unknown_time_is_keras_error():
    x = tf.placeholder(tf.float32, [None, None, 3])
    with pytest.raises(ValueError, match="Cannot unroll a RNN if the time dimension is undefined"):
        L.SimpleRNN(2, unroll=True)(x)
