"""tf.contrib.layers (fully_connected, batch_norm, dropout, flatten, regularizers, initializers) and
tf.metrics (accuracy, mean) with TF 1.x names, collections and values."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import UnsupportedError

layers = tf.contrib.layers


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def test_fully_connected_names_values_and_reuse():
    X = tf.placeholder(tf.float32, shape=(None, 3))
    h = layers.fully_connected(X, 4)
    out = layers.fully_connected(h, 2, activation_fn=None, scope="logits",
                                 weights_initializer=tf.constant_initializer(0.5),
                                 biases_initializer=tf.constant_initializer(-1.0))
    again = layers.fully_connected(h, 2, activation_fn=None, scope="logits", reuse=True)
    names = [v.name for v in tf.global_variables()]
    assert names == ["fully_connected/weights:0", "fully_connected/biases:0", "logits/weights:0",
                     "logits/biases:0"]
    assert [v.name for v in tf.get_collection(tf.GraphKeys.MODEL_VARIABLES)] == names
    assert h.op.name == "fully_connected/Relu"
    x = np.random.RandomState(0).randn(5, 3).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        w, b = sess.run(tf.global_variables()[:2])
        hv, ov, av = sess.run([h, out, again], {X: x})
    np.testing.assert_allclose(hv, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ov, hv @ np.full((4, 2), 0.5) - 1.0, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ov, av)


def test_fully_connected_regularizer_and_normalizer():
    X = tf.placeholder(tf.float32, shape=(None, 3))
    training = tf.placeholder_with_default(False, shape=())
    out = layers.fully_connected(X, 4, weights_regularizer=layers.l2_regularizer(0.1),
                                 normalizer_fn=layers.batch_norm,
                                 normalizer_params={"is_training": training, "decay": 0.9})
    names = [v.name for v in tf.global_variables()]
    assert names == ["fully_connected/weights:0", "fully_connected/BatchNorm/beta:0",
                     "fully_connected/BatchNorm/moving_mean:0", "fully_connected/BatchNorm/moving_variance:0"]
    (reg,) = tf.losses.get_regularization_losses()
    x = np.random.RandomState(1).randn(8, 3).astype(np.float32)
    updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        w = sess.run(tf.global_variables()[0])
        np.testing.assert_allclose(sess.run(reg), 0.1 * (w ** 2).sum() / 2, rtol=1e-5)
        got, _ = sess.run([out, updates], {X: x, training: True})
        z = x @ w
        ref = np.maximum((z - z.mean(0)) / np.sqrt(z.var(0) + 1e-3), 0)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(sess.run("fully_connected/BatchNorm/moving_mean:0"), 0.1 * z.mean(0),
                                   rtol=1e-4, atol=1e-6)


def test_batch_norm_defaults_nchw_and_in_place_updates():
    rng = np.random.RandomState(2)
    x = (rng.randn(4, 3, 2, 2) * 3 + 2).astype(np.float32)
    X = tf.placeholder(tf.float32, shape=(None, 3, 2, 2))
    out = layers.batch_norm(X, data_format="NCHW", updates_collections=None, scale=True)
    assert [v.name for v in tf.global_variables()] == [
        "BatchNorm/beta:0", "BatchNorm/gamma:0", "BatchNorm/moving_mean:0", "BatchNorm/moving_variance:0"]
    assert tf.get_collection(tf.GraphKeys.UPDATE_OPS) == []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = sess.run(out, {X: x})
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
        ref = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-3)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
        # decay 0.999 by default; the update ran as part of computing the output
        np.testing.assert_allclose(sess.run("BatchNorm/moving_mean:0"), 0.001 * mean, rtol=1e-3, atol=1e-7)
    tf.reset_default_graph()
    X = tf.placeholder(tf.float32, shape=(None, 3))
    layers.batch_norm(X, is_training=False)
    assert [v.name for v in tf.global_variables()] == [
        "BatchNorm/beta:0", "BatchNorm/moving_mean:0", "BatchNorm/moving_variance:0"]
    assert tf.get_collection(tf.GraphKeys.UPDATE_OPS) == []
    with pytest.raises(UnsupportedError, match="renorm"):
        layers.batch_norm(X, renorm=True)


def test_contrib_dropout_and_flatten():
    x = np.arange(1, 2001, dtype=np.float32).reshape(20, 10, 10)
    X = tf.placeholder(tf.float32, shape=(None, 10, 10))
    is_training = tf.placeholder_with_default(True, shape=())
    flat = layers.flatten(X)
    drop = layers.dropout(flat, keep_prob=0.8, is_training=is_training)
    assert flat.shape.as_list() == [None, 100]
    with tf.Session() as sess:
        d = sess.run(drop, {X: x})
        kept = d != 0
        np.testing.assert_allclose(d[kept], x.reshape(20, 100)[kept] / 0.8, rtol=1e-6)
        assert 0.7 < kept.mean() < 0.9
        np.testing.assert_array_equal(sess.run(drop, {X: x, is_training: False}), x.reshape(20, 100))


def test_regularizers_values_and_errors():
    w = tf.constant([[1.0, -2.0], [3.0, -0.5]])
    l1 = layers.l1_regularizer(0.1)(w)
    l2 = layers.l2_regularizer(0.1)(w)
    l1l2 = layers.l1_l2_regularizer(0.1, 0.2)(w)
    assert layers.l1_regularizer(0.0)(w) is None
    with pytest.raises(ValueError, match="integer"):
        layers.l2_regularizer(1)
    with pytest.raises(ValueError, match="less than 0"):
        layers.l1_regularizer(-0.5)
    total = layers.apply_regularization(layers.l1_regularizer(0.5), [w, tf.constant([4.0])])
    assert tf.losses.get_regularization_losses() == [total]
    with tf.Session() as sess:
        got = sess.run([l1, l2, l1l2, total])
    np.testing.assert_allclose(got, [0.1 * 6.5, 0.1 * 14.25 / 2, 0.1 * 6.5 + 0.2 * 14.25 / 2, 0.5 * 10.5],
                               rtol=1e-6)


def test_contrib_initializers_statistics():
    he = layers.variance_scaling_initializer()   # factor 2, FAN_IN, truncated normal
    uni = layers.variance_scaling_initializer(factor=1.0, mode="FAN_AVG", uniform=True)
    a = tf.get_variable("a", shape=(400, 300), initializer=he)
    b = tf.get_variable("b", shape=(400, 300), initializer=uni)
    c = tf.get_variable("c", shape=(400, 300), initializer=layers.xavier_initializer())
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        av, bv, cv = sess.run([a, b, c])
    # truncated normal of stddev sqrt(1.3 * 2 / 400) has the untruncated variance 2 / 400
    assert av.std() == pytest.approx(np.sqrt(2.0 / 400), rel=0.05)
    assert np.abs(av).max() <= 2 * np.sqrt(1.3 * 2 / 400) + 1e-6
    limit = np.sqrt(3.0 / 350)
    assert np.abs(bv).max() <= limit and bv.std() == pytest.approx(limit / np.sqrt(3), rel=0.05)
    assert np.abs(cv).max() <= np.sqrt(6.0 / 700)


def test_metrics_accuracy_streams_over_batches():
    labels = tf.placeholder(tf.int64, shape=(None,))
    logits = tf.placeholder(tf.float32, shape=(None, 3))
    acc, acc_op = tf.metrics.accuracy(labels=labels, predictions=tf.argmax(logits, 1))
    assert [v.name for v in tf.local_variables()] == ["accuracy/total:0", "accuracy/count:0"]
    assert tf.get_collection(tf.GraphKeys.METRIC_VARIABLES) == tf.local_variables()
    assert tf.global_variables() == [] and acc.op.name == "accuracy/value"
    rng = np.random.RandomState(3)
    batches = [(rng.randint(0, 3, size=n), rng.randn(n, 3).astype(np.float32)) for n in (5, 7, 4)]
    correct = seen = 0
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        assert sess.run(acc) == 0.0
        for y, z in batches:
            running = sess.run(acc_op, {labels: y, logits: z})
            correct += (z.argmax(1) == y).sum()
            seen += len(y)
            assert running == pytest.approx(correct / seen)
        assert sess.run(acc) == pytest.approx(correct / seen)
        sess.run(tf.local_variables_initializer())   # resets the streaming state
        assert sess.run(acc) == 0.0


def test_metrics_mean_weighted_and_second_metric_names():
    values = tf.placeholder(tf.float32, shape=(None,))
    weights = tf.placeholder(tf.float32, shape=(None,))
    mean, update = tf.metrics.mean(values)
    wmean, wupdate = tf.metrics.mean(values, weights=weights, name="weighted")
    acc2 = tf.metrics.accuracy([1, 2], [1, 3], weights=[[1.0], [3.0]])
    acc3 = tf.metrics.accuracy([1, 2], [1, 3])
    assert [v.name for v in tf.local_variables()] == [
        "mean/total:0", "mean/count:0", "weighted/total:0", "weighted/count:0", "accuracy/total:0",
        "accuracy/count:0", "accuracy_1/total:0", "accuracy_1/count:0"]
    with tf.Session() as sess:
        sess.run(tf.local_variables_initializer())
        sess.run([update, wupdate], {values: [1.0, 2.0, 6.0], weights: [1.0, 0.0, 3.0]})
        sess.run([update, wupdate], {values: [3.0], weights: [4.0]})
        assert sess.run(mean) == pytest.approx(3.0)
        assert sess.run(wmean) == pytest.approx((1 + 18 + 12) / 8)
        assert sess.run(acc2[1]) == pytest.approx(0.25)
        assert sess.run(acc3[1]) == pytest.approx(0.5)


def test_missing_contrib_names_raise_attribute_error():
    with pytest.raises(AttributeError):
        layers.conv2d_in_plane   # noqa: B018
