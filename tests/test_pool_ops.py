"""max_pool / avg_pool (and max_pool2d / avg_pool2d) and their gradient ops:
compiled results vs the registry's numpy references on odd sizes (1x1 images,
windows larger than the input with SAME, strides larger than the window, batch
0), TF's tie rule (the gradient goes to the first maximum in scan order), TF's
average over real cells only, finite-difference gradients in float64 and the
second derivatives through max_pool_grad / avg_pool_grad."""
import numpy as np
import pytest
from test_gradients import check_grads

import jitflow as tf
from jitflow.ops import get_op

REF = {name: get_op(name).reference for name in ("max_pool", "avg_pool", "max_pool_grad", "avg_pool_grad",
                                                 "max_pool_grad_grad")}

# (input shape, ksize, strides, padding)
CASES = [
    ((2, 7, 7, 3), (2, 2), (2, 2), "SAME"),
    ((2, 7, 8, 3), (3, 3), (2, 2), "SAME"),
    ((2, 7, 8, 3), (3, 2), (1, 1), "VALID"),
    ((2, 1, 1, 3), (3, 3), (1, 1), "SAME"),          # 1x1 image, window larger than the input
    ((1, 2, 3, 2), (5, 4), (1, 2), "SAME"),
    ((2, 9, 9, 2), (2, 2), (3, 4), "VALID"),         # stride larger than the window
    ((0, 4, 4, 3), (2, 2), (2, 2), "SAME"),          # batch 0
    ((64, 28, 28, 32), (2, 2), (2, 2), "SAME"),      # the MNIST shape
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooling_and_gradients_match_the_references(dtype):
    rng = np.random.default_rng(0)
    for xs, ksize, strides, padding in CASES:
        tf.reset_default_graph()
        attrs = dict(ksize=ksize, strides=strides, padding=padding)
        x = tf.placeholder(dtype, (None,) + xs[1:])
        X = rng.integers(-3, 4, xs).astype(dtype)           # small ints: many ties inside windows
        mp = tf.nn.max_pool(x, [1, *ksize, 1], [1, *strides, 1], padding)
        ap = tf.nn.avg_pool2d(x, list(ksize), list(strides), padding)
        want_max, want_avg = REF["max_pool"](X, **attrs), REF["avg_pool"](X, **attrs)
        dy = tf.placeholder(dtype, want_max.shape)
        DY = rng.standard_normal(want_max.shape).astype(dtype)
        g_max, = tf.gradients(mp, [x], grad_ys=dy)
        g_avg, = tf.gradients(ap, [x], grad_ys=dy)
        with tf.Session() as sess:
            got = sess.run([mp, ap, g_max, g_avg], {x: X, dy: DY})
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
        label = f"{xs} ksize {ksize} strides {strides} {padding}"
        np.testing.assert_array_equal(got[0], want_max, err_msg=label)
        np.testing.assert_allclose(got[1], want_avg, **tol, err_msg=label)
        np.testing.assert_allclose(got[2], REF["max_pool_grad"](X, DY, **attrs), **tol, err_msg=label)
        np.testing.assert_allclose(got[3], REF["avg_pool_grad"](DY, xs, **attrs), **tol, err_msg=label)


def test_max_pool_gradient_goes_to_the_first_maximum_in_scan_order():
    x = np.array([[5, 1, 5], [5, 5, 0], [2, 5, 5]], np.float32).reshape(1, 3, 3, 1)
    y = tf.nn.max_pool(tf.constant(x), 2, 1, "VALID")     # four overlapping windows, all with ties
    g, = tf.gradients(y, [y.op.inputs[0]])
    with tf.Session() as sess:
        dx = sess.run(g)[0, :, :, 0]
    # windows (0,0),(0,1),(1,0),(1,1) pick (0,0),(0,2),(1,0),(1,1): the first 5 of each in row-major order
    np.testing.assert_array_equal(dx, [[1, 0, 1], [1, 1, 0], [0, 0, 0]])


def test_avg_pool_does_not_count_padded_cells():
    x = np.ones((1, 3, 3, 1), np.float32) * np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    y = tf.nn.avg_pool(tf.constant(x), [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
    with tf.Session() as sess:
        out = sess.run(y)[0, :, :, 0]
    # windows: {1,2,4,5}, {3,6}, {7,8}, {9} -- padded cells neither add nor count
    np.testing.assert_allclose(out, [[3.0, 4.5], [7.5, 9.0]])


@pytest.mark.parametrize("ksize,strides,padding", [((2, 2), (2, 2), "SAME"), ((3, 2), (1, 2), "VALID"),
                                                   ((3, 3), (2, 2), "SAME")])
def test_pooling_gradients_match_finite_differences(ksize, strides, padding):
    rng = np.random.default_rng(1)
    # distinct values (a permutation) so the max of every window is unique and differentiable
    x = rng.permutation(2 * 5 * 6 * 2).reshape(2, 5, 6, 2) * 0.1
    check_grads(lambda v: tf.nn.max_pool(v, ksize, strides, padding), [x])
    check_grads(lambda v: tf.square(tf.nn.avg_pool(v, ksize, strides, padding)), [x], order=2)


def test_pooling_gradient_ops_have_gradients():
    """max_pool_grad is linear in dy (its gradient is max_pool_grad_grad) and avg_pool_grad in its input."""
    rng = np.random.default_rng(2)
    x = tf.constant(rng.permutation(50).reshape(1, 5, 5, 2).astype(np.float64))
    attrs = dict(ksize=(2, 2), strides=(2, 2), padding="SAME")
    check_grads(lambda dy: tf.gradients(tf.nn.max_pool(x, 2, 2, "SAME"), [x], grad_ys=dy)[0] ** 2,
                [rng.standard_normal((1, 3, 3, 2))])
    check_grads(lambda dy: tf.gradients(tf.nn.avg_pool(x, 2, 2, "SAME"), [x], grad_ys=dy)[0] ** 2,
                [rng.standard_normal((1, 3, 3, 2))])
    # d/d(dy) <w, max_pool_grad(x, dy)> is max_pool_grad_grad(x, w): w picked at each window's maximum
    dy, w = tf.placeholder(tf.float64, (1, 3, 3, 2)), tf.placeholder(tf.float64, (1, 5, 5, 2))
    gx, = tf.gradients(tf.nn.max_pool(x, 2, 2, "SAME"), [x], grad_ys=dy)
    picked, = tf.gradients(gx, [dy], grad_ys=w)
    W = rng.standard_normal((1, 5, 5, 2))
    with tf.Session() as sess:
        X, got = sess.run([x, picked], {dy: np.zeros((1, 3, 3, 2)), w: W})
    np.testing.assert_array_equal(got, REF["max_pool_grad_grad"](X, W, **attrs))


def test_ksize_and_strides_forms():
    x = tf.placeholder(tf.float32, (1, 6, 6, 1))
    for ksize, strides in ((2, 2), ([2], [2]), ([2, 2], [2, 2]), ([1, 2, 2, 1], [1, 2, 2, 1])):
        assert tf.nn.max_pool2d(x, ksize, strides, "VALID").shape.as_list() == [1, 3, 3, 1]
    with pytest.raises(Exception, match="batch|depth"):
        tf.nn.max_pool(x, [2, 2, 2, 1], [1, 1, 1, 1], "VALID")
    with pytest.raises(ValueError, match="SAME|VALID"):
        tf.nn.avg_pool(x, 2, 2, [[0, 0], [1, 1], [1, 1], [0, 0]])
