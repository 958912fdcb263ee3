"""The gather family: tf.gather (axis), tf.gather_nd, tf.nn.embedding_lookup (sharded, max_norm),
tf.scatter_nd, tf.unsorted_segment_sum, tf.sequence_mask, tf.reverse, tf.reverse_sequence. Values
against numpy, gradients against numpy adjoints / finite differences (duplicate indices accumulate),
and bad indices raising InvalidArgumentError that names the op and the index."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import UnsupportedError


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()


def run(fetches, feed=None):
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        return sess.run(fetches, feed)


def test_gather_axis_values_and_duplicate_index_gradient_accumulates():
    params = np.arange(24, dtype=np.float64).reshape(2, 4, 3)
    p = tf.Variable(params)
    i = tf.placeholder(tf.int32, [None])
    g = tf.gather(p, i, axis=1)
    weights = np.random.default_rng(0).normal(size=(2, 5, 3))
    grad = tf.gradients(tf.reduce_sum(g * weights), p)[0]
    idx = np.array([3, 1, 3, 3, 0])
    out, dp = run([g, grad], {i: idx})
    np.testing.assert_array_equal(out, np.take(params, idx, axis=1))
    want = np.zeros_like(params)
    np.add.at(want, (slice(None), idx), weights)                 # duplicates add up
    np.testing.assert_allclose(dp, want)
    assert g.op.name == "GatherV2"


@pytest.mark.parametrize("params_shape", [[None, 3], [4, 3]])
def test_gather_index_out_of_range_names_op_and_index(params_shape):
    p = tf.placeholder(tf.float32, params_shape)
    i = tf.placeholder(tf.int64, [None])
    g = tf.gather(p, i, name="lookup")
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(g, {p: np.eye(4, 3), i: [3, 0]}), np.eye(4, 3)[[3, 0]])
        for bad in (4, -1):
            with pytest.raises(tf.errors.InvalidArgumentError, match=rf"lookup.*|= {bad} is not in \[0, 4\)") as info:
                sess.run(g, {p: np.eye(4, 3), i: [0, bad]})
            assert f"= {bad} is not in [0, 4)" in str(info.value) and "lookup" in str(info.value)


def test_gather_nd_values_gradient_and_bad_component():
    params = np.arange(24, dtype=np.float64).reshape(3, 4, 2)
    p = tf.Variable(params)
    idx = np.array([[[0, 1], [2, 3]], [[0, 1], [1, 0]]])
    i = tf.placeholder(tf.int32, [2, 2, 2])
    g = tf.gather_nd(p, i)
    assert g.shape.as_list() == [2, 2, 2]
    weights = np.random.default_rng(1).normal(size=(2, 2, 2))
    grad = tf.gradients(tf.reduce_sum(g * weights), p)[0]
    out, dp = run([g, grad], {i: idx})
    np.testing.assert_array_equal(out, params[idx[..., 0], idx[..., 1]])
    want = np.zeros_like(params)
    np.add.at(want, (idx[..., 0], idx[..., 1]), weights)
    np.testing.assert_allclose(dp, want)
    full = tf.gather_nd(p, tf.constant([[2], [0]]))                # K < rank: whole slices
    np.testing.assert_array_equal(run(full), params[[2, 0]])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"= 4 is not in \[0, 4\).*column 1"):
        run(g, {i: np.array([[[0, 4], [0, 0]], [[0, 0], [0, 0]]])})    # [0, 4] would alias row 1 if unchecked


def test_scatter_nd_adds_duplicates_and_its_gradient_is_gather_nd():
    updates = tf.Variable(np.array([[1., 2], [3, 4], [5, 6]]))
    idx = tf.constant([[1], [3], [1]])
    s = tf.scatter_nd(idx, updates, [4, 2])
    weights = np.arange(8.0).reshape(4, 2)
    grad = tf.gradients(tf.reduce_sum(s * weights), updates)[0]
    out, du = run([s, grad])
    np.testing.assert_array_equal(out, [[0, 0], [6, 8], [0, 0], [3, 4]])
    np.testing.assert_array_equal(du, weights[[1, 3, 1]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="ScatterNd|is not in"):
        run(tf.scatter_nd(tf.placeholder_with_default(np.array([[4]]), [1, 1]), tf.constant([1.0]), [4]))


def test_embedding_lookup_sharded_mod_and_div_and_max_norm():
    table = np.random.default_rng(2).normal(size=(10, 3)).astype(np.float32)
    ids = np.array([[0, 9, 4], [7, 7, 2]])
    i = tf.placeholder(tf.int32, [2, 3])
    # TF's shards: "mod" puts id k in shard k % n at row k // n; "div" gives contiguous ranges (4, 3, 3 rows)
    mod = [tf.constant(table[s::3]) for s in range(3)]
    div = [tf.constant(table[:4]), tf.constant(table[4:7]), tf.constant(table[7:])]
    single = tf.nn.embedding_lookup(tf.constant(table), i)
    by_mod = tf.nn.embedding_lookup(mod, i)
    by_div = tf.nn.embedding_lookup(div, i, partition_strategy="div")
    clipped = tf.nn.embedding_lookup(tf.constant(table), i, max_norm=0.5)
    out = run([single, by_mod, by_div, clipped], {i: ids})
    for value in out[:3]:
        np.testing.assert_allclose(value, table[ids])
    norms = np.linalg.norm(table[ids], axis=-1, keepdims=True)
    np.testing.assert_allclose(out[3], table[ids] * np.minimum(1.0, 0.5 / norms), rtol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"= 10 is not in \[0, 10\)"):
        run(by_mod, {i: [[0, 1, 2], [3, 4, 10]]})


def test_unsorted_segment_sum_drops_negative_ids_and_rejects_large_ones():
    data = tf.constant(np.arange(12.0).reshape(4, 3))
    ids = tf.placeholder(tf.int32, [4])
    s = tf.unsorted_segment_sum(data, ids, 3)
    out = run(s, {ids: [2, -1, 2, 0]})
    np.testing.assert_array_equal(out, [[9, 10, 11], [0, 0, 0], [6 + 0, 7 + 1, 8 + 2]])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"segment_ids\[\.\.\.\] = 3 is out of range \[0, 3\)"):
        run(s, {ids: [0, 1, 3, 0]})


def test_sequence_mask():
    lengths = tf.placeholder(tf.int32, [None])
    mask = tf.sequence_mask(lengths, 4)
    as_float = tf.sequence_mask(lengths, 4, dtype=tf.float32)
    const = tf.sequence_mask([[1, 3], [0, 2]])
    out, f, c = run([mask, as_float, const], {lengths: [0, 2, 4]})
    np.testing.assert_array_equal(out, np.arange(4) < np.array([0, 2, 4])[:, None])
    assert f.dtype == np.float32 and np.array_equal(f, out.astype(np.float32))
    assert c.shape == (2, 2, 3) and np.array_equal(c, np.arange(3) < np.array([[1, 3], [0, 2]])[..., None])
    with pytest.raises(UnsupportedError, match="maxlen"):
        tf.sequence_mask(lengths)


def test_reverse_and_reverse_sequence_values_gradients_and_bad_length():
    x = np.random.default_rng(3).normal(size=(3, 2, 5))          # time axis 2, batch axis 0
    v = tf.Variable(x)
    lengths = tf.placeholder(tf.int64, [3])
    r = tf.reverse_sequence(v, lengths, seq_axis=2, batch_axis=0)
    weights = np.random.default_rng(4).normal(size=x.shape)
    grad = tf.gradients(tf.reduce_sum(r * weights), v)[0]
    flipped = tf.reverse(v, [2])
    gflip = tf.gradients(tf.reduce_sum(flipped * weights), v)[0]
    lens = np.array([5, 0, 3])
    out, dv, f, df = run([r, grad, flipped, gflip], {lengths: lens})
    want, want_grad = x.copy(), weights.copy()
    for b, n in enumerate(lens):
        want[b, :, :n] = x[b, :, :n][:, ::-1]
        want_grad[b, :, :n] = weights[b, :, :n][:, ::-1]
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(dv, want_grad)
    np.testing.assert_array_equal(f, x[:, :, ::-1])
    np.testing.assert_array_equal(df, weights[:, :, ::-1])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"seq_lengths\[\.\.\.\] = 6 is not in \[0, 5\]"):
        run(r, {lengths: [1, 6, 0]})


def test_gather_gradient_matches_finite_differences():
    p = tf.Variable(np.random.default_rng(5).normal(size=(5, 2)))
    g = tf.gather(p, tf.constant([4, 0, 4, 1]))
    loss = tf.reduce_sum(tf.square(g) * tf.constant(np.arange(8.0).reshape(4, 2)))
    grad = tf.gradients(loss, p)[0]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        base, analytic = sess.run([p, grad])
        eps = 1e-6
        for idx in np.ndindex(base.shape):
            shifted = base.copy()
            shifted[idx] += eps
            p.load(shifted, sess)
            up = sess.run(loss)
            shifted[idx] -= 2 * eps
            p.load(shifted, sess)
            down = sess.run(loss)
            np.testing.assert_allclose((up - down) / (2 * eps), analytic[idx], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis,batch_dims", [(2, 2), (3, 2), (1, 1), (3, 1), (None, -1)])
def test_gather_batch_dims_values_and_gradient(axis, batch_dims):
    rng = np.random.default_rng(6)
    params = rng.normal(size=(2, 3, 5, 4))
    b = batch_dims if batch_dims >= 0 else batch_dims + 3
    idx = rng.integers(0, 3, size=(2, 3, 6))[(slice(None),) * b + (0,) * (2 - b)]
    ax = b if axis is None else axis
    p = tf.Variable(params)
    g = tf.gather(p, tf.constant(idx), axis=axis, batch_dims=batch_dims)
    grad = tf.gradients(tf.reduce_sum(g), p)[0]
    out, dp = run([g, grad])
    blocks = {pos: np.take(params[pos], idx[pos], axis=ax - b) for pos in np.ndindex(*params.shape[:b])}
    want = np.stack(list(blocks.values())).reshape(params.shape[:b] + blocks[(0,) * b].shape)
    np.testing.assert_allclose(out, want)
    want_grad = np.zeros_like(params)
    for pos in np.ndindex(*params.shape[:b]):
        moved = np.moveaxis(want_grad[pos], ax - b, 0)
        np.add.at(moved, idx[pos].reshape(-1), 1.0)
    np.testing.assert_allclose(dp, want_grad)


def test_gather_nd_batch_dims():
    params = np.arange(24.0).reshape(2, 3, 4)
    idx = np.array([[[2, 1], [0, 3]], [[1, 1], [2, 0]]])       # [batch 2, 2 tuples, K=2]
    out = run(tf.gather_nd(tf.constant(params), tf.constant(idx), batch_dims=1))
    np.testing.assert_array_equal(out, [[params[b][tuple(t)] for t in idx[b]] for b in range(2)])
