"""The math/activation ops of jitflow/ops/math_extra.py and the composite reductions of
jitflow/api/math_extra.py: compiled values against numpy (float32 and float64, edge cases
included), gradients against central finite differences in float64, TF names and errors,
`@jit`, and PTX that ptxas accepts."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.codegen import ptx
from jitflow.framework.lowering import lower_run

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _np_softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _np_selu(x):
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))


# name -> (tf function, numpy function, input values)
GRID = np.linspace(-3, 3, 61)
UNARY = {
    "sin": (tf.sin, np.sin, np.concatenate([GRID, [0.0, -0.0, 1e-30, 100.0]])),
    "cos": (tf.cos, np.cos, np.concatenate([GRID, [0.0, 100.0]])),
    "tan": (tf.tan, np.tan, np.linspace(-1.5, 1.5, 41)),
    "floor": (tf.floor, np.floor, np.concatenate([GRID, [-0.5, 0.5, -1.0, 2.0, 1e10, -0.0]])),
    "ceil": (tf.ceil, np.ceil, np.concatenate([GRID, [-0.5, 0.5, -1.0, 2.0, 1e10, -0.0]])),
    "round": (tf.round, np.round, np.concatenate([GRID, np.arange(-4.5, 5.0, 1.0), [0.49999997, 1e10]])),
    "rint": (tf.rint, np.rint, np.concatenate([GRID, np.arange(-4.5, 5.0, 1.0)])),
    "log1p": (tf.log1p, np.log1p, np.array([-0.99, -0.5, -1e-5, -1e-8, -1e-20, 0.0, 1e-20, 1e-12, 1e-8, 1e-5,
                                            1e-3, 0.1, 0.5, 1.0, 3.0, 1e5, 1e30])),
    "expm1": (tf.expm1, np.expm1, np.array([-50.0, -20.0, -1.0, -0.5, -1e-5, -1e-8, -1e-20, 0.0, 1e-20,
                                            1e-12, 1e-8, 1e-5, 1e-3, 0.1, 0.5, 1.0, 5.0, 20.0])),
    "reciprocal": (tf.reciprocal, lambda x: 1 / x, np.array([-4.0, -0.5, 0.25, 1.0, 3.0, 1e10])),
    "elu": (tf.nn.elu, lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
            np.concatenate([GRID, [0.0, -1e-8, 1e-8, -50.0, 50.0]])),
    "selu": (tf.nn.selu, _np_selu, np.concatenate([GRID, [0.0, -1e-8, 1e-8, -50.0, 50.0]])),
    "relu6": (tf.nn.relu6, lambda x: np.minimum(np.maximum(x, 0), 6),
              np.concatenate([np.linspace(-3, 9, 49), [0.0, 6.0]])),
    "softplus": (tf.nn.softplus, _np_softplus, np.concatenate([GRID, [-100.0, -30.0, 0.0, 30.0, 100.0, 1e-8]])),
    "softsign": (tf.nn.softsign, lambda x: x / (1 + np.abs(x)), np.concatenate([GRID, [-1e6, 1e6]])),
}
TOL = {np.float32: dict(rtol=3e-6, atol=1e-7), np.float64: dict(rtol=1e-13, atol=1e-300)}


def run(fetches, feeds=None):
    with tf.Session() as sess:
        return sess.run(fetches, feeds)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_unary_values_match_numpy(dtype):
    """All unary ops of one dtype in one Session.run (one compile)."""
    tf.reset_default_graph()
    feeds, fetches, wants = {}, [], []
    for name, (fn, ref, values) in UNARY.items():
        x = np.asarray(values, dtype)
        p = tf.placeholder(tf.as_dtype(dtype), x.shape)
        feeds[p] = x
        fetches.append(fn(p))
        with np.errstate(all="ignore"):
            wants.append((name, np.asarray(ref(x.astype(np.float64)))))
    for (name, want), got in zip(wants, run(fetches, feeds)):
        assert got.dtype == dtype, name
        want = want.astype(dtype)
        np.testing.assert_allclose(got, want, err_msg=f"{name} {np.dtype(dtype).name}", **TOL[dtype])


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64], ids=["float32", "float64"])
def test_documented_edge_cases(dtype):
    tf.reset_default_graph()
    x = tf.placeholder(dtype, (None,))
    halves = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5], dtype.np)
    r, rn = run([tf.round(x), tf.rint(x)], {x: halves})
    np.testing.assert_array_equal(r, [0, 2, 2, -0, -2, -2, 4])      # banker's rounding (half to even)
    np.testing.assert_array_equal(rn, r)
    tiny = np.array([1e-8], dtype.np)
    l1p, em1 = run([tf.log1p(x), tf.expm1(x)], {x: tiny})
    rtol = 1e-15 if dtype == tf.float64 else 1e-7
    np.testing.assert_allclose(l1p, np.log1p(tiny.astype(np.float64)), rtol=rtol)   # not log(1 + x) = 0
    np.testing.assert_allclose(em1, np.expm1(tiny.astype(np.float64)), rtol=rtol)
    assert l1p[0] != 0 and em1[0] != 0
    sp = run(tf.nn.softplus(x), {x: np.array([100.0, -100.0, 0.0], dtype.np)})
    assert sp[0] == 100.0 and np.isfinite(sp).all()
    np.testing.assert_allclose(sp[1:], [np.exp(-100.0), np.log(2.0)], rtol=1e-6,
                               atol=0 if dtype == tf.float64 else 1e-37)    # float32 denormals are flushed
    zero = np.zeros(1, dtype.np)
    elu0, selu0, r60 = run([tf.nn.elu(x), tf.nn.selu(x), tf.nn.relu6(x)], {x: zero})
    assert elu0[0] == 0 and selu0[0] == 0 and r60[0] == 0
    big = np.array([-np.inf, np.inf, np.nan], dtype.np)
    e, s, lp, em = run([tf.nn.elu(x), tf.nn.softplus(x), tf.log1p(x), tf.expm1(x)], {x: big})
    np.testing.assert_array_equal(e[:2], [-1, np.inf])
    np.testing.assert_array_equal(s[:2], [0, np.inf])
    np.testing.assert_array_equal(lp[1], np.inf)
    np.testing.assert_array_equal(em[:2], [-1, np.inf])
    assert np.isnan(e[2]) and np.isnan(s[2]) and np.isnan(lp[2]) and np.isnan(em[2])


def test_selu_uses_tf_constants():
    tf.reset_default_graph()
    x = tf.constant([-1.0, 2.0], tf.float64)
    np.testing.assert_allclose(run(tf.nn.selu(x)), [SELU_SCALE * SELU_ALPHA * np.expm1(-1.0), SELU_SCALE * 2.0],
                               rtol=1e-15)


def test_squared_difference_and_reciprocal_with_broadcasting():
    tf.reset_default_graph()
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([0.5, -1.0, 2.0], np.float32)
    ia, ib = a.astype(np.int32), np.array([1, -2, 3], np.int32)
    got = run([tf.squared_difference(a, b), tf.math.squared_difference(ia, ib), tf.reciprocal(b)])
    np.testing.assert_allclose(got[0], (a - b) ** 2)
    np.testing.assert_array_equal(got[1], (ia - ib) ** 2)
    assert got[1].dtype == np.int32
    np.testing.assert_allclose(got[2], 1 / b)


def test_round_of_integers_is_the_identity():
    tf.reset_default_graph()
    v = np.array([-3, 0, 7], np.int32)
    got = run(tf.round(tf.constant(v)))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, v)


# ---- gradients ----------------------------------------------------------------------------------
GRAD_POINTS = {
    "sin": np.array([-2.5, -0.3, 0.7, 2.9]), "cos": np.array([-2.5, -0.3, 0.7, 2.9]),
    "tan": np.array([-1.2, -0.3, 0.4, 1.1]), "log1p": np.array([-0.7, -1e-3, 0.2, 3.0]),
    "expm1": np.array([-3.0, -1e-3, 0.2, 2.0]), "reciprocal": np.array([-2.0, -0.5, 0.3, 4.0]),
    "elu": np.array([-2.0, -0.3, 0.4, 2.5]), "selu": np.array([-2.0, -0.3, 0.4, 2.5]),
    "relu6": np.array([-2.0, 0.4, 3.0, 5.5, 7.0]), "softplus": np.array([-20.0, -1.0, 0.3, 2.0, 20.0]),
    "softsign": np.array([-3.0, -0.4, 0.2, 5.0]),
}


def _fd_check(fn, args, h=1e-6, rtol=1e-7):
    """tf.gradients of sum(w * fn(*xs)) vs central differences of the same compiled loss."""
    tf.reset_default_graph()
    xs = [tf.placeholder(tf.float64, a.shape) for a in args]
    y = fn(*xs)
    w = np.random.RandomState(0).uniform(0.5, 1.5, tuple(y.shape.as_list()))
    loss = tf.reduce_sum(y * tf.constant(w))
    grads = tf.gradients(loss, xs)
    with tf.Session() as sess:
        g = sess.run(grads, dict(zip(xs, args)))
        for k, a in enumerate(args):
            numeric = np.zeros_like(a)
            for i in np.ndindex(a.shape):
                plus = [b.copy() for b in args]
                minus = [b.copy() for b in args]
                plus[k][i] += h
                minus[k][i] -= h
                numeric[i] = (sess.run(loss, dict(zip(xs, plus))) - sess.run(loss, dict(zip(xs, minus)))) / (2 * h)
            np.testing.assert_allclose(g[k], numeric, rtol=rtol * 1e2, atol=1e-7, err_msg=f"argument {k}")
    return g


@pytest.mark.parametrize("name", sorted(GRAD_POINTS))
def test_unary_gradient_vs_finite_differences(name):
    _fd_check(UNARY[name][0], [GRAD_POINTS[name]])


def test_tf_gradient_values():
    """TF's gradient definitions at the points where they are conventions."""
    tf.reset_default_graph()
    x = tf.placeholder(tf.float64, (3,))
    v = np.array([0.0, 6.0, -1.0])
    g_elu, g_relu6, g_sp = run([tf.gradients(tf.reduce_sum(f(x)), x)[0]
                                for f in (tf.nn.elu, tf.nn.relu6, tf.nn.softplus)], {x: v})
    np.testing.assert_allclose(g_elu, [1.0, 1.0, np.exp(-1.0)])
    np.testing.assert_array_equal(g_relu6, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(g_sp, 1 / (1 + np.exp(-v)))
    assert tf.gradients(tf.reduce_sum(tf.floor(x)), x) == [None]
    assert tf.gradients(tf.reduce_sum(tf.round(x) + tf.ceil(x) + tf.rint(x)), x) == [None]


def test_squared_difference_gradient_with_broadcasting():
    rng = np.random.RandomState(3)
    _fd_check(tf.squared_difference, [rng.uniform(-2, 2, (2, 3)), rng.uniform(-2, 2, (3,))])


def test_second_order_through_softplus():
    tf.reset_default_graph()
    x = tf.placeholder(tf.float64, (4,))
    v = np.array([-2.0, -0.1, 0.5, 3.0])
    g = tf.gradients(tf.reduce_sum(tf.nn.softplus(x)), x)[0]
    h = tf.gradients(tf.reduce_sum(g), x)[0]
    s = 1 / (1 + np.exp(-v))
    np.testing.assert_allclose(run(h, {x: v}), s * (1 - s), rtol=1e-12)


# ---- composite reductions -----------------------------------------------------------------------
def _np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_reduce_logsumexp(dtype):
    tf.reset_default_graph()
    rng = np.random.RandomState(1)
    v = rng.uniform(-3, 3, (3, 4)).astype(dtype)
    v[1] += 1000        # would overflow exp without the shift
    v[2] = -np.inf      # an all -inf row gives -inf, not NaN
    x = tf.placeholder(tf.as_dtype(dtype), (None, 4))
    cases = [(None, False), (1, False), (1, True), (0, True), ([0, 1], False), (-1, False)]
    got = run([tf.reduce_logsumexp(x, axis=a, keepdims=k) for a, k in cases[1:]]
              + [tf.reduce_logsumexp(tf.constant(v[:2]))], {x: v})
    for (a, k), value in zip(cases[1:], got):
        with np.errstate(all="ignore"):
            want = _np_logsumexp(v.astype(np.float64), axis=a if not isinstance(a, list) else tuple(a), keepdims=k)
        assert value.dtype == dtype and value.shape == np.shape(want)
        np.testing.assert_allclose(value, want, rtol=1e-6)
    np.testing.assert_allclose(got[-1], _np_logsumexp(v[:2].astype(np.float64)), rtol=1e-6)
    assert np.isneginf(got[0][2])
    assert tf.reduce_logsumexp(x, 1, keep_dims=True).shape.as_list() == [None, 1]


def test_reduce_logsumexp_gradient_is_softmax():
    rng = np.random.RandomState(2)
    v = rng.uniform(-2, 2, (2, 5))
    _fd_check(lambda t: tf.reduce_logsumexp(t, axis=1), [v])
    e = np.exp(v - v.max(1, keepdims=True))
    tf.reset_default_graph()
    x = tf.placeholder(tf.float64, (2, 5))
    got = run(tf.gradients(tf.reduce_sum(tf.reduce_logsumexp(x, 1)), x)[0], {x: v})
    np.testing.assert_allclose(got, e / e.sum(1, keepdims=True), rtol=1e-12)


def test_reduce_any_all():
    tf.reset_default_graph()
    v = np.array([[True, False, True], [False, False, False]])
    x = tf.placeholder(tf.bool, (None, 3))
    empty = tf.placeholder(tf.bool, (0, 3))
    fetches = [tf.reduce_any(x), tf.reduce_all(x), tf.reduce_any(x, 1), tf.reduce_all(x, 0),
               tf.reduce_any(x, axis=1, keepdims=True), tf.math.reduce_all(x, reduction_indices=[1]),
               tf.reduce_any(empty, 0), tf.reduce_all(empty, 0)]
    got = run(fetches, {x: v, empty: np.zeros((0, 3), bool)})
    wants = [v.any(), v.all(), v.any(1), v.all(0), v.any(1, keepdims=True), v.all(1), [False] * 3, [True] * 3]
    for value, want in zip(got, wants):
        assert np.asarray(value).dtype == np.bool_
        np.testing.assert_array_equal(value, want)
    assert fetches[0].op.name == "Any" and fetches[1].op.name == "All"
    with pytest.raises(TypeError, match="bool"):
        tf.reduce_any(tf.constant([1.0]))


def test_count_nonzero():
    tf.reset_default_graph()
    v = np.array([[0.0, 1.5, -2.0], [0.0, 0.0, 3.0]], np.float32)
    x = tf.constant(v)
    got = run([tf.count_nonzero(x), tf.count_nonzero(x, axis=1), tf.count_nonzero(x, 0, keepdims=True),
               tf.count_nonzero(x, dtype=tf.int32), tf.count_nonzero(tf.constant([True, False, True])),
               tf.math.count_nonzero(tf.constant([[1, 0], [0, 0]]), 1)])
    assert got[0].dtype == np.int64 and got[0] == 3
    np.testing.assert_array_equal(got[1], [2, 1])
    np.testing.assert_array_equal(got[2], [[0, 1, 2]])
    assert got[3].dtype == np.int32 and got[3] == 3
    assert got[4] == 2
    np.testing.assert_array_equal(got[5], [1, 0])


def test_arg_max_arg_min_aliases():
    tf.reset_default_graph()
    v = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]], np.float32)
    a, b, c = run([tf.arg_max(v, 1), tf.arg_min(v, 0), tf.arg_max(v, dimension=0, output_type=tf.int32)])
    np.testing.assert_array_equal(a, [1, 0])
    np.testing.assert_array_equal(b, [0, 1, 0])
    assert a.dtype == np.int64 and c.dtype == np.int32


# ---- API surface ---------------------------------------------------------------------------------
def test_names_namespaces_and_errors():
    tf.reset_default_graph()
    x = tf.placeholder(tf.float32, (2,))
    names = {tf.sin(x): "Sin", tf.math.cos(x): "Cos", tf.nn.elu(x): "Elu", tf.nn.selu(x): "Selu",
             tf.nn.relu6(x): "Relu6", tf.nn.softplus(x): "Softplus", tf.math.softsign(x): "Softsign",
             tf.log1p(x): "Log1p", tf.math.expm1(x): "Expm1", tf.squared_difference(x, x): "SquaredDifference",
             tf.floor(x): "Floor", tf.round(x): "Round"}
    for t, name in names.items():
        assert t.op.name == name and t.op.type == name
    assert tf.nn.elu(x, name="act").op.name == "act"
    for fn in (tf.math.exp, tf.math.log, tf.math.reduce_sum, tf.math.argmax, tf.math.sigmoid, tf.math.tanh):
        assert callable(fn)
    with pytest.raises(TypeError, match="sin"):
        tf.sin(tf.constant([1, 2]))
    with pytest.raises(TypeError, match="softplus"):
        tf.nn.softplus(tf.constant([1, 2]))


def test_through_jit():
    @tf.jit
    def f(x):
        return tf.nn.softplus(x) + tf.sin(x) * tf.expm1(x) - tf.round(x) + tf.reduce_logsumexp(x)

    v = np.linspace(-2, 2, 9)
    want = _np_softplus(v) + np.sin(v) * np.expm1(v) - np.round(v) + _np_logsumexp(v)
    np.testing.assert_allclose(f(v), want, rtol=1e-12)
    np.testing.assert_allclose(f(v.astype(np.float32)), want, rtol=2e-6, atol=2e-6)
    g = tf.grad(lambda x: tf.reduce_sum(tf.nn.elu(x)))(np.array([-1.0, 2.0]))
    np.testing.assert_allclose(g, [np.exp(-1.0), 1.0])


@pytest.mark.skipif(ptx.ptxas_path() is None, reason="ptxas is not on PATH")
def test_ptx_with_the_new_ops_assembles():
    from jitflow.runtime.gpu_build import gpu_program
    tf.reset_default_graph()
    fetches, feeds = [], {}
    for dtype in (tf.float32, tf.float64):
        x = tf.placeholder(dtype, (64,))
        feeds[x] = np.linspace(-0.9, 2, 64).astype(dtype.np)
        fetches += [fn(x) for fn, _, _ in UNARY.values()] + [tf.reduce_logsumexp(x)]
    program = gpu_program(lower_run(tf.get_default_graph(), fetches, feeds).function, "sm_90", verify=True)
    for name in ("__nv_sinf", "__nv_cos", "__nv_tanf", "__nv_log1pf", "__nv_expm1"):
        assert f"@{name}(" in program.llvm_ir, name
    ok, log = ptx.check_ptx(program.ptx, "sm_90")
    assert ok, log


def test_round_of_integers_is_identity_at_the_extremes():
    """Regression (fuzzer): the numpy reference of round went through float64 and wrapped 2**63 - 1."""
    from jitflow.ops import get_op
    big = np.array([2 ** 63 - 1, -2 ** 63, 7], np.int64)
    np.testing.assert_array_equal(get_op("round").reference(big), big)
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(tf.round(tf.constant(big))), big)
