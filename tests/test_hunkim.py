"""Patterns from hunkim/DeepLearningZeroToAll ("모두를 위한 딥러닝", TF 1.x labs and Keras klabs) that
jitflow once missed, and a few of the course's programs end to end in compressed form (tiny synthetic
data, a few steps):

- lab-11-4/11-5: `tf.layers.dropout(..., training=tf.placeholder(tf.bool))` (unshaped flag) lost the
  static shape, and `tf.reshape` of an unknown-rank tensor to a static shape gave an unknown shape
- lab-12-*: `tf.contrib.seq2seq.sequence_loss`
- lab-10-7: `tf.contrib.framework.arg_scope` over `tf.contrib.layers.fully_connected/batch_norm/dropout`
- lab-13-2/13-3: `tf.summary.image`
- klab-*: Keras 2 spellings: `SGD(lr=...)`, `predict_classes`, `keras.utils.np_utils`,
  `keras.utils.vis_utils.plot_model`, `keras.datasets` as a module path, `RepeatVector`,
  `keras.callbacks.TensorBoard`, `K.image_dim_ordering()`, `initializers.random_normal`, 'adadelta'
"""
import io
import struct

import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import UnsupportedError


def _softmax_xent(logits, labels):
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.take_along_axis(logp, labels[..., None], -1)[..., 0]


# ---------------------------------------------------------------- shapes through an unshaped bool flag

def test_reshape_of_unknown_rank_keeps_the_static_target_shape():
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32)
        y = tf.reshape(x, [-1, 28, 28, 1])
        assert y.shape.as_list() == [None, 28, 28, 1]
        assert tf.reshape(x, [2, 3]).shape.as_list() == [2, 3]
        data = np.arange(2 * 784, dtype=np.float32)
        with tf.Session() as sess:
            np.testing.assert_array_equal(sess.run(y, {x: data}), data.reshape(-1, 28, 28, 1))


def test_layers_dropout_with_unshaped_training_placeholder_feeds_conv2d():
    with tf.Graph().as_default():
        tf.set_random_seed(1)
        training = tf.placeholder(tf.bool)                       # lab-11-4: no shape given
        x = tf.placeholder(tf.float32, [None, 6, 6, 2])
        d = tf.layers.dropout(x, rate=0.5, training=training)
        assert d.shape.as_list() == [None, 6, 6, 2]
        y = tf.layers.conv2d(d, filters=3, kernel_size=[3, 3], padding="SAME",
                             kernel_initializer=tf.ones_initializer())
        assert y.shape.as_list() == [None, 6, 6, 3]
        data = np.random.RandomState(0).rand(2, 6, 6, 2).astype(np.float32) + 0.5
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            np.testing.assert_array_equal(sess.run(d, {x: data, training: False}), data)
            dropped = sess.run(d, {x: data, training: True})
            kept = dropped != 0
            assert 0.2 < kept.mean() < 0.8
            np.testing.assert_allclose(dropped[kept], data[kept] * 2, rtol=1e-6)
            padded = np.pad(data.sum(-1), ((0, 0), (1, 1), (1, 1)))
            want = sum(padded[:, i:i + 6, j:j + 6] for i in range(3) for j in range(3))
            np.testing.assert_allclose(sess.run(y, {x: data, training: False})[..., 0], want, rtol=1e-5)


# ---------------------------------------------------------------- tf.contrib.seq2seq.sequence_loss

@pytest.fixture
def seq_data():
    rng = np.random.RandomState(0)
    logits = rng.randn(2, 3, 4).astype(np.float32)
    targets = rng.randint(0, 4, (2, 3)).astype(np.int32)
    weights = np.array([[1, 1, 0], [1, 0.5, 0]], np.float32)
    return logits, targets, weights


@pytest.mark.parametrize("kwargs", [
    {}, {"average_across_batch": False}, {"average_across_timesteps": False},
    {"average_across_timesteps": False, "average_across_batch": False},
    {"average_across_timesteps": False, "average_across_batch": False, "sum_over_timesteps": True,
     "sum_over_batch": True},
    {"average_across_timesteps": False, "sum_over_timesteps": True},
])
def test_sequence_loss_matches_tf_1_15(seq_data, kwargs):
    logits, targets, weights = seq_data
    ce = _softmax_xent(logits, targets) * weights

    def div(a, b):
        return np.where(b == 0, 0.0, a / np.where(b == 0, 1, b))
    at, ab = kwargs.get("average_across_timesteps", True), kwargs.get("average_across_batch", True)
    st, sb = kwargs.get("sum_over_timesteps", False), kwargs.get("sum_over_batch", False)
    if at and ab:
        want = ce.sum() / weights.sum()
    elif st and sb:
        want = ce.sum() / (weights != 0).sum()
    elif at or ab:
        axis = 0 if ab else 1
        want = div(ce.sum(axis), weights.sum(axis))
    elif st or sb:
        axis = 0 if sb else 1
        want = div(ce.sum(axis), (weights != 0).sum(axis))
    else:
        want = ce
    with tf.Graph().as_default():
        lg = tf.placeholder(tf.float32, [None, None, 4])
        tg = tf.placeholder(tf.int32, [None, None])
        w = tf.placeholder(tf.float32, [None, None])
        loss = tf.contrib.seq2seq.sequence_loss(lg, tg, w, **kwargs)
        with tf.Session() as sess:
            got = sess.run(loss, {lg: logits, tg: targets, w: weights})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_sequence_loss_gradient_matches_finite_differences(seq_data):
    logits, targets, weights = seq_data
    with tf.Graph().as_default():
        lg = tf.placeholder(tf.float64, [2, 3, 4])
        loss = tf.contrib.seq2seq.sequence_loss(lg, targets, weights.astype(np.float64))
        grad, = tf.gradients(loss, [lg])
        with tf.Session() as sess:
            base = logits.astype(np.float64)
            g = sess.run(grad, {lg: base})
            numeric = np.zeros_like(base)
            for idx in np.ndindex(base.shape):
                hi, lo = base.copy(), base.copy()
                hi[idx] += 1e-6
                lo[idx] -= 1e-6
                numeric[idx] = (sess.run(loss, {lg: hi}) - sess.run(loss, {lg: lo})) / 2e-6
    np.testing.assert_allclose(g, numeric, atol=1e-6)
    assert np.all(g[:, 2] == 0)                   # zero weights: no gradient


def test_sequence_loss_errors():
    with tf.Graph().as_default():
        lg, tg, w = tf.zeros([2, 3, 4]), tf.zeros([2, 3], tf.int32), tf.ones([2, 3])
        with pytest.raises(ValueError, match="cannot be set to True at same time"):
            tf.contrib.seq2seq.sequence_loss(lg, tg, w, sum_over_timesteps=True)
        with pytest.raises(ValueError, match="Logits must be a"):
            tf.contrib.seq2seq.sequence_loss(tf.zeros([2, 4]), tg, w)


# ---------------------------------------------------------------- tf.contrib.framework.arg_scope

def test_arg_scope_sets_defaults_nests_and_explicit_arguments_win():
    from jitflow.contrib.framework import add_arg_scope, arg_scope, current_arg_scope

    @add_arg_scope
    def op(a, b=1, c=2):
        return a, b, c

    assert op(0) == (0, 1, 2)
    with arg_scope([op], b=10):
        assert op(0) == (0, 10, 2)
        with arg_scope([op], c=20) as scope:
            assert op(0) == (0, 10, 20)
            assert op(0, c=5) == (0, 10, 5)
        assert op(0) == (0, 10, 2)
    assert op(0) == (0, 1, 2)
    with arg_scope(scope):
        assert op(0) == (0, 10, 20)
    assert current_arg_scope() == {}
    with pytest.raises(ValueError, match="not decorated with @add_arg_scope"):
        with arg_scope([lambda x: x], b=1):
            pass
    with pytest.raises(TypeError, match="list/tuple"):
        with arg_scope(op, b=1):
            pass


def test_arg_scope_over_contrib_fully_connected_values():
    from jitflow.contrib.framework import arg_scope
    from jitflow.contrib.layers import fully_connected
    w = np.arange(6, dtype=np.float32).reshape(3, 2) / 10 - 0.2
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None, 3])
        with arg_scope([fully_connected], activation_fn=tf.nn.relu,
                       weights_initializer=tf.constant_initializer(w), biases_initializer=None):
            h = fully_connected(x, 2, scope="h1")
            out = fully_connected(x, 2, activation_fn=None, scope="out")
        assert sorted(v.op.name for v in tf.global_variables()) == ["h1/weights", "out/weights"]
        data = np.random.RandomState(0).randn(4, 3).astype(np.float32)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            hv, ov = sess.run([h, out], {x: data})
    np.testing.assert_allclose(ov, data @ w, rtol=1e-5)
    np.testing.assert_allclose(hv, np.maximum(data @ w, 0), rtol=1e-5)


# ---------------------------------------------------------------- tf.summary.image

def _png_pixels(data):
    PIL = pytest.importorskip("PIL.Image")
    return np.array(PIL.open(io.BytesIO(data)))


def test_summary_image_float_and_uint8():
    summary_pb2 = pytest.importorskip("tensorboard.compat.proto.summary_pb2")
    rng = np.random.RandomState(0)
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None, 4, 5, 1])
        s = tf.summary.image("input", x, 2)
        u = tf.placeholder(tf.uint8, [None, 3, 2, 3])
        s1 = tf.summary.image("rgb", u, max_outputs=1)
        assert s in tf.get_collection(tf.GraphKeys.SUMMARIES)
        with pytest.raises(ValueError, match="4-D"):
            tf.summary.image("bad", tf.zeros([4, 5, 1]))
        signed = rng.randn(3, 4, 5, 1).astype(np.float32)
        signed[1] = np.abs(signed[1])                           # all non-negative: [0, max] -> [0, 255]
        rgb = rng.randint(0, 256, (2, 3, 2, 3)).astype(np.uint8)
        with tf.Session() as sess:
            pb = summary_pb2.Summary.FromString(sess.run(s, {x: signed}))
            pb1 = summary_pb2.Summary.FromString(sess.run(s1, {u: rgb}))
    assert [v.tag for v in pb.value] == ["input/image/0", "input/image/1"]   # max_outputs of 3 images
    top = np.abs(signed[0]).max()
    np.testing.assert_array_equal(_png_pixels(pb.value[0].image.encoded_image_string),
                                  (signed[0, ..., 0] * (127 / top) + 128).astype(np.uint8))
    np.testing.assert_array_equal(_png_pixels(pb.value[1].image.encoded_image_string),
                                  (signed[1, ..., 0] * (255 / signed[1].max())).astype(np.uint8))
    assert (pb.value[0].image.height, pb.value[0].image.width, pb.value[0].image.colorspace) == (4, 5, 1)
    assert [v.tag for v in pb1.value] == ["rgb/image"]
    np.testing.assert_array_equal(_png_pixels(pb1.value[0].image.encoded_image_string), rgb[0])


# ---------------------------------------------------------------- Keras 2 spellings (klab-*)

def test_keras2_module_paths_import():
    from jitflow.keras.datasets import mnist                     # noqa: F401
    from jitflow.keras.utils import np_utils
    from jitflow.keras.utils.np_utils import to_categorical
    from jitflow.keras.utils.vis_utils import plot_model
    from jitflow.keras import backend as K
    from jitflow.keras import initializers
    np.testing.assert_array_equal(np_utils.to_categorical([2, 0], num_classes=3), [[0, 0, 1], [1, 0, 0]])
    assert to_categorical is np_utils.to_categorical
    assert plot_model is tf.keras.utils.plot_model
    assert K.image_dim_ordering() == "tf" and K.image_data_format() == "channels_last"
    with pytest.raises(UnsupportedError):
        K.set_image_data_format("channels_first")
    init = initializers.random_normal(stddev=0.01)
    assert isinstance(init, initializers.RandomNormal) and initializers.RandomNormal().stddev == 0.05


def test_plot_model_without_pydot_is_tf_import_error(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "pydot", None)
    model = tf.keras.Sequential([tf.keras.layers.Dense(2, input_dim=3)])
    with pytest.raises(ImportError, match="Failed to import pydot"):
        tf.keras.utils.plot_model(model, to_file="model.png", show_shapes=True)


def test_keras_optimizer_lr_alias_and_rejected_keywords():
    from jitflow.keras.optimizers import SGD, Adam, RMSprop, Adadelta
    assert SGD(lr=0.1).learning_rate == pytest.approx(0.1)
    assert Adam(lr=0.01).learning_rate == pytest.approx(0.01)
    assert RMSprop(lr=0.2).learning_rate == pytest.approx(0.2)
    assert Adadelta().learning_rate == pytest.approx(0.001)
    SGD(lr=0.1, decay=0.0)
    with pytest.raises(TypeError, match="Unexpected keyword argument passed to optimizer: foo"):
        SGD(foo=1)
    with pytest.raises(UnsupportedError, match="clipnorm"):
        Adam(clipnorm=1.0)
    with pytest.raises(UnsupportedError, match="decay"):
        SGD(lr=0.1, decay=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd_lr", "adadelta"])
def test_keras_sgd_lr_and_adadelta_one_step(optimizer):
    from jitflow.keras.optimizers import SGD, Adadelta
    x = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], np.float32)
    y = np.array([[1.0], [0.0], [2.0]], np.float32)
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_dim=2, kernel_initializer="ones",
                                                       bias_initializer="zeros")])
    opt = SGD(lr=0.1) if optimizer == "sgd_lr" else "adadelta"
    model.compile(loss="mse", optimizer=opt)
    model.train_on_batch(x, y)
    w = np.ones((2, 1))
    err = x @ w - y
    gw, gb = 2 * x.T @ err / len(x), 2 * err.mean(0)
    if optimizer == "sgd_lr":
        w, b = w - 0.1 * gw, -0.1 * gb
    else:
        rho, eps, lr = 0.95, 1e-7, 0.001

        def step(g):
            accum = (1 - rho) * g * g
            return lr * np.sqrt(eps) / np.sqrt(accum + eps) * g
        w, b = w - step(gw), -step(gb)
    kernel, bias = model.layers[0].get_weights()
    np.testing.assert_allclose(kernel, w, rtol=1e-5)
    np.testing.assert_allclose(bias, b, rtol=1e-5, atol=1e-7)
    assert isinstance(Adadelta(), Adadelta)


def test_predict_classes_and_predict_proba():
    x = np.array([[1.0, -2.0], [-3.0, 1.0]], np.float32)
    binary = tf.keras.Sequential([tf.keras.layers.Dense(1, input_dim=2, activation="sigmoid",
                                                        kernel_initializer="ones")])
    p = binary.predict_proba(x)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-x.sum(1, keepdims=True))), rtol=1e-5)
    got = binary.predict_classes(x)
    assert got.dtype == np.int32 and got.tolist() == [[0], [0]]
    w = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 2.0]], np.float32)
    multi = tf.keras.Sequential([tf.keras.layers.Dense(3, input_dim=2, activation="softmax",
                                                       kernel_initializer=tf.keras.initializers.Constant(w))])
    np.testing.assert_array_equal(multi.predict_classes(x), (x @ w).argmax(-1))


def test_repeat_vector_values_and_training():
    from jitflow.keras.layers import RepeatVector
    model = tf.keras.Sequential([tf.keras.layers.Dense(2, input_dim=3), RepeatVector(4),
                                 tf.keras.layers.TimeDistributed(tf.keras.layers.Dense(1))])
    x = np.random.RandomState(0).rand(5, 3).astype(np.float32)
    out = model.predict(x)
    assert out.shape == (5, 4, 1)
    np.testing.assert_allclose(out, np.repeat(out[:, :1], 4, axis=1), rtol=1e-6)
    assert RepeatVector(4).compute_output_shape((None, 2)) == (None, 4, 2)
    model.compile(loss="mse", optimizer="adam")
    y = np.ones((5, 4, 1), np.float32)
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, verbose=0)
    assert model.evaluate(x, y, verbose=0) < first
    assert model.get_config()["layers"][1]["class_name"] == "RepeatVector"


def _read_event_scalars(logdir):
    event_pb2 = pytest.importorskip("tensorboard.compat.proto.event_pb2")
    out = []
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                out.append((event.step, v.tag, v.simple_value))
            if event.graph_def:
                out.append((event.step, "<graph>", len(event.graph_def)))
    return out


def test_keras_tensorboard_callback_writes_epoch_scalars(tmp_path):
    from jitflow.keras.callbacks import TensorBoard
    x = np.random.RandomState(0).rand(8, 2).astype(np.float32)
    y = x.sum(1, keepdims=True)
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_dim=2)])
    model.compile(loss="mse", optimizer="sgd", metrics=["mse"])
    history = model.fit(x, y, epochs=3, verbose=0, validation_data=(x, y),
                        callbacks=[TensorBoard(log_dir=str(tmp_path), histogram_freq=0, write_graph=True)])
    records = _read_event_scalars(tmp_path)
    assert any(tag == "<graph>" for _, tag, _ in records)
    losses = [(step, value) for step, tag, value in records if tag == "loss"]
    assert [s for s, _ in losses] == [0, 1, 2]
    np.testing.assert_allclose([v for _, v in losses], history.history["loss"], rtol=1e-6)
    assert {"val_loss", "mse", "val_mse"} <= {tag for _, tag, _ in records}
    with pytest.raises(UnsupportedError, match="histogram_freq"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[TensorBoard(log_dir=str(tmp_path), histogram_freq=1)])
    batch_dir = tmp_path / "batch"
    model.fit(x, y, epochs=2, batch_size=3, verbose=0,
              callbacks=[TensorBoard(log_dir=str(batch_dir), write_graph=False, update_freq="batch")])
    records = _read_event_scalars(batch_dir)
    assert [s for s, tag, _ in records if tag == "batch_loss"] == list(range(6))     # 3 batches per epoch
    assert [s for s, tag, _ in records if tag == "epoch_loss"] == [8, 16]            # samples seen


# ---------------------------------------------------------------- the course's programs, compressed

def test_lab_09_2_xor_nn_end_to_end():
    x_data = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y_data = np.array([[0], [1], [1], [0]], dtype=np.float32)
    with tf.Graph().as_default():
        tf.set_random_seed(777)
        X = tf.placeholder(tf.float32, [None, 2])
        Y = tf.placeholder(tf.float32, [None, 1])
        W1 = tf.Variable(tf.random_normal([2, 2]), name='weight1')
        b1 = tf.Variable(tf.random_normal([2]), name='bias1')
        layer1 = tf.sigmoid(tf.matmul(X, W1) + b1)
        W2 = tf.Variable(tf.random_normal([2, 1]), name='weight2')
        b2 = tf.Variable(tf.random_normal([1]), name='bias2')
        hypothesis = tf.sigmoid(tf.matmul(layer1, W2) + b2)
        cost = -tf.reduce_mean(Y * tf.log(hypothesis) + (1 - Y) * tf.log(1 - hypothesis))
        train = tf.train.GradientDescentOptimizer(learning_rate=0.1).minimize(cost)
        predicted = tf.cast(hypothesis > 0.5, dtype=tf.float32)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            first = sess.run(cost, feed_dict={X: x_data, Y: y_data})
            for _ in range(300):
                sess.run(train, feed_dict={X: x_data, Y: y_data})
            w1, bb1, w2, bb2, h, c, p = sess.run([W1, b1, W2, b2, hypothesis, cost, predicted],
                                                 feed_dict={X: x_data, Y: y_data})
    assert c < first
    ref = 1 / (1 + np.exp(-((1 / (1 + np.exp(-(x_data @ w1 + bb1)))) @ w2 + bb2)))
    np.testing.assert_allclose(h, ref, rtol=1e-4)
    np.testing.assert_array_equal(p, (ref > 0.5).astype(np.float32))


def test_lab_12_1_hello_rnn_end_to_end():
    idx2char = ['h', 'i', 'e', 'l', 'o']
    x_one_hot = np.eye(5, dtype=np.float32)[[[0, 1, 0, 2, 3, 3]]]    # hihell
    y_data = [[1, 0, 2, 3, 3, 4]]                                    # ihello
    with tf.Graph().as_default():
        tf.set_random_seed(777)
        X = tf.placeholder(tf.float32, [None, 6, 5])
        Y = tf.placeholder(tf.int32, [None, 6])
        cell = tf.contrib.rnn.BasicLSTMCell(num_units=5, state_is_tuple=True)
        initial_state = cell.zero_state(1, tf.float32)
        outputs, _states = tf.nn.dynamic_rnn(cell, X, initial_state=initial_state, dtype=tf.float32)
        X_for_fc = tf.reshape(outputs, [-1, 5])
        outputs = tf.contrib.layers.fully_connected(inputs=X_for_fc, num_outputs=5, activation_fn=None)
        outputs = tf.reshape(outputs, [1, 6, 5])
        weights = tf.ones([1, 6])
        sequence_loss = tf.contrib.seq2seq.sequence_loss(logits=outputs, targets=Y, weights=weights)
        loss = tf.reduce_mean(sequence_loss)
        train = tf.train.AdamOptimizer(learning_rate=0.1).minimize(loss)
        prediction = tf.argmax(outputs, axis=2)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            losses = []
            for _ in range(40):
                l, o, _ = sess.run([loss, outputs, train], feed_dict={X: x_one_hot, Y: y_data})
                losses.append(l)
                np.testing.assert_allclose(l, _softmax_xent(o, np.array(y_data)).mean(), rtol=1e-4)
            result = sess.run(prediction, feed_dict={X: x_one_hot})
    assert losses[-1] < losses[0] * 0.5
    assert ''.join(idx2char[c] for c in np.squeeze(result)) == "ihello"


def test_lab_10_7_arg_scope_batchnorm_mlp_end_to_end():
    from jitflow.contrib.framework import arg_scope
    from jitflow.contrib.layers import batch_norm, dropout, fully_connected
    rng = np.random.RandomState(0)
    x_data = rng.rand(64, 12).astype(np.float32)
    labels = (x_data[:, :4].argmax(1))
    y_data = np.eye(4, dtype=np.float32)[labels]
    with tf.Graph().as_default():
        tf.set_random_seed(777)
        X = tf.placeholder(tf.float32, [None, 12])
        Y = tf.placeholder(tf.float32, [None, 4])
        train_mode = tf.placeholder(tf.bool, name='train_mode')
        bn_params = {'is_training': train_mode, 'decay': 0.9, 'updates_collections': None}
        with arg_scope([fully_connected], activation_fn=tf.nn.relu,
                       weights_initializer=tf.contrib.layers.xavier_initializer(), biases_initializer=None,
                       normalizer_fn=batch_norm, normalizer_params=bn_params):
            h1 = fully_connected(X, 16, scope="h1")
            h1_drop = dropout(h1, 0.7, is_training=train_mode)
            hypothesis = fully_connected(h1_drop, 4, activation_fn=None, scope="hypothesis")
        assert hypothesis.shape.as_list() == [None, 4]
        cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=hypothesis, labels=Y))
        optimizer = tf.train.AdamOptimizer(learning_rate=0.01).minimize(cost)
        moving_mean = [v for v in tf.global_variables() if v.op.name == "h1/BatchNorm/moving_mean"][0]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            first = sess.run(cost, {X: x_data, Y: y_data, train_mode: False})
            for _ in range(60):
                sess.run(optimizer, {X: x_data, Y: y_data, train_mode: True})
            last = sess.run(cost, {X: x_data, Y: y_data, train_mode: False})
            before = sess.run(moving_mean)
            sess.run(hypothesis, {X: x_data, train_mode: False})      # inference: no moving-average update
            np.testing.assert_array_equal(sess.run(moving_mean), before)
            logits = sess.run(hypothesis, {X: x_data, train_mode: False})
    assert last < first
    assert np.any(before != 0)                                    # updates ran with updates_collections=None
    assert (logits.argmax(1) == labels).mean() > 0.6


def test_klab_12_5_seq2seq_keras_end_to_end():
    from jitflow.keras.layers import Activation, Dense, LSTM, RepeatVector, TimeDistributed
    from jitflow.keras.models import Sequential
    from jitflow.keras.utils import np_utils
    rng = np.random.RandomState(0)
    picks = rng.randint(0, 4, (32, 3))
    dataX = np_utils.to_categorical(picks, num_classes=8).reshape(-1, 3, 8)
    dataY = np_utils.to_categorical(picks + 4, num_classes=8).reshape(-1, 3, 8)
    model = Sequential()
    model.add(LSTM(8, input_shape=(3, 8), return_sequences=False))
    model.add(RepeatVector(3))
    model.add(LSTM(8, return_sequences=True))
    model.add(TimeDistributed(Dense(8)))
    model.add(Activation('softmax'))
    model.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['accuracy'])
    history = model.fit(dataX, dataY, epochs=15, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    pred = model.predict(dataX[:4])
    assert pred.shape == (4, 3, 8)
    np.testing.assert_allclose(pred.sum(-1), 1, rtol=1e-5)
    classes = model.predict_classes(dataX[:4])
    np.testing.assert_array_equal(classes, pred.argmax(-1))
