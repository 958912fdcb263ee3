"""Issue 15, argument checks: out-of-range axes never wrap (item 6), Python values that an integer dtype
cannot hold, dropout rates and Keras fit arguments are refused (item 8, graph-building half), and the
"unclear errors" become TF-named errors with the op and the user's line."""
import numpy as np
import pytest

import jitflow as tf
from jitflow import keras
from jitflow.errors import InvalidArgumentError, UnsupportedError

X = (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5) * 0.7      # rank 2; no ties (argmax is unique)
RANK = 2
HERE = "test_reliability_args.py"


def _run(fetch, feed=None):
    with tf.Session() as sess:
        return sess.run(fetch, feed)


# ---- item 6: every op with an axis argument -----------------------------------------------------
# (name, builder(x, axis)); x is a float32 tensor of rank 2, the axis is in [-rank, rank)
AXIS_OPS = [
    ("argmax", lambda x, a: tf.argmax(x, a)),
    ("argmin", lambda x, a: tf.argmin(x, axis=a)),
    ("arg_max", lambda x, a: tf.arg_max(x, a)),
    ("unstack", lambda x, a: tf.unstack(x, axis=a)[0]),
    ("softmax", lambda x, a: tf.nn.softmax(x, axis=a)),
    ("log_softmax", lambda x, a: tf.nn.log_softmax(x, axis=a)),
    ("softmax_xent_v2", lambda x, a: tf.nn.softmax_cross_entropy_with_logits_v2(labels=x, logits=x, axis=a)),
    ("softmax_xent", lambda x, a: tf.nn.softmax_cross_entropy_with_logits(labels=x, logits=x, dim=a)),
    ("squeeze", lambda x, a: tf.squeeze(x, axis=[a])),
    ("gather", lambda x, a: tf.gather(x, [0], axis=a)),
    ("cumsum", lambda x, a: tf.cumsum(x, axis=a)),
    ("cumprod", lambda x, a: tf.cumprod(x, axis=a)),
    ("split", lambda x, a: tf.split(x, 1, axis=a)[0]),
    ("reverse", lambda x, a: tf.reverse(x, [a])),
    ("norm", lambda x, a: tf.norm(x, axis=a)),
    ("l2_normalize", lambda x, a: tf.nn.l2_normalize(x, axis=a)),
    ("clip_by_norm", lambda x, a: tf.clip_by_norm(x, 1.0, axes=[a])),
    ("concat", lambda x, a: tf.concat([x, x], axis=a)),
    ("tensordot", lambda x, a: tf.tensordot(x, tf.transpose(x), axes=[[a], [0]])),
    ("reduce_sum", lambda x, a: tf.reduce_sum(x, axis=a)),
    ("reduce_mean", lambda x, a: tf.reduce_mean(x, axis=a)),
    ("reduce_max", lambda x, a: tf.reduce_max(x, axis=a)),
    ("reduce_min", lambda x, a: tf.reduce_min(x, axis=a)),
    ("reduce_prod", lambda x, a: tf.reduce_prod(x, axis=a)),
    ("reduce_logsumexp", lambda x, a: tf.reduce_logsumexp(x, axis=a)),
    ("reduce_any", lambda x, a: tf.reduce_any(x > 0, axis=a)),
    ("count_nonzero", lambda x, a: tf.count_nonzero(x, axis=a)),
    ("moments", lambda x, a: tf.nn.moments(x, axes=[a])[0]),
]
# ops that insert an axis: valid in [-rank-1, rank]
INSERT_OPS = [
    ("expand_dims", lambda x, a: tf.expand_dims(x, a)),
    ("stack", lambda x, a: tf.stack([x, x], axis=a)),
    ("one_hot", lambda x, a: tf.one_hot(tf.cast(x > 0, tf.int32), 3, axis=a)),
]
# ops whose axis is checked when the run is specialized if the rank is unknown at graph building
RUNTIME_CHECKED = ["argmax", "argmin", "softmax", "log_softmax", "softmax_xent_v2", "squeeze", "concat",
                   "reduce_sum", "reduce_max", "reduce_logsumexp", "count_nonzero", "moments"]


@pytest.mark.parametrize("bad", [RANK, -RANK - 1])
@pytest.mark.parametrize("name,build", AXIS_OPS, ids=[n for n, _ in AXIS_OPS])
def test_item6_out_of_range_axis_raises_at_graph_building(name, build, bad):
    x = tf.placeholder(tf.float32, (2, 3))
    with pytest.raises(ValueError, match="out of range|Invalid axis|Expected axis"):
        build(x, bad)


@pytest.mark.parametrize("bad", [RANK + 1, -RANK - 2])
@pytest.mark.parametrize("name,build", INSERT_OPS, ids=[n for n, _ in INSERT_OPS])
def test_item6_out_of_range_inserted_axis_raises(name, build, bad):
    x = tf.placeholder(tf.float32, (2, 3))
    with pytest.raises(ValueError):
        build(x, bad)


def test_item6_one_hot_axis_below_minus_one_raises():
    """TF: axis is -1 or in [0, rank]; -2 used to build a garbage shape (3, 1, 2, 1, 3)."""
    x = tf.constant([[0, 1, 2], [2, 1, 0]])
    with pytest.raises(ValueError, match="Expected axis to be -1"):
        tf.one_hot(x, 3, axis=-2)
    with pytest.raises(ValueError, match="Expected axis to be -1"):
        tf.one_hot(tf.placeholder(tf.int32), 3, axis=-2)


@pytest.mark.parametrize("bad", [RANK, -RANK - 1])
@pytest.mark.parametrize("name", RUNTIME_CHECKED)
def test_item6_out_of_range_axis_of_unknown_rank_raises_at_run_time(name, bad):
    build = dict(AXIS_OPS)[name]
    x = tf.placeholder(tf.float32)
    y = build(x, bad)
    with pytest.raises(InvalidArgumentError, match="out of range") as info:
        _run(y, {x: X})
    assert HERE in str(info.value)          # names the user's line


@pytest.mark.parametrize("name,build,bad", [
    ("expand_dims", lambda x, a: tf.expand_dims(x, a), 3),
    ("expand_dims", lambda x, a: tf.expand_dims(x, a), -4),
    ("stack", lambda x, a: tf.stack([x, x], axis=a), 3),
    ("unstack", lambda x, a: tf.unstack(x, num=2, axis=a)[0], 2),
    ("unstack", lambda x, a: tf.unstack(x, num=2, axis=a)[0], -3)])
def test_item6_inserted_axis_of_unknown_rank_names_the_axis(name, build, bad):
    x = tf.placeholder(tf.float32)
    with pytest.raises(InvalidArgumentError, match=f"axis {bad} is out of range for a tensor of rank 2"):
        _run(build(x, bad), {x: X})


def test_item6_argmax_argmin_wrap_no_more():
    """axis=-3 on a rank-2 tensor used to compute argmax along axis 1 (silently wrong)."""
    x = tf.constant(X)
    with pytest.raises(ValueError, match="out of range"):
        tf.argmax(x, -3)
    with pytest.raises(ValueError, match="out of range"):
        tf.argmin(x, dimension=-3)
    with pytest.raises(ValueError, match="Cannot specify both"):
        tf.argmax(x, axis=0, dimension=0)
    got = _run([tf.argmax(x, -2), tf.argmin(x, -1), tf.argmax(x, tf.constant(1))])
    np.testing.assert_array_equal(got[0], np.argmax(X, -2))
    np.testing.assert_array_equal(got[1], np.argmin(X, -1))
    np.testing.assert_array_equal(got[2], np.argmax(X, 1))


def test_item6_softmax_axis_is_invalid_argument_and_value_error():
    """TF 1.x raises InvalidArgumentError at graph building for softmax's dim; jitflow's error is both."""
    x = tf.constant(X)
    for fn in (tf.nn.softmax, tf.nn.log_softmax):
        with pytest.raises(InvalidArgumentError):
            fn(x, axis=-3)
        with pytest.raises(ValueError):
            fn(x, axis=2)


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_item6_valid_negative_axes_still_compute_the_right_values():
    x = tf.constant(X)
    got = _run([tf.nn.softmax(x, axis=-2), tf.nn.log_softmax(x, axis=0), tf.nn.softmax(x, axis=None),
                tf.nn.softmax_cross_entropy_with_logits_v2(labels=_np_softmax(X, 0), logits=x, axis=-2),
                tf.unstack(x, axis=-1)[2], tf.squeeze(tf.expand_dims(x, -3), [-3]),
                tf.stack([x, 2 * x], axis=-1), tf.tensordot(x, np.ones((2, 4), np.float32), [[-2], [0]])])
    np.testing.assert_allclose(got[0], _np_softmax(X, 0), rtol=1e-5)
    np.testing.assert_allclose(got[1], np.log(_np_softmax(X, 0)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[2], _np_softmax(X, -1), rtol=1e-5)
    p = _np_softmax(X, 0)
    np.testing.assert_allclose(got[3], -(p * np.log(p)).sum(axis=0), rtol=1e-5)
    np.testing.assert_array_equal(got[4], X[:, 2])
    np.testing.assert_array_equal(got[5], X)
    np.testing.assert_array_equal(got[6], np.stack([X, 2 * X], axis=-1))
    np.testing.assert_allclose(got[7], np.tensordot(X, np.ones((2, 4)), [[0], [0]]), rtol=1e-6)


def test_item6_softmax_negative_axis_gradient_matches_finite_differences():
    x = tf.placeholder(tf.float64, (2, 3))
    weights = np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]])
    loss = tf.reduce_sum(tf.nn.softmax(x, axis=-2) * weights)
    (grad,) = tf.gradients(loss, [x])
    x0 = X.astype(np.float64)
    g = _run(grad, {x: x0})
    eps = 1e-6
    numeric = np.zeros_like(x0)
    for i in np.ndindex(x0.shape):
        up, down = x0.copy(), x0.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = ((_np_softmax(up, 0) * weights).sum() - (_np_softmax(down, 0) * weights).sum()) / (2 * eps)
    np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-8)


def test_item6_keras_batch_normalization_axis_does_not_wrap():
    for axis in (2, -3):
        model = keras.Sequential([keras.layers.BatchNormalization(axis=axis, input_shape=(3,))])
        with pytest.raises(ValueError, match="Invalid axis"):
            model.predict(np.ones((2, 3), np.float32))


def test_item6_reduce_axis_must_be_an_integer():
    x = tf.constant(X)
    with pytest.raises(TypeError):
        tf.reduce_sum(x, axis=1.5)


# ---- item 8 (graph building): values an integer dtype cannot hold -------------------------------------
@pytest.mark.parametrize("value,dtype", [
    (2 ** 40, tf.int32), (2 ** 31, tf.int32), (-2 ** 31 - 1, tf.int32), (2 ** 63, tf.int64),
    (128, tf.int8), (-129, tf.int8), (2 ** 15, tf.int16), (256, tf.uint8), (-1, tf.uint8),
    ([1, 2 ** 40], tf.int32), (np.array([1, 2 ** 40]), tf.int32), (np.array([300]), tf.uint8),
    (np.array([200], np.uint8), tf.int8), (np.array([3e10]), tf.int32)])
def test_item8_constant_out_of_range_raises_instead_of_wrapping(value, dtype):
    with pytest.raises((TypeError, ValueError), match="Can't convert"):
        tf.constant(value, dtype)


def test_item8_python_int_past_int64_raises():
    with pytest.raises((TypeError, ValueError)):
        tf.constant(2 ** 63)
    assert _run(tf.constant(2 ** 63 - 1)) == 2 ** 63 - 1


def test_item8_int_limits_and_mixed_operands():
    got = _run([tf.constant(2 ** 31 - 1, tf.int32), tf.constant(-2 ** 31, tf.int32), tf.constant(127, tf.int8),
                tf.constant(-128, tf.int8), tf.constant(255, tf.uint8), tf.constant(-2 ** 15, tf.int16),
                tf.constant(np.array([3.0]), tf.int32)])
    assert [np.asarray(v).item() for v in got] == [2 ** 31 - 1, -2 ** 31, 127, -128, 255, -2 ** 15, 3]
    x = tf.placeholder(tf.int8, (2,))
    with pytest.raises((TypeError, ValueError), match="int8"):
        x + 300                     # the Python operand takes the tensor's dtype: it must fit
    with pytest.raises((TypeError, ValueError), match="int32"):
        tf.Variable(2 ** 40, dtype=tf.int32)


@pytest.mark.parametrize("kwargs", [dict(rate=1.0), dict(rate=-0.1), dict(rate=1.5), dict(rate=float("nan")),
                                    dict(keep_prob=0.0), dict(keep_prob=1.5), dict(rate=np.float32(1.0))])
def test_item8_dropout_rate_outside_unit_interval_raises(kwargs):
    with pytest.raises(ValueError, match=r"range \[0, 1\)"):
        tf.nn.dropout(tf.ones([4, 4]), **kwargs)


def test_item8_dropout_argument_checks_and_tensor_rate():
    x = tf.ones([64, 64])
    with pytest.raises(ValueError, match="Cannot specify both"):
        tf.nn.dropout(x, keep_prob=0.5, rate=0.5)
    with pytest.raises(ValueError):
        tf.nn.dropout(x)
    with pytest.raises(ValueError, match="floating point"):
        tf.nn.dropout(tf.ones([2], tf.int32), rate=0.5)
    with pytest.raises(ValueError, match="scalar"):
        tf.nn.dropout(x, rate=tf.constant([0.5, 0.5]))
    with pytest.raises(ValueError):
        tf.layers.dropout(x, rate=1.0, training=True)
    keep = tf.placeholder(tf.float32)          # a tensor rate is accepted (its value is the program's business)
    out = _run(tf.nn.dropout(x, keep_prob=keep, seed=3), {keep: 1.0})
    np.testing.assert_array_equal(out, np.ones((64, 64), np.float32))
    out = _run(tf.nn.dropout(x, rate=0.25, seed=3))
    kept = out != 0
    assert 0.6 < kept.mean() < 0.9
    np.testing.assert_allclose(out[kept], 1 / 0.75, rtol=1e-6)


@pytest.fixture(scope="module")
def small_model():
    tf.reset_default_graph()
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    model.compile("sgd", "mse")
    return model


@pytest.mark.parametrize("kwargs,match", [
    (dict(batch_size=0), "batch_size"), (dict(batch_size=-4), "batch_size"), (dict(batch_size=2.5), "batch_size"),
    (dict(epochs=-1), "epochs"), (dict(epochs=1.5), "epochs"), (dict(initial_epoch=-1), "initial_epoch"),
    (dict(validation_freq=0), "validation_freq")])
def test_item8_keras_fit_refuses_bad_batch_size_and_epochs(small_model, kwargs, match):
    x, y = np.ones((4, 3), np.float32), np.ones((4, 2), np.float32)
    with pytest.raises(ValueError, match=match):
        small_model.fit(x, y, verbose=0, **kwargs)


def test_item8_keras_refuses_empty_data_and_bad_batch_sizes(small_model):
    x, y = np.ones((4, 3), np.float32), np.ones((4, 2), np.float32)
    empty_x, empty_y = np.zeros((0, 3), np.float32), np.zeros((0, 2), np.float32)
    with pytest.raises(ValueError, match="non-empty"):
        small_model.fit(empty_x, empty_y, verbose=0)
    with pytest.raises(ValueError, match="non-empty"):
        small_model.evaluate(empty_x, empty_y, verbose=0)
    with pytest.raises(ValueError, match="non-empty"):
        small_model.fit(x, y, validation_data=(empty_x, empty_y), verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        small_model.evaluate(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        small_model.predict(x, batch_size=-1)
    weights = [w.copy() for w in small_model.get_weights()]
    assert small_model.fit(x, y, epochs=0, verbose=0).history == {}      # epochs=0 is valid: no training
    for before, after in zip(weights, small_model.get_weights()):
        np.testing.assert_array_equal(before, after)
    history = small_model.fit(x, y, epochs=2, batch_size=2.0, verbose=0).history   # an integral float is fine
    assert len(history["loss"]) == 2


# ---- unclear errors --------------------------------------------------------------------------------
def test_unclear_stack_of_nothing_is_a_value_error():
    with pytest.raises(ValueError, match=f"stack.*{HERE}"):
        tf.stack([])


def test_unclear_range_with_zero_delta_is_a_value_error():
    with pytest.raises(ValueError, match=f"Requires delta != 0.*{HERE}"):
        tf.range(0, 5, 0)
    n = tf.shape(tf.ones([3]))[0] - 3       # a delta known only at run time
    with pytest.raises(InvalidArgumentError, match="delta"):
        _run(tf.range(0, 5, n))


@pytest.mark.parametrize("make", [lambda: tf.zeros([2 ** 62, 4]), lambda: tf.ones([2 ** 40, 2 ** 30], tf.int8),
                                  lambda: tf.fill([2 ** 62, 4], 1.0), lambda: tf.zeros([-1, 4]),
                                  lambda: tf.broadcast_to(1.0, [2 ** 62, 4])])
def test_unclear_huge_or_negative_shapes_name_the_op(make):
    with pytest.raises(ValueError, match=HERE) as info:
        make()
    assert "iterator is too large" not in str(info.value)


def test_unclear_large_constant_fill_runs_out_of_memory_by_name(monkeypatch):
    """A shape within int64 but beyond memory: ResourceExhaustedError naming the op, not numpy's error."""
    monkeypatch.setenv("JITFLOW_MEMORY_LIMIT_BYTES", str(1 << 30))
    big = tf.zeros([2 ** 40, 4], name="big")
    with pytest.raises(tf.errors.ResourceExhaustedError, match="big"):
        _run(big)


def test_unclear_validate_shape_false_variable():
    v = tf.Variable(tf.zeros([2]), validate_shape=False)      # a static initial shape: usable
    assign_same = tf.assign(v, [1.0, 2.0], validate_shape=False)
    with tf.Session() as sess:
        sess.run(v.initializer)
        sess.run(assign_same)
        np.testing.assert_array_equal(sess.run(v), [1.0, 2.0])
    with pytest.raises(UnsupportedError, match="validate_shape"):
        tf.assign(v, tf.zeros([3]), validate_shape=False)
    with pytest.raises(UnsupportedError, match="validate_shape"):
        v.assign(tf.zeros([3]))
    with pytest.raises(UnsupportedError, match="validate_shape"):
        tf.Variable(tf.placeholder(tf.float32, [None]), validate_shape=False)
    with pytest.raises(ValueError):
        tf.Variable(tf.placeholder(tf.float32, [None]))


def test_unclear_matrix_inverse_names_the_op_and_the_line():
    x = tf.placeholder(tf.float32, (2, 2))
    inverse = tf.matrix_inverse(x, name="my_inverse")
    with pytest.raises(InvalidArgumentError, match="not invertible") as info:
        _run(inverse, {x: [[1.0, 2.0], [2.0, 4.0]]})
    assert "my_inverse" in str(info.value) and HERE in str(info.value)
    np.testing.assert_allclose(_run(inverse, {x: [[2.0, 0.0], [0.0, 4.0]]}), [[0.5, 0.0], [0.0, 0.25]])


def test_unclear_gather_index_error_names_the_op():
    idx = tf.placeholder(tf.int32, (2,))
    out = tf.gather(tf.constant([1.0, 2.0]), idx, name="my_gather")
    with pytest.raises(InvalidArgumentError, match="my_gather"):
        _run(out, {idx: [0, 5]})


@pytest.mark.parametrize("index", [1.5, np.float32(1), slice(1.5, None), "a", [0, 1], slice(0, "x")])
def test_unclear_float_and_other_bad_indices_are_type_errors(index):
    x = tf.constant([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="valid indices"):
        x[index]


def test_valid_indices_still_work():
    x = tf.constant(X)
    got = _run([x[1], x[np.int64(-1), 1:], x[:, np.array(2)], x[True]])
    np.testing.assert_array_equal(got[0], X[1])
    np.testing.assert_array_equal(got[1], X[-1, 1:])
    np.testing.assert_array_equal(got[2], X[:, 2])
    np.testing.assert_array_equal(got[3], X[1])        # a bool indexes as an int, as in Python and TF
