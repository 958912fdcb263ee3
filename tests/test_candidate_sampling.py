"""tf.nn.log_uniform_candidate_sampler / uniform_candidate_sampler, tf.nn.nce_loss and
tf.nn.sampled_softmax_loss (jitflow/api/candidate_sampling.py): sampler ranges, dtypes, uniqueness,
distribution and expected counts vs TF's formulas; the losses vs a numpy re-implementation of TF's
_compute_sampled_logits with fixed sampled_values; gradients vs finite differences; a word2vec-style loop."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import InvalidArgumentError, UnsupportedError

FLT_LOWEST = float(np.finfo(np.float32).min)


def _log_uniform_p(c, range_max):
    c = np.asarray(c, np.float64)
    return np.log((c + 2.0) / (c + 1.0)) / np.log(range_max + 1.0)


# ---- samplers --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["log_uniform", "uniform"])
@pytest.mark.parametrize("unique", [True, False])
def test_sampler_shapes_dtypes_range_and_uniqueness(sampler, unique):
    fn = getattr(tf.nn, sampler + "_candidate_sampler")
    true = tf.placeholder(tf.int64, [None, 2])
    sampled, true_ec, sampled_ec = fn(true, num_true=2, num_sampled=12, unique=unique, range_max=15)
    assert sampled.dtype == tf.int64 and true_ec.dtype == tf.float32 and sampled_ec.dtype == tf.float32
    assert sampled.shape.as_list() == [12] and sampled_ec.shape.as_list() == [12]
    with tf.Session() as sess:
        seen = []
        for _ in range(30):
            s, t, e = sess.run([sampled, true_ec, sampled_ec], {true: [[0, 3], [7, 14], [1, 1]]})
            assert s.dtype == np.int64 and s.shape == (12,) and t.shape == (3, 2) and e.shape == (12,)
            assert s.min() >= 0 and s.max() < 15
            if unique:
                assert len(set(s.tolist())) == 12
            assert np.all((t > 0) & np.isfinite(t)) and np.all((e > 0) & np.isfinite(e))
            seen.append(s)
        if not unique:
            assert any(len(set(s.tolist())) < 12 for s in seen)     # with replacement: repeats happen
        assert len({tuple(s) for s in seen}) > 1                      # successive runs differ


def test_log_uniform_empirical_distribution_matches_formula():
    range_max = 10
    sampled, _, _ = tf.nn.log_uniform_candidate_sampler([[0]], 1, 20000, False, range_max, seed=1)
    with tf.Session() as sess:
        s = sess.run(sampled)
    freq = np.bincount(s, minlength=range_max) / s.size
    np.testing.assert_allclose(freq, _log_uniform_p(np.arange(range_max), range_max), atol=0.012)


def test_unique_log_uniform_order_is_sequential_sampling_without_replacement():
    """TF's rejection loop yields (a, b) with probability p_a * p_b / (1 - p_a): check every ordered pair."""
    range_max, runs = 4, 2500
    sampled, _, _ = tf.nn.log_uniform_candidate_sampler([[0]], 1, 2, True, range_max, seed=5)
    with tf.Session() as sess:
        pairs = np.array([sess.run(sampled) for _ in range(runs)])
    p = _log_uniform_p(np.arange(range_max), range_max)
    p = p / p.sum()
    for a in range(range_max):
        for b in range(range_max):
            freq = np.mean((pairs[:, 0] == a) & (pairs[:, 1] == b))
            want = 0.0 if a == b else p[a] * p[b] / (1 - p[a])
            assert abs(freq - want) < 0.025, (a, b, freq, want)


def test_expected_counts_follow_tf_formulas():
    range_max, k = 30, 6
    classes = np.arange(range_max, dtype=np.int64).reshape(1, -1)      # every class as a "true" class
    p = _log_uniform_p(np.arange(range_max), range_max)
    # with replacement: p * num_sampled
    s, t, e = tf.nn.log_uniform_candidate_sampler(classes, range_max, k, False, range_max, seed=2)
    with tf.Session() as sess:
        s_v, t_v, e_v = sess.run([s, t, e])
    np.testing.assert_allclose(t_v[0], p * k, rtol=1e-5)
    np.testing.assert_allclose(e_v, p[s_v] * k, rtol=1e-5)
    # unique: -expm1(num_tries * log1p(-p)) with one num_tries (>= k) for the whole batch, or p * k when
    # no draw was rejected
    s, t, e = tf.nn.log_uniform_candidate_sampler(classes, range_max, k, True, range_max, seed=3)
    tries_seen = set()
    with tf.Session() as sess:
        for _ in range(20):
            s_v, t_v, e_v = sess.run([s, t, e])
            if np.allclose(t_v[0], p * k, rtol=1e-5):
                n = k
            else:
                n = int(round(np.log1p(-t_v[0, 0].astype(np.float64)) / np.log1p(-p[0])))
                np.testing.assert_allclose(t_v[0], -np.expm1(n * np.log1p(-p)), rtol=1e-4)
            assert n >= k
            np.testing.assert_allclose(e_v, t_v[0, s_v], rtol=1e-6)
            tries_seen.add(n)
    assert len(tries_seen) > 1


def test_unique_uniform_num_tries_has_the_rejection_loop_mean():
    """E[num_tries] of rejection sampling k distinct classes of R uniform ones: sum_j R / (R - j)."""
    range_max, k = 8, 6
    _, t, _ = tf.nn.uniform_candidate_sampler([[0]], 1, k, True, range_max, seed=4)
    p = 1.0 / range_max
    with tf.Session() as sess:
        tries = []
        for _ in range(400):
            value = float(sess.run(t)[0, 0])
            tries.append(k if abs(value - p * k) < 1e-6 else np.log1p(-value) / np.log1p(-p))
    tries = np.array(tries)
    np.testing.assert_allclose(tries, np.round(tries), atol=1e-3)
    expected = sum(range_max / (range_max - j) for j in range(k))
    assert abs(tries.mean() - expected) < 0.12 * expected


def test_sampler_seed_repeats_in_a_new_session():
    tf.set_random_seed(7)
    s, _, _ = tf.nn.log_uniform_candidate_sampler([[1]], 1, 5, True, 100)
    with tf.Session() as sess:
        a1, a2 = sess.run(s), sess.run(s)
    with tf.Session() as sess:
        b1 = sess.run(s)
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(a1, a2)


def test_sampler_argument_errors():
    with pytest.raises(InvalidArgumentError, match="range is too small"):
        tf.nn.log_uniform_candidate_sampler([[1]], 1, 11, True, 10)
    with pytest.raises(TypeError, match="int64"):
        tf.nn.uniform_candidate_sampler(tf.placeholder(tf.int32, [None, 1]), 1, 3, True, 10)
    with pytest.raises(InvalidArgumentError, match="num_true"):
        tf.nn.uniform_candidate_sampler([[1, 2]], 1, 3, True, 10)


# ---- sampled losses vs numpy ---------------------------------------------------------------------------
def _np_sampled_logits(w, b, labels, x, sampled, true_ec, sampled_ec, num_true, remove_hits):
    flat = labels.reshape(-1)
    true_w = w[flat].reshape(-1, num_true, w.shape[1])
    true_logits = (x[:, None, :] * true_w).sum(-1) + b[flat].reshape(-1, num_true)
    sampled_logits = x @ w[sampled].T + b[sampled]
    if remove_hits:
        hits = (labels[:, :, None] == sampled[None, None, :]).any(1)
        sampled_logits = sampled_logits + hits * FLT_LOWEST
    true_logits = true_logits - np.log(true_ec)
    sampled_logits = sampled_logits - np.log(sampled_ec)
    logits = np.concatenate([true_logits, sampled_logits], 1)
    target = np.concatenate([np.full(true_logits.shape, 1.0 / num_true), np.zeros(sampled_logits.shape)], 1)
    return logits, target


def _np_nce(logits, z):
    return (np.maximum(logits, 0) - logits * z + np.log1p(np.exp(-np.abs(logits)))).sum(1)


def _np_sampled_softmax(logits, z):
    shifted = logits - logits.max(1, keepdims=True)
    log_sm = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    return -(z * log_sm).sum(1)


def _problem(dtype, num_true=2):
    rng = np.random.RandomState(0)
    vocab, dim, batch = 9, 4, 3
    w = rng.randn(vocab, dim).astype(dtype)
    b = rng.randn(vocab).astype(dtype) * 0.3
    x = rng.randn(batch, dim).astype(dtype)
    labels = np.array([[1, 4], [2, 2], [0, 7]], np.int64)[:, :num_true]
    sampled = np.array([4, 3, 8, 0], np.int64)       # 4 and 0 are accidental hits (rows 0 and 2)
    true_ec = rng.uniform(0.1, 0.9, labels.shape).astype(np.float32)
    sampled_ec = rng.uniform(0.1, 0.9, sampled.shape).astype(np.float32)
    return w, b, x, labels, sampled, true_ec, sampled_ec


@pytest.mark.parametrize("loss_name", ["nce_loss", "sampled_softmax_loss"])
@pytest.mark.parametrize("remove_hits", [False, True])
@pytest.mark.parametrize("num_true", [1, 2])
def test_sampled_losses_match_numpy(loss_name, remove_hits, num_true):
    w, b, x, labels, sampled, true_ec, sampled_ec = _problem(np.float32, num_true)
    loss_fn = getattr(tf.nn, loss_name)
    labels_ph = tf.placeholder(tf.int32, [None, num_true])
    x_ph = tf.placeholder(tf.float32, [None, 4])
    loss = loss_fn(weights=tf.constant(w), biases=tf.constant(b), labels=labels_ph, inputs=x_ph,
                   num_sampled=4, num_classes=9, num_true=num_true,
                   sampled_values=(sampled, true_ec, sampled_ec), remove_accidental_hits=remove_hits)
    assert loss.dtype == tf.float32
    with tf.Session() as sess:
        got = sess.run(loss, {labels_ph: labels.astype(np.int32), x_ph: x})
    logits, z = _np_sampled_logits(w.astype(np.float64), b.astype(np.float64), labels, x.astype(np.float64),
                                   sampled, true_ec, sampled_ec, num_true, remove_hits)
    want = (_np_nce if loss_name == "nce_loss" else _np_sampled_softmax)(logits, z)
    assert got.shape == (3,)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("loss_name,remove_hits", [("nce_loss", False), ("nce_loss", True),
                                                   ("sampled_softmax_loss", True)])
def test_sampled_loss_gradients_match_finite_differences(loss_name, remove_hits):
    w, b, x, labels, sampled, true_ec, sampled_ec = _problem(np.float64)
    w_ph, b_ph, x_ph = (tf.placeholder(tf.float64, v.shape) for v in (w, b, x))
    loss = tf.reduce_sum(getattr(tf.nn, loss_name)(
        w_ph, b_ph, labels, x_ph, num_sampled=4, num_classes=9, num_true=2,
        sampled_values=(sampled, true_ec, sampled_ec), remove_accidental_hits=remove_hits))
    grads = tf.gradients(loss, [w_ph, b_ph, x_ph])
    values = {w_ph: w, b_ph: b, x_ph: x}
    with tf.Session() as sess:
        analytic = sess.run(grads, values)
        for ph, g in zip((w_ph, b_ph, x_ph), analytic):
            base = values[ph]
            numeric = np.zeros_like(base)
            eps = 1e-6
            for i in np.ndindex(base.shape):
                up, down = base.copy(), base.copy()
                up[i] += eps
                down[i] -= eps
                numeric[i] = (sess.run(loss, {**values, ph: up}) - sess.run(loss, {**values, ph: down})) / (2 * eps)
            np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-6)
    # rows of weights never gathered get no gradient; every gathered row does
    used = set(labels.ravel()) | set(sampled)
    for row in range(9):
        assert (np.abs(analytic[0][row]).sum() > 0) == (row in used)


def test_sampled_loss_argument_errors():
    w = [tf.zeros([5, 3]), tf.zeros([5, 3])]
    with pytest.raises(UnsupportedError, match="weights"):
        tf.nn.nce_loss(w, tf.zeros([10]), [[1]], tf.zeros([1, 3]), 2, 10)
    with pytest.raises(ValueError, match="partition_strategy"):
        tf.nn.nce_loss(tf.zeros([10, 3]), tf.zeros([10]), [[1]], tf.zeros([1, 3]), 2, 10, partition_strategy="x")


# ---- training ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss_name", ["nce_loss", "sampled_softmax_loss"])
def test_word2vec_style_training_reduces_the_loss(loss_name):
    tf.set_random_seed(0)
    vocab, dim = 50, 16
    x_ph = tf.placeholder(tf.int32, [None])
    y_ph = tf.placeholder(tf.int32, [None, 1])
    embedding = tf.Variable(tf.random_uniform([vocab, dim], -1.0, 1.0))
    nce_w = tf.Variable(tf.truncated_normal([vocab, dim], stddev=1.0 / np.sqrt(dim)))
    nce_b = tf.Variable(tf.zeros([vocab]))
    loss = tf.reduce_mean(getattr(tf.nn, loss_name)(weights=nce_w, biases=nce_b, labels=y_ph,
                                                    inputs=tf.nn.embedding_lookup(embedding, x_ph),
                                                    num_sampled=8, num_classes=vocab))
    train = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    rng = np.random.RandomState(0)
    history = []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(150):
            xs = rng.randint(0, vocab, 32)
            ys = ((xs * 7 + 3) % vocab).reshape(-1, 1)          # a deterministic "context" per word
            _, value = sess.run([train, loss], {x_ph: xs, y_ph: ys})
            history.append(value)
    assert np.all(np.isfinite(history))
    assert np.mean(history[-20:]) < 0.6 * np.mean(history[:20])
