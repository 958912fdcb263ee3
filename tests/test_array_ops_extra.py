"""TF 1.x array ops of jitflow/api/array_extra.py: tile, pad, slice, split, eye, linspace,
reverse, gather / embedding_lookup / unsorted_segment_sum, cumsum / cumprod, top_k, in_top_k,
einsum, tensordot, norm, clip_by_norm, l2_normalize; values against numpy (with an unknown
batch dim fed at run time and negative axes), gradients against finite differences in
float64, errors for bad arguments, and the GPU kernels' PTX through ptxas."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import UnsupportedError

R = np.random.default_rng(3)


def run(fetches, feeds=None):
    with tf.Session() as sess:
        return sess.run(fetches, feeds or {})


def check_grad(build, x_value, eps=1e-6, tol=1e-6):
    """d sum(w * build(x)) / dx against central differences (float64)."""
    x = tf.placeholder(tf.float64, (None,) + x_value.shape[1:])
    y = build(x)
    w = tf.constant(R.standard_normal(tuple(y.shape.dims) if y.shape.is_fully_defined() else
                                      run(tf.shape(y), {x: x_value})))
    loss = tf.reduce_sum(y * w)
    (g,) = tf.gradients(loss, [x])
    with tf.Session() as sess:
        analytic = sess.run(g, {x: x_value})
        numeric = np.zeros_like(x_value)
        flat = numeric.reshape(-1)
        for k in range(x_value.size):
            plus, minus = x_value.copy().reshape(-1), x_value.copy().reshape(-1)
            plus[k] += eps
            minus[k] -= eps
            flat[k] = (sess.run(loss, {x: plus.reshape(x_value.shape)}) -
                       sess.run(loss, {x: minus.reshape(x_value.shape)})) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=tol, atol=tol)


# ---- tile / pad / slice / split / reverse ---------------------------------------------------------------
def test_tile_values_with_unknown_batch_and_its_gradient_sums_the_tiles():
    x = tf.placeholder(tf.float32, (None, 3))
    v = R.standard_normal((4, 3)).astype(np.float32)
    y = tf.tile(x, [2, 3])
    assert y.shape.as_list() == [None, 9]
    (g,) = tf.gradients(tf.reduce_sum(y), [x])
    out, grad = run([y, g], {x: v})
    np.testing.assert_array_equal(out, np.tile(v, (2, 3)))
    np.testing.assert_array_equal(grad, np.full((4, 3), 6.0, np.float32))
    check_grad(lambda t: tf.tile(t, np.array([1, 2])), R.standard_normal((3, 2)))
    check_grad(lambda t: tf.tile(t, tf.constant([3, 1])), R.standard_normal((2, 2)))


@pytest.mark.parametrize("mode", ["CONSTANT", "REFLECT", "SYMMETRIC", "reflect"])
def test_pad_modes_match_numpy_and_gradients(mode):
    x = tf.placeholder(tf.float32, (None, 4))
    v = R.standard_normal((3, 4)).astype(np.float32)
    pads = [[1, 2], [2, 3]]
    y = tf.pad(x, pads, mode=mode)
    assert y.shape.as_list() == [None, 9]
    np_mode = {"CONSTANT": "constant", "REFLECT": "reflect", "SYMMETRIC": "symmetric"}[mode.upper()]
    np.testing.assert_array_equal(run(y, {x: v}), np.pad(v, pads, mode=np_mode))
    check_grad(lambda t: tf.pad(t, [[2, 1], [1, 2]], mode=mode), R.standard_normal((3, 3)))


def test_pad_constant_values_and_int_dtype():
    x = tf.constant(np.arange(6, dtype=np.int32).reshape(2, 3))
    np.testing.assert_array_equal(run(tf.pad(x, [[0, 1], [1, 0]], constant_values=-7)),
                                  np.pad(np.arange(6).reshape(2, 3), [[0, 1], [1, 0]], constant_values=-7))


def test_pad_bad_arguments():
    x = tf.placeholder(tf.float32, (3, 4))
    with pytest.raises(ValueError):
        tf.pad(x, [[1, 1]])
    with pytest.raises(ValueError):
        tf.pad(x, [[3, 0], [0, 0]], mode="REFLECT")     # REFLECT needs paddings < size
    with pytest.raises(ValueError):
        tf.pad(x, [[1, 1], [1, 1]], mode="WRAP")
    with pytest.raises(UnsupportedError, match="paddings"):
        tf.pad(x, tf.placeholder(tf.int32, (2, 2)))


def test_slice_with_minus_one_sizes_and_unknown_batch():
    x = tf.placeholder(tf.float32, (None, 5))
    v = R.standard_normal((4, 5)).astype(np.float32)
    y = tf.slice(x, [1, 2], [-1, 2])
    assert y.shape.as_list() == [None, 2]
    np.testing.assert_array_equal(run(y, {x: v}), v[1:, 2:4])
    check_grad(lambda t: tf.slice(t, [1, 1], [2, -1]) * 3.0, R.standard_normal((3, 4)))
    with pytest.raises(ValueError):
        tf.slice(tf.zeros((3, 4)), [2, 0], [2, 4])
    with pytest.raises(UnsupportedError, match="begin"):
        tf.slice(x, tf.placeholder(tf.int32, (2,)), [1, 1])


def test_split_int_list_and_minus_one():
    x = tf.placeholder(tf.float32, (None, 6))
    v = R.standard_normal((3, 6)).astype(np.float32)
    a = tf.split(x, 3, axis=1)
    b = tf.split(x, [1, -1, 2], axis=-1)
    c = tf.split(x, [2, -1], axis=0, num=2)        # unknown axis: a trailing -1 is fine
    out = run(a + b + c, {x: v})
    for got, want in zip(out, np.split(v, 3, axis=1) + np.split(v, [1, 4], axis=1) + [v[:2], v[2:]]):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError):
        tf.split(x, 4, axis=1)
    with pytest.raises(ValueError):
        tf.split(x, [1, 2], axis=1, num=3)
    with pytest.raises(UnsupportedError):
        tf.split(x, 2, axis=0)
    check_grad(lambda t: tf.split(t, [1, 2], axis=1)[1] * tf.split(t, [1, 2], axis=1)[1], R.standard_normal((2, 3)))


def test_reverse_negative_axes_and_gradient():
    x = tf.placeholder(tf.float32, (None, 3, 2))
    v = R.standard_normal((2, 3, 2)).astype(np.float32)
    out = run([tf.reverse(x, [-1, 0]), tf.reverse_v2(x, [1])], {x: v})
    np.testing.assert_array_equal(out[0], v[::-1, :, ::-1])
    np.testing.assert_array_equal(out[1], v[:, ::-1])
    check_grad(lambda t: tf.reverse(t, [1]) * t, R.standard_normal((2, 3)))
    with pytest.raises(ValueError):
        tf.reverse(x, [1, -2])


# ---- eye / linspace ---------------------------------------------------------------------------------------
def test_eye_and_linspace():
    out = run([tf.eye(3), tf.eye(2, 4, batch_shape=[2], dtype=tf.int32), tf.linspace(1.0, 2.0, 5),
               tf.lin_space(tf.constant(-1.0, tf.float64), 3.0, 3), tf.linspace(4.0, 9.0, 1)])
    np.testing.assert_array_equal(out[0], np.eye(3, dtype=np.float32))
    assert out[1].dtype == np.int32
    np.testing.assert_array_equal(out[1], np.broadcast_to(np.eye(2, 4), (2, 2, 4)))
    np.testing.assert_allclose(out[2], np.linspace(1.0, 2.0, 5, dtype=np.float32), rtol=1e-6)
    assert out[2][-1] == 2.0
    assert out[3].dtype == np.float64
    np.testing.assert_allclose(out[3], [-1.0, 1.0, 3.0])
    np.testing.assert_array_equal(out[4], [4.0])


# ---- gather ----------------------------------------------------------------------------------------------------
def test_gather_axes_index_shapes_and_unknown_batch():
    p = tf.placeholder(tf.float32, (None, 4))
    i = tf.placeholder(tf.int64, (None,))
    v = R.standard_normal((5, 4)).astype(np.float32)
    iv = np.array([4, 0, 0, 2], np.int64)
    fetches = [tf.gather(p, i), tf.gather(p, [[1, 3], [0, 0]], axis=1), tf.gather(p, [2, 0], axis=-1),
               tf.gather(tf.constant(np.arange(6, dtype=np.int32)), tf.constant([[5], [1]])),
               tf.gather(p, 3)]
    out = run(fetches, {p: v, i: iv})
    np.testing.assert_array_equal(out[0], v[iv])
    np.testing.assert_array_equal(out[1], v[:, [[1, 3], [0, 0]]])
    np.testing.assert_array_equal(out[2], v[:, [2, 0]])
    np.testing.assert_array_equal(out[3], [[5], [1]])
    np.testing.assert_array_equal(out[4], v[3])


def test_gather_gradient_accumulates_duplicates():
    check_grad(lambda t: tf.gather(t, [2, 0, 2, 2]), R.standard_normal((3, 2)))
    check_grad(lambda t: tf.gather(t, [[1, 1], [0, 1]], axis=1) ** 2, R.standard_normal((2, 3)))
    x = tf.placeholder(tf.float32, (4, 2))
    (g,) = tf.gradients(tf.reduce_sum(tf.gather(x, [3, 3, 1])), [x])
    np.testing.assert_array_equal(run(g, {x: np.zeros((4, 2), np.float32)}), [[0, 0], [1, 1], [0, 0], [2, 2]])


def test_gather_out_of_range_raises_invalid_argument():
    p = tf.constant(np.ones((3, 2), np.float32))
    i = tf.placeholder(tf.int32, (2,))
    y = tf.gather(p, i)
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(y, {i: [2, 0]}), np.ones((2, 2)))
        for bad in ([3, 0], [0, -1]):
            with pytest.raises(tf.errors.InvalidArgumentError, match="out of range"):
                sess.run(y, {i: bad})
    with pytest.raises(ValueError, match="batch_dims"):       # params.shape[0] 3 != indices.shape[0] 1
        tf.gather(p, [0], batch_dims=1)
    with pytest.raises(TypeError):
        tf.gather(p, [0.5])


def test_embedding_lookup_trains_only_the_looked_up_rows():
    emb = tf.Variable(np.ones((5, 3), np.float32))
    ids = tf.placeholder(tf.int32, (None,))
    loss = tf.reduce_sum(tf.nn.embedding_lookup(emb, ids))
    step = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(step, {ids: [1, 3, 1]})
        value = sess.run(emb)
    want = np.ones((5, 3), np.float32)
    want[1] -= 1.0
    want[3] -= 0.5
    np.testing.assert_allclose(value, want)


def test_unsorted_segment_sum():
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = run(tf.unsorted_segment_sum(tf.constant(data), tf.constant([2, 0, 2, -1]), 3))
    want = np.zeros((3, 3), np.float32)
    want[2] = data[0] + data[2]
    want[0] = data[1]
    np.testing.assert_array_equal(out, want)      # a negative id is dropped, as TF
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"= 5 is out of range \[0, 3\)"):
        run(tf.unsorted_segment_sum(tf.constant(data), tf.constant([2, 0, 2, 5]), 3))   # TF 1.x CPU


# ---- cumsum / cumprod --------------------------------------------------------------------------------------------
def _np_scan(v, axis, exclusive, reverse, prod):
    fn = np.cumprod if prod else np.cumsum
    x = np.flip(v, axis) if reverse else v
    if exclusive:
        first = np.ones_like if prod else np.zeros_like
        x = np.concatenate([first(np.take(x, [0], axis)), np.take(x, np.arange(x.shape[axis] - 1), axis)], axis)
    out = fn(x, axis)
    return np.flip(out, axis) if reverse else out


@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumsum_cumprod_flags_and_gradients(exclusive, reverse):
    x = tf.placeholder(tf.float64, (None, 3, 4))
    v = R.uniform(0.5, 1.5, (2, 3, 4))
    fetches = [tf.cumsum(x, 1, exclusive, reverse), tf.cumsum(x, -1, exclusive=exclusive, reverse=reverse),
               tf.cumprod(x, 0, exclusive=exclusive, reverse=reverse), tf.cumprod(x, axis=2, exclusive=exclusive,
                                                                               reverse=reverse)]
    out = run(fetches, {x: v})
    for got, (axis, prod) in zip(out, ((1, False), (2, False), (0, True), (2, True))):
        np.testing.assert_allclose(got, _np_scan(v, axis, exclusive, reverse, prod), rtol=1e-12)
    check_grad(lambda t: tf.cumsum(t, 1, exclusive=exclusive, reverse=reverse), R.standard_normal((2, 3)))
    check_grad(lambda t: tf.cumprod(t, -1, exclusive=exclusive, reverse=reverse), R.uniform(0.5, 2.0, (2, 3)))


def test_cumsum_int_and_bad_axis():
    np.testing.assert_array_equal(run(tf.cumsum(tf.constant([[1, 2], [3, 4]]), axis=0)), [[1, 2], [4, 6]])
    with pytest.raises(ValueError):
        tf.cumsum(tf.zeros((2, 2)), axis=2)


# ---- top_k / in_top_k -------------------------------------------------------------------------------------------------
def test_top_k_values_indices_and_ties():
    x = tf.placeholder(tf.float32, (None, 5))
    v = np.array([[1, 3, 3, 0, 2], [5, 5, 5, 5, 5], [-1, -2, 7, 7, 0]], np.float32)
    values, indices = tf.nn.top_k(x, k=3)
    assert indices.dtype == tf.int32
    out_v, out_i = run([values, indices], {x: v})
    np.testing.assert_array_equal(out_i, [[1, 2, 4], [0, 1, 2], [2, 3, 4]])
    np.testing.assert_array_equal(out_v, np.take_along_axis(v, out_i, 1))
    ints = run(tf.nn.top_k(tf.constant([[4, 9, 1, 9]]), 2))
    np.testing.assert_array_equal(ints.values, [[9, 9]])
    np.testing.assert_array_equal(ints.indices, [[1, 3]])
    big = R.standard_normal((7, 40)).astype(np.float32)
    got = run(tf.nn.top_k(tf.constant(big), 40, sorted=True))
    np.testing.assert_array_equal(got.indices, np.argsort(-big, axis=1, kind="stable"))
    check_grad(lambda t: tf.nn.top_k(t, 2).values, R.standard_normal((3, 4)))
    with pytest.raises(ValueError):
        tf.nn.top_k(tf.zeros((2, 3)), 4)


def test_in_top_k_ties_non_finite_and_range():
    p = tf.placeholder(tf.float32, (None, 4))
    t = tf.placeholder(tf.int32, (None,))
    v = np.array([[0.1, 0.5, 0.5, 0.2], [0.1, 0.5, 0.5, 0.2], [0.9, 0.1, 0.0, 0.0], [0.1, np.nan, 0.3, 0.2],
                  [0.1, 0.2, np.inf, 0.0], [0.3, 0.2, 0.1, 0.0]], np.float32)
    targets = np.array([2, 3, 0, 2, 2, 7], np.int32)
    out = run([tf.nn.in_top_k(p, t, 1), tf.nn.in_top_k(p, t, 3), tf.nn.in_top_k(p, tf.cast(t, tf.int64), 2)],
              {p: v, t: targets})
    np.testing.assert_array_equal(out[0], [True, False, True, False, False, False])
    np.testing.assert_array_equal(out[1], [True, True, True, False, False, False])
    np.testing.assert_array_equal(out[2], [True, False, True, False, False, False])


# ---- einsum / tensordot -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("equation,shapes", [
    ("ij,jk->ik", [(3, 4), (4, 5)]), ("ij,kj->ik", [(3, 4), (5, 4)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("i,i->", [(4,), (4,)]), ("i,j->ij", [(3,), (2,)]), ("ij,j->i", [(3, 4), (4,)]), ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]), ("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("ijk,jl->ikl", [(2, 3, 4), (3, 5)]),
    ("ab,bc", [(2, 3), (3, 4)]), ("bi,bi->b", [(3, 4), (3, 4)]), ("ij,jk->ki", [(3, 4), (4, 2)])])
def test_einsum_matches_numpy(equation, shapes):
    arrays = [R.standard_normal(s) for s in shapes]
    np.testing.assert_allclose(run(tf.einsum(equation, *[tf.constant(a) for a in arrays])),
                               np.einsum(equation, *arrays), rtol=1e-10, atol=1e-12)


def test_einsum_unknown_batch_gradient_and_errors():
    x = tf.placeholder(tf.float32, (None, 4))
    w = R.standard_normal((4, 3)).astype(np.float32)
    v = R.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(run(tf.einsum("bi,ij->bj", x, tf.constant(w)), {x: v}), v @ w, rtol=1e-5)
    np.testing.assert_allclose(run(tf.einsum("bi,bi->b", x, x), {x: v}), (v * v).sum(1), rtol=1e-5)
    check_grad(lambda t: tf.einsum("ij,jk->ik", t, tf.constant(R.standard_normal((3, 2)))), R.standard_normal((2, 3)))
    check_grad(lambda t: tf.einsum("bij,bjk->bik", tf.reshape(t, [2, 2, 3]), tf.reshape(t, [2, 3, 2])),
               R.standard_normal((2, 6)))
    with pytest.raises(UnsupportedError, match=r"\.\.\."):
        tf.einsum("...ij,jk->...ik", tf.zeros((2, 3)), tf.zeros((3, 4)))
    with pytest.raises(UnsupportedError):
        tf.einsum("ij,jk,kl->il", tf.zeros((2, 3)), tf.zeros((3, 4)), tf.zeros((4, 5)))
    with pytest.raises(ValueError):
        tf.einsum("ij,jk->ik", tf.zeros((2, 3)))


def test_tensordot():
    a, b = R.standard_normal((2, 3, 4)), R.standard_normal((4, 3, 5))
    out = run([tf.tensordot(tf.constant(a), tf.constant(b), [[1, 2], [1, 0]]),
               tf.tensordot(tf.constant(a), tf.constant(b), 1),
               tf.tensordot(tf.constant(a[0]), tf.constant(b[:, 0]), axes=[1, 0]),
               tf.tensordot(tf.constant(a), tf.constant(b), 0)])
    np.testing.assert_allclose(out[0], np.tensordot(a, b, [[1, 2], [1, 0]]), rtol=1e-10)
    np.testing.assert_allclose(out[1], np.tensordot(a, b, 1), rtol=1e-10)
    np.testing.assert_allclose(out[2], np.tensordot(a[0], b[:, 0], [1, 0]), rtol=1e-10)
    np.testing.assert_allclose(out[3], np.tensordot(a, b, 0), rtol=1e-10)


# ---- norms -------------------------------------------------------------------------------------------------------------------
def test_norm_orders_axes_keepdims():
    x = tf.placeholder(tf.float64, (None, 3, 4))
    v = R.standard_normal((2, 3, 4))
    fetches = [tf.norm(x), tf.norm(x, ord=1, axis=-1), tf.norm(x, ord=np.inf, axis=1, keepdims=True),
               tf.norm(x, ord=2, axis=2), tf.norm(x, ord=3, axis=0), tf.norm(x, "fro", axis=[1, 2]),
               tf.norm(x, 1, axis=(1, 2)), tf.norm(x, np.inf, axis=[-2, -1], keep_dims=True)]
    out = run(fetches, {x: v})
    np.testing.assert_allclose(out[0], np.sqrt((v ** 2).sum()))
    np.testing.assert_allclose(out[1], np.abs(v).sum(-1))
    np.testing.assert_allclose(out[2], np.abs(v).max(1, keepdims=True))
    np.testing.assert_allclose(out[3], np.linalg.norm(v, axis=2))
    np.testing.assert_allclose(out[4], (np.abs(v) ** 3).sum(0) ** (1 / 3))
    np.testing.assert_allclose(out[5], np.linalg.norm(v, "fro", axis=(1, 2)))
    np.testing.assert_allclose(out[6], np.linalg.norm(v, 1, axis=(1, 2)))
    np.testing.assert_allclose(out[7], np.linalg.norm(v, np.inf, axis=(1, 2), keepdims=True))
    with pytest.raises(ValueError):
        tf.norm(x, ord="fro", axis=1)
    with pytest.raises(ValueError):
        tf.norm(x, ord=-1)
    with pytest.raises(UnsupportedError):
        tf.norm(x, ord=2, axis=[1, 2])
    check_grad(lambda t: tf.norm(t, axis=1), R.standard_normal((2, 3)))


def test_l2_normalize_and_clip_by_norm():
    x = tf.placeholder(tf.float32, (None, 3))
    v = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [0.1, 0.2, 0.2]], np.float32)
    out = run([tf.nn.l2_normalize(x, axis=1), tf.nn.l2_normalize(x, dim=-1, epsilon=1.0),
               tf.clip_by_norm(x, 1.0, axes=[1]), tf.clip_by_norm(x, 2.0)], {x: v})
    np.testing.assert_allclose(out[0], v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6), rtol=1e-6)
    np.testing.assert_allclose(out[1], v / np.sqrt(np.maximum((v ** 2).sum(1, keepdims=True), 1.0)), rtol=1e-6)
    rows = np.linalg.norm(v, axis=1, keepdims=True)
    np.testing.assert_allclose(out[2], v / np.maximum(rows, 1.0), rtol=1e-6)
    np.testing.assert_allclose(out[3], v * 2.0 / max(np.linalg.norm(v), 2.0), rtol=1e-6)
    check_grad(lambda t: tf.clip_by_norm(t, 0.5, axes=[1]), R.standard_normal((2, 3)))
    check_grad(lambda t: tf.nn.l2_normalize(t, 1), R.standard_normal((2, 3)))


# ---- refused and GPU ------------------------------------------------------------------------------------------------------------
def test_boolean_mask_and_tensor_shape_arguments_are_refused_by_name():
    x = tf.placeholder(tf.float32, (None, 3))
    with pytest.raises(UnsupportedError, match="boolean_mask"):
        tf.boolean_mask(x, tf.constant([True, False, True]))
    with pytest.raises(UnsupportedError, match="paddings"):
        tf.pad(x, tf.stack([tf.stack([tf.shape(x)[0], 1]), tf.constant([0, 0])]))
    with pytest.raises(UnsupportedError, match="k"):
        tf.nn.top_k(x, tf.placeholder(tf.int32, ()))


def test_gpu_kernels_assemble_with_ptxas():
    from jitflow.codegen import ptx
    from jitflow.framework.lowering import lower_run
    from jitflow.runtime.gpu_build import gpu_program
    if ptx.ptxas_path() is None:
        pytest.skip("ptxas is not on PATH")
    x = tf.placeholder(tf.float32, (5, 4))
    i = tf.placeholder(tf.int64, (3,))
    fetches = [tf.gather(x, i), tf.gather(x, [1, 2], axis=1), tf.cumsum(x, 1, exclusive=True),
               tf.cumprod(x, 0, reverse=True), tf.nn.top_k(x, 2).values, tf.nn.top_k(x, 3).indices,
               tf.unsorted_segment_sum(x, [0, 1, 0, 2, 1], 4),
               tf.gradients(tf.reduce_sum(tf.gather(x, i) * 2.0), [x])[0]]
    lowered = lower_run(tf.get_default_graph(), fetches, {x: np.ones((5, 4), np.float32), i: np.zeros(3, np.int64)})
    program = gpu_program(lowered.function, "sm_90", verify=True)
    ok, log = ptx.check_ptx(program.ptx, "sm_90")
    assert ok, log


# ---- the registry records against their numpy references (compiled vs reference) -------------------------------
REGISTRY_CASES = [
    ("slice", [(4, 5)], {"begin": (1, 0), "size": (-1, 3)}),
    ("slice", [(3, 0)], {"begin": (3, 0), "size": (0, -1)}),
    ("reverse", [(3, 4, 2)], {"axes": (0, 2)}),
    ("scan", [(3, 4)], {"axis": 1, "exclusive": True, "reverse": False, "kind": "sum"}),
    ("scan", [(3, 4)], {"axis": 0, "exclusive": False, "reverse": True, "kind": "prod"}),
    ("scan", [(0, 4)], {"axis": 0, "exclusive": False, "reverse": False, "kind": "sum"}),
    ("top_k", [(3, 6)], {"k": 4, "output": 0}),
    ("top_k", [(2, 3, 5)], {"k": 5, "output": 1}),
    ("top_k", [(2, 5)], {"k": 0, "output": 0}),
    ("pad", [(2, 3), ()], {"paddings": ((1, 0), (2, 2)), "mode": "SYMMETRIC"}),
]


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64, tf.int32, tf.int64])
def test_registry_records_match_their_references(dtype):
    from jitflow.ops import get_op
    g = tf.get_default_graph()
    fetches, wants = [], []
    for op, shapes, attrs in REGISTRY_CASES:
        arrays = [(R.standard_normal(s) * 4).astype(dtype.np) for s in shapes]
        if op == "scan" and attrs["kind"] == "prod":
            arrays = [R.integers(1, 3, s).astype(dtype.np) for s in shapes]
        if op == "top_k":     # distinct values: the order is unique
            arrays = [R.permutation(int(np.prod(s))).reshape(s).astype(dtype.np) for s in shapes]
        inputs = [tf.constant(a) for a in arrays]
        fetches.append(g.create_op(op, inputs, dict(attrs)).outputs[0])
        wants.append(get_op(op).reference(*arrays, **attrs))
    params = (R.standard_normal((4, 3)) * 4).astype(dtype.np)
    for axis, index in ((0, np.array([3, 0, 3])), (1, np.array([[2, 0], [1, 1]]))):
        fetches.append(g.create_op("gather", [tf.constant(params), tf.constant(index)], {"axis": axis}).outputs[0])
        wants.append(get_op("gather").reference(params, index, axis=axis))
    data = (R.standard_normal((2, 3, 4)) * 4).astype(dtype.np)
    ids = np.array([1, -1, 1])
    fetches.append(g.create_op("segment_sum", [tf.constant(data), tf.constant(ids)],
                               {"axis": 1, "num_segments": 2}).outputs[0])
    wants.append(get_op("segment_sum").reference(data, ids, axis=1, num_segments=2))
    for got, want in zip(run(fetches), wants):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == tf.float32 else 1e-12)


def test_unsorted_segment_sum_gradient_is_a_gather():
    check_grad(lambda t: tf.unsorted_segment_sum(t, tf.constant([1, 0, 1]), 3), R.standard_normal((3, 2)))


def test_gather_of_bool_tensors_compiles():
    """Regression (fuzzer): the out-of-range zero store wrote an i1 literal into an i8 buffer."""
    x = tf.placeholder(tf.bool, [None, 3])
    value = np.array([[1, 0, 1], [0, 1, 0]], bool)
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(tf.gather(x, [1, 0]), {x: value}), value[[1, 0]])
