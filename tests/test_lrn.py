"""tf.nn.local_response_normalization (tf.nn.lrn): TF's LRN over the depth axis, against a numpy
transcription of TF's definition, with its gradient against finite differences in float64."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import UnsupportedError


def lrn_reference(x, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5):
    """TF's documented formula, element by element."""
    sqr_sum = np.zeros_like(x)
    depth = x.shape[-1]
    for d in range(depth):
        lo, hi = max(0, d - depth_radius), min(depth, d + depth_radius + 1)
        sqr_sum[..., d] = np.sum(x[..., lo:hi] ** 2, axis=-1)
    return x / (bias + alpha * sqr_sum) ** beta


@pytest.fixture(autouse=True)
def _graph():
    with tf.Graph().as_default():
        yield


@pytest.mark.parametrize("args", [{}, {"depth_radius": 2, "bias": 2.0, "alpha": 1e-4, "beta": 0.75},
                                  {"depth_radius": 0, "bias": 0.5, "alpha": 0.3, "beta": 1.0},
                                  {"depth_radius": 9, "bias": 1.0, "alpha": 0.1, "beta": 0.25}])
def test_lrn_matches_tf_definition(args):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 7)).astype(np.float32)
    out = tf.nn.local_response_normalization(tf.constant(x), **args)
    assert out.op.name.startswith("LRN")
    with tf.Session() as sess:
        got = sess.run(out)
    np.testing.assert_allclose(got, lrn_reference(x.astype(np.float64), **args), rtol=2e-5, atol=1e-6)
    assert tf.nn.lrn is tf.nn.local_response_normalization


def test_lrn_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    xv = rng.standard_normal((1, 2, 2, 5))
    weights = rng.standard_normal(xv.shape)
    x = tf.placeholder(tf.float64, xv.shape)
    loss = tf.reduce_sum(tf.nn.lrn(x, depth_radius=1, bias=1.5, alpha=0.7, beta=0.6) * weights)
    grad = tf.gradients(loss, x)[0]
    with tf.Session() as sess:
        g = sess.run(grad, {x: xv})
        eps, numeric = 1e-6, np.zeros_like(xv)
        for i in np.ndindex(xv.shape):
            up, down = xv.copy(), xv.copy()
            up[i] += eps
            down[i] -= eps
            numeric[i] = (sess.run(loss, {x: up}) - sess.run(loss, {x: down})) / (2 * eps)
    np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


def test_lrn_errors_name_the_problem():
    with pytest.raises(ValueError, match="4-dimensional"):
        tf.nn.lrn(tf.zeros([2, 3]))
    with pytest.raises(TypeError, match="float32"):
        tf.nn.lrn(tf.zeros([1, 1, 1, 2], tf.int32))
    with pytest.raises(UnsupportedError, match="depth"):
        tf.nn.lrn(tf.placeholder(tf.float32, [1, 2, 2, None]))
