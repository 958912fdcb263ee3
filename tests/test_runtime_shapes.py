"""Shapes known only at run time (issue 14, part 1): unknown ranks and dims at graph building,
shape tensors (`tf.shape`, `tf.size`, `tf.rank`) feeding reshape/fill/zeros/ones/random/range/slicing/
unstack, TF's partial static shapes, and the checks that move to `Session.run`'s specialization."""
import numpy as np
import pytest

import jitflow as tf
from jitflow import errors


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def run(fetches, feed=None, init=False):
    with tf.Session() as sess:
        if init:
            sess.run(tf.global_variables_initializer())
        return sess.run(fetches, feed)


def test_labels_of_unknown_rank_into_sparse_xent():
    """The textbook idiom: `y = tf.placeholder(tf.int32, shape=(None), name="y")` is a placeholder of
    unknown rank; TF accepts it and checks the fed labels' shape at run time."""
    X = tf.placeholder(tf.float32, shape=(None, 4), name="X")
    y = tf.placeholder(tf.int32, shape=(None), name="y")
    assert y.get_shape().ndims is None
    logits = tf.matmul(X, tf.constant(np.arange(12, dtype=np.float32).reshape(4, 3) / 10))
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    assert xent.get_shape().as_list() == [None]
    loss = tf.reduce_mean(xent)
    x_val = np.random.RandomState(0).rand(5, 4).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1])
    z = x_val @ (np.arange(12, dtype=np.float32).reshape(4, 3) / 10)
    z = z - z.max(1, keepdims=True)
    expected = np.mean(-(z - np.log(np.exp(z).sum(1, keepdims=True)))[np.arange(5), labels])
    np.testing.assert_allclose(run(loss, {X: x_val, y: labels}), expected, rtol=1e-5)
    with pytest.raises(errors.InvalidArgumentError, match="labels"):
        run(loss, {X: x_val, y: labels.reshape(5, 1)})


def test_wrong_static_labels_shape_raises_at_graph_building():
    logits = tf.placeholder(tf.float32, (None, 3))
    with pytest.raises(ValueError, match="Shape mismatch"):
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.placeholder(tf.int32, (None, 2)), logits=logits)


def test_untyped_placeholder_fed_scalars_and_vectors():
    x = tf.placeholder("float")
    y = x * 2.0 + 1.0
    total = tf.reduce_sum(y)
    with tf.Session() as sess:
        assert sess.run(y, {x: 3.0}) == 7.0
        np.testing.assert_array_equal(sess.run(y, {x: [1.0, 2.0]}), [3.0, 5.0])
        assert sess.run(total, {x: [[1.0], [2.0]]}) == 8.0
        assert total.get_shape().as_list() == []


def test_random_normal_of_a_shape_tensor_vae_style():
    tf.set_random_seed(3)
    mean = tf.placeholder(tf.float32, [None, 5])
    eps = tf.random_normal(tf.shape(mean), dtype=tf.float32)
    assert eps.get_shape().as_list() == [None, 5]
    z = mean + tf.exp(0.5) * eps
    grad = tf.gradients(tf.reduce_sum(z), mean)[0]
    with tf.Session() as sess:
        a = sess.run(eps, {mean: np.zeros((3, 5))})
        b = sess.run(eps, {mean: np.zeros((7, 5))})
        g = sess.run(grad, {mean: np.zeros((7, 5))})
    assert a.shape == (3, 5) and b.shape == (7, 5)
    assert 0.3 < b.std() < 2.0
    np.testing.assert_array_equal(g, np.ones((7, 5)))


def test_random_shape_lists_mixing_ints_and_tensors():
    x = tf.placeholder(tf.float32, [None, 3])
    r = tf.random_uniform([tf.shape(x)[0], 10])
    assert r.get_shape().as_list() == [None, 10]
    assert run(r, {x: np.zeros((4, 3))}).shape == (4, 10)


def test_unstack_with_unknown_batch_dim_and_its_gradient():
    x = tf.placeholder(tf.float32, [None, 4, 3])
    steps = tf.unstack(x, 4, 1)
    assert len(steps) == 4 and steps[0].get_shape().as_list() == [None, 3]
    loss = tf.add_n([tf.reduce_sum(s * float(k + 1)) for k, s in enumerate(steps)])
    grad = tf.gradients(loss, x)[0]
    value = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    got = run([steps[2], grad], {x: value})
    np.testing.assert_array_equal(got[0], value[:, 2])
    np.testing.assert_array_equal(got[1], np.broadcast_to(np.arange(1, 5, dtype=np.float32)[None, :, None],
                                                          (2, 4, 3)))
    with pytest.raises(ValueError, match="does not match"):
        tf.unstack(tf.placeholder(tf.float32, [2, 3]), num=4)


def test_unstack_num_checked_against_the_fed_shape():
    x = tf.placeholder(tf.float32, [None, None])
    parts = tf.unstack(x, num=3, axis=1)
    np.testing.assert_array_equal(run(parts[1], {x: np.eye(3, dtype=np.float32)}), [0, 1, 0])
    with pytest.raises(errors.InvalidArgumentError):
        run(parts[1], {x: np.eye(2, dtype=np.float32)})


@pytest.mark.parametrize("index", [
    (slice(None), slice(1, 3)), 0, -1, (slice(None, None, -1), 0), (Ellipsis, 1), (None, slice(1, None)),
    (slice(None), None, slice(None, None, 2)), (slice(-3, None),), (slice(10, 20),)])
def test_slicing_dimensions_of_unknown_size(index):
    value = np.arange(30, dtype=np.float32).reshape(5, 6)
    x = tf.placeholder(tf.float32, [None, 6])
    sliced = x[index]
    expected = value[index]
    got = run(sliced, {x: value})
    np.testing.assert_array_equal(got, expected)
    static = sliced.get_shape().as_list()
    assert len(static) == expected.ndim
    assert all(s is None or s == e for s, e in zip(static, expected.shape))
    # the gradient scatters back into the unknown-size operand
    g = run(tf.gradients(tf.reduce_sum(sliced * 2.0), x)[0], {x: value})
    expected_g = np.zeros_like(value)
    expected_g[index] += 2.0
    np.testing.assert_array_equal(g, expected_g)


def test_slicing_a_tensor_of_unknown_rank():
    x = tf.placeholder(tf.float32)
    first = x[0]
    last_col = x[..., -1]
    value = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(run(first, {x: value}), value[0])
    np.testing.assert_array_equal(run(last_col, {x: value}), value[..., -1])
    with pytest.raises(errors.InvalidArgumentError, match="out of bounds"):
        run(x[5], {x: value})


def test_tensor_indices_resolved_from_shapes():
    x = tf.placeholder(tf.float32, [None, 4])
    n = tf.shape(x)[0]
    last = x[n - 1]
    head = x[:n - 1, 1]
    value = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = run([last, head], {x: value})
    np.testing.assert_array_equal(got[0], value[2])
    np.testing.assert_array_equal(got[1], value[:2, 1])


def test_index_depending_on_data_is_a_clear_error():
    x = tf.placeholder(tf.float32, [None, 4])
    i = tf.placeholder(tf.int32, [])
    with pytest.raises(errors.InvalidArgumentError, match="computable from tensor shapes"):
        run(x[i], {x: np.zeros((3, 4)), i: 1})


def test_float_and_fancy_indices_are_rejected():
    x = tf.placeholder(tf.float32, [3, 4])
    with pytest.raises(TypeError, match="valid indices"):
        x[1.5]


def test_reshape_fill_zeros_ones_with_shape_tensors():
    x = tf.placeholder(tf.float32, [None, 6])
    r = tf.reshape(x, [tf.shape(x)[0], 2, 3])
    assert r.get_shape().as_list() == [None, 2, 3]
    r2 = tf.reshape(x, tf.stack([-1, tf.shape(x)[1] // 2]))
    assert r2.get_shape().as_list() == [None, 3]
    z = tf.zeros(tf.shape(x))
    o = tf.ones([tf.shape(x)[0], 1], tf.int32)
    f = tf.fill(tf.shape(x), 2.5)
    b = tf.broadcast_to(tf.constant([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), tf.shape(x))
    value = np.arange(24, dtype=np.float32).reshape(4, 6)
    got = run([r, r2, z, o, f, b], {x: value})
    np.testing.assert_array_equal(got[0], value.reshape(4, 2, 3))
    np.testing.assert_array_equal(got[1], value.reshape(8, 3))
    np.testing.assert_array_equal(got[2], np.zeros((4, 6)))
    assert got[3].dtype == np.int32 and got[3].shape == (4, 1)
    np.testing.assert_array_equal(got[4], np.full((4, 6), 2.5))
    np.testing.assert_array_equal(got[5], np.broadcast_to(np.arange(1, 7), (4, 6)))
    grad = tf.gradients(tf.reduce_sum(r * r), x)[0]
    np.testing.assert_array_equal(run(grad, {x: value}), 2 * value)


def test_size_rank_and_range_from_shapes():
    x = tf.placeholder(tf.float32, [None, 3])
    u = tf.placeholder(tf.float32)
    size, rank, urank = tf.size(x), tf.rank(x), tf.rank(u)
    idx = tf.range(tf.shape(x)[0])
    steps = tf.range(1, tf.size(x), 2)
    got = run([size, rank, urank, idx, steps], {x: np.zeros((4, 3)), u: np.zeros((2, 2, 2))})
    assert got[0] == 12 and got[1] == 2 and got[2] == 3
    np.testing.assert_array_equal(got[3], np.arange(4))
    assert got[3].dtype == np.int32
    np.testing.assert_array_equal(got[4], np.arange(1, 12, 2))
    assert tf.size(tf.zeros([2, 5])).op.type == "Const"


def test_shape_arithmetic_folds_to_constants_in_the_ir():
    """The specialized IR holds the shape values, not a kernel computing them."""
    x = tf.placeholder(tf.float32, [None, 6])
    r = tf.reshape(x, [tf.shape(x)[0] * 2, tf.shape(x)[1] // 2])
    from jitflow.framework.lowering import lower_run
    lowered = lower_run(tf.get_default_graph(), [r], {x: np.zeros((4, 6), np.float32)})
    ops = [n.op for n in lowered.function.nodes]
    assert "reshape" in ops and "shape_of" not in ops and "mul" not in ops, ops


def test_each_fed_shape_compiles_once():
    x = tf.placeholder(tf.float32, [None, 2])
    y = tf.reduce_sum(tf.zeros(tf.shape(x)) + x)
    with tf.Session() as sess:
        for n in (1, 2, 3, 2, 1, 3):
            assert sess.run(y, {x: np.ones((n, 2))}) == 2 * n
        assert len(sess._compiled) == 3


def test_ensure_shape_and_partial_shapes():
    x = tf.placeholder(tf.float32)
    y = tf.ensure_shape(x, [None, 3])
    assert y.get_shape().as_list() == [None, 3]
    np.testing.assert_array_equal(run(y * 2.0, {x: np.ones((2, 3))}), np.full((2, 3), 2.0))
    with pytest.raises(errors.InvalidArgumentError, match="not compatible"):
        run(y, {x: np.ones((2, 4))})
    z = tf.placeholder(tf.float32, [None, None])
    z.set_shape([None, 4])
    assert z.get_shape().as_list() == [None, 4]
    with pytest.raises(ValueError):
        z.set_shape([None, 5])


def test_jit_traced_functions_use_shape_tensors():
    @tf.jit
    def f(x):
        return tf.reshape(x, [tf.shape(x)[0], -1]) + tf.ones([tf.shape(x)[0], 1])
    np.testing.assert_array_equal(f(np.zeros((2, 2, 3), np.float32)), np.ones((2, 6)))
    np.testing.assert_array_equal(f(np.zeros((3, 4), np.float32)), np.ones((3, 4)))


def test_reduce_over_all_axes_of_unknown_rank():
    x = tf.placeholder(tf.float32)
    m, s = tf.reduce_mean(x), tf.reduce_sum(x, keepdims=True)
    assert m.get_shape().as_list() == []
    got = run([m, s], {x: np.arange(6, dtype=np.float32).reshape(2, 3)})
    assert got[0] == 2.5 and got[1].shape == (1, 1) and got[1][0, 0] == 15


def test_placeholder_with_default_takes_the_declared_static_shape():
    x = tf.placeholder_with_default(np.zeros((2, 3), np.float32), shape=[None, 3], name="x")
    assert x.get_shape().as_list() == [None, 3] and x.op.name == "x"
    training = tf.placeholder_with_default(False, shape=(), name="training")
    y = tf.reduce_sum(x + 1.0)
    with tf.Session() as sess:
        assert sess.run(y) == 6.0
        assert sess.run(y, {x: np.ones((5, 3))}) == 30.0
        assert not sess.run(training) and sess.run(training, {training: True})
    with pytest.raises(ValueError):
        tf.placeholder_with_default(np.zeros((2, 3), np.float32), shape=[None, 4])


def _feed_run(t, x, value):
    with tf.Session() as sess:
        return sess.run(t, {x: value})


@pytest.mark.parametrize("build, expected", [
    (lambda x: tf.expand_dims(x, 0), lambda v: v[None]),
    (lambda x: tf.expand_dims(x, -1), lambda v: v[..., None]),
    (lambda x: tf.expand_dims(x, 1), lambda v: v[:, None]),
    (lambda x: tf.squeeze(x), lambda v: np.squeeze(v)),
    (lambda x: tf.squeeze(x, [0]), lambda v: np.squeeze(v, 0)),
    (lambda x: tf.transpose(x), lambda v: v.T),
    (lambda x: tf.transpose(x, [1, 0, 2]), lambda v: np.transpose(v, [1, 0, 2])),
    (lambda x: tf.concat([x, x * 2.0], 0), lambda v: np.concatenate([v, v * 2], 0)),
    (lambda x: tf.concat([x, x], -1), lambda v: np.concatenate([v, v], -1)),
    (lambda x: tf.stack([x, x + 1.0], axis=1), lambda v: np.stack([v, v + 1], 1)),
    (lambda x: tf.unstack(x, num=1)[0], lambda v: v[0]),
    (lambda x: tf.unstack(x, num=2, axis=-1)[1], lambda v: v[..., 1]),
    (lambda x: tf.nn.softmax(x), lambda v: np.exp(v) / np.exp(v).sum(-1, keepdims=True)),
])
def test_layout_ops_on_tensors_of_unknown_rank(build, expected):
    value = np.arange(6, dtype=np.float32).reshape(1, 3, 2) / 6
    x = tf.placeholder(tf.float32)
    y = build(x)
    np.testing.assert_allclose(_feed_run(y, x, value), expected(value), rtol=1e-6)
    # gradients flow back through the run-time-resolved layout
    g = _feed_run(tf.gradients(tf.reduce_sum(y * y), x)[0], x, value)
    eps, numeric = 1e-3, np.zeros_like(value, np.float64)
    for i in range(value.size):
        d = np.zeros(value.size, np.float32)
        d[i] = eps
        d = d.reshape(value.shape)
        numeric.flat[i] = (np.sum(expected(value + d).astype(np.float64) ** 2) -
                           np.sum(expected(value - d).astype(np.float64) ** 2)) / (2 * eps)
    np.testing.assert_allclose(g, numeric, rtol=2e-2, atol=2e-3)


def test_unknown_rank_errors_at_run_time():
    x = tf.placeholder(tf.float32)
    with pytest.raises(errors.InvalidArgumentError, match="squeeze"):
        _feed_run(tf.squeeze(x, [0]), x, np.zeros((2, 3), np.float32))
    with pytest.raises(errors.InvalidArgumentError, match="out of range"):
        _feed_run(tf.concat([x, x], 3), x, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="at least one"):
        tf.stack([])


@pytest.mark.parametrize("reduce", [tf.reduce_max, tf.reduce_prod, tf.reduce_mean])
def test_gradients_of_reductions_over_all_axes_of_unknown_rank(reduce):
    x = tf.placeholder(tf.float64)
    value = np.array([[1.0, 3.0], [2.0, 0.5]])
    g = _feed_run(tf.gradients(reduce(x), x)[0], x, value)
    name = reduce.__name__
    expected = {"reduce_max": (value == 3.0).astype(float), "reduce_prod": np.prod(value) / value,
                "reduce_mean": np.full_like(value, 0.25)}[name]
    np.testing.assert_allclose(g, expected)


def test_tile_with_multiples_from_shapes_and_its_gradient():
    x = tf.placeholder(tf.float32, [None, 2])
    row = tf.constant([[1.0, 2.0]])
    tiled = tf.tile(row, [tf.shape(x)[0], 1])
    assert tiled.get_shape().as_list() == [None, 2]
    g = tf.gradients(tf.reduce_sum(tiled * 3.0), row)[0]
    got = run([tiled, g], {x: np.zeros((3, 2))})
    np.testing.assert_array_equal(got[0], np.tile([[1.0, 2.0]], (3, 1)))
    np.testing.assert_array_equal(got[1], [[9.0, 9.0]])


def test_in_top_k_with_labels_of_unknown_rank():
    logits = tf.placeholder(tf.float32, [None, 3])
    y = tf.placeholder(tf.int64, shape=(None))
    correct = tf.nn.in_top_k(logits, y, 1)
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    value = np.array([[0.1, 0.8, 0.1], [0.9, 0.05, 0.05]], np.float32)
    assert run(accuracy, {logits: value, y: [1, 2]}) == 0.5
    with pytest.raises(errors.InvalidArgumentError):
        run(accuracy, {logits: value, y: [[1], [2]]})


def test_new_axis_on_unknown_rank_keeps_the_trailing_dims():
    x = tf.placeholder(tf.float32)
    y = x[None]
    assert y.get_shape().ndims is None
    assert _feed_run(y, x, np.zeros((2, 3), np.float32)).shape == (1, 2, 3)
