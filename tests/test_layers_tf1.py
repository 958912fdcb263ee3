"""tf.layers with TF 1.x's exact variable semantics: names under variable scopes (not name scopes),
default names, reuse, regularizers, constraints, dropout and batch normalization with Python or
tensor `training`, and a Geron-style (Hands-On ML ch. 10-11) program end to end."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import UnsupportedError


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def _numeric_grad(f, x, eps=1e-3):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


def test_geron_dnn_names_collections_partial_saver_and_training(tmp_path):
    rng = np.random.RandomState(0)
    X = tf.placeholder(tf.float32, shape=(None, 6), name="X")
    y = tf.placeholder(tf.int32, shape=(None,), name="y")
    with tf.name_scope("dnn"):
        hidden1 = tf.layers.dense(X, 16, name="hidden1", activation=tf.nn.relu)
        hidden2 = tf.layers.dense(hidden1, 8, name="hidden2", activation=tf.nn.relu)
        logits = tf.layers.dense(hidden2, 3, name="outputs")
    with tf.name_scope("loss"):
        xentropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        loss = tf.reduce_mean(xentropy, name="loss")
    with tf.name_scope("train"):
        training_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss)

    graph = tf.get_default_graph()
    assert [v.name for v in tf.global_variables()] == [
        "hidden1/kernel:0", "hidden1/bias:0", "hidden2/kernel:0", "hidden2/bias:0",
        "outputs/kernel:0", "outputs/bias:0"]
    assert hidden1.op.name == "dnn/hidden1/Relu"
    for op_name in ("dnn/hidden1/MatMul", "dnn/hidden1/BiasAdd", "dnn/outputs/BiasAdd"):
        graph.get_operation_by_name(op_name)
    kernel_t = graph.get_tensor_by_name("hidden1/kernel:0")
    assert tuple(kernel_t.shape.as_list()) == (6, 16)
    hidden12 = tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope="hidden[12]")
    assert [v.name for v in hidden12] == ["hidden1/kernel:0", "hidden1/bias:0", "hidden2/kernel:0",
                                          "hidden2/bias:0"]
    assert len(tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope="hidden[123]")) == 4
    partial_saver = tf.train.Saver(hidden12)

    centers = rng.randn(3, 6).astype(np.float32) * 3
    labels = rng.randint(0, 3, size=300)
    data = centers[labels] + rng.randn(300, 6).astype(np.float32)
    with tf.Session() as sess:
        tf.global_variables_initializer().run()
        kernel_value = sess.run(kernel_t)   # the variable's own tensor reads its value, as TF's ref does
        np.testing.assert_array_equal(kernel_value, sess.run(tf.global_variables()[0]))
        first = sess.run(loss, {X: data, y: labels})
        for _ in range(60):
            sess.run(training_op, {X: data, y: labels})
        last = sess.run(loss, {X: data, y: labels})
        trained_h1 = sess.run(kernel_t)
        path = partial_saver.save(sess, str(tmp_path / "hidden12.ckpt"))
    assert last < 0.5 * first

    # a new graph reuses the two hidden layers: restore them, initialize the rest
    tf.reset_default_graph()
    X = tf.placeholder(tf.float32, shape=(None, 6), name="X")
    with tf.name_scope("dnn"):
        hidden1 = tf.layers.dense(X, 16, name="hidden1", activation=tf.nn.relu)
        hidden2 = tf.layers.dense(hidden1, 8, name="hidden2", activation=tf.nn.relu)
        tf.layers.dense(hidden2, 5, name="new_outputs")
    restore = tf.train.Saver(tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope="hidden[12]"))
    with tf.Session() as sess:
        tf.global_variables_initializer().run()
        restore.restore(sess, path)
        np.testing.assert_array_equal(sess.run("hidden1/kernel:0"), trained_h1)


def test_dense_values_and_gradient_match_numpy():
    rng = np.random.RandomState(1)
    X = tf.placeholder(tf.float32, shape=(None, 3))
    out = tf.layers.dense(X, 2, activation=tf.nn.tanh, bias_initializer=tf.constant_initializer(0.5))
    kernel, bias = tf.trainable_variables()
    grad = tf.gradients(tf.reduce_sum(out), X)[0]
    x = rng.randn(4, 3).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        k, b = sess.run([kernel, bias])
        np.testing.assert_allclose(b, [0.5, 0.5])
        np.testing.assert_allclose(sess.run(out, {X: x}), np.tanh(x @ k + b), rtol=1e-5, atol=1e-6)
        num = _numeric_grad(lambda v: float(np.tanh(v.astype(np.float64) @ k + b).sum()), x.astype(np.float64))
        np.testing.assert_allclose(sess.run(grad, {X: x}), num, rtol=1e-3, atol=1e-4)


def test_dense_on_rank3_inputs_with_unknown_batch():
    X = tf.placeholder(tf.float32, shape=(None, 5, 3))
    out = tf.layers.dense(X, 4)
    assert out.shape.as_list() == [None, 5, 4]
    x = np.random.RandomState(2).randn(2, 5, 3).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        k, b = sess.run(tf.trainable_variables())
        np.testing.assert_allclose(sess.run(out, {X: x}), x @ k + b, rtol=1e-5, atol=1e-6)


def test_default_names_are_unique_and_reuse_shares_variables():
    X = tf.placeholder(tf.float32, shape=(None, 3))
    tf.layers.dense(X, 2)
    tf.layers.dense(X, 2)
    with tf.name_scope("block"):
        tf.layers.dense(X, 2)
    assert [v.name for v in tf.global_variables()] == [
        "dense/kernel:0", "dense/bias:0", "dense_1/kernel:0", "dense_1/bias:0", "dense_2/kernel:0",
        "dense_2/bias:0"]
    a = tf.layers.dense(X, 2, name="shared")
    b = tf.layers.dense(X, 2, name="shared", reuse=True)
    c = tf.layers.dense(X, 2, name="shared", reuse=tf.AUTO_REUSE)
    assert len(tf.global_variables()) == 8
    assert b.op.name.startswith("shared_1/") and c.op.name.startswith("shared_2/")
    with pytest.raises(ValueError, match="shared/kernel already exists"):
        tf.layers.dense(X, 2, name="shared")
    with pytest.raises(ValueError, match="does not exist"):
        tf.layers.dense(X, 2, name="never_made", reuse=True)
    x = np.ones((2, 3), np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        ra, rb, rc = sess.run([a, b, c], {X: x})
    np.testing.assert_array_equal(ra, rb)
    np.testing.assert_array_equal(ra, rc)


def test_dense_layer_object_reuses_its_variables():
    X = tf.placeholder(tf.float32, shape=(None, 3))
    layer = tf.layers.Dense(4, name="proj")
    y1, y2 = layer(X), layer(X * 2.0)
    assert [v.name for v in layer.trainable_variables] == ["proj/kernel:0", "proj/bias:0"]
    assert len(tf.global_variables()) == 2
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        k, b = sess.run([layer.kernel, layer.bias])
        r1, r2 = sess.run([y1, y2], {X: np.ones((1, 3), np.float32)})
    np.testing.assert_allclose(r2, 2 * np.ones((1, 3)) @ k + b, rtol=1e-5)


def test_trainable_false_and_unknown_arguments():
    X = tf.placeholder(tf.float32, shape=(None, 3))
    tf.layers.dense(X, 2, trainable=False, name="frozen")
    assert tf.trainable_variables() == []
    assert [v.name for v in tf.global_variables()] == ["frozen/kernel:0", "frozen/bias:0"]
    with pytest.raises(TypeError):
        tf.layers.dense(X, 2, kernel_init=tf.zeros_initializer())
    with pytest.raises(UnsupportedError, match="renorm"):
        tf.layers.batch_normalization(X, renorm=True)
    with pytest.raises(ValueError, match="fused"):
        tf.layers.batch_normalization(X, fused="yes")
    with pytest.raises(UnsupportedError, match="virtual_batch_size"):
        tf.layers.batch_normalization(X, virtual_batch_size=2)
    with pytest.raises(ValueError, match="expected ndim=4"):     # conv layers: tests/test_conv_layers.py
        tf.layers.conv2d(X, 3, 3)


def test_l1_kernel_regularizer_and_regularization_loss_training():
    rng = np.random.RandomState(3)
    X = tf.placeholder(tf.float32, shape=(None, 4))
    y = tf.placeholder(tf.float32, shape=(None, 1))
    scale = 0.01
    with tf.name_scope("dnn"):
        hidden = tf.layers.dense(X, 5, activation=tf.nn.relu, name="hidden1",
                                 kernel_regularizer=tf.contrib.layers.l1_regularizer(scale))
        out = tf.layers.dense(hidden, 1, name="outputs",
                              kernel_regularizer=tf.contrib.layers.l1_regularizer(scale))
    reg_losses = tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)
    assert len(reg_losses) == 2 and tf.losses.get_regularization_losses() == reg_losses
    base_loss = tf.reduce_mean(tf.square(out - y))
    reg_loss = tf.losses.get_regularization_loss()
    assert reg_loss.op.name == "total_regularization_loss"
    loss = tf.add_n([base_loss, reg_loss])
    train = tf.train.GradientDescentOptimizer(0.05).minimize(loss)
    x = rng.randn(64, 4).astype(np.float32)
    t = (x @ np.array([[1.0], [-2.0], [0.5], [0.0]], np.float32)).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        k1 = sess.run("hidden1/kernel:0")
        k2 = sess.run("outputs/kernel:0")
        np.testing.assert_allclose(sess.run(reg_loss), scale * (np.abs(k1).sum() + np.abs(k2).sum()), rtol=1e-5)
        first = sess.run(loss, {X: x, y: t})
        for _ in range(100):
            sess.run(train, {X: x, y: t})
        assert sess.run(loss, {X: x, y: t}) < 0.5 * first


def test_get_variable_and_variable_scope_regularizer():
    with tf.variable_scope("scoped", regularizer=tf.contrib.layers.l2_regularizer(0.5)):
        w = tf.get_variable("w", initializer=tf.constant([1.0, 2.0, 3.0]))
    v = tf.get_variable("v", initializer=tf.constant([[2.0, -1.0]]),
                        regularizer=tf.contrib.layers.l1_regularizer(0.1))
    assert tf.layers.dense is not None and w.name == "scoped/w:0"
    total = tf.losses.get_regularization_loss()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_allclose(sess.run(total), 0.5 * 14.0 / 2 + 0.1 * 3.0, rtol=1e-6)
    assert v.name == "v:0"


def test_empty_regularization_loss_is_zero():
    with tf.Session() as sess:
        assert sess.run(tf.losses.get_regularization_loss()) == 0.0


def test_activity_regularizer_is_averaged_over_the_batch():
    X = tf.placeholder(tf.float32, shape=(None, 2))
    out = tf.layers.dense(X, 3, kernel_initializer=tf.ones_initializer(),
                          activity_regularizer=tf.contrib.layers.l1_regularizer(1.0))
    (penalty,) = tf.losses.get_regularization_losses()
    x = np.array([[1.0, -2.0], [3.0, 0.5], [0.0, 1.0], [2.0, 2.0]], np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        o, p = sess.run([out, penalty], {X: x})
    np.testing.assert_allclose(p, np.abs(o).sum() / 4, rtol=1e-6)


def test_kernel_constraint_applied_after_each_optimizer_update():
    X = tf.placeholder(tf.float32, shape=(None, 3))
    out = tf.layers.dense(X, 2, kernel_initializer=tf.constant_initializer(0.05),
                          kernel_constraint=lambda w: tf.clip_by_value(w, -0.1, 0.1),
                          bias_constraint=lambda b: tf.clip_by_value(b, 0.0, 0.2))
    loss = tf.reduce_sum(out)
    train = tf.train.GradientDescentOptimizer(1.0).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train, {X: np.ones((4, 3), np.float32)})
        kernel, bias = sess.run(tf.trainable_variables())
    # plain GD would give 0.05 - 4 = -3.95 and 0 - 4 = -4; the constraints project the result
    np.testing.assert_allclose(kernel, np.full((3, 2), -0.1), rtol=1e-6)
    np.testing.assert_allclose(bias, np.zeros(2), atol=1e-7)


def test_dropout_python_and_tensor_training_and_noise_shape():
    x = np.arange(1, 4001, dtype=np.float32).reshape(40, 100)
    X = tf.placeholder(tf.float32, shape=(None, 100))
    training = tf.placeholder_with_default(False, shape=(), name="training")
    dropped = tf.layers.dropout(X, rate=0.25, training=training)
    always = tf.layers.dropout(X, rate=0.25, training=True)
    never = tf.layers.dropout(X, rate=0.25)
    shared = tf.layers.dropout(X, rate=0.5, noise_shape=[1, 100], training=True)
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(dropped, {X: x}), x)
        np.testing.assert_array_equal(sess.run(never, {X: x}), x)
        for out in (sess.run(dropped, {X: x, training: True}), sess.run(always, {X: x})):
            kept = out != 0
            np.testing.assert_allclose(out[kept], x[kept] / 0.75, rtol=1e-6)
            assert 0.65 < kept.mean() < 0.85
        s = sess.run(shared, {X: x})
        column_kept = s[0] != 0
        assert np.all((s != 0) == column_kept[None, :])   # one mask per column, shared by every row
        np.testing.assert_allclose(s[:, column_kept], x[:, column_kept] * 2.0, rtol=1e-6)


def _bn_reference(x, axis, eps=1e-3):
    axes = tuple(i for i in range(x.ndim) if i != axis)
    mean, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps), x.mean(axes), x.var(axes)


@pytest.mark.parametrize("shape,axis", [((16, 3), -1), ((4, 3, 5, 5), 1), ((4, 5, 5, 3), 3)])
def test_batch_normalization_training_inference_and_updates(shape, axis):
    rng = np.random.RandomState(4)
    x = (rng.randn(*shape) * 2 + 1.5).astype(np.float32)
    channels = shape[axis]
    X = tf.placeholder(tf.float32, shape=(None,) + shape[1:])
    training = tf.placeholder_with_default(False, shape=(), name="training")
    out = tf.layers.batch_normalization(X, axis=axis, momentum=0.9, training=training)
    names = [v.name for v in tf.global_variables()]
    assert names == ["batch_normalization/gamma:0", "batch_normalization/beta:0",
                     "batch_normalization/moving_mean:0", "batch_normalization/moving_variance:0"]
    assert [v.name for v in tf.trainable_variables()] == names[:2]
    updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    assert len(updates) == 2
    moving_mean, moving_var = tf.global_variables()[2:]
    ref, mean, var = _bn_reference(x.astype(np.float64), axis if axis >= 0 else len(shape) - 1)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        # training=False at run time: moving statistics, and running the update ops leaves them alone
        got, _ = sess.run([out, updates], {X: x})
        np.testing.assert_allclose(got, x / np.sqrt(1 + 1e-3), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(sess.run(moving_mean), np.zeros(channels))
        np.testing.assert_array_equal(sess.run(moving_var), np.ones(channels))
        # training: batch statistics; moving = moving - (moving - batch) * (1 - momentum)
        got, _ = sess.run([out, updates], {X: x, training: True})
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(sess.run(moving_mean), 0.1 * mean, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(sess.run(moving_var), 0.9 + 0.1 * var, rtol=1e-4)
        # inference with the new moving statistics
        mm, mv = sess.run([moving_mean, moving_var])
        bshape = [1] * len(shape)
        bshape[axis] = channels
        expect = (x - mm.reshape(bshape)) / np.sqrt(mv.reshape(bshape) + 1e-3)
        np.testing.assert_allclose(sess.run(out, {X: x}), expect, rtol=1e-4, atol=1e-4)


def test_batch_normalization_python_bools_and_gradient():
    rng = np.random.RandomState(5)
    x = rng.randn(6, 3).astype(np.float32)
    X = tf.placeholder(tf.float32, shape=(None, 3))
    infer = tf.layers.batch_normalization(X, name="bn")
    assert tf.get_collection(tf.GraphKeys.UPDATE_OPS) == []
    train = tf.layers.batch_normalization(X, training=True, name="bn", reuse=True, center=True, scale=True)
    assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)) == 2 and len(tf.global_variables()) == 4
    w = np.arange(18, dtype=np.float32).reshape(6, 3) / 10
    grad = tf.gradients(tf.reduce_sum(train * w), X)[0]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_allclose(sess.run(infer, {X: x}), x / np.sqrt(1 + 1e-3), rtol=1e-5)
        num = _numeric_grad(lambda v: float((_bn_reference(v, 1)[0] * w).sum()), x.astype(np.float64))
        np.testing.assert_allclose(sess.run(grad, {X: x}), num, rtol=2e-3, atol=2e-3)


def test_batch_norm_with_update_ops_learns():
    """Hands-On ML ch. 11: dense -> batch norm -> activation, training under UPDATE_OPS dependencies."""
    rng = np.random.RandomState(6)
    X = tf.placeholder(tf.float32, shape=(None, 5), name="X")
    y = tf.placeholder(tf.int32, shape=(None,), name="y")
    training = tf.placeholder_with_default(False, shape=(), name="training")
    with tf.name_scope("dnn"):
        hidden1 = tf.layers.dense(X, 20, name="hidden1")
        bn1 = tf.nn.relu(tf.layers.batch_normalization(hidden1, training=training, momentum=0.9))
        hidden1_drop = tf.layers.dropout(bn1, 0.1, training=training)
        logits = tf.layers.dense(hidden1_drop, 2, name="outputs")
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    with tf.control_dependencies(update_ops):
        train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    correct = tf.equal(tf.cast(tf.argmax(logits, 1), tf.int32), y)
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    data = (rng.randn(400, 5) * 4 + 10).astype(np.float32)
    labels = (data[:, 0] - data[:, 1] > 0).astype(np.int32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for epoch in range(30):
            for i in range(0, 400, 50):
                sess.run(train_op, {X: data[i:i + 50], y: labels[i:i + 50], training: True})
        acc = sess.run(accuracy, {X: data, y: labels})
        moving_mean = sess.run("batch_normalization/moving_mean:0")
        hidden = sess.run(hidden1, {X: data})
    assert acc > 0.9
    # after 240 updates with momentum 0.9 the moving mean tracks the hidden layer's batch means
    np.testing.assert_allclose(moving_mean, hidden.mean(0), rtol=0.1, atol=0.5)


def test_flatten_with_unknown_batch():
    X = tf.placeholder(tf.float32, shape=(None, 2, 3, 4))
    flat = tf.layers.flatten(X)
    assert flat.shape.as_list() == [None, 24]
    x = np.random.RandomState(7).randn(5, 2, 3, 4).astype(np.float32)
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(flat, {X: x}), x.reshape(5, 24))


def test_assign_through_variable_tensor_by_name():
    """Hands-On ML ch. 11 max-norm: tf.assign on get_tensor_by_name("hidden1/kernel:0")."""
    X = tf.placeholder(tf.float32, shape=(None, 3))
    tf.layers.dense(X, 2, name="hidden1", kernel_initializer=tf.constant_initializer(3.0))
    weights = tf.get_default_graph().get_tensor_by_name("hidden1/kernel:0")
    clip = tf.assign(weights, tf.clip_by_value(weights, -1.0, 1.0))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(clip)
        np.testing.assert_array_equal(sess.run(weights), np.ones((3, 2)))


def test_default_names_skip_explicit_scopes_and_restart_in_reentered_scope():
    X = tf.placeholder(tf.float32, shape=(None, 3))
    tf.layers.dense(X, 2, name="dense")
    tf.layers.dense(X, 2)                       # "dense" is taken by the explicit layer: dense_1
    with tf.variable_scope("block"):
        tf.layers.dense(X, 2)
    with tf.variable_scope("block", reuse=True):
        shared = tf.layers.dense(X, 2)          # re-entering restarts the default names: shares block/dense
    assert [v.name for v in tf.global_variables()] == [
        "dense/kernel:0", "dense/bias:0", "dense_1/kernel:0", "dense_1/bias:0", "block/dense/kernel:0",
        "block/dense/bias:0"]
    assert shared.op.name.startswith("block_1/dense/")


def test_get_variable_constraint_and_refused_arguments():
    with tf.variable_scope("s", constraint=lambda w: tf.clip_by_value(w, 0.0, 1.0)):
        v = tf.get_variable("v", initializer=tf.constant([0.5, 0.9]))
    u = tf.get_variable("u", initializer=tf.constant(2.0), constraint=lambda w: tf.minimum(w, 3.0))
    train = tf.train.GradientDescentOptimizer(1.0).minimize(-tf.reduce_sum(v) - u)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train)
        np.testing.assert_allclose(sess.run(v), [1.0, 1.0])
        assert sess.run(u) == 3.0
    with pytest.raises(UnsupportedError, match="partitioner"):
        tf.get_variable("p", shape=(4,), partitioner=lambda *a: [2])
    with pytest.raises(TypeError, match="bogus"):
        tf.get_variable("q", shape=(4,), bogus=1)
