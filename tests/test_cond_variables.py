"""A variable created inside a tf.cond branch is initialized by the initializers whichever branch a
run takes (TF's init_scope), while assignments in the branch still take effect only when it is taken."""
import numpy as np

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
