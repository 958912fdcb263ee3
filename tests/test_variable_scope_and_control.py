"""Variable sharing, collections, control flow and threads (seed 9.11-9.13 semantics)."""
import threading

import numpy as np
import pytest

import jitflow as tf


def test_seed_9_12_shared_threshold():
    def relu(X):
        with tf.variable_scope("relu", reuse=True):
            threshold = tf.get_variable("threshold")
            w = tf.Variable(tf.random_normal((int(X.get_shape()[1]), 1)), name="weights")
            b = tf.Variable(0.0, name="bias")
            z = tf.add(tf.matmul(X, w), b, name="z")
            return tf.maximum(z, threshold, name="max")
    X = tf.placeholder(tf.float32, shape=(None, 3), name="X")
    with tf.variable_scope("relu"):
        threshold = tf.get_variable("threshold", shape=(), initializer=tf.constant_initializer(0.0))
    relus = [relu(X) for _ in range(5)]
    output = tf.add_n(relus, name="output")
    names = [v.name for v in tf.global_variables()]
    assert names[0] == "relu/threshold:0" and "relu_1/weights:0" in names and "relu_5/bias:0" in names
    assert relus[0].name == "relu_1/max:0" and output.name == "output:0"
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(threshold.assign(100.0))
        np.testing.assert_allclose(sess.run(output, {X: np.ones((2, 3))}), np.full((2, 1), 500.0))


def test_creating_twice_without_reuse_names_the_original_site():
    def prac(a, b):
        return tf.get_variable("W", [a, b], initializer=tf.random_normal_initializer(stddev=0.1))
    prac(3, 5)
    with pytest.raises(ValueError) as info:
        prac(3, 5)
    message = str(info.value)
    assert message.startswith("Variable W already exists, disallowed. Did you mean to set reuse=True or "
                              "reuse=tf.AUTO_REUSE in VarScope? Originally defined at:")
    assert "test_variable_scope_and_control.py" in message and "tf.get_variable(\"W\"" in message


def test_reuse_of_missing_variable():
    with pytest.raises(ValueError, match="does not exist, or was not created with tf.get_variable"):
        with tf.variable_scope("scope", reuse=True):
            tf.get_variable("missing", shape=())


def test_auto_reuse_and_reuse_variables():
    with tf.variable_scope("shared", reuse=tf.AUTO_REUSE):
        a = tf.get_variable("v", shape=(2,))
    with tf.variable_scope("shared", reuse=tf.AUTO_REUSE):
        b = tf.get_variable("v", shape=(2,))
    assert a is b
    with tf.variable_scope("layer") as scope:
        c = tf.get_variable("k", shape=())
        scope.reuse_variables()
        assert tf.get_variable("k") is c
        assert tf.get_variable_scope().reuse is True


def test_get_variable_ignores_name_scope_but_variable_does_not():
    with tf.name_scope("ns"):
        with tf.variable_scope("vs"):
            v = tf.get_variable("g", shape=())
            w = tf.Variable(1.0, name="plain")
    assert v.name == "vs/g:0"
    assert w.name == "ns/vs/plain:0"


def test_collections_and_trainable():
    a = tf.Variable(1.0, name="a")
    b = tf.Variable(2.0, name="b", trainable=False)
    assert tf.global_variables() == [a, b]
    assert tf.trainable_variables() == [a]
    tf.add_to_collection("mine", a)
    assert tf.get_collection("mine") == [a]
    assert tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES) == [a]


def test_cond_selects_value_and_effects():
    v = tf.Variable(1.0)
    flag = tf.placeholder(tf.bool, ())
    result = tf.cond(flag, lambda: v.assign(v * 10), lambda: v + 0)
    with tf.Session() as sess:
        sess.run(v.initializer)
        assert sess.run(result, {flag: False}) == 1.0 and sess.run(v) == 1.0
        assert sess.run(result, {flag: True}) == 10.0 and sess.run(v) == 10.0


def test_cond_with_structures():
    x = tf.placeholder(tf.float32, (3,))
    out = tf.cond(tf.reduce_sum(x) > 0, lambda: (x * 2, x + 1), lambda: (-x, x - 1))
    with tf.Session() as sess:
        pos = sess.run(out, {x: [1, 2, 3]})
        neg = sess.run(out, {x: [-1, -2, -3]})
    np.testing.assert_allclose(pos[0], [2, 4, 6])
    np.testing.assert_allclose(neg[1], [-2, -3, -4])


def test_identity_group_no_op_and_control_dependencies():
    v = tf.Variable(0)
    inc = tf.assign_add(v, 1)
    with tf.control_dependencies([inc]):
        step = tf.no_op()
    both = tf.group(step, tf.identity(v))
    with tf.Session() as sess:
        sess.run(v.initializer)
        assert sess.run(both) is None
        assert sess.run(v) == 1


def test_finalized_graph_rejects_new_ops():
    tf.constant(1)
    tf.get_default_graph().finalize()
    with pytest.raises(RuntimeError, match="finalized"):
        tf.constant(2)


def test_device_is_recorded():
    with tf.device("/cpu:0"):
        c = tf.constant(1.0) * 2
    assert c.device == "/cpu:0"


def test_threads_share_one_session_and_its_variables():
    v = tf.Variable(np.zeros(1000, np.float32))
    new_value = tf.placeholder(tf.float32, (1000,))
    write = v.assign(new_value)
    sess = tf.Session()
    sess.run(v.initializer)
    written, seen = threading.Event(), []

    def writer():
        sess.run(write, {new_value: np.full(1000, 7.0, np.float32)})
        written.set()

    def reader():
        written.wait(timeout=30)
        seen.append(sess.run(v))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(seen[0], np.full(1000, 7.0))
    sess.close()


def test_threads_taking_turns_update_one_variable():
    v = tf.Variable(np.zeros(1000, np.float32))
    add = tf.assign_add(v, tf.ones([1000]))
    sess = tf.Session()
    sess.run(v.initializer)
    turn = threading.Lock()

    def work():
        for _ in range(25):
            with turn:
                sess.run(add)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(sess.run(v), np.full(1000, 100.0))
    sess.close()


def test_threads_get_same_results_as_serial():
    x = tf.placeholder(tf.float32, (None, 8))
    y = tf.reduce_sum(tf.tanh(x) * 3.0, axis=1)
    sess = tf.Session()
    inputs = [np.random.default_rng(i).normal(size=(64, 8)).astype(np.float32) for i in range(8)]
    serial = [sess.run(y, {x: a}) for a in inputs]
    results = [None] * 8

    def work(i):
        for _ in range(20):
            results[i] = sess.run(y, {x: inputs[i]})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, serial):
        np.testing.assert_array_equal(got, want)
