"""tf.cond / tf.case / tf.while_loop / tf.scan / tf.map_fn / tf.foldl / tf.foldr on the IR's
structured control flow: results against numpy, only the taken branch runs, the loop body is
compiled once, gradients through cond against finite differences."""
from __future__ import annotations

import time

import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import InvalidArgumentError, UnsupportedError
from jitflow.framework.lowering import lower_run
from jitflow.runtime.build import build_executable


def run(fetches, feeds=None):
    with tf.Session() as sess:
        return sess.run(fetches, feeds or {})


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def test_cond_runs_the_taken_branch():
    x = tf.placeholder(tf.float32, [3])
    p = tf.placeholder(tf.bool, [])
    out = tf.cond(p, lambda: (x * 2.0, {"s": tf.reduce_sum(x)}), lambda: (x - 1.0, {"s": tf.reduce_max(x)}))
    xv = np.array([1.0, -2.0, 5.0], np.float32)
    with tf.Session() as sess:
        a, b = sess.run(out, {x: xv, p: True})
        np.testing.assert_allclose(a, xv * 2)
        assert b["s"] == pytest.approx(xv.sum())
        a, b = sess.run(out, {x: xv, p: False})
        np.testing.assert_allclose(a, xv - 1)
        assert b["s"] == pytest.approx(xv.max())
    single = tf.cond(p, lambda: [x], lambda: [x + 1.0])      # TF 1.x: singleton lists unpacked
    assert isinstance(single, tf.Tensor)
    assert isinstance(tf.cond(p, lambda: [x], lambda: [x], strict=True), list)


def test_untaken_branch_errors_do_not_fail_the_run():
    a = tf.placeholder(tf.float32, [2, 2])
    p = tf.placeholder(tf.bool, [])
    y = tf.cond(p, lambda: tf.matrix_inverse(a), lambda: a * 2.0)
    singular = np.ones((2, 2), np.float32)
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(y, {a: singular, p: False}), singular * 2)
        with pytest.raises(InvalidArgumentError, match="not invertible"):
            sess.run(y, {a: singular, p: True})
        good = np.array([[2.0, 1.0], [1.0, 3.0]], np.float32)
        np.testing.assert_allclose(sess.run(y, {a: good, p: True}), np.linalg.inv(good), rtol=1e-5)


def test_case_picks_the_first_true_predicate():
    x = tf.placeholder(tf.float32, [])
    y = tf.case([(x < 0.0, lambda: x * -1.0), (x < 10.0, lambda: x * 2.0)], default=lambda: x + 100.0)
    with tf.Session() as sess:
        assert [float(sess.run(y, {x: v})) for v in (-3.0, 4.0, 20.0)] == [3.0, 8.0, 120.0]


def test_while_loop_matches_numpy_with_nested_cond_and_invariants():
    x = tf.placeholder(tf.float32, [4])
    n = tf.placeholder(tf.int32, [])

    def body(i, v):
        v = tf.cond(tf.reduce_sum(v) > 50.0, lambda: v * 0.5, lambda: v + x)
        return i + 1, v
    i, v = tf.while_loop(lambda i, v: i < n, body, [tf.constant(0), x])
    xv = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    with tf.Session() as sess:
        for steps in (0, 1, 7, 40):
            got_i, got_v = sess.run([i, v], {x: xv, n: steps})
            want = xv.copy()
            for _ in range(steps):
                want = want * 0.5 if want.sum() > 50 else want + xv
            assert got_i == steps
            np.testing.assert_allclose(got_v, want, rtol=1e-5)


def test_while_loop_maximum_iterations_and_single_var():
    k = tf.placeholder(tf.int32, [])
    y = tf.while_loop(lambda v: v < 1000, lambda v: v * 2, [tf.constant(1)], maximum_iterations=5)
    z = tf.while_loop(lambda v: v < 1000, lambda v: v * 2, [tf.constant(1)], maximum_iterations=k)
    assert isinstance(y, tf.Tensor)
    with tf.Session() as sess:
        assert sess.run(y) == 32
        assert sess.run(z, {k: 3}) == 8
        assert sess.run(z, {k: 50}) == 1024


def test_while_loop_shape_change_is_a_graph_building_error():
    with pytest.raises(ValueError, match="shape_invariants"):
        tf.while_loop(lambda v: tf.reduce_sum(v) < 10.0, lambda v: tf.concat([v, v], 0), [tf.ones([2])])
    # with a shape invariant the graph builds; a run whose shapes do change is refused clearly
    v = tf.while_loop(lambda v: tf.reduce_sum(v) < 10.0, lambda v: v * 2.0, [tf.ones([2])],
                      shape_invariants=[tf.TensorShape([None])])
    assert v.shape.as_list() == [None]
    np.testing.assert_allclose(run(v), [8.0, 8.0])


def test_scan_map_fold_match_numpy():
    e = tf.placeholder(tf.float32, [5, 2])
    s1 = tf.scan(lambda a, x: a + x, e)
    s2 = tf.scan(lambda a, x: a * 2.0 + x, e, initializer=tf.zeros([2]), reverse=True)
    m = tf.map_fn(lambda x: tf.reduce_sum(x * x), e)
    fl = tf.foldl(lambda a, x: a + tf.reduce_sum(x), e, initializer=tf.constant(0.0))
    fr = tf.foldr(lambda a, x: a * 0.5 + x, e)
    ev = np.arange(10, dtype=np.float32).reshape(5, 2)
    r = run([s1, s2, m, fl, fr], {e: ev})
    np.testing.assert_allclose(r[0], np.cumsum(ev, 0))
    a, want = np.zeros(2), []
    for x in ev[::-1]:
        a = a * 2 + x
        want.append(a)
    np.testing.assert_allclose(r[1], want[::-1])
    np.testing.assert_allclose(r[2], (ev * ev).sum(1))
    assert r[3] == pytest.approx(ev.sum())
    a = ev[-1]
    for x in ev[-2::-1]:
        a = a * 0.5 + x
    np.testing.assert_allclose(r[4], a)


def _loop_graph(n, k):
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [64])
        _, r = tf.while_loop(lambda i, v: i < n, lambda i, v: (i + 1, tf.tanh(v * 1.01 + k) * tf.sin(v)),
                             [tf.constant(0), x])
    return g, x, r


def test_thousand_iteration_loop_compiles_like_one_iteration():
    sizes, seconds = {}, {}
    for n, k in ((1, 0.25), (1000, 0.5)):
        g, x, r = _loop_graph(n, k)
        lowered = lower_run(g, [r], {x: np.ones(64, np.float32)})
        start = time.perf_counter()
        executable = build_executable(lowered.function)
        seconds[n] = time.perf_counter() - start
        sizes[n] = len(executable.llvm_ir)
        with tf.Session(graph=g) as sess:
            got = sess.run(r, {x: np.full(64, 0.3, np.float32)})
        want = np.full(64, 0.3, np.float32)
        for _ in range(n):
            want = np.tanh(want * 1.01 + k) * np.sin(want)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert abs(sizes[1000] - sizes[1]) < 16          # the same code: only the bound's literal differs
    assert seconds[1000] < 3 * seconds[1] + 0.5


def _finite_difference(sess, y, x, xv, feeds, eps=1e-3):
    xv = np.asarray(xv, np.float64)
    grad = np.zeros_like(xv)
    for idx in np.ndindex(*xv.shape):
        up, down = xv.copy(), xv.copy()
        up[idx] += eps
        down[idx] -= eps
        fu = sess.run(y, {**feeds, x: up.astype(np.float32)})
        fd = sess.run(y, {**feeds, x: down.astype(np.float32)})
        grad[idx] = (np.sum(fu) - np.sum(fd)) / (2 * eps)
    return grad


def test_cond_gradients_match_finite_differences():
    x = tf.placeholder(tf.float32, [])
    w = tf.placeholder(tf.float32, [3])
    z = tf.cond(x > 1.0, lambda: tf.reduce_sum(w * w) * x, lambda: tf.reduce_sum(tf.sin(w) * x * x))
    gw, gx = tf.gradients(z, [w, x])
    wv = np.array([0.3, -1.2, 2.0], np.float32)
    with tf.Session() as sess:
        for xv in (2.0, 0.5):
            got_w, got_x = sess.run([gw, gx], {x: xv, w: wv})
            np.testing.assert_allclose(got_w, _finite_difference(sess, z, w, wv, {x: xv}), rtol=2e-2, atol=2e-3)
            assert got_x == pytest.approx(_finite_difference(sess, z, x, xv, {w: wv}), rel=2e-2, abs=2e-3)


def test_cond_gradient_of_sqrt_is_zero_at_zero_and_second_order_works():
    x = tf.placeholder(tf.float32, [])
    y = tf.cond(x > 0.0, lambda: tf.sqrt(x), lambda: tf.constant(0.0))
    g, = tf.gradients(y, [x])
    gg, = tf.gradients(g, [x])
    with tf.Session() as sess:
        assert sess.run(g, {x: 0.0}) == 0.0            # TF: the untaken sqrt branch contributes nothing
        assert sess.run(g, {x: 4.0}) == pytest.approx(0.25)
        assert sess.run(gg, {x: 4.0}) == pytest.approx(-0.25 * 4.0 ** -1.5)


def test_cond_with_variable_updates_keeps_select_semantics():
    v = tf.Variable(1.0)
    p = tf.placeholder(tf.bool, [])
    out = tf.cond(p, lambda: tf.assign_add(v, 1.0), lambda: tf.identity(v))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(out, {p: False})
        assert sess.run(v) == 1.0
        sess.run(out, {p: True})
        assert sess.run(v) == 2.0


def test_regions_survive_a_meta_graph_round_trip():
    x = tf.placeholder(tf.float32, [3], name="x")
    p = tf.placeholder(tf.bool, [], name="p")
    y = tf.identity(tf.cond(p, lambda: x * 2.0, lambda: tf.while_loop(
        lambda v: tf.reduce_sum(v) < 100.0, lambda v: v * 3.0, [x], maximum_iterations=10)), name="y")
    meta = tf.train.export_meta_graph()
    graph = tf.Graph()
    with graph.as_default():
        tf.train.import_meta_graph(meta)
        y2 = graph.get_tensor_by_name("y:0")
        g, = tf.gradients(tf.reduce_sum(y2), [graph.get_tensor_by_name("x:0")])
        with tf.Session() as sess:
            ones = np.ones(3, np.float32)
            np.testing.assert_allclose(sess.run([y2, g], {"x:0": ones, "p:0": False}), [ones * 81, ones * 81])
            np.testing.assert_allclose(sess.run([y2, g], {"x:0": ones, "p:0": True}), [ones * 2, ones * 2])


def test_jit_cond_and_gpu_codegen_names_the_op():
    @tf.jit
    def f(x, flag):
        return tf.cond(flag, lambda: tf.reduce_sum(x), lambda: tf.reduce_max(x))
    xv = np.array([1.0, 5.0, 2.0], np.float32)
    assert f(xv, np.bool_(True)) == 8.0 and f(xv, np.bool_(False)) == 5.0
    from jitflow.codegen import gpu
    from jitflow.passes import run_pipeline
    from jitflow.passes.fusion import schedule_function
    x = tf.placeholder(tf.float32, [3])
    p = tf.placeholder(tf.bool, [])
    y = tf.cond(p, lambda: x, lambda: tf.while_loop(lambda v: tf.reduce_sum(v) < 10.0, lambda v: v * 2.0, [x],
                                                    name="grow"))
    lowered = lower_run(tf.get_default_graph(), [y], {x: np.ones(3, np.float32), p: np.bool_(True)})
    with pytest.raises(UnsupportedError, match="while 'cond/else/grow.*maximum_iterations"):   # nested, unbounded
        gpu.generate_llvm_ir(schedule_function(run_pipeline(lowered.function)))


def test_a_failing_check_inside_a_loop_names_the_op():
    e = tf.placeholder(tf.float32, [4, 2])
    k = tf.placeholder(tf.int32, [])
    _, r = tf.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a + tf.gather(e, i * k)),
                         [tf.constant(0), tf.zeros([2])])
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(r, {e: np.ones((4, 2), np.float32), k: 1}), [3.0, 3.0])
        with pytest.raises(InvalidArgumentError, match=r"(?s)= 6 is not in \[0, 4\).*GatherV2"):
            sess.run(r, {e: np.ones((4, 2), np.float32), k: 3})
