"""tf.nn.conv1d: NWC cross-correlation with TF's SAME padding split, strides and dilations, against a
numpy reference; its gradients against finite differences; the arguments TF refuses."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import UnsupportedError


def conv1d_reference(x, f, stride, padding, dilation=1):
    n, w, c = x.shape
    k, _, o = f.shape
    span = (k - 1) * dilation + 1
    if padding == "SAME":
        out = -(-w // stride)
        total = max((out - 1) * stride + span - w, 0)
        x = np.pad(x, [(0, 0), (total // 2, total - total // 2), (0, 0)])
    else:
        out = (w - span) // stride + 1
    y = np.zeros((n, out, o))
    for i in range(out):
        for t in range(k):
            y[:, i, :] += x[:, i * stride + t * dilation, :] @ f[t]
    return y


@pytest.fixture(autouse=True)
def _graph():
    with tf.Graph().as_default():
        yield


@pytest.mark.parametrize("w,k,stride,padding,dilation", [(9, 3, 1, "SAME", 1), (9, 3, 2, "SAME", 1),
                                                         (10, 4, 3, "VALID", 1), (11, 3, 1, "SAME", 2),
                                                         (2, 5, 1, "SAME", 1), (7, 2, 4, "VALID", 2)])
def test_conv1d_matches_reference(w, k, stride, padding, dilation):
    rng = np.random.default_rng(w * 100 + k)
    x = rng.standard_normal((2, w, 3)).astype(np.float32)
    f = rng.standard_normal((k, 3, 4)).astype(np.float32)
    y = tf.nn.conv1d(tf.constant(x), tf.constant(f), stride=[1, stride, 1] if stride == 3 else stride,
                     padding=padding, dilations=dilation)
    with tf.Session() as sess:
        got = sess.run(y)
    np.testing.assert_allclose(got, conv1d_reference(x.astype(np.float64), f, stride, padding, dilation),
                               rtol=1e-5, atol=1e-5)


def test_conv1d_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    xv, fv = rng.standard_normal((1, 6, 2)), rng.standard_normal((3, 2, 2))
    weights = rng.standard_normal((1, 3, 2))
    x, f = tf.placeholder(tf.float64, xv.shape), tf.placeholder(tf.float64, fv.shape)
    loss = tf.reduce_sum(tf.nn.conv1d(x, f, 2, "SAME") * weights)
    gx, gf = tf.gradients(loss, [x, f])
    with tf.Session() as sess:
        got_x, got_f = sess.run([gx, gf], {x: xv, f: fv})
        for value, got, other in ((xv, got_x, "x"), (fv, got_f, "f")):
            numeric = np.zeros_like(value)
            for i in np.ndindex(value.shape):
                up, down = value.copy(), value.copy()
                up[i] += 1e-6
                down[i] -= 1e-6
                feeds = (lambda v: {x: v, f: fv}) if other == "x" else (lambda v: {x: xv, f: v})
                numeric[i] = (sess.run(loss, feeds(up)) - sess.run(loss, feeds(down))) / 2e-6
            np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-8)


def test_conv1d_argument_errors():
    x, f = tf.zeros([1, 5, 2]), tf.zeros([2, 2, 3])
    with pytest.raises(ValueError, match="NWC"):
        tf.nn.conv1d(x, f, 1, "SAME", data_format="NHWC")
    with pytest.raises(UnsupportedError, match="NCW"):
        tf.nn.conv1d(x, f, 1, "SAME", data_format="NCW")
    with pytest.raises(ValueError, match="padding"):
        tf.nn.conv1d(x, f, 1, "FULL")
    with pytest.raises(ValueError, match="stride"):
        tf.nn.conv1d(x, f, [2, 2], "SAME")


def test_layers_conv1d_names_shapes_and_values():
    x = tf.placeholder(tf.float32, [None, 20, 3])
    y = tf.layers.conv1d(x, 8, 5, strides=2, padding="same", activation=tf.nn.relu,
                         bias_initializer=tf.constant_initializer(0.1))
    z = tf.layers.Conv1D(4, (3,), dilation_rate=2, name="second")(y)
    assert [v.name for v in tf.global_variables()] == ["conv1d/kernel:0", "conv1d/bias:0", "second/kernel:0",
                                                       "second/bias:0"]
    assert tf.global_variables()[0].shape.as_list() == [5, 3, 8]
    assert y.shape.as_list() == [None, 10, 8] and z.shape.as_list() == [None, 6, 4]
    xv = np.random.default_rng(5).standard_normal((2, 20, 3)).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        k1, b1, k2, b2 = sess.run(tf.global_variables())
        got = sess.run(z, {x: xv})
    hidden = np.maximum(conv1d_reference(xv.astype(np.float64), k1, 2, "SAME") + b1, 0)
    np.testing.assert_allclose(got, conv1d_reference(hidden, k2, 1, "VALID", 2) + b2, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="expected ndim=3"):
        tf.layers.conv1d(tf.zeros([2, 4, 4, 1]), 2, 3)
