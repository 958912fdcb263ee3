"""tf.data: sources and transformations against the expected element
sequences, shuffle seeding (tf.set_random_seed, reshuffle per epoch, a new
Session repeats), end of sequence (OutOfRangeError), one-shot / initializable /
from_structure iterators with feed_dict, one element per run, map traced once
and run compiled, a linear regression trained from a Dataset, Keras fit on a
Dataset."""
import numpy as np
import pytest

import jitflow as tf
from jitflow import keras
from jitflow.errors import UnsupportedError


def drain(dataset, limit=1000):
    """All elements of a one-shot iterator over `dataset`, each as sess.run returns it."""
    nxt = dataset.make_one_shot_iterator().get_next()
    out = []
    with tf.Session() as sess:
        for _ in range(limit):
            try:
                out.append(sess.run(nxt))
            except tf.errors.OutOfRangeError:
                return out
    raise AssertionError("dataset did not end")


def scalars(dataset):
    return [int(v) for v in drain(dataset)]


# --- sources and transformations

def test_range_take_skip_repeat():
    assert scalars(tf.data.Dataset.range(5)) == [0, 1, 2, 3, 4]
    assert scalars(tf.data.Dataset.range(2, 11, 3)) == [2, 5, 8]
    assert scalars(tf.data.Dataset.range(10).skip(3).take(4)) == [3, 4, 5, 6]
    assert scalars(tf.data.Dataset.range(3).repeat(2)) == [0, 1, 2, 0, 1, 2]
    assert scalars(tf.data.Dataset.range(3).repeat().take(7)) == [0, 1, 2, 0, 1, 2, 0]
    assert scalars(tf.data.Dataset.range(3).take(-1)) == [0, 1, 2]
    assert scalars(tf.data.Dataset.range(3).skip(-1)) == []
    assert scalars(tf.data.Dataset.range(3).prefetch(2)) == [0, 1, 2]
    assert scalars(tf.data.Dataset.range(2).concatenate(tf.data.Dataset.range(5, 7))) == [0, 1, 5, 6]
    assert tf.data.Dataset.range(3).output_types == tf.int64


def test_from_tensor_slices_tuple_and_dict():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = np.arange(6)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    assert ds.output_types == (tf.float32, tf.int64)
    assert [s.as_list() for s in ds.output_shapes] == [[2], []]
    got = drain(ds)
    assert len(got) == 6
    for i, (a, b) in enumerate(got):
        np.testing.assert_array_equal(a, x[i])
        assert b == y[i]
    d = drain(tf.data.Dataset.from_tensor_slices({"a": [1.0, 2.0], "b": [[1, 2], [3, 4]]}))
    assert [sorted(e) for e in d] == [["a", "b"], ["a", "b"]]
    assert d[1]["a"] == np.float32(2.0) and d[1]["a"].dtype == np.float32
    np.testing.assert_array_equal(d[1]["b"], [3, 4])
    assert d[1]["b"].dtype == np.int32             # Python ints are int32, as in TF
    with pytest.raises(ValueError):
        tf.data.Dataset.from_tensor_slices((np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError):
        tf.data.Dataset.from_tensor_slices(np.float32(1.0))


def test_from_tensors_and_constant_tensor_source():
    ds = tf.data.Dataset.from_tensors(np.array([1, 2, 3], np.int32)).repeat(2)
    assert [s.as_list() for s in [ds.output_shapes]] == [[3]]
    assert [list(v) for v in drain(ds)] == [[1, 2, 3], [1, 2, 3]]
    c = tf.constant([[1.0, 2.0], [3.0, 4.0]]) * 10.0        # a graph tensor, evaluated by the session
    got = drain(tf.data.Dataset.from_tensor_slices(c))
    np.testing.assert_array_equal(np.stack(got), [[10, 20], [30, 40]])


def test_batch_static_shapes_and_remainder():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(2)
    assert ds.output_shapes.as_list() == [None, 2]
    got = drain(ds)
    assert [b.shape for b in got] == [(2, 2), (2, 2), (1, 2)]
    np.testing.assert_array_equal(np.concatenate(got), x)
    dropped = tf.data.Dataset.from_tensor_slices(x).batch(2, drop_remainder=True)
    assert dropped.output_shapes.as_list() == [2, 2]
    nxt = dropped.make_one_shot_iterator().get_next()
    assert nxt.shape.as_list() == [2, 2]
    assert [b.shape for b in drain(dropped)] == [(2, 2), (2, 2)]
    un = drain(tf.data.Dataset.from_tensor_slices(x).batch(2).unbatch())
    np.testing.assert_array_equal(np.stack(un), x)


def test_zip_and_filter():
    a = tf.data.Dataset.range(4)
    b = tf.data.Dataset.from_tensor_slices(np.array([10.0, 20.0, 30.0], np.float32))
    z = tf.data.Dataset.zip((a, b))
    assert z.output_types == (tf.int64, tf.float32)
    assert [(int(i), float(v)) for i, v in drain(z)] == [(0, 10.0), (1, 20.0), (2, 30.0)]
    evens = tf.data.Dataset.range(10).filter(lambda v: tf.equal(tf.floormod(v, 2), 0))
    assert scalars(evens) == [0, 2, 4, 6, 8]
    with pytest.raises(ValueError, match="scalar boolean"):
        tf.data.Dataset.range(3).filter(lambda v: v + 1)


def test_map_runs_traced_graph_once_and_compiled():
    traces = []

    def f(x, y):
        traces.append(1)
        assert isinstance(x, tf.Tensor) and isinstance(y, tf.Tensor)     # traced with graph tensors
        return tf.tanh(x) * 2.0 + tf.cast(y, tf.float32), tf.reduce_sum(x)

    x = np.linspace(-1, 1, 12).astype(np.float32).reshape(4, 3)
    y = np.arange(4, dtype=np.int32)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).map(f, num_parallel_calls=tf.data.experimental.AUTOTUNE)
    assert ds.output_types == (tf.float32, tf.float32)
    assert [s.as_list() for s in ds.output_shapes] == [[3], []]
    got = drain(ds.repeat(2))
    assert len(traces) == 1                            # traced once, executed 8 times
    for i, (u, s) in enumerate(got):
        np.testing.assert_allclose(u, np.tanh(x[i % 4]) * 2 + y[i % 4], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(s, x[i % 4].sum(), rtol=1e-5, atol=1e-6)
    # the traced function is a jitflow graph: its ops are jitflow ops, run by a Session (compiled code)
    func = ds._func
    assert {op.type for op in func.graph.get_operations()} >= {"Tanh", "Placeholder"}
    assert func._session is not None and func._session._compiled


def test_map_over_batches_and_dict_elements():
    x = np.arange(6, dtype=np.float32)
    ds = tf.data.Dataset.from_tensor_slices({"v": x}).batch(4).map(lambda d: {"sq": d["v"] * d["v"]})
    got = drain(ds)
    np.testing.assert_array_equal(got[0]["sq"], x[:4] ** 2)
    np.testing.assert_array_equal(got[1]["sq"], x[4:] ** 2)
    assert ds.output_shapes["sq"].as_list() == [None]


def test_map_capturing_outer_tensor_is_a_clear_error():
    scale = tf.constant(2.0)
    with pytest.raises(UnsupportedError, match="outer graph"):
        tf.data.Dataset.range(3).map(lambda v: tf.cast(v, tf.float32) * scale)


# --- shuffle

def _shuffled_epochs(seed_graph, seed_op, reshuffle=True, epochs=2):
    tf.reset_default_graph()
    if seed_graph is not None:
        tf.set_random_seed(seed_graph)
    ds = tf.data.Dataset.range(20).shuffle(20, seed=seed_op, reshuffle_each_iteration=reshuffle).repeat(epochs)
    values = scalars(ds)
    return [values[i * 20:(i + 1) * 20] for i in range(epochs)]


def test_shuffle_is_a_permutation_seeded_and_reshuffled_per_epoch():
    a = _shuffled_epochs(42, None)
    b = _shuffled_epochs(42, None)
    assert a == b                                      # set_random_seed: rebuilt graph repeats
    assert sorted(a[0]) == list(range(20)) and sorted(a[1]) == list(range(20))
    assert a[0] != list(range(20))
    assert a[0] != a[1]                                # reshuffled each iteration
    fixed = _shuffled_epochs(None, 7, reshuffle=False)
    assert fixed[0] == fixed[1]
    assert _shuffled_epochs(None, 7, reshuffle=False) == fixed
    assert _shuffled_epochs(1, None) != a


def test_shuffle_small_buffer_is_local():
    tf.set_random_seed(3)
    values = scalars(tf.data.Dataset.range(50).shuffle(2))
    assert sorted(values) == list(range(50))
    # with a buffer of 2, element i can come out no earlier than position i - 1
    assert all(pos >= v - 1 for pos, v in enumerate(values))


def test_shuffle_new_session_repeats_reinit_reshuffles():
    tf.set_random_seed(5)
    it = tf.data.Dataset.range(10).shuffle(10).make_initializable_iterator()
    nxt = it.get_next()

    def epoch(sess):
        sess.run(it.initializer)
        return [int(sess.run(nxt)) for _ in range(10)]
    with tf.Session() as sess:
        first, second = epoch(sess), epoch(sess)
    with tf.Session() as sess:
        again = epoch(sess)
    assert first != second and first == again


# --- iterators and Session.run semantics

def test_out_of_range_at_end_and_classic_loop():
    nxt = tf.data.Dataset.range(3).make_one_shot_iterator().get_next()
    total = tf.Variable(0, dtype=tf.int64)
    update = tf.assign_add(total, nxt)
    with tf.Session() as sess:
        sess.run(total.initializer)
        steps = 0
        while True:
            try:
                sess.run(update)
                steps += 1
            except tf.errors.OutOfRangeError as exc:
                assert "End of sequence" in str(exc)
                break
        assert steps == 3 and sess.run(total) == 3
        with pytest.raises(tf.errors.OutOfRangeError):     # stays at the end
            sess.run(nxt)


def test_one_element_per_run_and_sessions_have_own_positions():
    ds = tf.data.Dataset.from_tensor_slices((np.arange(4), np.arange(4) * 10))
    a, b = ds.make_one_shot_iterator().get_next()
    doubled = a * 2
    with tf.Session() as s1, tf.Session() as s2:
        for i in range(3):
            va, vb, vd = s1.run([a, b, doubled])        # all from one element
            assert (va, vb, vd) == (i, 10 * i, 2 * i)
        assert s2.run(a) == 0                          # a new session starts at the beginning
        assert s1.run(b) == 30
        assert s1.run(a, feed_dict={a: 7}) == 7        # a fed get_next tensor does not advance
        with pytest.raises(tf.errors.OutOfRangeError):
            s1.run(a)


def test_initializable_iterator_feed_dict_and_reinit():
    x = tf.placeholder(tf.float32, shape=[None, 2])
    y = tf.placeholder(tf.int32, shape=[None])
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    it = ds.make_initializable_iterator()
    xb, yb = it.get_next()
    assert xb.shape.as_list() == [None, 2] and yb.dtype == tf.int32
    loss = tf.reduce_sum(xb) + tf.cast(tf.reduce_sum(yb), tf.float32)
    data_x = np.arange(10, dtype=np.float32).reshape(5, 2)
    data_y = np.arange(5, dtype=np.int32)
    with tf.Session() as sess:
        with pytest.raises(tf.errors.FailedPreconditionError, match="not been initialized"):
            sess.run(loss)
        for _ in range(2):                              # re-running the initializer restarts
            sess.run(it.initializer, feed_dict={x: data_x, y: data_y})
            vals = []
            while True:
                try:
                    vals.append(sess.run(loss))
                except tf.errors.OutOfRangeError:
                    break
            np.testing.assert_allclose(vals, [0 + 1 + 2 + 3 + 1, 4 + 5 + 6 + 7 + 5, 8 + 9 + 4])
        sess.run(it.initializer, feed_dict={x: data_x[:1], y: data_y[:1]})   # new data
        assert sess.run(loss) == 1.0
    with pytest.raises(ValueError, match="one-shot"):
        ds.make_one_shot_iterator()
    with pytest.raises(ValueError, match="initializer"):
        tf.data.Dataset.range(2).make_one_shot_iterator().initializer


def test_batch_size_placeholder_read_at_initialization():
    x = tf.placeholder(tf.float32, [None])
    batch_size = tf.placeholder(tf.int64, shape=[])
    it = tf.data.Dataset.from_tensor_slices(x).batch(batch_size).make_initializable_iterator()
    nxt = it.get_next()
    assert nxt.shape.as_list() == [None]
    with tf.Session() as sess:
        sess.run(it.initializer, {x: np.arange(5, dtype=np.float32), batch_size: 2})
        assert [len(sess.run(nxt)) for _ in range(3)] == [2, 2, 1]
        sess.run(it.initializer, {x: np.arange(5, dtype=np.float32), batch_size: 5})
        np.testing.assert_array_equal(sess.run(nxt), np.arange(5))
        with pytest.raises(tf.errors.InvalidArgumentError, match="greater than zero"):
            sess.run(it.initializer, {x: np.arange(5, dtype=np.float32), batch_size: 0})
            sess.run(nxt)


def test_iterator_from_structure_switches_datasets():
    train = tf.data.Dataset.range(5).map(lambda v: v * 10)
    valid = tf.data.Dataset.range(2)
    it = tf.data.Iterator.from_structure(train.output_types, train.output_shapes)
    nxt = it.get_next()
    init_train, init_valid = it.make_initializer(train), it.make_initializer(valid)
    with tf.Session() as sess:
        sess.run(init_train)
        assert [int(sess.run(nxt)) for _ in range(2)] == [0, 10]
        sess.run(init_valid)
        assert [int(sess.run(nxt)) for _ in range(2)] == [0, 1]
        with pytest.raises(tf.errors.OutOfRangeError):
            sess.run(nxt)
    with pytest.raises(TypeError):
        it.make_initializer(tf.data.Dataset.from_tensor_slices(np.zeros(3, np.float32)))


def test_unsupported_parts_raise_clearly():
    ds = tf.data.Dataset.range(3)
    with pytest.raises(UnsupportedError, match="padded_batch"):
        ds.padded_batch(2, padded_shapes=[])
    with pytest.raises(UnsupportedError, match="file"):
        ds.cache("/tmp/x")
    with pytest.raises(RuntimeError):
        iter(ds)
    assert scalars(ds.cache().repeat(2)) == [0, 1, 2, 0, 1, 2]


def test_from_generator():
    def gen():
        for i in range(3):
            yield np.full(2, i, np.float32), i
    ds = tf.data.Dataset.from_generator(gen, (tf.float32, tf.int32), ([2], []))
    got = drain(ds.batch(2))
    np.testing.assert_array_equal(got[0][0], [[0, 0], [1, 1]])
    np.testing.assert_array_equal(got[1][1], [2])


# --- training from a Dataset

def test_linear_regression_training_loop_over_dataset():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 3)).astype(np.float32)
    true_w = np.array([[1.5], [-2.0], [0.5]], np.float32)
    y = x @ true_w + 0.3
    tf.set_random_seed(0)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(256).batch(32).repeat(30)
    xb, yb = ds.make_one_shot_iterator().get_next()
    w = tf.Variable(tf.zeros([3, 1]))
    b = tf.Variable(0.0)
    loss = tf.reduce_mean(tf.square(tf.matmul(xb, w) + b - yb))
    train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    steps = 0
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        while True:
            try:
                sess.run(train_op)
                steps += 1
            except tf.errors.OutOfRangeError:
                break
        w_val, b_val = sess.run([w, b])
    assert steps == 30 * 8
    np.testing.assert_allclose(w_val, true_w, atol=1e-3)
    np.testing.assert_allclose(b_val, 0.3, atol=1e-3)


def test_keras_fit_evaluate_predict_on_dataset():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    labels = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.layers.Dense(16, activation="relu", input_shape=(4,)),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train = tf.data.Dataset.from_tensor_slices((x, labels)).shuffle(200, seed=1).batch(20)
    history = model.fit(train, epochs=15, verbose=0)
    assert len(history.history["loss"]) == 15
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, acc = model.evaluate(tf.data.Dataset.from_tensor_slices((x, labels)).batch(50), verbose=0)
    assert acc > 0.9
    probs = model.predict(tf.data.Dataset.from_tensor_slices(x).batch(64))
    assert probs.shape == (200, 2)
    np.testing.assert_allclose(probs, model.predict(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.mean(probs.argmax(1) == labels), acc, atol=1e-6)
    # an infinite dataset needs steps_per_epoch; with it, one iterator runs across epochs
    forever = tf.data.Dataset.from_tensor_slices((x, labels)).batch(20).repeat()
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(forever, epochs=1, verbose=0)
    h = model.fit(forever, epochs=2, steps_per_epoch=3, verbose=0)
    assert len(h.history["loss"]) == 2
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(train, batch_size=10, verbose=0)
