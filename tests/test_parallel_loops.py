"""Loops large enough to be split across threads compute each element exactly once."""
import numpy as np

import jitflow as tf
from jitflow.codegen import cpu

N = cpu.PARALLEL_MIN_WORK * 4


def test_parallel_in_place_update_runs_once():
    v = tf.Variable(np.zeros(N, np.float32))
    bump = tf.assign_add(v, tf.ones([N]))
    with tf.Session() as sess:
        sess.run(v.initializer)
        sess.run(bump)
        sess.run(bump)
        np.testing.assert_array_equal(sess.run(v), np.full(N, 2.0, np.float32))


def test_parallel_elementwise_and_row_reductions_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N // 256, 256)).astype(np.float32)
    f = tf.jit(lambda a: (tf.nn.softmax(a), tf.reduce_sum(a * a, axis=1), tf.reduce_max(a, axis=1), a * 3.0 + 1.0))
    soft, sums, peaks, affine = f(x)
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(soft, e / e.sum(1, keepdims=True), rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(sums, (x.astype(np.float64) ** 2).sum(1), rtol=1e-4)
    np.testing.assert_array_equal(peaks, x.max(1))
    np.testing.assert_allclose(affine, x * 3.0 + 1.0, rtol=1e-6)


def test_parallel_column_reduction_and_mean():
    x = np.arange(N, dtype=np.float32).reshape(-1, 64) % 7
    f = tf.jit(lambda a: (tf.reduce_sum(a, axis=0), tf.reduce_mean(a, axis=1)))
    cols, means = f(x)
    np.testing.assert_allclose(cols, x.sum(0), rtol=1e-5)
    np.testing.assert_allclose(means, x.mean(1), rtol=1e-5)
