"""tf.nn.dynamic_rnn / bidirectional_dynamic_rnn with a time dimension unknown when the graph is built
(TF's while loop over time, jitflow/api/rnn.py) and tf.TensorArray (jitflow/api/tensor_array.py).

One graph per case is fed several time lengths; every result equals the known-time (unrolled or fused)
path built on the same cell, so on the same variables. Gradients: equal to the known-time path's,
float64 finite differences, and an Adam step equal to the known-time path's step."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import UnsupportedError
from jitflow.pytree import flatten

BATCH, DEPTH = 3, 4
LENGTHS = (1, 3, 7)


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def _placeholder(steps, time_major, dtype=tf.float32):
    return tf.placeholder(dtype, [steps, None, DEPTH] if time_major else [None, steps, DEPTH])


def _lengths_for(steps):
    return np.array([0, steps, max(steps - 1, 1)], np.int32)      # an empty row, a full row, one between


def _check_against_known_time(make_cell, time_major=False, with_lengths=False, rtol=1e-5):
    dtype = tf.float32
    cell = make_cell()
    x = _placeholder(None, time_major, dtype)
    lengths = tf.placeholder(tf.int32, [None]) if with_lengths else None
    out, state = tf.nn.dynamic_rnn(cell, x, sequence_length=lengths, dtype=dtype, time_major=time_major)
    assert out.shape.as_list() == [None, None, cell.output_size]
    names = sorted(v.name for v in tf.global_variables())
    known = {}
    for steps in LENGTHS:
        xk = _placeholder(steps, time_major, dtype)
        known[steps] = (xk, tf.nn.dynamic_rnn(cell, xk, sequence_length=lengths, dtype=dtype,
                                              time_major=time_major))
    assert sorted(v.name for v in tf.global_variables()) == names          # the known-time graphs reuse them
    rng = np.random.default_rng(1)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for steps in LENGTHS:
            shape = (steps, BATCH, DEPTH) if time_major else (BATCH, steps, DEPTH)
            xv = rng.normal(size=shape).astype(np.float32)
            feed = {x: xv}
            xk, (out_k, state_k) = known[steps]
            feed_k = {xk: xv}
            if with_lengths:
                feed[lengths] = feed_k[lengths] = _lengths_for(steps)
            got = sess.run(flatten((out, state))[0], feed)
            want = sess.run(flatten((out_k, state_k))[0], feed_k)
            assert got[0].shape == want[0].shape == shape[:2] + (cell.output_size,)
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-6)
            if with_lengths:
                time_axis = 0 if time_major else 1
                empty = np.take(got[0], 0, axis=1 - time_axis)
                assert not empty.any()                                  # length 0: zero outputs ...
                for s in got[1:]:
                    assert not s[0].any()                               # ... and the (zero) initial state
    return names


def test_gru_batch_major_names_and_values():
    names = _check_against_known_time(lambda: tf.nn.rnn_cell.GRUCell(5))
    assert names == ["rnn/gru_cell/candidate/bias:0", "rnn/gru_cell/candidate/kernel:0",
                     "rnn/gru_cell/gates/bias:0", "rnn/gru_cell/gates/kernel:0"]


def test_basic_rnn_time_major_with_sequence_length():
    _check_against_known_time(lambda: tf.nn.rnn_cell.BasicRNNCell(5), time_major=True, with_lengths=True)


def test_lstm_with_sequence_length_matches_the_fused_known_time_path():
    names = _check_against_known_time(lambda: tf.nn.rnn_cell.LSTMCell(5), with_lengths=True)
    assert names == ["rnn/lstm_cell/bias:0", "rnn/lstm_cell/kernel:0"]


def test_lstm_peepholes_projection_time_major():
    names = _check_against_known_time(lambda: tf.nn.rnn_cell.LSTMCell(5, use_peepholes=True, num_proj=3,
                                                                      cell_clip=2.0),
                                      time_major=True)
    assert "rnn/lstm_cell/projection/kernel:0" in names and "rnn/lstm_cell/w_f_diag:0" in names


def test_multi_rnn_cell_with_sequence_length():
    names = _check_against_known_time(lambda: tf.nn.rnn_cell.MultiRNNCell(
        [tf.nn.rnn_cell.BasicLSTMCell(4), tf.nn.rnn_cell.GRUCell(3)]), with_lengths=True)
    assert "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel:0" in names
    assert "rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel:0" in names


def test_dropout_wrapper_keep_one_equals_and_keep_half_drops_per_step():
    keep = tf.placeholder_with_default(1.0, [])
    cell = tf.nn.rnn_cell.DropoutWrapper(tf.nn.rnn_cell.GRUCell(6), output_keep_prob=keep, seed=3)
    x = _placeholder(None, False)
    out, _ = tf.nn.dynamic_rnn(cell, x, dtype=tf.float32)
    xk = _placeholder(7, False)
    out_k, _ = tf.nn.dynamic_rnn(cell, xk, dtype=tf.float32)
    xv = np.random.default_rng(2).normal(size=(BATCH, 7, DEPTH)).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        full = sess.run(out, {x: xv})
        np.testing.assert_allclose(full, sess.run(out_k, {xk: xv}), rtol=1e-5, atol=1e-6)
        dropped = sess.run(out, {x: xv, keep: 0.5})
    zero = dropped == 0
    np.testing.assert_allclose(dropped[~zero], 2 * full[~zero], rtol=1e-5)     # output dropout: state unchanged
    assert 0.3 < zero.mean() < 0.7
    assert any((zero[:, t] != zero[:, 0]).any() for t in range(1, 7))            # a fresh mask every step


def test_bidirectional_with_lengths_matches_known_time():
    fw, bw = tf.nn.rnn_cell.GRUCell(3), tf.nn.rnn_cell.BasicLSTMCell(2)
    x = _placeholder(None, False)
    lengths = tf.placeholder(tf.int32, [None])
    (of, ob), (sf, sb) = tf.nn.bidirectional_dynamic_rnn(fw, bw, x, sequence_length=lengths, dtype=tf.float32)
    xk = _placeholder(5, False)
    (ofk, obk), (sfk, sbk) = tf.nn.bidirectional_dynamic_rnn(fw, bw, xk, sequence_length=lengths,
                                                              dtype=tf.float32)
    names = sorted(v.name for v in tf.global_variables())
    assert "bidirectional_rnn/fw/gru_cell/gates/kernel:0" in names
    assert "bidirectional_rnn/bw/basic_lstm_cell/kernel:0" in names and len(names) == 6
    xv = np.random.default_rng(3).normal(size=(BATCH, 5, DEPTH)).astype(np.float32)
    lv = np.array([5, 0, 2], np.int32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = sess.run(flatten((of, ob, sf, sb))[0], {x: xv, lengths: lv})
        want = sess.run(flatten((ofk, obk, sfk, sbk))[0], {xk: xv, lengths: lv})
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert not got[1][2, 2:].any() and got[1][2, :2].any()          # backward outputs stop at the length
        short = sess.run(of, {x: xv[:, :2], lengths: np.array([2, 1, 0], np.int32)})
    assert short.shape == (BATCH, 2, 3) and not short[2].any() and not short[1, 1].any()


def test_gradients_and_an_adam_step_match_the_known_time_path():
    cell = tf.nn.rnn_cell.MultiRNNCell([tf.nn.rnn_cell.GRUCell(4), tf.nn.rnn_cell.LSTMCell(3, use_peepholes=True)])
    x = _placeholder(None, False)
    lengths = tf.placeholder(tf.int32, [None])
    out, state = tf.nn.dynamic_rnn(cell, x, sequence_length=lengths, dtype=tf.float32)
    xk = _placeholder(6, False)
    out_k, state_k = tf.nn.dynamic_rnn(cell, xk, sequence_length=lengths, dtype=tf.float32)
    weights = tf.trainable_variables()

    def loss_of(o, s):
        return tf.reduce_mean(tf.square(o - 0.3)) + tf.reduce_sum(s[1].h)
    loss, loss_k = loss_of(out, state), loss_of(out_k, state_k)
    grads, grads_k = tf.gradients(loss, weights + [x]), tf.gradients(loss_k, weights + [xk])
    train = tf.train.AdamOptimizer(0.01).minimize(loss)
    train_k = tf.train.AdamOptimizer(0.01).minimize(loss_k)
    xv = np.random.default_rng(4).normal(size=(BATCH, 6, DEPTH)).astype(np.float32)
    lv = np.array([6, 3, 0], np.int32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for a, b in zip(sess.run(grads, {x: xv, lengths: lv}), sess.run(grads_k, {xk: xv, lengths: lv})):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
        start = sess.run(weights)
        before = sess.run(loss, {x: xv, lengths: lv})
        for _ in range(3):
            sess.run(train, {x: xv, lengths: lv})
        stepped = sess.run(weights)
        assert sess.run(loss, {x: xv, lengths: lv}) < before
        for v, value in zip(weights, start):
            v.load(value, sess)
        for _ in range(3):
            sess.run(train_k, {xk: xv, lengths: lv})
        for a, b in zip(stepped, sess.run(weights)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        # another length through the same training graph
        sess.run(train, {x: xv[:, :2], lengths: np.array([2, 2, 1], np.int32)})


def test_float64_gradients_match_finite_differences():
    cell = tf.nn.rnn_cell.GRUCell(2)
    x = _placeholder(None, False, tf.float64)
    lengths = tf.placeholder(tf.int32, [None])
    out, state = tf.nn.dynamic_rnn(cell, x, sequence_length=lengths, dtype=tf.float64)
    loss = tf.reduce_sum(tf.sin(out)) + tf.reduce_sum(state * state)
    weights = tf.trainable_variables()
    grads = tf.gradients(loss, weights + [x])
    rng = np.random.default_rng(5)
    xv = rng.normal(size=(BATCH, 3, DEPTH))
    feed = {x: xv, lengths: np.array([3, 1, 0], np.int32)}
    eps = 1e-6
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = sess.run(grads, feed)
        for v, g in zip(weights, got):
            base = sess.run(v)
            for flat in rng.choice(base.size, size=min(4, base.size), replace=False):
                idx = np.unravel_index(flat, base.shape)
                vals = []
                for step in (eps, -eps):
                    shifted = base.copy()
                    shifted[idx] += step
                    v.load(shifted, sess)
                    vals.append(sess.run(loss, feed))
                v.load(base, sess)
                assert abs((vals[0] - vals[1]) / (2 * eps) - g[idx]) < 1e-6 * max(1.0, abs(g[idx])), v.name
        for flat in rng.choice(xv.size, size=6, replace=False):
            idx = np.unravel_index(flat, xv.shape)
            vals = []
            for step in (eps, -eps):
                shifted = xv.copy()
                shifted[idx] += step
                vals.append(sess.run(loss, {**feed, x: shifted}))
            assert abs((vals[0] - vals[1]) / (2 * eps) - got[-1][idx]) < 1e-6, idx
    assert not got[-1][2].any() and not got[-1][1, 1:].any()      # steps past a row's length get no gradient


def test_tensor_array_basics_in_and_out_of_a_loop():
    ta = tf.TensorArray(tf.float32, size=3)
    ta = ta.write(0, [1.0, 2.0]).write(2, tf.constant([5.0, 6.0]))
    assert ta.element_shape.as_list() == [2]
    x = tf.placeholder(tf.float32, [None, 2])
    n = tf.shape(x)[0]
    xs = tf.TensorArray(tf.float32, size=n).unstack(x)
    acc = tf.TensorArray(tf.float32, size=n, element_shape=[2])

    def body(i, total, acc):
        row = xs.read(i)
        return i + 1, total + row, acc.write(i, total + row)
    _, total, acc = tf.while_loop(lambda i, total, acc: i < n, body, [0, tf.zeros([2]), acc],
                                  maximum_iterations=n)
    cumsum = acc.stack()
    picked = acc.gather([2, 0])
    grad = tf.gradients(tf.reduce_sum(cumsum * cumsum), x)[0]
    xv = np.arange(8, dtype=np.float32).reshape(4, 2)
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(ta.stack()), [[1, 2], [0, 0], [5, 6]])   # unwritten rows: zeros
        np.testing.assert_array_equal(sess.run(ta.read(2)), [5, 6])
        np.testing.assert_array_equal(sess.run(ta.concat()), [1, 2, 0, 0, 5, 6])
        assert sess.run(ta.size()) == 3
        got, pick, size, g = sess.run([cumsum, picked, acc.size(), grad], {x: xv})
    np.testing.assert_array_equal(got, np.cumsum(xv, axis=0))
    np.testing.assert_array_equal(pick, np.cumsum(xv, axis=0)[[2, 0]])
    assert size == 4
    want = np.flip(np.cumsum(np.flip(2 * np.cumsum(xv, axis=0), 0), axis=0), 0)     # d/dx of sum(cumsum^2)
    np.testing.assert_allclose(g, want, rtol=1e-6)


def test_tensor_array_errors_are_named():
    with pytest.raises(UnsupportedError, match="dynamic_size"):
        tf.TensorArray(tf.float32, size=0, dynamic_size=True)
    with pytest.raises(UnsupportedError, match="handle"):
        tf.TensorArray(tf.float32, size=2, handle=tf.constant(0))
    with pytest.raises(ValueError, match="Size must be provided"):
        tf.TensorArray(tf.float32)
    ta = tf.TensorArray(tf.float32, size=2).write(0, [1.0, 2.0])
    with pytest.raises(ValueError, match="Inconsistent shapes"):
        ta.write(1, [1.0, 2.0, 3.0])
    with pytest.raises(tf.errors.InvalidArgumentError, match="TensorArray dtype is float32"):
        ta.write(1, tf.constant([1, 2]))
    with pytest.raises(ValueError, match="out of range"):
        ta.read(2)
    with pytest.raises(UnsupportedError, match="element_shape"):
        tf.while_loop(lambda i, a: i < 2, lambda i, a: (i + 1, a), [0, tf.TensorArray(tf.float32, size=2)])
