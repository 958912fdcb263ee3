"""tf.losses as in TF 1.x: every loss against numpy, `weights` (0, scalar, broadcastable), every
`Reduction`, the LOSSES collection, get_total_loss, and gradients against finite differences."""
import numpy as np
import pytest

import jitflow as tf

R = tf.losses.Reduction


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def _reduce(losses, weights, reduction):
    w = np.broadcast_to(np.asarray(weights, np.float64), losses.shape)
    weighted = losses * w
    if reduction == R.NONE:
        return weighted
    total = weighted.sum()
    if reduction == R.SUM:
        return total
    if reduction == R.MEAN:
        denom = w.sum()
    elif reduction == R.SUM_OVER_BATCH_SIZE:
        denom = losses.size
    else:
        denom = (w != 0).sum()
    return 0.0 if denom == 0 else total / denom


rng = np.random.RandomState(0)
LABELS01 = rng.randint(0, 2, size=(4, 3)).astype(np.float32)
PRED01 = rng.uniform(0.05, 0.95, size=(4, 3)).astype(np.float32)
LOGITS = rng.randn(4, 3).astype(np.float32) * 2
A = rng.randn(4, 3).astype(np.float32)
B = rng.randn(4, 3).astype(np.float32)


def _sigmoid_xent(z, x):
    return np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))


def _log_softmax(x):
    s = x - x.max(-1, keepdims=True)
    return s - np.log(np.exp(s).sum(-1, keepdims=True))


CASES = {
    "mean_squared_error": (lambda **k: tf.losses.mean_squared_error(A, B, **k), (B - A) ** 2.0),
    "absolute_difference": (lambda **k: tf.losses.absolute_difference(A, B, **k), np.abs(B - A)),
    "log_loss": (lambda **k: tf.losses.log_loss(LABELS01, PRED01, **k),
                 -LABELS01 * np.log(PRED01 + 1e-7) - (1 - LABELS01) * np.log(1 - PRED01 + 1e-7)),
    "hinge_loss": (lambda **k: tf.losses.hinge_loss(LABELS01, LOGITS, **k),
                   np.maximum(0, 1 - LOGITS * (2 * LABELS01 - 1))),
    "huber_loss": (lambda **k: tf.losses.huber_loss(A, 2 * B, delta=0.7, **k),
                   np.where(np.abs(2 * B - A) <= 0.7, 0.5 * (2 * B - A) ** 2,
                            0.7 * (np.abs(2 * B - A) - 0.5 * 0.7))),
    "sigmoid_cross_entropy": (lambda **k: tf.losses.sigmoid_cross_entropy(LABELS01, LOGITS, **k),
                              _sigmoid_xent(LABELS01, LOGITS)),
}


@pytest.mark.parametrize("reduction", [R.NONE, R.SUM, R.MEAN, R.SUM_BY_NONZERO_WEIGHTS, R.SUM_OVER_BATCH_SIZE,
                                       R.SUM_OVER_NONZERO_WEIGHTS])
def test_elementwise_losses_weights_and_reductions(reduction):
    weights_options = [1.0, 0.0, 2.5, np.array([[1.0], [0.0], [2.0], [0.5]], np.float32),
                       np.array([[0.0, 1.0, 3.0]], np.float32)]
    fetches, expected = [], []
    for name, (build, losses) in CASES.items():
        for weights in weights_options:
            fetches.append(build(weights=weights, reduction=reduction))
            expected.append(_reduce(losses.astype(np.float64), weights, reduction))
    with tf.Session() as sess:
        got = sess.run(fetches)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    assert len(tf.get_collection(tf.GraphKeys.LOSSES)) == len(fetches)


def test_default_reduction_is_sum_by_nonzero_weights_and_zero_weights_give_zero():
    assert tf.losses.Reduction.SUM_OVER_NONZERO_WEIGHTS == tf.losses.Reduction.SUM_BY_NONZERO_WEIGHTS
    loss = tf.losses.mean_squared_error([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], weights=[1.0, 0.0, 1.0])
    zero = tf.losses.mean_squared_error([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], weights=0.0)
    assert loss.op.name == "mean_squared_error/value"
    with tf.Session() as sess:
        assert sess.run(loss) == pytest.approx(4.0 / 2)
        assert sess.run(zero) == 0.0


def test_cross_entropies_with_label_smoothing_and_sparse_weights():
    onehot = np.eye(3, dtype=np.float32)[[0, 2, 1, 2]]
    ls = 0.2
    smooth = onehot * (1 - ls) + ls / 3
    softmax = tf.losses.softmax_cross_entropy(onehot, LOGITS, label_smoothing=ls)
    softmax_w = tf.losses.softmax_cross_entropy(onehot, LOGITS, weights=[1.0, 2.0, 0.0, 1.0])
    sig = tf.losses.sigmoid_cross_entropy(LABELS01, LOGITS, label_smoothing=ls)
    sparse = tf.losses.sparse_softmax_cross_entropy(np.array([0, 2, 1, 2], np.int32), LOGITS,
                                                    weights=np.array([[1.0], [2.0], [0.0], [1.0]], np.float32))
    sparse_col = tf.losses.sparse_softmax_cross_entropy(np.array([[0], [2], [1], [2]], np.int64), LOGITS)
    ls_xent = -(smooth * _log_softmax(LOGITS)).sum(-1)
    xent = -(onehot * _log_softmax(LOGITS)).sum(-1)
    with tf.Session() as sess:
        got = sess.run([softmax, softmax_w, sig, sparse, sparse_col])
    np.testing.assert_allclose(got[0], ls_xent.mean(), rtol=1e-5)
    np.testing.assert_allclose(got[1], (xent * [1, 2, 0, 1]).sum() / 3, rtol=1e-5)
    np.testing.assert_allclose(got[2], _sigmoid_xent(LABELS01 * (1 - ls) + 0.5 * ls, LOGITS).mean(), rtol=1e-5)
    np.testing.assert_allclose(got[3], (xent * [1, 2, 0, 1]).sum() / 3, rtol=1e-5)
    np.testing.assert_allclose(got[4], xent.mean(), rtol=1e-5)


def test_cosine_distance():
    a = A / np.linalg.norm(A, axis=1, keepdims=True)
    b = B / np.linalg.norm(B, axis=1, keepdims=True)
    loss = tf.losses.cosine_distance(a, b, axis=1)
    per_row = tf.losses.cosine_distance(a, b, axis=1, reduction=R.NONE)
    assert per_row.shape.as_list() == [4, 1]
    with pytest.raises(ValueError, match="axis"):
        tf.losses.cosine_distance(a, b)
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(loss), (1 - (a * b).sum(1)).mean(), rtol=1e-5)
        np.testing.assert_allclose(sess.run(per_row)[:, 0], 1 - (a * b).sum(1), rtol=1e-5, atol=1e-6)


def test_collections_scope_and_total_loss():
    x = tf.Variable([[1.0, -2.0]], name="x")
    tf.get_variable("r", initializer=tf.constant(3.0), regularizer=lambda w: w * 2.0)
    l1 = tf.losses.absolute_difference([[0.0, 0.0]], x, scope="first")
    l2 = tf.losses.mean_squared_error([[0.0, 0.0]], x, loss_collection=None)
    l3 = tf.losses.huber_loss([[0.0, 0.0]], x, loss_collection="my_losses")
    tf.losses.add_loss(tf.constant(10.0))
    assert l1.op.name.startswith("first/")
    assert tf.losses.get_losses()[0] is l1 and len(tf.losses.get_losses()) == 2
    assert tf.losses.get_losses(loss_collection="my_losses") == [l3]
    assert tf.losses.get_losses(scope="first") == [l1]
    assert l2 not in tf.losses.get_losses()
    total = tf.losses.get_total_loss()
    no_reg = tf.losses.get_total_loss(add_regularization_losses=False, name="plain")
    assert total.op.name == "total_loss"
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(total) == pytest.approx(1.5 + 10.0 + 6.0)
        assert sess.run(no_reg) == pytest.approx(11.5)
    with pytest.raises(ValueError, match="Invalid Reduction"):
        tf.losses.mean_squared_error([1.0], [1.0], reduction="avg")
    with pytest.raises(ValueError, match="broadcast"):
        tf.losses.mean_squared_error(A, B, weights=np.ones((3,), np.float32))


def test_loss_gradients_match_finite_differences():
    labels = tf.constant(LABELS01)
    w = np.array([[1.0], [0.0], [2.0], [0.5]], np.float32)
    builders = [
        lambda p: tf.losses.mean_squared_error(labels, p, weights=w),
        lambda p: tf.losses.huber_loss(labels, p, delta=0.5),
        lambda p: tf.losses.log_loss(labels, tf.sigmoid(p)),
        lambda p: tf.losses.sigmoid_cross_entropy(labels, p, weights=w, label_smoothing=0.1),
        lambda p: tf.losses.softmax_cross_entropy(labels, p, reduction=R.SUM),
        lambda p: tf.losses.hinge_loss(labels, p, reduction=R.MEAN),
    ]
    P = tf.placeholder(tf.float64, shape=(4, 3))
    x0 = LOGITS.astype(np.float64) * 0.7 + 0.013
    with tf.Session() as sess:
        for build in builders:
            loss = build(P)
            grad = tf.gradients(loss, P)[0]
            analytic = sess.run(grad, {P: x0})
            numeric = np.zeros_like(x0)
            eps = 1e-6
            for i in np.ndindex(x0.shape):
                xp, xm = x0.copy(), x0.copy()
                xp[i] += eps
                xm[i] -= eps
                numeric[i] = (sess.run(loss, {P: xp}) - sess.run(loss, {P: xm})) / (2 * eps)
            np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-6)


def test_losses_train_a_model():
    rng = np.random.RandomState(1)
    X = tf.placeholder(tf.float32, shape=(None, 2))
    y = tf.placeholder(tf.int32, shape=(None,))
    logits = tf.layers.dense(X, 2)
    loss = tf.losses.sparse_softmax_cross_entropy(labels=y, logits=logits)
    train = tf.train.GradientDescentOptimizer(0.5).minimize(tf.losses.get_total_loss())
    data = rng.randn(200, 2).astype(np.float32)
    labels = (data.sum(1) > 0).astype(np.int32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        first = sess.run(loss, {X: data, y: labels})
        for _ in range(50):
            sess.run(train, {X: data, y: labels})
        assert sess.run(loss, {X: data, y: labels}) < 0.5 * first
