"""Compile cost that scales (issue 16, items 1 codegen part and 2): the scheduler keeps multi-use
values of one kernel in registers, long chains are cut into bounded pieces, structurally identical
kernels become one LLVM function, and no codegen walk recurses on the depth of a chain.
Schedule-level and value assertions only: no timings."""
import sys

import numpy as np
import pytest

import jitflow as tf
from jitflow.passes import fusion as schedule_pass


def _kernels(sess, fetches, feeds):
    info = sess.inspect(fetches, feeds)
    return [line for line in info.schedule.splitlines() if line.startswith("k")], info.llvm_ir


def _functions(llvm_ir):
    """Kernel functions in the generated module (the entry and math helpers excluded)."""
    return [line for line in llvm_ir.splitlines() if line.startswith("define internal void @k")]


def _poly_chain(x, steps, tanh_every=0):
    y = x
    for i in range(steps):
        y = tf.tanh(y) if tanh_every and i % tanh_every == tanh_every - 1 else y * y * 0.5 + y
    return y


def _poly_chain_numpy(x, steps, tanh_every=0):
    y = x.astype(np.float64)
    for i in range(steps):
        y = np.tanh(y) if tanh_every and i % tanh_every == tanh_every - 1 else y * y * 0.5 + y
    return y


def test_multi_consumer_chain_is_one_kernel():
    """y*y*0.5 + y reads y twice: y stays an SSA value, the whole chain is one loop kernel."""
    x = tf.placeholder(tf.float32, [32, 64])
    y = _poly_chain(x, 15)          # 45 nodes, every intermediate used twice
    data = np.random.default_rng(0).uniform(-0.1, 0.1, (32, 64)).astype(np.float32)
    with tf.Session() as sess:
        kernels, _ = _kernels(sess, y, {x: data})
        assert len(kernels) == 1
        np.testing.assert_allclose(sess.run(y, {x: data}), _poly_chain_numpy(data, 15), rtol=1e-5, atol=1e-7)


def test_300_step_chain_is_few_kernels_and_one_function():
    """900 nodes: bounded pieces (not 300 kernels, one per multi-use value), all but the ends the same
    code, so LLVM sees at most a few distinct kernel functions."""
    x = tf.placeholder(tf.float32, [32, 64])
    y = _poly_chain(x, 300)
    data = np.random.default_rng(1).uniform(-0.001, 0.001, (32, 64)).astype(np.float32)
    with tf.Session() as sess:
        kernels, llvm_ir = _kernels(sess, y, {x: data})
        assert len(kernels) <= 900 // schedule_pass.MAX_FUSED_NODES + 1
        assert len(_functions(llvm_ir)) <= 3
        np.testing.assert_allclose(sess.run(y, {x: data}), _poly_chain_numpy(data, 300), rtol=1e-4, atol=1e-7)


def test_value_read_by_two_kernels_is_stored_once():
    """A costly value that two fetched results need is computed once into a buffer, both correct."""
    x = tf.placeholder(tf.float32, [16, 32])
    a = tf.exp(x * 0.5) + tf.tanh(x)
    s = tf.reduce_sum(a, axis=1)
    b = a * a + 1.0
    data = np.random.default_rng(2).normal(size=(16, 32)).astype(np.float32)
    with tf.Session() as sess:
        got_s, got_b = sess.run([s, b], {x: data})
    ref = np.exp(data * 0.5) + np.tanh(data)
    np.testing.assert_allclose(got_s, ref.sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(got_b, ref * ref + 1.0, rtol=1e-5)


def test_deep_chain_10k_ops():
    """10,000 steps (tanh alternating with y*y*0.5 + y: 20,000 graph ops) compile and match numpy."""
    x = tf.placeholder(tf.float32, [8, 16])
    y = _poly_chain(x, 10000, tanh_every=2)
    data = np.random.default_rng(3).uniform(-1, 1, (8, 16)).astype(np.float32)
    with tf.Session() as sess:
        kernels, llvm_ir = _kernels(sess, y, {x: data})
        assert len(_functions(llvm_ir)) <= 4 < len(kernels)      # identical pieces compiled once
        got = sess.run(y, {x: data})
    np.testing.assert_allclose(got, _poly_chain_numpy(data, 10000, tanh_every=2), rtol=2e-4, atol=1e-5)


def test_deep_exp_chain_5000_no_recursion_error():
    x = tf.placeholder(tf.float32, [4, 8])
    y = x
    for _ in range(5000):
        y = tf.exp(y * -0.01)
    data = np.random.default_rng(4).uniform(0, 1, (4, 8)).astype(np.float32)
    expected = data.astype(np.float64)
    for _ in range(5000):
        expected = np.exp(expected * -0.01)
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(y, {x: data}), expected, rtol=1e-5)


def test_unbounded_fused_chain_has_no_recursion_limit(monkeypatch):
    """With no cut at all, a 3,000-node single kernel builds its scalar DAG and LLVM text with
    explicit stacks (codegen/loops.py): no RecursionError even under a low recursion limit."""
    monkeypatch.setattr(schedule_pass, "MAX_FUSED_NODES", 1 << 30)
    x = tf.placeholder(tf.float32, [4, 4])
    y = x
    for _ in range(1500):
        y = y * 0.999 + 0.001
    data = np.random.default_rng(5).uniform(0, 1, (4, 4)).astype(np.float32)
    expected = data.astype(np.float64)
    for _ in range(1500):
        expected = expected * 0.999 + 0.001
    limit = sys.getrecursionlimit()
    with tf.Session() as sess:
        try:
            sys.setrecursionlimit(400)
            kernels, _ = _kernels(sess, y, {x: data})
        finally:
            sys.setrecursionlimit(limit)
        assert len(kernels) == 1
        np.testing.assert_allclose(sess.run(y, {x: data}), expected, rtol=1e-4)


def test_mlp_identical_kernels_compile_once():
    """32 dense layers + Adam: every layer's GEMMs, bias/relu and Adam updates are the same code over
    other buffers, so the module has far fewer kernel functions than the schedule has kernels."""
    rng = np.random.default_rng(6)
    x = tf.placeholder(tf.float32, [16, 32])
    target = tf.placeholder(tf.float32, [16, 32])
    weights = [rng.normal(size=(32, 32)).astype(np.float32) * 0.2 for _ in range(32)]
    h = x
    for w0 in weights:
        h = tf.nn.relu(tf.matmul(h, tf.Variable(w0)) + tf.Variable(np.full(32, 0.01, np.float32)))
    loss = tf.reduce_mean(tf.square(h - target))
    train = tf.train.AdamOptimizer(0.001).minimize(loss)
    xs, ts = rng.normal(size=(16, 32)).astype(np.float32), rng.normal(size=(16, 32)).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        kernels, llvm_ir = _kernels(sess, [loss, train], {x: xs, target: ts})
        assert len(_functions(llvm_ir)) * 4 < len(kernels)
        got, _ = sess.run([loss, train], {x: xs, target: ts})
    ref = xs.astype(np.float64)
    for w0 in weights:
        ref = np.maximum(ref @ w0 + 0.01, 0)
    np.testing.assert_allclose(got, np.mean((ref - ts) ** 2), rtol=1e-4)


def test_adam_steps_match_numpy_with_fused_updates():
    """Adam's m_t / v_t are read by the assignment and by the variable update (two kernels):
    effects keep their order and two steps match the TF1 formulas."""
    rng = np.random.default_rng(7)
    w0 = rng.normal(size=(8, 4)).astype(np.float32)
    xs = rng.normal(size=(5, 8)).astype(np.float32)
    x = tf.placeholder(tf.float32, [5, 8])
    w = tf.Variable(w0)
    loss = tf.reduce_sum(tf.square(tf.matmul(x, w)))
    train = tf.train.AdamOptimizer(0.01).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(2):
            sess.run(train, {x: xs})
        got = sess.run(w)
    wv, m, v = w0.astype(np.float64), 0.0, 0.0
    for t in (1, 2):
        g = 2 * xs.T @ (xs @ wv)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        lr = 0.01 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        wv = wv - lr * m / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(got, wv, rtol=1e-4, atol=1e-5)


def test_gradient_through_fused_multi_use_chain_matches_finite_differences():
    x = tf.placeholder(tf.float64, [3, 4])
    y = _poly_chain(x, 40, tanh_every=3)
    loss = tf.reduce_sum(y)
    (grad,) = tf.gradients(loss, [x])
    data = np.random.default_rng(8).uniform(-0.3, 0.3, (3, 4))
    with tf.Session() as sess:
        got = sess.run(grad, {x: data})
    eps, numeric = 1e-6, np.zeros_like(data)
    for idx in np.ndindex(data.shape):
        plus, minus = data.copy(), data.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (_poly_chain_numpy(plus, 40, 3).sum() - _poly_chain_numpy(minus, 40, 3).sum()) / (2 * eps)
    np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("steps", [61, 120, 121])
def test_chain_cut_points_keep_values(steps):
    """Chains just past the piece size: the cut between pieces stores the right value."""
    x = tf.placeholder(tf.float32, [2, 3])
    y = x
    for i in range(steps):
        y = tf.sin(y) + y * 0.5 if i % 2 else y * 0.9 + 0.01
    data = np.random.default_rng(9).uniform(-1, 1, (2, 3)).astype(np.float32)
    expected = data.astype(np.float64)
    for i in range(steps):
        expected = np.sin(expected) + expected * 0.5 if i % 2 else expected * 0.9 + 0.01
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(y, {x: data}), expected, rtol=1e-4, atol=1e-6)


def test_repeated_kernel_calls_become_one_table_loop():
    """A deep chain calls the same kernels thousands of times: the entry loops over a table of
    workspace offsets instead of holding one call per kernel (LLVM's time on a 50k-call entry grew
    super-linearly), and the values stay right."""
    x = tf.placeholder(tf.float32, [8], name="x")
    y = x
    for _ in range(400):
        y = y - tf.exp(y * -0.01) * 1e-4
    g, = tf.gradients(y, [x])
    xv = np.linspace(-1.0, 1.0, 8).astype(np.float32)
    with tf.Session() as sess:
        info = sess.inspect([y, g], {x: xv})
        yv, gv = sess.run([y, g], {x: xv})
    entry = info.llvm_ir.split("define i32 @jf_entry", 1)[1].split("\n}\n", 1)[0]
    assert entry.count("call void @") < 40, entry.count("call void @")
    assert "@jf.run" in entry
    want_y, want_g = xv.astype(np.float64), np.ones(8)
    for _ in range(400):
        e = np.exp(want_y * -0.01)
        want_g = want_g * (1 + 1e-6 * e)
        want_y = want_y - e * 1e-4
    np.testing.assert_allclose(yv, want_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gv, want_g, rtol=1e-4)    # float32 factors 1 + ~1e-6 round to whole ulps
