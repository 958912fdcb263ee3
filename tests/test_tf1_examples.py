"""The classic TF1 example programs (aymericdamien/TensorFlow-Examples, tensorflow_v1/examples) and the gaps
they exposed: `tf.random_uniform` with an integer dtype, float64 one-hot labels fed to
`softmax_cross_entropy_with_logits` with float32 logits (cast as TF does), and
`tf.contrib.factorization.KMeans`. The end-to-end cases are the programs compressed (few steps, small data)."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.contrib.factorization import KMeans


def _digits(n_train=400, n_test=200, one_hot=True):
    """Small 8x8 digits set as the programs' `mnist` (flattened float32 in [0, 1], one-hot float64 labels)."""
    pytest.importorskip("sklearn")
    from jitflow.datasets import digits
    (xtr, ytr), (xte, yte) = digits.load_data()
    xtr = xtr[:n_train].reshape(-1, 64).astype(np.float32) / 16.0
    xte = xte[:n_test].reshape(-1, 64).astype(np.float32) / 16.0
    if one_hot:
        ytr, yte = np.eye(10)[ytr[:n_train]], np.eye(10)[yte[:n_test]]
    return xtr, ytr, xte, yte


# ----------------------------------------------------------------------------- random_uniform, int dtypes
def test_random_uniform_integer_dtype_covers_range():
    a = tf.random_uniform([20000], minval=3, maxval=10, dtype=tf.int64, seed=1)
    n = tf.placeholder(tf.int32, [])
    b = tf.random_uniform([4000], maxval=n, dtype=tf.int32, seed=2)
    assert a.dtype == tf.int64 and b.dtype == tf.int32
    with tf.Session() as sess:
        va, vb = sess.run(a), sess.run(b, {n: 4})
    assert va.dtype == np.int64 and vb.dtype == np.int32
    assert va.min() == 3 and va.max() == 9
    counts = np.bincount(va - 3, minlength=7)
    assert counts.min() > 20000 / 7 * 0.85 and counts.max() < 20000 / 7 * 1.15
    assert sorted(set(vb.tolist())) == [0, 1, 2, 3]


def test_random_uniform_integer_dtype_needs_maxval():
    with pytest.raises(ValueError, match="Must specify maxval for integer dtype"):
        tf.random_uniform([3], dtype=tf.int32)


# ---------------------------------------------------------------- softmax cross-entropy with float64 labels
def test_softmax_cross_entropy_casts_float64_labels_to_logits_dtype():
    logits_np = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]], np.float32)
    labels_np = np.array([[0.0, 1.0, 0.0], [0.2, 0.0, 0.8]], np.float64)     # numpy one-hot: float64
    logits = tf.constant(logits_np)
    labels = tf.constant(labels_np)
    loss = tf.nn.softmax_cross_entropy_with_logits(logits=logits, labels=labels)
    loss_v2 = tf.nn.softmax_cross_entropy_with_logits_v2(logits=logits, labels=labels)
    assert loss.dtype == tf.float32 and loss_v2.dtype == tf.float32
    shifted = logits_np - logits_np.max(1, keepdims=True)
    expected = -(labels_np * (shifted - np.log(np.exp(shifted).sum(1, keepdims=True)))).sum(1)
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(loss), expected, rtol=1e-5)
        np.testing.assert_allclose(sess.run(loss_v2), expected, rtol=1e-5)


# --------------------------------------------------------------------------------------------- KMeans
def _numpy_kmeans_step(points, centers, counts, metric, mini_batch):
    """One TF KMeans training step in numpy: (new centers, new counts, nearest index, nearest score)."""
    if metric == "cosine":
        points = points / np.linalg.norm(points, axis=1, keepdims=True)
        compare = centers / np.linalg.norm(centers, axis=1, keepdims=True) if mini_batch else centers
    else:
        compare = centers
    squared = ((points[:, None, :] - compare[None, :, :]) ** 2).sum(-1)
    index = squared.argmin(1)
    score = squared.min(1) * (0.5 if metric == "cosine" else 1.0)
    k = len(centers)
    sums = np.zeros_like(centers)
    np.add.at(sums, index, points)
    batch = np.bincount(index, minlength=k).astype(np.float64)
    if mini_batch:
        new_counts = counts + batch
        centers = centers + (sums - batch[:, None] * centers) / new_counts[:, None]
        return centers, new_counts, index, score
    centers = sums / (batch[:, None] + 1e-6)
    if metric == "cosine":
        centers = centers / np.linalg.norm(centers, axis=1, keepdims=True)
    return centers, counts, index, score


@pytest.mark.parametrize("metric,mini_batch", [("squared_euclidean", False), ("cosine", True),
                                               ("squared_euclidean", True), ("cosine", False)])
def test_kmeans_training_steps_match_tf_algorithm(metric, mini_batch):
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(loc, 0.3, size=(20, 3)) for loc in ([2, 0, 0], [0, 2, 0], [0, 0, 2])])
    points = points.astype(np.float32)
    start = points[[0, 1, 25]].astype(np.float64)
    X = tf.placeholder(tf.float32, [None, 3])
    kmeans = KMeans(inputs=X, num_clusters=3, initial_clusters=start.astype(np.float32),
                    distance_metric=metric, use_mini_batch=mini_batch)
    (all_scores, cluster_idx, scores, initialized, centers_var, init_op, train_op) = kmeans.training_graph()
    centers = start / np.linalg.norm(start, axis=1, keepdims=True) if metric == "cosine" else start
    counts = np.ones(3)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer(), {X: points})
        assert not sess.run(initialized)
        sess.run(init_op, {X: points})
        assert sess.run(initialized)
        np.testing.assert_allclose(sess.run(centers_var), centers, rtol=1e-5, atol=1e-6)
        for _ in range(3):
            _, idx, score = sess.run([train_op, cluster_idx[0], scores[0]], {X: points})
            centers, counts, want_idx, want_score = _numpy_kmeans_step(points.astype(np.float64), centers, counts,
                                                                       metric, mini_batch)
            np.testing.assert_array_equal(idx, want_idx)
            np.testing.assert_allclose(score, want_score, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(sess.run(centers_var), centers, rtol=1e-4, atol=1e-5)
        sess.run(init_op, {X: points})             # initialized already: the centres stay
        np.testing.assert_allclose(sess.run(centers_var), centers, rtol=1e-4, atol=1e-5)
        assert sess.run(all_scores[0], {X: points}).shape == (60, 3)


def test_kmeans_random_init_picks_input_rows():
    points = np.arange(40, dtype=np.float32).reshape(10, 4)
    X = tf.placeholder(tf.float32, [None, 4])
    graph = KMeans(X, num_clusters=5).training_graph()
    centers_var, init_op = graph[4], graph[5]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(init_op, {X: points})
        chosen = sess.run(centers_var)
    for row in chosen:
        assert any(np.array_equal(row, p) for p in points)


def test_kmeans_unsupported_arguments_raise():
    X = tf.placeholder(tf.float32, [None, 4])
    with pytest.raises(tf.errors.UnimplementedError, match="kmeans_plus_plus"):
        KMeans(X, 3, initial_clusters="kmeans_plus_plus")
    with pytest.raises(tf.errors.UnimplementedError, match="mini_batch_steps_per_iteration"):
        KMeans(X, 3, use_mini_batch=True, mini_batch_steps_per_iteration=5)
    with pytest.raises(ValueError, match="distance metric"):
        KMeans(X, 3, distance_metric="manhattan")
    assert tf.contrib.factorization.KMeans is KMeans


# ------------------------------------------------------------------------- the programs, compressed
def test_program_kmeans_mnist_pattern():
    """2_BasicModels/kmeans.py: cosine mini-batch k-means, centroids labelled by majority, test accuracy."""
    xtr, ytr, xte, yte = _digits()
    k = 25
    X = tf.placeholder(tf.float32, shape=[None, 64])
    Y = tf.placeholder(tf.float32, shape=[None, 10])
    kmeans = KMeans(inputs=X, num_clusters=k, distance_metric='cosine', use_mini_batch=True)
    training_graph = kmeans.training_graph()
    (all_scores, cluster_idx, scores, cluster_centers_initialized,
     cluster_centers_var, init_op, train_op) = training_graph
    cluster_idx = cluster_idx[0]
    avg_distance = tf.reduce_mean(scores)
    sess = tf.Session()
    sess.run(tf.global_variables_initializer(), feed_dict={X: xtr})
    sess.run(init_op, feed_dict={X: xtr})
    distances = []
    for _ in range(10):
        _, d, idx = sess.run([train_op, avg_distance, cluster_idx], feed_dict={X: xtr})
        distances.append(d)
    assert distances[-1] < distances[0]
    counts = np.zeros(shape=(k, 10))
    for i in range(len(idx)):
        counts[idx[i]] += ytr[i]
    labels_map = tf.convert_to_tensor([np.argmax(c) for c in counts])
    cluster_label = tf.nn.embedding_lookup(labels_map, cluster_idx)
    correct_prediction = tf.equal(cluster_label, tf.cast(tf.argmax(Y, 1), tf.int32))
    accuracy_op = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
    assert sess.run(accuracy_op, feed_dict={X: xte, Y: yte}) > 0.7
    sess.close()


def test_program_tensorflow_dataset_api_pattern():
    """5_DataManagement/tensorflow_dataset_api.py: Dataset of (images, float64 one-hot labels) -> repeat ->
    batch -> prefetch -> initializable iterator feeding a layers network trained with Adam."""
    xtr, ytr, _, _ = _digits()
    sess = tf.Session()
    dataset = tf.data.Dataset.from_tensor_slices((xtr, ytr)).repeat().batch(64).prefetch(64)
    iterator = dataset.make_initializable_iterator()
    sess.run(iterator.initializer)
    X, Y = iterator.get_next()
    with tf.variable_scope('Net'):
        hidden = tf.layers.dense(X, 32, activation=tf.nn.relu)
        logits = tf.layers.dense(hidden, 10)
    loss_op = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logits, labels=Y))
    train_op = tf.train.AdamOptimizer(learning_rate=0.01).minimize(loss_op)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), tf.argmax(Y, 1)), tf.float32))
    sess.run(tf.global_variables_initializer())
    first = sess.run(loss_op)
    for _ in range(60):
        sess.run(train_op)
    losses, accs = zip(*[sess.run([loss_op, accuracy]) for _ in range(4)])
    assert np.mean(losses) < first * 0.5
    assert np.mean(accs) > 0.8
    sess.close()


def test_program_logistic_regression_and_save_restore(tmp_path):
    """2_BasicModels/logistic_regression.py + 4_Utils/save_restore_model.py: softmax regression by SGD on
    mini-batches, accuracy via `accuracy.eval`, then save, restore in a new session and keep training."""
    xtr, ytr, xte, yte = _digits()
    x = tf.placeholder(tf.float32, [None, 64])
    y = tf.placeholder(tf.float32, [None, 10])
    W = tf.Variable(tf.zeros([64, 10]))
    b = tf.Variable(tf.zeros([10]))
    pred = tf.nn.softmax(tf.matmul(x, W) + b)
    cost = tf.reduce_mean(-tf.reduce_sum(y * tf.log(pred), reduction_indices=1))
    optimizer = tf.train.GradientDescentOptimizer(0.5).minimize(cost)
    init = tf.global_variables_initializer()
    saver = tf.train.Saver()
    correct_prediction = tf.equal(tf.argmax(pred, 1), tf.argmax(y, 1))
    accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
    with tf.Session() as sess:
        sess.run(init)
        start = sess.run(cost, {x: xtr, y: ytr})
        for epoch in range(5):
            for i in range(0, len(xtr), 100):
                sess.run(optimizer, feed_dict={x: xtr[i:i + 100], y: ytr[i:i + 100]})
        trained = sess.run(cost, {x: xtr, y: ytr})
        assert np.isclose(start, np.log(10.0), rtol=1e-5) and trained < start * 0.6
        W_np, b_np = np.zeros((64, 10)), np.zeros(10)             # the same SGD in numpy
        for epoch in range(5):
            for i in range(0, len(xtr), 100):
                xb, yb = xtr[i:i + 100].astype(np.float64), ytr[i:i + 100]
                z = xb @ W_np + b_np
                p = np.exp(z - z.max(1, keepdims=True))
                p /= p.sum(1, keepdims=True)
                W_np -= 0.5 * xb.T @ (p - yb) / len(xb)
                b_np -= 0.5 * (p - yb).sum(0) / len(xb)
        np.testing.assert_allclose(sess.run(W), W_np, rtol=1e-3, atol=1e-4)
        acc = accuracy.eval({x: xte, y: yte})
        assert acc > 0.85
        path = saver.save(sess, str(tmp_path / "model.ckpt"))
        W_saved = sess.run(W)
    with tf.Session() as sess:
        sess.run(init)
        saver.restore(sess, path)
        np.testing.assert_array_equal(sess.run(W), W_saved)
        assert accuracy.eval({x: xte, y: yte}) == pytest.approx(acc)
        sess.run(optimizer, feed_dict={x: xtr[:100], y: ytr[:100]})
        assert sess.run(cost, {x: xtr, y: ytr}) < trained * 1.1


def test_program_convolutional_network_raw_pattern():
    """3_NeuralNetworks/convolutional_network_raw.py: conv2d/maxpool by hand, dropout, Adam; loss falls."""
    xtr, ytr, _, _ = _digits(n_train=128)
    X = tf.placeholder(tf.float32, [None, 64])
    Y = tf.placeholder(tf.float32, [None, 10])
    keep_prob = tf.placeholder(tf.float32)
    weights = {'wc1': tf.Variable(tf.random_normal([3, 3, 1, 8], seed=1)),
               'wd1': tf.Variable(tf.random_normal([4 * 4 * 8, 32], seed=2)),
               'out': tf.Variable(tf.random_normal([32, 10], seed=3))}
    biases = {'bc1': tf.Variable(tf.random_normal([8], seed=4)), 'bd1': tf.Variable(tf.random_normal([32], seed=5)),
              'out': tf.Variable(tf.random_normal([10], seed=6))}
    x = tf.reshape(X, shape=[-1, 8, 8, 1])
    conv1 = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, weights['wc1'], strides=[1, 1, 1, 1], padding='SAME'),
                                      biases['bc1']))
    conv1 = tf.nn.max_pool(conv1, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding='SAME')
    fc1 = tf.reshape(conv1, [-1, weights['wd1'].get_shape().as_list()[0]])
    fc1 = tf.nn.relu(tf.add(tf.matmul(fc1, weights['wd1']), biases['bd1']))
    fc1 = tf.nn.dropout(fc1, keep_prob)
    logits = tf.add(tf.matmul(fc1, weights['out']), biases['out'])
    loss_op = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=logits, labels=Y))
    train_op = tf.train.AdamOptimizer(learning_rate=0.01).minimize(loss_op)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        first = sess.run(loss_op, {X: xtr, Y: ytr, keep_prob: 1.0})
        for _ in range(40):
            sess.run(train_op, {X: xtr, Y: ytr, keep_prob: 0.75})
        last = sess.run(loss_op, {X: xtr, Y: ytr, keep_prob: 1.0})
    assert last < first * 0.3
