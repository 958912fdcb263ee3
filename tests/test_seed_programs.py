"""The seed programs of sections 9.2-9.5 and 9.7 as end-to-end tests, with the
values real TensorFlow gives."""
import numpy as np
import pytest

import jitflow as tf
from jitflow import runtime
from jitflow.demo import synthetic_housing


def test_9_2_first_graph_gives_32():
    x = tf.Variable(3, name="x")
    y = tf.Variable(3, name="y")
    f = x * x * y + y + 2
    sess = tf.Session()
    sess.run(x.initializer)
    sess.run(y.initializer)
    result = sess.run(f)
    assert result == 32 and result.dtype == np.int32
    sess.close()


def test_9_2_interactive_session_and_global_initializer():
    x = tf.Variable(3, name="x")
    y = tf.Variable(3, name="y")
    f = x * x * y + y + 2
    init = tf.global_variables_initializer()
    sess = tf.InteractiveSession()
    init.run()
    assert f.eval() == 32
    sess.close()
    with pytest.raises(ValueError, match="No default session"):
        f.eval()


def test_9_2_init_run_without_default_session_raises():
    tf.Variable(3, name="x")
    init = tf.global_variables_initializer()
    with pytest.raises(ValueError, match="No default session is registered"):
        init.run()


def test_9_3_default_graphs():
    x1 = tf.Variable(1)
    assert x1.graph is tf.get_default_graph()
    graph = tf.Graph()
    with graph.as_default():
        x2 = tf.Variable(2)
    assert x2.graph is graph
    assert x2.graph is not tf.get_default_graph()


def test_9_4_node_value_lifecycle():
    w = tf.constant(3)
    x = w + 2
    y = x + 5
    z = x * 3
    with tf.Session() as sess:
        assert y.eval() == 10
        assert z.eval() == 15
        y_val, z_val = sess.run([y, z])
        assert (y_val, z_val) == (10, 15)


def test_9_4_sessions_do_not_share_variable_values():
    v = tf.Variable(1.0)
    bump = v.assign_add(1.0)
    s1, s2 = tf.Session(), tf.Session()
    s1.run(v.initializer)
    s2.run(v.initializer)
    s1.run(bump)
    s1.run(bump)
    assert s1.run(v) == 3.0 and s2.run(v) == 1.0


def test_9_5_normal_equation_matches_lstsq():
    data, target = synthetic_housing(m=2000)
    X = tf.constant(data, dtype=tf.float32, name="X")
    y = tf.constant(target.reshape(-1, 1), dtype=tf.float32, name="y")
    XT = tf.transpose(X)
    theta = tf.matmul(tf.matmul(tf.matrix_inverse(tf.matmul(XT, X)), XT), y)
    with tf.Session() as sess:
        theta_value = theta.eval()
    reference = np.linalg.lstsq(data, target, rcond=None)[0]
    np.testing.assert_allclose(theta_value, reference, rtol=1e-3, atol=1e-3)


def test_9_7_placeholders():
    A = tf.placeholder(tf.float32, shape=(None, 3))
    B = A + 5
    with tf.Session() as sess:
        b1 = B.eval(feed_dict={A: [[1, 2, 3]]})
        b2 = B.eval(feed_dict={A: [[4, 5, 6], [7, 8, 9]]})
    np.testing.assert_array_equal(b1, [[6, 7, 8]])
    np.testing.assert_array_equal(b2, [[9, 10, 11], [12, 13, 14]])


def test_exercise_10_assign_from_placeholder():
    x = tf.Variable(tf.random_uniform(shape=(), minval=0.0, maxval=1.0))
    x_new_val = tf.placeholder(shape=(), dtype=tf.float32)
    x_assign = tf.assign(x, x_new_val)
    with tf.Session():
        x.initializer.run()
        assert 0.0 <= x.eval() < 1.0
        x_assign.eval(feed_dict={x_new_val: 5.0})
        assert x.eval() == 5.0


def test_assign_ops_that_no_fetch_needs_never_run():
    v = tf.Variable(0)
    update = tf.assign_add(v, 1)
    read = v + 0
    with tf.Session() as sess:
        sess.run(v.initializer)
        sess.run(read)
        assert sess.run(v) == 0
        sess.run(update)
        assert sess.run(v) == 1


def test_shared_side_effect_runs_once_per_run_call():
    v = tf.Variable(0)
    update = tf.assign_add(v, 1)
    a = update + 0
    b = update * 1
    with tf.Session() as sess:
        sess.run(v.initializer)
        sess.run([a, b])
        assert sess.run(v) == 1
        a.eval()
        b.eval()
        assert sess.run(v) == 3


def test_steady_state_runs_do_not_recompile():
    x = tf.placeholder(tf.float32, (None, 4))
    y = tf.reduce_sum(tf.square(x) * 2.0 + 1.0)
    data = np.ones((8, 4), np.float32)
    with tf.Session() as sess:
        sess.run(y, {x: data})
        before = runtime.stats()
        for _ in range(100):
            assert sess.run(y, {x: data}) == 8 * 4 * 3
        after = runtime.stats()
    assert after["compiles"] == before["compiles"]
    assert after["launches"] - before["launches"] == 100
