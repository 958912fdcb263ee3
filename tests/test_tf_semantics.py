"""TF 1.x behaviours users rely on (shared/TF1-SEMANTICS.md)."""
import numpy as np

import jitflow as tf


def run(*fetches, feed_dict=None):
    with tf.Session() as sess:
        return sess.run(list(fetches) if len(fetches) > 1 else fetches[0], feed_dict)


def test_constant_dtypes():
    assert tf.constant([1.0]).dtype == tf.float32
    assert tf.constant(np.array([1.0])).dtype == tf.float64
    assert tf.constant(1).dtype == tf.int32


def test_integer_division_rules():
    half = tf.constant(7) / 2
    assert half.dtype == tf.float64
    assert run(half) == 3.5
    assert run(tf.constant(-7) // 2) == -4
    assert run(tf.constant(-7) % 3) == 2


def test_int_mean_truncates_and_float_to_int_cast_truncates():
    assert run(tf.reduce_mean(tf.constant([1, 2]))) == 1
    np.testing.assert_array_equal(run(tf.cast(tf.constant([-1.7, 1.7]), tf.int32)), [-1, 1])


def test_argmax_is_int64():
    a = tf.argmax(tf.constant([[1.0, 3.0, 2.0]]), axis=1)
    assert a.dtype == tf.int64
    value = run(a)
    assert value.dtype == np.int64 and value.tolist() == [1]


def test_default_names_and_str():
    a = tf.constant(1)
    b = a + 2
    c = a + 3
    d = a * 2
    assert b.name == "add:0" and c.name == "add_1:0" and d.name == "mul:0"
    assert a.name == "Const:0"
    assert str(b) == 'Tensor("add:0", shape=(), dtype=int32)'
    assert tf.sigmoid(tf.constant(1.0)).op.name == "Sigmoid"


def test_name_scopes_get_suffixes():
    with tf.name_scope("loss") as scope:
        error = tf.constant(1.0) - 2.0
        mse = tf.reduce_mean(tf.square(error), name="mse")
    assert scope == "loss/"
    assert mse.op.name == "loss/mse"
    with tf.name_scope("loss"):
        again = tf.constant(1.0, name="c")
    assert again.op.name == "loss_1/c"


def test_fetch_structures_and_names():
    a = tf.constant(1, name="a")
    b = tf.constant(2.0, name="b")
    with tf.Session() as sess:
        out = sess.run({"a": a, "pair": (a, [b, "b:0"])})
        assert out["a"] == 1 and out["pair"][0] == 1 and out["pair"][1] == [2.0, 2.0]
        assert isinstance(out["pair"], tuple) and isinstance(out["pair"][1], list)
        assert sess.run(tf.group(a)) is None


def test_any_tensor_can_be_fed():
    a = tf.constant(3.0)
    b = a * 2
    c = b + 1
    assert run(c, feed_dict={b: 10.0}) == 11.0


def test_random_seeds_repeat_in_new_sessions_and_differ_between_runs():
    tf.set_random_seed(7)
    r = tf.random_uniform([4])
    with tf.Session() as s1:
        first, second = s1.run(r), s1.run(r)
    with tf.Session() as s2:
        again = s2.run(r)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)
    tf.reset_default_graph()
    tf.set_random_seed(7)
    rebuilt = tf.random_uniform([4])
    np.testing.assert_array_equal(run(rebuilt), first)


def test_interactive_session_newest_is_default():
    c = tf.constant(5)
    s1 = tf.InteractiveSession()
    s2 = tf.InteractiveSession()
    assert tf.get_default_session() is s2
    assert c.eval() == 5
    s2.close()
    assert tf.get_default_session() is s1
    s1.close()


def test_graph_lookups():
    a = tf.constant(1, name="a")
    g = tf.get_default_graph()
    assert g.get_tensor_by_name("a:0") is a
    assert g.get_operation_by_name("a") is a.op


def test_control_dependencies_order_reads_after_assign():
    v = tf.Variable(1.0)
    assign = v.assign(5.0)
    with tf.control_dependencies([assign]):
        after = v.read_value() * 1
    with tf.Session() as sess:
        sess.run(v.initializer)
        assert sess.run(after) == 5.0


def test_read_before_assign_in_one_run_sees_old_value():
    v = tf.Variable(np.arange(4, dtype=np.float32))
    old = v + 0
    update = v.assign(v * 10)
    with tf.Session() as sess:
        sess.run(v.initializer)
        old_value, new_value = sess.run([old, update])
    np.testing.assert_array_equal(old_value, [0, 1, 2, 3])
    np.testing.assert_array_equal(new_value, [0, 10, 20, 30])


def test_in_place_update_with_shifted_read_is_correct():
    v = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    update = v.assign(v[::-1, ::-1] + 0)  # reads v at other indices than it writes
    with tf.Session() as sess:
        sess.run(v.initializer)
        sess.run(update)
        np.testing.assert_array_equal(sess.run(v), np.arange(6, dtype=np.float32).reshape(2, 3)[::-1, ::-1])


def test_identical_fetches_merged_by_cse_come_back_separately():
    x = tf.placeholder(tf.float32, (6, 4))
    with tf.Session() as sess:
        a, b, c, d = sess.run([tf.reduce_sum(x), tf.reduce_sum(x), x * 2, x * 2], {x: np.ones((6, 4))})
    assert a == b == 24.0
    np.testing.assert_array_equal(c, d)
    assert c is not d
