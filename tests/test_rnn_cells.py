"""tf.nn.rnn_cell / tf.contrib.rnn cells and the static / unrolled-dynamic drivers: values against numpy
implementations of TF 1.x's cells, gradients against finite differences, TF's variable names,
sequence_length semantics, and the arguments that raise UnsupportedError."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import UnsupportedError


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_basic_lstm(xs, kernel, bias, forget_bias=1.0, c=None, h=None):
    n = bias.shape[0] // 4
    c = np.zeros((xs[0].shape[0], n)) if c is None else c
    h = np.zeros((xs[0].shape[0], n)) if h is None else h
    outs = []
    for x in xs:
        z = np.concatenate([x, h], 1) @ kernel + bias
        i, j, f, o = np.split(z, 4, axis=1)
        c = c * sig(f + forget_bias) + sig(i) * np.tanh(j)
        h = np.tanh(c) * sig(o)
        outs.append(h)
    return outs, (c, h)


def np_gru(xs, gk, gb, ck, cb):
    n = cb.shape[0]
    h = np.zeros((xs[0].shape[0], n))
    outs = []
    for x in xs:
        r, u = np.split(sig(np.concatenate([x, h], 1) @ gk + gb), 2, axis=1)
        cand = np.tanh(np.concatenate([x, r * h], 1) @ ck + cb)
        h = u * h + (1 - u) * cand
        outs.append(h)
    return outs, h


def _values(sess, variables):
    return {v.name.split(":")[0]: val for v, val in zip(variables, sess.run(variables))}


def _fd_check(sess, loss, var, feed, eps=1e-3, samples=6, rtol=2e-2):
    """d loss / d var at a few entries against central differences (float64 graphs)."""
    grad = sess.run(tf.gradients(loss, var)[0], feed)
    base = sess.run(var)
    rng = np.random.default_rng(0)
    for flat in rng.choice(base.size, size=min(samples, base.size), replace=False):
        idx = np.unravel_index(flat, base.shape)
        values = []
        for step in (eps, -eps):
            shifted = base.copy()
            shifted[idx] += step
            var.load(shifted, sess)
            values.append(sess.run(loss, feed))
        var.load(base, sess)
        numeric = (values[0] - values[1]) / (2 * eps)
        assert abs(numeric - grad[idx]) <= rtol * max(1.0, abs(numeric)), (var.name, idx, numeric, grad[idx])


def test_basic_lstm_static_rnn_values_names_and_gradients():
    tf.reset_default_graph()
    rng = np.random.default_rng(1)
    X = tf.placeholder(tf.float64, [None, 4, 3])
    xs = tf.unstack(X, 4, 1)
    cell = tf.contrib.rnn.BasicLSTMCell(5, forget_bias=1.0)
    outputs, state = tf.contrib.rnn.static_rnn(cell, xs, dtype=tf.float64)
    names = [v.name for v in tf.global_variables()]
    assert names == ["rnn/basic_lstm_cell/kernel:0", "rnn/basic_lstm_cell/bias:0"]
    assert isinstance(state, tf.nn.rnn_cell.LSTMStateTuple)
    loss = tf.reduce_sum(tf.square(outputs[-1])) + tf.reduce_sum(state.c * outputs[1])
    data = rng.normal(size=(2, 4, 3))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        kernel, bias = tf.global_variables()
        bias.load(rng.normal(size=20) * 0.3, sess)
        w = _values(sess, tf.global_variables())
        outs, (c, h) = sess.run([outputs, state], {X: data})
        want, (wc, wh) = np_basic_lstm([data[:, t] for t in range(4)], w["rnn/basic_lstm_cell/kernel"],
                                       w["rnn/basic_lstm_cell/bias"])
        np.testing.assert_allclose(np.stack(outs), np.stack(want), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(c, wc, rtol=1e-10)
        np.testing.assert_allclose(h, wh, rtol=1e-10)
        _fd_check(sess, loss, kernel, {X: data})
        _fd_check(sess, loss, bias, {X: data})


def test_gru_dynamic_rnn_sequence_length_zeroes_outputs_and_carries_state():
    tf.reset_default_graph()
    rng = np.random.default_rng(2)
    X = tf.placeholder(tf.float64, [None, 5, 3])
    lengths = tf.placeholder(tf.int32, [None])
    cell = tf.nn.rnn_cell.GRUCell(4)
    outputs, state = tf.nn.dynamic_rnn(cell, X, sequence_length=lengths, dtype=tf.float64)
    names = sorted(v.name for v in tf.global_variables())
    assert names == ["rnn/gru_cell/candidate/bias:0", "rnn/gru_cell/candidate/kernel:0",
                     "rnn/gru_cell/gates/bias:0", "rnn/gru_cell/gates/kernel:0"]
    data = rng.normal(size=(3, 5, 3))
    lens = np.array([2, 5, 0], np.int32)
    loss = tf.reduce_sum(outputs * outputs) + tf.reduce_sum(state)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        w = _values(sess, tf.global_variables())
        np.testing.assert_allclose(w["rnn/gru_cell/gates/bias"], 1.0)       # TF's default gate bias
        out, final = sess.run([outputs, state], {X: data, lengths: lens})
        for b, n in enumerate(lens):
            want, _ = np_gru([data[b:b + 1, t] for t in range(5)], w["rnn/gru_cell/gates/kernel"],
                             w["rnn/gru_cell/gates/bias"], w["rnn/gru_cell/candidate/kernel"],
                             w["rnn/gru_cell/candidate/bias"])
            want = np.concatenate(want)
            np.testing.assert_allclose(out[b, :n], want[:n], rtol=1e-10)
            np.testing.assert_array_equal(out[b, n:], 0.0)
            np.testing.assert_allclose(final[b], want[n - 1] if n else 0.0, rtol=1e-10, atol=1e-14)
        gk = [v for v in tf.global_variables() if v.name.startswith("rnn/gru_cell/gates/kernel")][0]
        _fd_check(sess, loss, gk, {X: data, lengths: lens})


def test_lstm_cell_peepholes_projection_and_clips():
    tf.reset_default_graph()
    rng = np.random.default_rng(3)
    X = tf.placeholder(tf.float64, [2, 3, 4])
    cell = tf.nn.rnn_cell.LSTMCell(5, use_peepholes=True, num_proj=3, cell_clip=0.5, proj_clip=0.2)
    outputs, state = tf.nn.dynamic_rnn(cell, X, dtype=tf.float64)
    names = [v.name.split(":")[0] for v in tf.global_variables()]
    assert names == ["rnn/lstm_cell/kernel", "rnn/lstm_cell/bias", "rnn/lstm_cell/w_f_diag",
                     "rnn/lstm_cell/w_i_diag", "rnn/lstm_cell/w_o_diag", "rnn/lstm_cell/projection/kernel"]
    data = rng.normal(size=(2, 3, 4))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        w = _values(sess, tf.global_variables())
        out, (c_out, h_out) = sess.run([outputs, state], {X: data})
    p = {k.rsplit("/", 1)[-1] if "projection" not in k else "proj": v for k, v in w.items()}
    c, h = np.zeros((2, 5)), np.zeros((2, 3))
    for t in range(3):
        i, j, f, o = np.split(np.concatenate([data[:, t], h], 1) @ p["kernel"] + p["bias"], 4, axis=1)
        c = sig(f + 1.0 + p["w_f_diag"] * c) * c + sig(i + p["w_i_diag"] * c) * np.tanh(j)
        c = np.clip(c, -0.5, 0.5)
        h = np.clip((sig(o + p["w_o_diag"] * c) * np.tanh(c)) @ p["proj"], -0.2, 0.2)
        np.testing.assert_allclose(out[:, t], h, rtol=1e-10)
    np.testing.assert_allclose(c_out, c, rtol=1e-10)
    np.testing.assert_allclose(h_out, h, rtol=1e-10)


def test_multi_rnn_cell_names_and_bidirectional_static_rnn():
    tf.reset_default_graph()
    X = tf.placeholder(tf.float32, [None, 3, 2])
    xs = tf.unstack(X, 3, 1)
    cells = tf.nn.rnn_cell.MultiRNNCell([tf.nn.rnn_cell.BasicRNNCell(4) for _ in range(2)])
    outs, states = tf.nn.static_rnn(cells, xs, dtype=tf.float32)
    assert len(states) == 2
    fw, bw = tf.contrib.rnn.BasicLSTMCell(3), tf.contrib.rnn.BasicLSTMCell(3)
    bi, s_fw, s_bw = tf.contrib.rnn.static_bidirectional_rnn(fw, bw, xs, dtype=tf.float32)
    names = [v.name.split(":")[0] for v in tf.global_variables()]
    assert names == ["rnn/multi_rnn_cell/cell_0/basic_rnn_cell/kernel", "rnn/multi_rnn_cell/cell_0/basic_rnn_cell/bias",
                     "rnn/multi_rnn_cell/cell_1/basic_rnn_cell/kernel", "rnn/multi_rnn_cell/cell_1/basic_rnn_cell/bias",
                     "bidirectional_rnn/fw/basic_lstm_cell/kernel", "bidirectional_rnn/fw/basic_lstm_cell/bias",
                     "bidirectional_rnn/bw/basic_lstm_cell/kernel", "bidirectional_rnn/bw/basic_lstm_cell/bias"]
    data = np.random.default_rng(4).normal(size=(2, 3, 2)).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        w = _values(sess, tf.global_variables())
        out, bi_out = sess.run([outs, bi], {X: data})
    h0 = h1 = np.zeros((2, 4))
    k = "rnn/multi_rnn_cell/cell_{}/basic_rnn_cell/{}"
    for t in range(3):
        h0 = np.tanh(np.concatenate([data[:, t], h0], 1) @ w[k.format(0, "kernel")] + w[k.format(0, "bias")])
        h1 = np.tanh(np.concatenate([h0, h1], 1) @ w[k.format(1, "kernel")] + w[k.format(1, "bias")])
        np.testing.assert_allclose(out[t], h1, rtol=1e-5, atol=1e-6)
    seq = [data[:, t] for t in range(3)]
    f_outs, _ = np_basic_lstm(seq, w["bidirectional_rnn/fw/basic_lstm_cell/kernel"],
                              w["bidirectional_rnn/fw/basic_lstm_cell/bias"])
    b_outs, _ = np_basic_lstm(seq[::-1], w["bidirectional_rnn/bw/basic_lstm_cell/kernel"],
                              w["bidirectional_rnn/bw/basic_lstm_cell/bias"])
    for t in range(3):
        np.testing.assert_allclose(bi_out[t], np.concatenate([f_outs[t], b_outs[2 - t]], 1), rtol=1e-5, atol=1e-6)


def test_bidirectional_dynamic_rnn_with_lengths_reverses_each_row():
    tf.reset_default_graph()
    X = tf.placeholder(tf.float64, [2, 4, 2])
    lengths = tf.constant([3, 1])
    (o_fw, o_bw), _ = tf.nn.bidirectional_dynamic_rnn(tf.nn.rnn_cell.BasicRNNCell(3), tf.nn.rnn_cell.BasicRNNCell(3),
                                                      X, sequence_length=lengths, dtype=tf.float64)
    data = np.random.default_rng(5).normal(size=(2, 4, 2))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        w = _values(sess, tf.global_variables())
        bw = sess.run(o_bw, {X: data})
    k, b = w["bidirectional_rnn/bw/basic_rnn_cell/kernel"], w["bidirectional_rnn/bw/basic_rnn_cell/bias"]
    for row, n in enumerate([3, 1]):
        h, want = np.zeros((1, 3)), []
        for t in reversed(range(n)):
            h = np.tanh(np.concatenate([data[row:row + 1, t], h], 1) @ k + b)
            want.append(h[0])
        np.testing.assert_allclose(bw[row, :n], np.array(want[::-1]), rtol=1e-10)
        np.testing.assert_array_equal(bw[row, n:], 0.0)


def test_dropout_wrapper_keeps_names_and_keep_prob_one_is_identity():
    tf.reset_default_graph()
    X = tf.placeholder(tf.float32, [2, 3, 2])
    keep = tf.placeholder_with_default(1.0, [])
    cell = tf.nn.rnn_cell.DropoutWrapper(tf.nn.rnn_cell.BasicLSTMCell(3), output_keep_prob=keep)
    out, _ = tf.nn.dynamic_rnn(cell, X, dtype=tf.float32)
    assert [v.name for v in tf.global_variables()] == ["rnn/basic_lstm_cell/kernel:0", "rnn/basic_lstm_cell/bias:0"]
    data = np.ones((2, 3, 2), np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        full = sess.run(out, {X: data})
        dropped = sess.run(out, {X: data, keep: 0.5})
    zero = dropped == 0
    assert zero.any() and (~zero).any()
    np.testing.assert_allclose(dropped[~zero], 2 * full[~zero], rtol=1e-5)
    with pytest.raises(UnsupportedError, match="variational_recurrent"):
        tf.nn.rnn_cell.DropoutWrapper(tf.nn.rnn_cell.BasicLSTMCell(3), variational_recurrent=True)


def test_unknown_time_dimension_and_unsupported_arguments_are_named():
    tf.reset_default_graph()      # an unknown time dimension runs a while loop: tests/test_dynamic_time_rnn.py
    with pytest.raises(UnsupportedError, match="num_unit_shards"):
        tf.nn.rnn_cell.LSTMCell(3, num_unit_shards=2)
    with pytest.raises(ValueError, match="dtype must be specified"):
        tf.nn.static_rnn(tf.nn.rnn_cell.GRUCell(2), [tf.zeros([1, 3])])


def test_row_lstm_on_digits_reaches_97_percent_with_contrib_rnn():
    pytest.importorskip("sklearn")
    from examples import lstm_digits_rows
    assert lstm_digits_rows.tf1(n_epochs=15, verbose=False) >= 0.97
