"""The fused LSTM path (jitflow/api/lstm_fast.py, ops lstm_block / lstm_block_grad, codegen/lstm_kernels.py):
dynamic_rnn / static_rnn with a plain LSTMCell or BasicLSTMCell run as one `BlockLSTM` op, and give the
composite path's and a numpy LSTM's outputs, final states and gradients (inputs, kernel, bias, initial
state), with ragged sequence_length, batch 1, time-major inputs, state_is_tuple=False; float64 gradients
against finite differences; ineligible cells keep the composite path; the GPU has no kernel for it."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.api.lstm_fast import use_fused_lstm
from jitflow.errors import UnsupportedError


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_lstm(x, kernel, bias, c0, h0, forget_bias=1.0, lengths=None):
    """TF 1.x LSTMCell under dynamic_rnn, batch-major x [B, T, D]: (outputs, c, h)."""
    batch, steps, _ = x.shape
    n = h0.shape[1]
    c, h = c0.copy(), h0.copy()
    outputs = np.zeros((batch, steps, n), x.dtype)
    for t in range(steps):
        gates = np.concatenate([x[:, t], h], 1) @ kernel + bias
        i, j, f, o = (gates[:, k * n:(k + 1) * n] for k in range(4))
        new_c = c * _sigmoid(f + forget_bias) + _sigmoid(i) * np.tanh(j)
        new_h = np.tanh(new_c) * _sigmoid(o)
        valid = np.ones((batch, 1), bool) if lengths is None else (t < lengths)[:, None]
        c, h = np.where(valid, new_c, c), np.where(valid, new_h, h)
        outputs[:, t] = np.where(valid, new_h, 0)
    return outputs, c, h


def _build(fused, cell_type=tf.nn.rnn_cell.LSTMCell, batch=3, steps=5, depth=4, units=6, dtype=tf.float32,
           lengths=None, time_major=False, state_is_tuple=True, forget_bias=1.0, seed=0):
    """A graph with dynamic_rnn over placeholders; returns (session, tensors, feed, values)."""
    r = np.random.default_rng(seed)
    npt = dtype.np
    xv = r.standard_normal((batch, steps, depth)).astype(npt)
    kv = (r.uniform(-1, 1, (depth + units, 4 * units)) * 0.6).astype(npt)
    bv = (r.uniform(-1, 1, 4 * units) * 0.3).astype(npt)
    c0v = (r.standard_normal((batch, units)) * 0.5).astype(npt)
    h0v = (r.standard_normal((batch, units)) * 0.5).astype(npt)
    graph = tf.Graph()
    with graph.as_default(), use_fused_lstm(fused):
        x = tf.placeholder(dtype, (None, steps, depth))
        c0, h0 = tf.placeholder(dtype, (None, units)), tf.placeholder(dtype, (None, units))
        cell = cell_type(units, forget_bias=forget_bias, state_is_tuple=state_is_tuple)
        state = tf.nn.rnn_cell.LSTMStateTuple(c0, h0) if state_is_tuple else tf.concat([c0, h0], 1)
        inputs = tf.transpose(x, [1, 0, 2]) if time_major else x
        outputs, final = tf.nn.dynamic_rnn(cell, inputs, sequence_length=lengths, initial_state=state,
                                           time_major=time_major)
        if time_major:
            outputs = tf.transpose(outputs, [1, 0, 2])
        c_last, h_last = final if state_is_tuple else (final[:, :units], final[:, units:])
        kernel_var, bias_var = cell.variables
        weights = tf.constant(r.standard_normal((batch, steps, units)).astype(npt))
        loss = tf.reduce_sum(outputs * weights) + tf.reduce_sum(c_last * 0.7) + tf.reduce_sum(h_last * -1.3)
        grads = tf.gradients(loss, [x, kernel_var, bias_var, c0, h0])
        sess = tf.Session(graph=graph)
        sess.run(tf.global_variables_initializer())
        sess.run([tf.assign(kernel_var, kv), tf.assign(bias_var, bv)])
    feed = {x: xv, c0: c0v, h0: h0v}
    kinds = {op.type for op in graph.get_operations()}
    return sess, (outputs, c_last, h_last, loss, grads), feed, (xv, kv, bv, c0v, h0v), kinds


def _run_both(**kw):
    results = []
    for fused in (True, False):
        sess, (outputs, c, h, loss, grads), feed, values, kinds = _build(fused, **kw)
        assert ("BlockLSTM" in kinds) == fused
        results.append((sess.run([outputs, c, h, loss] + grads, feed), values))
    return results


# units 6: the per-step products on BLAS; 64 (float32) / 32 (float64): the generated register-blocked
# GEMM on packed weights (codegen/lstm_gemm.py: columns a multiple of 4 vectors)
@pytest.mark.parametrize("cell_type,units,batch", [(tf.nn.rnn_cell.LSTMCell, 6, 3),
                                                   (tf.nn.rnn_cell.BasicLSTMCell, 6, 3),
                                                   (tf.nn.rnn_cell.LSTMCell, 64, 7)])
def test_fused_matches_numpy_and_composite(cell_type, units, batch):
    (fast, values), (slow, _) = _run_both(cell_type=cell_type, forget_bias=0.5, units=units, batch=batch)
    xv, kv, bv, c0v, h0v = values
    out, c, h = numpy_lstm(xv, kv, bv, c0v, h0v, forget_bias=0.5)
    np.testing.assert_allclose(fast[0], out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast[1], c, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast[2], h, rtol=1e-4, atol=1e-5)
    for a, b in zip(fast, slow):       # outputs, states, loss and the five gradients
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=5e-5)


def test_float64_generated_gemm_path_matches_composite():
    lengths = np.array([5, 3, 1, 4, 0, 2, 5, 5, 1], np.int32)
    (fast, values), (slow, _) = _run_both(batch=9, units=32, dtype=tf.float64, lengths=lengths)
    xv, kv, bv, c0v, h0v = values
    out, c, h = numpy_lstm(xv, kv, bv, c0v, h0v, lengths=lengths)
    np.testing.assert_allclose(fast[0], out, rtol=1e-11, atol=1e-12)
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-11)


def test_ragged_sequence_length_zeroes_outputs_and_carries_state():
    lengths = np.array([5, 2, 0, 3], np.int32)
    (fast, values), (slow, _) = _run_both(batch=4, lengths=lengths)
    xv, kv, bv, c0v, h0v = values
    out, c, h = numpy_lstm(xv, kv, bv, c0v, h0v, lengths=lengths)
    np.testing.assert_allclose(fast[0], out, rtol=1e-5, atol=1e-5)
    assert np.all(fast[0][1, 2:] == 0) and np.all(fast[0][2] == 0)
    np.testing.assert_allclose(fast[1], c, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast[2][2], h0v[2], rtol=1e-6)      # length 0: the initial state
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_batch_one_time_major_and_concatenated_state():
    (fast, values), (slow, _) = _run_both(batch=1, time_major=True, state_is_tuple=False,
                                          cell_type=tf.nn.rnn_cell.BasicLSTMCell)
    xv, kv, bv, c0v, h0v = values
    out, c, h = numpy_lstm(xv, kv, bv, c0v, h0v)
    np.testing.assert_allclose(fast[0], out, rtol=1e-5, atol=1e-5)
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_float64_gradients_match_finite_differences():
    lengths = np.array([4, 1], np.int64)
    sess, (outputs, c, h, loss, grads), feed, values, kinds = _build(True, batch=2, steps=4, depth=3, units=3,
                                                                      dtype=tf.float64, lengths=lengths)
    assert "BlockLSTM" in kinds
    x, c0, h0 = list(feed)
    analytic = sess.run(grads, feed)
    eps = 1e-6
    for k, key in ((0, x), (3, c0), (4, h0)):
        base = feed[key]
        numeric = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            plus, minus = base.copy(), base.copy()
            plus[idx] += eps
            minus[idx] -= eps
            numeric[idx] = (sess.run(loss, {**feed, key: plus}) - sess.run(loss, {**feed, key: minus})) / (2 * eps)
        np.testing.assert_allclose(analytic[k], numeric, rtol=1e-6, atol=1e-7)


def test_weight_gradients_match_finite_differences_float64():
    sess, (outputs, c, h, loss, grads), feed, values, kinds = _build(True, batch=2, steps=3, depth=2, units=2,
                                                                      dtype=tf.float64)
    graph = loss.graph
    analytic = sess.run(grads, feed)
    with graph.as_default():
        kernel_var, bias_var = [v for v in tf.trainable_variables()]
        eps = 1e-6
        for k, var in ((1, kernel_var), (2, bias_var)):
            base = sess.run(var)
            numeric = np.zeros_like(base)
            for idx in np.ndindex(base.shape):
                vals = []
                for sign in (1, -1):
                    moved = base.copy()
                    moved[idx] += sign * eps
                    var.load(moved, sess)
                    vals.append(sess.run(loss, feed))
                numeric[idx] = (vals[0] - vals[1]) / (2 * eps)
            var.load(base, sess)
            np.testing.assert_allclose(analytic[k], numeric, rtol=1e-6, atol=1e-7)


def test_static_rnn_takes_the_fused_path():
    r = np.random.default_rng(3)
    xv = r.standard_normal((4, 2, 3)).astype(np.float32)      # 4 steps of [2, 3]
    kv, bv = r.uniform(-0.5, 0.5, (8, 20)).astype(np.float32), r.uniform(-0.5, 0.5, 20).astype(np.float32)
    results = []
    for fused in (True, False):
        graph = tf.Graph()
        with graph.as_default(), use_fused_lstm(fused):
            tf.set_random_seed(1)
            x = tf.placeholder(tf.float32, (4, None, 3))
            cell = tf.nn.rnn_cell.BasicLSTMCell(5)
            outputs, (c, h) = tf.nn.static_rnn(cell, tf.unstack(x), dtype=tf.float32)
            assert len(outputs) == 4
            loss = tf.reduce_sum(tf.stack(outputs) ** 2)
            grads = tf.gradients(loss, [x] + cell.variables)
            assert ("BlockLSTM" in {op.type for op in graph.get_operations()}) == fused
            assert [v.name for v in tf.global_variables()] == ["rnn/basic_lstm_cell/kernel:0",
                                                               "rnn/basic_lstm_cell/bias:0"]
            with tf.Session() as sess:
                sess.run(tf.global_variables_initializer())
                kernel_var, bias_var = cell.variables
                kernel_var.load(kv, sess)
                bias_var.load(bv, sess)
                results.append(sess.run(outputs + [c, h] + grads, {x: xv}))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_ineligible_cells_keep_the_composite_path():
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, (2, 3, 4))
        tf.nn.dynamic_rnn(tf.nn.rnn_cell.LSTMCell(5, use_peepholes=True), x, dtype=tf.float32, scope="a")
        tf.nn.dynamic_rnn(tf.nn.rnn_cell.LSTMCell(5, num_proj=3), x, dtype=tf.float32, scope="b")
        tf.nn.dynamic_rnn(tf.nn.rnn_cell.BasicLSTMCell(5, activation=tf.nn.relu), x, dtype=tf.float32, scope="c")
        tf.nn.dynamic_rnn(tf.nn.rnn_cell.GRUCell(5), x, dtype=tf.float32, scope="d")
        assert "BlockLSTM" not in {op.type for op in graph.get_operations()}
        tf.nn.dynamic_rnn(tf.nn.rnn_cell.LSTMCell(5), x, dtype=tf.float32, scope="e")
        assert "BlockLSTM" in {op.type for op in graph.get_operations()}


def test_gpu_build_names_the_op():
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, (2, 3, 4))
        outputs, _ = tf.nn.dynamic_rnn(tf.nn.rnn_cell.LSTMCell(5), x, dtype=tf.float32)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            with pytest.raises(UnsupportedError, match="lstm_block"):
                sess.inspect(outputs, {x: np.zeros((2, 3, 4), np.float32)}, device="gpu")


def test_kernels_without_blas_match_the_reference(monkeypatch):
    """JITFLOW_BLAS=0 (or no BLAS found): the per-step products of the BLAS-path sizes run as plain loops."""
    from jitflow.ops.lstm_block import _block_reference, _grad_reference
    from jitflow.runtime import blas
    monkeypatch.setenv("JITFLOW_BLAS", "0")
    monkeypatch.setenv("JITFLOW_CACHE", "0")
    blas.reset_for_tests()
    try:
        r = np.random.default_rng(5)
        steps, batch, depth, n = 4, 3, 2, 5
        x = r.standard_normal((steps * batch, depth))
        kernel, bias = r.standard_normal((depth + n, 4 * n)) * 0.4, r.standard_normal(4 * n) * 0.2
        c0, h0 = r.standard_normal((batch, n)), r.standard_normal((batch, n))
        drec = r.standard_normal((steps, batch, 6 * n))
        graph = tf.Graph()
        with graph.as_default():
            ins = [tf.constant(v) for v in (x, kernel, bias, c0, h0)]
            attrs = {"steps": steps, "forget_bias": 1.0}
            rec = graph.create_op("lstm_block", ins, attrs).outputs[0]
            grads = graph.create_op("lstm_block_grad", [rec, tf.constant(drec), ins[1], ins[3]], attrs).outputs[0]
            with tf.Session() as sess:
                got_rec, got_grads = sess.run([rec, grads])
    finally:
        monkeypatch.undo()
        blas.reset_for_tests()
    want = _block_reference(x, kernel, bias, c0, h0, steps=steps)
    np.testing.assert_allclose(got_rec, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_grads, _grad_reference(want, drec, kernel, c0), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("units,batch,depth,gate", [(4, 3, 3, "sigmoid"), (64, 13, 3, "sigmoid"), (32, 9, 0, "sigmoid"),
                                                    (4, 3, 3, "hard_sigmoid"), (64, 5, 2, "hard_sigmoid")])
def test_the_three_kernels_match_their_references(dtype, units, batch, depth, gate):
    """lstm_block, lstm_block_grad, lstm_block_inputs vs their numpy references (ragged lengths in float64)."""
    from jitflow.ops.lstm_block import _block_reference, _grad_reference, _inputs_reference
    r = np.random.default_rng(units + batch)
    steps, n = 5, units
    lengths = np.array(([5, 2, 0] * 10)[:batch], np.int32) if dtype == np.float64 else None
    x = r.standard_normal((steps * batch, depth)).astype(dtype)
    kernel = (r.standard_normal((depth + n, 4 * n)) * 0.3).astype(dtype)
    bias, c0, h0 = (r.standard_normal(s).astype(dtype) for s in (4 * n, (batch, n), (batch, n)))
    drec = r.standard_normal((steps, batch, 6 * n)).astype(dtype)
    graph = tf.Graph()
    with graph.as_default():
        ins = [tf.constant(v) for v in (x, kernel, bias, c0, h0)]
        extra = [tf.constant(lengths)] if lengths is not None else []
        attrs = {"steps": steps, "forget_bias": 1.0, "gate_activation": gate}
        rec = graph.create_op("lstm_block", ins + extra, attrs).outputs[0]
        grads = graph.create_op("lstm_block_grad", [rec, tf.constant(drec), ins[1], ins[3]] + extra, attrs).outputs[0]
        inputs = graph.create_op("lstm_block_inputs", [ins[0], rec, ins[4]], {"steps": steps}).outputs[0]
        with tf.Session() as sess:
            got = sess.run([rec, grads, inputs])
    tol = dict(rtol=1e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    want = _block_reference(x, kernel, bias, c0, h0, lengths, steps=steps, gate_activation=gate)
    np.testing.assert_allclose(got[0], want, **tol)
    np.testing.assert_allclose(got[1], _grad_reference(want, drec, kernel, c0, lengths, gate_activation=gate), **tol)
    np.testing.assert_allclose(got[2], _inputs_reference(x, want, h0), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows,m,cols", [(300, 7, 64), (40, 5, 12), (520, 11, 128)])
def test_weight_gradient_kernel_matches_its_reference(dtype, rows, m, cols):
    """lstm_block_weight_grad = inputs @ grads: the K-blocked panel GEMM (columns a multiple of a panel;
    520 rows: two K blocks and a partial one) and the BLAS path (12 columns)."""
    r = np.random.default_rng(rows)
    inputs, grads = r.standard_normal((m, rows)).astype(dtype), r.standard_normal((rows, cols)).astype(dtype)
    graph = tf.Graph()
    with graph.as_default():
        out = graph.create_op("lstm_block_weight_grad", [tf.constant(inputs), tf.constant(grads)]).outputs[0]
        with tf.Session() as sess:
            got = sess.run(out)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(got, inputs @ grads, **tol)


@pytest.mark.parametrize("recurrent_activation,go_backwards", [("hard_sigmoid", False), ("sigmoid", True)])
def test_keras_lstm_fused_matches_the_unrolled_layer(recurrent_activation, go_backwards):
    from jitflow import keras
    r = np.random.default_rng(7)
    xv = r.standard_normal((3, 6, 4)).astype(np.float32)
    h0v, c0v = r.standard_normal((3, 5)).astype(np.float32), r.standard_normal((3, 5)).astype(np.float32)
    results = []
    for fused in (True, False):
        graph = tf.Graph()
        with graph.as_default(), use_fused_lstm(fused):
            tf.set_random_seed(3)
            x = tf.placeholder(tf.float32, (None, 6, 4))
            h0, c0 = tf.constant(h0v), tf.constant(c0v)
            layer = keras.layers.LSTM(5, return_sequences=True, return_state=True, go_backwards=go_backwards,
                                      recurrent_activation=recurrent_activation, bias_initializer="random_normal")
            seq, h, c = layer(x, initial_state=[h0, c0])
            assert ("BlockLSTM" in {op.type for op in graph.get_operations()}) == fused
            loss = tf.reduce_sum(seq * np.linspace(-1, 1, 5).astype(np.float32)) + tf.reduce_sum(c * c)
            grads = tf.gradients(loss, [x, h0, c0] + layer.weights)
            with tf.Session() as sess:
                sess.run(tf.global_variables_initializer())
                results.append(sess.run([seq, h, c] + grads, {x: xv}))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def _unknown_time_model(fused, seq):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, None, 5])
        lengths = tf.placeholder(tf.int32, [None]) if seq else None
        with use_fused_lstm(fused):
            out, state = tf.nn.dynamic_rnn(tf.nn.rnn_cell.LSTMCell(7), x, sequence_length=lengths, dtype=tf.float32)
        loss = tf.reduce_sum(out * out) + tf.reduce_sum(state.c) + tf.reduce_sum(state.h * 2.0)
        fetches = [out, state.c, state.h] + tf.gradients(loss, tf.trainable_variables() + [x])
        sess = tf.Session(graph=graph)
        sess.run(tf.global_variables_initializer())
    return sess, x, lengths, fetches, {op.type for op in graph.get_operations()}


@pytest.mark.parametrize("seq", [False, True])
def test_an_unknown_time_dimension_takes_the_fused_op_and_matches_the_loop(seq):
    """[None, None, depth] inputs: one lstm_block whose steps come from the specialized shape, equal to
    dynamic_rnn's while loop (the composite cell) for several lengths fed to one graph, gradients included."""
    fused, loop = _unknown_time_model(True, seq), _unknown_time_model(False, seq)
    assert "BlockLSTM" in fused[4] and "BlockLSTM" not in loop[4]
    for a, b in zip(fused[0].graph.get_collection("trainable_variables"),
                    loop[0].graph.get_collection("trainable_variables")):
        b.load(fused[0].run(a), loop[0])
    r = np.random.default_rng(4)
    for steps in (1, 3, 7):
        xv = r.standard_normal((4, steps, 5)).astype(np.float32)
        feeds = [{fused[1]: xv}, {loop[1]: xv}]
        if seq:
            lv = np.array([0, steps, max(steps - 1, 0), 1], np.int32)
            feeds[0][fused[2]], feeds[1][loop[2]] = lv, lv
        got, want = fused[0].run(fused[3], feeds[0]), loop[0].run(loop[3], feeds[1])
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


def test_sequence_mask_takes_a_maxlen_known_per_run():
    x = tf.placeholder(tf.float32, [None, None])
    mask = tf.sequence_mask(tf.constant([1, 3, 0]), tf.shape(x)[1], dtype=tf.float32)
    with tf.Session() as sess:
        for width in (2, 4):
            want = (np.arange(width)[None, :] < np.array([1, 3, 0])[:, None]).astype(np.float32)
            np.testing.assert_array_equal(sess.run(mask, {x: np.zeros((3, width), np.float32)}), want)
    with pytest.raises(ValueError, match="scalar"):
        tf.sequence_mask(tf.constant([1]), tf.shape(x))


def test_keras_lstm_with_an_unknown_number_of_steps():
    keras = tf.keras
    model = keras.Sequential([keras.layers.LSTM(8, input_shape=(None, 3)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    r = np.random.default_rng(2)
    model.fit(r.standard_normal((16, 5, 3)).astype(np.float32), np.ones((16, 1), np.float32), epochs=1, verbose=0)
    for steps in (9, 2):
        xv = r.standard_normal((2, steps, 3)).astype(np.float32)
        kernel, recurrent, bias, w, b = model.get_weights()
        h = c = np.zeros((2, 8), np.float32)
        sig = lambda z: np.clip(0.2 * z + 0.5, 0.0, 1.0)     # noqa: E731 - TF 1.x Keras: hard_sigmoid
        for t in range(steps):
            z = xv[:, t] @ kernel + h @ recurrent + bias
            i, f, g, o = np.split(z, 4, axis=1)
            c = sig(f) * c + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(c)
        np.testing.assert_allclose(model.predict(xv, verbose=0), h @ w + b, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="incompatible"):
        model.predict(np.zeros((2, 4, 5), np.float32), verbose=0)
