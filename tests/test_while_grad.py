"""Gradients through tf.while_loop (jitflow/passes/autodiff_regions.py): per-iteration stacks of forward
values and a reversed backward loop, against finite differences and against the unrolled graph."""
from __future__ import annotations

import numpy as np
import pytest

import jitflow as tf


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def _reference(xv, wv, limit=20):
    v, it = xv.astype(np.float64), 0
    while v.sum() < 50 and it < limit:
        v = np.sin(v) * wv + v * 1.5
        it += 1
    return (v * v).sum()


def test_data_dependent_trip_count_matches_finite_differences():
    x = tf.placeholder(tf.float64, [3])
    w = tf.placeholder(tf.float64, [3])
    _, y = tf.while_loop(lambda i, v: tf.reduce_sum(v) < 50.0, lambda i, v: (i + 1, tf.sin(v) * w + v * 1.5),
                         [tf.constant(0), x], maximum_iterations=20)
    gx, gw = tf.gradients(tf.reduce_sum(y * y), [x, w])
    eps = 1e-6
    with tf.Session() as sess:
        for xv, wv in ((np.array([0.5, 1.0, -0.3]), np.array([0.7, -0.2, 1.1])),
                       (np.array([30.0, 30.0, 1.0]), np.array([1.0, 2.0, 3.0]))):   # zero iterations
            got_x, got_w = sess.run([gx, gw], {x: xv, w: wv})
            eye = np.eye(3)
            want_x = [(_reference(xv + eps * eye[k], wv) - _reference(xv - eps * eye[k], wv)) / (2 * eps)
                      for k in range(3)]
            want_w = [(_reference(xv, wv + eps * eye[k]) - _reference(xv, wv - eps * eye[k])) / (2 * eps)
                      for k in range(3)]
            np.testing.assert_allclose(got_x, want_x, rtol=1e-5)
            np.testing.assert_allclose(got_w, want_w, rtol=1e-5, atol=1e-8)


def test_rnn_loop_gradient_equals_the_unrolled_graph():
    steps, hidden = 6, 4
    rng = np.random.default_rng(0)
    xs_v = rng.normal(size=(steps, hidden)).astype(np.float32)
    w_v = (rng.normal(size=(hidden, hidden)) * 0.5).astype(np.float32)
    h_v = rng.normal(size=(1, hidden)).astype(np.float32)
    xs = tf.placeholder(tf.float32, [steps, hidden])
    w = tf.placeholder(tf.float32, [hidden, hidden])
    h0 = tf.placeholder(tf.float32, [1, hidden])

    def body(t, h):
        return t + 1, tf.tanh(tf.matmul(h, w) + tf.gather(xs, t)[None, :])
    _, h_loop = tf.while_loop(lambda t, h: t < steps, body, [tf.constant(0), h0], maximum_iterations=steps)
    h = h0
    for t in range(steps):
        h = tf.tanh(tf.matmul(h, w) + xs[t][None, :])
    loop_grads = tf.gradients(tf.reduce_sum(h_loop * h_loop), [xs, w, h0])
    unrolled_grads = tf.gradients(tf.reduce_sum(h * h), [xs, w, h0])
    with tf.Session() as sess:
        feeds = {xs: xs_v, w: w_v, h0: h_v}
        got = sess.run(loop_grads, feeds)
        want = sess.run(unrolled_grads, feeds)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_scan_and_foldl_gradients():
    e = tf.placeholder(tf.float64, [4, 2])
    w = tf.placeholder(tf.float64, [2])
    s = tf.scan(lambda a, x: tf.sin(a) * w + x, e)
    f = tf.foldl(lambda a, x: a * x + w, e, initializer=tf.ones([2], tf.float64))
    loss = tf.reduce_sum(s * s) + tf.reduce_sum(f)
    ge, gw = tf.gradients(loss, [e, w])
    ev = np.array([[0.1, 0.2], [0.3, -0.4], [0.5, 0.6], [-0.7, 0.8]])
    wv = np.array([0.9, -1.1])

    def ref(ev, wv):
        a, rows = ev[0], [ev[0]]
        for x in ev[1:]:
            a = np.sin(a) * wv + x
            rows.append(a)
        b = np.ones(2)
        for x in ev:
            b = b * x + wv
        return (np.array(rows) ** 2).sum() + b.sum()
    eps = 1e-6
    with tf.Session() as sess:
        got_e, got_w = sess.run([ge, gw], {e: ev, w: wv})
    want_e = np.zeros_like(ev)
    for idx in np.ndindex(*ev.shape):
        d = np.zeros_like(ev)
        d[idx] = eps
        want_e[idx] = (ref(ev + d, wv) - ref(ev - d, wv)) / (2 * eps)
    want_w = [(ref(ev, wv + eps * np.eye(2)[k]) - ref(ev, wv - eps * np.eye(2)[k])) / (2 * eps) for k in range(2)]
    np.testing.assert_allclose(got_e, want_e, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(got_w, want_w, rtol=1e-5)


def test_unbounded_loop_gradient_recomputes_the_states():
    """No maximum_iterations: the backward loop replays the body from the start for each iteration
    (jitflow/passes/autodiff_while_recompute.py); the gradient equals the recorded one and finite
    differences, including a trip count that changes with the input and zero trips."""
    x = tf.placeholder(tf.float64, [2])
    w = tf.placeholder(tf.float64, [2, 2])

    def body(i, v):
        return i + 1, tf.tanh(tf.matmul(v[None], w)[0]) * 2.0 + v
    cond = lambda i, v: tf.reduce_sum(v) < 6.0     # noqa: E731
    _, free = tf.while_loop(cond, body, [0, x], name="doubling")
    _, bounded = tf.while_loop(cond, body, [0, x], maximum_iterations=40)
    grads = tf.gradients(tf.reduce_sum(free * free), [x, w])
    want = tf.gradients(tf.reduce_sum(bounded * bounded), [x, w])
    wv = np.array([[0.5, 0.2], [-0.1, 0.4]])
    with tf.Session() as sess:
        for xv in (np.array([0.3, -0.2]), np.array([7.0, 1.0])):       # several trips; none
            got, ref = sess.run([grads, want], {x: xv, w: wv})
            for g, r in zip(got, ref):
                np.testing.assert_allclose(g, r, rtol=1e-12)
        xv, eps = np.array([0.3, -0.2]), 1e-6
        value = lambda a: float(np.sum(sess.run(free, {x: a, w: wv}) ** 2))     # noqa: E731
        fd = [(value(xv + eps * e) - value(xv - eps * e)) / (2 * eps) for e in np.eye(2)]
        np.testing.assert_allclose(sess.run(grads[0], {x: xv, w: wv}), fd, rtol=1e-6)
    z = tf.while_loop(lambda v: v[0] < 10.0, lambda v: v * 2.0, [x], back_prop=False)
    assert tf.gradients(z, [x]) == [None]
