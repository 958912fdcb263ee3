"""A variable created inside a tf.cond branch is initialized by the initializers whichever branch a
run takes (TF's init_scope), while assignments in the branch still take effect only when it is taken."""
import numpy as np
import pytest

import jitflow as tf


def test_variable_created_in_branch_is_initialized_regardless_of_predicate():
    g = tf.Graph()
    with g.as_default():
        p = tf.placeholder(tf.bool, [])
        created = []

        def true_fn():
            v = tf.Variable(3.0, name="v")
            created.append(v)
            return v * 2.0

        out = tf.cond(p, true_fn, lambda: tf.constant(1.0))
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer(), {p: False})
            assert sess.run(created[0]) == 3.0
            assert sess.run(out, {p: True}) == 6.0
            assert sess.run(out, {p: False}) == 1.0


def test_assignment_in_branch_still_conditional():
    g = tf.Graph()
    with g.as_default():
        p = tf.placeholder(tf.bool, [])
        v = tf.Variable(np.float32(0.0))

        def true_fn():
            return tf.assign_add(v, 1.0)

        out = tf.cond(p, true_fn, lambda: tf.identity(v))
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(out, {p: False})
            assert sess.run(v) == 0.0
            sess.run(out, {p: True})
            assert sess.run(v) == 1.0


def test_variables_created_in_a_while_body_live_outside_the_loop():
    """TF 1.x: a variable created while a loop body is traced is created (and initialized) outside the
    loop, named as TF names it (tf.get_variable ignores name scopes; tf.Variable gets `while/`), and the
    body reads it; gradients reach it. An initial value computed inside the loop raises TF's error."""
    h0 = tf.ones([2, 3])

    def body(i, h):
        v = tf.get_variable("inner_w", [3, 3], initializer=tf.ones_initializer())
        u = tf.Variable(lambda: tf.fill([3], 0.5), name="u")
        return [i + 1, tf.matmul(h, v) + u]
    _, h = tf.while_loop(lambda i, h: i < 2, body, [0, h0], maximum_iterations=2)
    assert [v.name for v in tf.global_variables()] == ["inner_w:0", "while/u:0"]
    assert h.op.type == "While"       # still a real loop: the body stayed pure
    grads = tf.gradients(tf.reduce_sum(h), tf.trainable_variables())
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        value, (dw, du) = sess.run([h, grads])
    np.testing.assert_allclose(value, np.full((2, 3), 11.0))     # (1*3 + 0.5)*3 + 0.5
    np.testing.assert_allclose(du, np.full(3, 8.0))               # d/du: 2 rows x (3 + 1)
    np.testing.assert_allclose(dw, np.full((3, 3), 13.0))
    with pytest.raises(ValueError, match="use a lambda as the initializer"):
        tf.while_loop(lambda i: i < 2, lambda i: i + tf.cast(tf.reduce_sum(tf.Variable(tf.zeros([2]))), tf.int32), [0])
