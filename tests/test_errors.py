"""Each error case names the TF error class, the node and the user's source line."""
import os

import numpy as np
import pytest

import jitflow as tf

HERE = os.path.basename(__file__)


def test_unfed_placeholder_names_it_and_its_line():
    X = tf.placeholder(tf.float32, shape=(None, 3), name="X")
    y = X * 2
    with tf.Session() as sess:
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            sess.run(y)
    message = str(info.value)
    assert "You must feed a value for placeholder tensor 'X'" in message
    assert "shape [?,3]" in message and HERE in message


def test_placeholder_that_no_fetch_needs_is_fine():
    tf.placeholder(tf.float32, shape=(3,))
    c = tf.constant(2.0) * 3
    with tf.Session() as sess:
        assert sess.run(c) == 6.0


def test_wrong_feed_shape():
    X = tf.placeholder(tf.float32, shape=(None, 3), name="X")
    with tf.Session() as sess:
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"Cannot feed value of shape \(2,\)") as info:
            sess.run(X + 1, {X: [1.0, 2.0]})
        assert isinstance(info.value, ValueError)  # TF raises ValueError here too


def test_wrong_feed_dtype():
    X = tf.placeholder(tf.float32, shape=(2,), name="X")
    with tf.Session() as sess:
        with pytest.raises(tf.errors.InvalidArgumentError, match="Cannot feed value"):
            sess.run(X + 1, {X: ["a", "b"]})


def test_float64_feed_into_float32_placeholder_casts():
    X = tf.placeholder(tf.float32, shape=(2,))
    with tf.Session() as sess:
        out = sess.run(X * 1, {X: np.array([1.5, 2.5])})
    assert out.dtype == np.float32


def test_uninitialized_variable():
    v = tf.Variable(tf.zeros([3]), name="weights")
    with tf.Session() as sess:
        with pytest.raises(tf.errors.FailedPreconditionError) as info:
            sess.run(v + 1)
    assert "Attempting to use uninitialized value weights" in str(info.value)
    assert HERE in str(info.value)


def test_closed_session():
    c = tf.constant(1)
    sess = tf.Session()
    sess.close()
    with pytest.raises(RuntimeError, match="closed Session"):
        sess.run(c)


def test_fetch_from_another_graph():
    other = tf.Graph()
    with other.as_default():
        c = tf.constant(1)
    with tf.Session() as sess:
        with pytest.raises(ValueError, match="not an element of this graph"):
            sess.run(c)


def test_mixing_graphs_in_one_op():
    other = tf.Graph()
    with other.as_default():
        c = tf.constant(1)
    d = tf.constant(2)
    with pytest.raises(ValueError, match="same graph"):
        tf.add(c, d)


def test_incompatible_shapes_at_graph_building_name_both():
    a = tf.constant(np.ones((2, 3), np.float32))
    b = tf.constant(np.ones((4,), np.float32))
    with pytest.raises(ValueError, match=r"\(2, 3\) vs \(4,\)"):
        a + b


def test_matmul_inner_dimension_mismatch():
    a = tf.constant(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="inner dimensions"):
        tf.matmul(a, a)


def test_run_time_shape_mismatch_names_node():
    a = tf.placeholder(tf.float32, (None,), name="a")
    b = tf.placeholder(tf.float32, (None,), name="b")
    c = tf.add(a, b, name="total")
    with tf.Session() as sess:
        with pytest.raises(tf.errors.InvalidArgumentError, match="total"):
            sess.run(c, {a: np.ones(3), b: np.ones(4)})


def test_singular_matrix_inverse():
    m = tf.constant(np.zeros((3, 3), np.float32))
    with tf.Session() as sess:
        with pytest.raises(tf.errors.InvalidArgumentError, match="not invertible"):
            sess.run(tf.matrix_inverse(m))


def test_tensor_as_python_bool():
    with pytest.raises(TypeError, match="bool"):
        if tf.constant(True):
            pass


def test_dtype_mismatch_in_binary_op():
    with pytest.raises(TypeError):
        tf.constant(1) + tf.constant(1.0)


def test_float_python_value_into_int_tensor():
    with pytest.raises(TypeError):
        tf.constant(1) + 0.5
