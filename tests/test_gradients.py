"""Gradient checks for tf.gradients, the per-op gradient rules and the tf.nn composites.

The core check is the JAX `check_grads` one: for a function f of float64 placeholders and a
fixed random cotangent w, L(x) = sum(w * f(x)); the reverse-mode directional derivative
<dL/dx, v> along random directions v must match a 5-point central finite difference of
t -> L(x + t v), evaluated by the same compiled executable (one compile per case: every run
fetches the same list). Second-order checks differentiate <dL/dx, u> again (a Hessian-vector
product) and compare it with finite differences of the gradient. Inputs come from each op's
registry `test_domain` and stay away from kinks (ties, zero, integer ratios for floormod).
"""
import numpy as np
import pytest

import jitflow as tf
from jitflow.ops import all_ops

H = 1e-4            # finite-difference step; 5-point stencil: truncation O(h^4), roundoff ~eps/h
F64 = tf.float64


# ------------------------------------------------------------------------------------------
# the checker
# ------------------------------------------------------------------------------------------
def _stencil(fun, h=H):
    """5-point central difference of fun at t=0 (fun may return an array or a list of arrays)."""
    f2, f1, fm1, fm2 = (fun(t) for t in (2 * h, h, -h, -2 * h))
    if isinstance(f1, list):
        return [(-a + 8 * b - 8 * c + d) / (12 * h) for a, b, c, d in zip(f2, f1, fm1, fm2)]
    return (-f2 + 8 * f1 - 8 * fm1 + fm2) / (12 * h)


def check_grads(f, args, shapes=None, order=1, feed=None, rtol=1e-6, n_dirs=2, seed=0):
    """Checks tf.gradients of f (placeholders -> float64 tensor) at args against finite differences.

    shapes: static placeholder shapes (None dims allowed); defaults to the args' shapes.
    order=2 also checks Hessian-vector products. Returns the gradients at args."""
    rng = np.random.RandomState(seed)
    args = [np.asarray(a, np.float64) for a in args]
    shapes = shapes or [a.shape for a in args]
    xs = [tf.placeholder(F64, shape=s) for s in shapes]
    y = f(*xs)
    assert y.dtype == F64, y

    def at(points):
        d = dict(feed or {})
        d.update(zip(xs, points))
        return d

    with tf.Session() as sess:
        if y.shape.is_fully_defined():
            y_shape = tuple(y.shape.as_list())
        else:   # an unknown (batch) dim: learn the run-time shape once
            y_shape = np.shape(sess.run(y, at(args)))
        w = rng.uniform(0.5, 1.5, y_shape) * rng.choice([-1.0, 1.0], y_shape)
        loss = tf.reduce_sum(y * tf.constant(w))
        grads = tf.gradients(loss, xs)
        for g, x in zip(grads, xs):
            assert g is not None, f"no gradient for {x}"
            assert g.dtype == F64
        fetches = [loss, grads]
        if order == 2:
            us = [rng.uniform(-1, 1, a.shape) for a in args]
            inner = tf.add_n([tf.reduce_sum(g * tf.constant(u)) for g, u in zip(grads, us)])
            hvps = tf.gradients(inner, xs)
            fetches.append([h for h in hvps if h is not None])

        def run(points):
            return sess.run(fetches, at(points))

        base = run(args)
        g0 = base[1]
        for g, a in zip(g0, args):
            assert g.shape == a.shape and g.dtype == np.float64
            assert np.all(np.isfinite(g))

        # first order: per-argument directions plus joint random directions
        dirs = []
        for k in range(len(args)):
            dirs.append([rng.uniform(-1, 1, a.shape) if j == k else np.zeros(a.shape)
                         for j, a in enumerate(args)])
        for _ in range(n_dirs):
            dirs.append([rng.uniform(-1, 1, a.shape) for a in args])
        for v in dirs:
            numeric = _stencil(lambda t: run([a + t * d for a, d in zip(args, v)])[0])
            analytic = sum(float(np.sum(g * d)) for g, d in zip(g0, v))
            scale = sum(float(np.sum(np.abs(g * d))) for g, d in zip(g0, v)) + 1e-3 * (1 + abs(base[0]))
            assert abs(numeric - analytic) <= rtol * scale, \
                f"directional derivative: reverse mode {analytic!r} vs finite differences {numeric!r}"

        if order == 2:
            hvp_iter = iter(base[2])
            hvp = [next(hvp_iter) if h is not None else np.zeros(a.shape) for h, a in zip(hvps, args)]
            numeric = _stencil(lambda t: [np.array(g) for g in
                                          run([a + t * u for a, u in zip(args, us)])[1]])
            for k, (hv, fd) in enumerate(zip(hvp, numeric)):
                tol = 1e-5 * (1 + np.max(np.abs(fd)))
                np.testing.assert_allclose(hv, fd, rtol=0, atol=tol, err_msg=f"Hessian-vector product, arg {k}")
    return g0


# ------------------------------------------------------------------------------------------
# input samplers
# ------------------------------------------------------------------------------------------
def domain(op, shape, rng):
    lo, hi = all_ops()[op].test_domain
    return rng.uniform(lo, hi, shape)


def away_from_zero(shape, rng, gap=0.25, hi=3.0):
    return rng.uniform(gap, hi, shape) * rng.choice([-1.0, 1.0], shape)


def separated_pair(shape_x, shape_y, rng):
    """x on half-integers, y on integers (each +-0.1): every broadcast pair differs by >= 0.3."""
    x = rng.randint(-3, 3, shape_x) + 0.5 + rng.uniform(-0.1, 0.1, shape_x)
    y = rng.randint(-3, 4, shape_y) + rng.uniform(-0.1, 0.1, shape_y)
    return x, y


def floormod_pair(shape_x, shape_y, rng):
    """Operands in the test domain whose ratio stays >= 0.1 away from an integer (floormod's jumps)."""
    for _ in range(10000):
        x, y = domain("floormod", shape_x, rng), domain("floormod", shape_y, rng)
        frac = np.mod(x / y, 1.0)
        if np.all((frac > 0.1) & (frac < 0.9)):
            return x, y
    raise AssertionError("could not sample floormod operands")


def distinct(shape, rng, spacing=0.3):
    """Values with pairwise gaps >= spacing - 0.1 (no ties for max/min)."""
    n = int(np.prod(shape))
    values = (rng.permutation(n) - n / 2) * spacing + rng.uniform(-0.05, 0.05, n)
    return values.reshape(shape)


def nonsingular(n, rng):
    return np.eye(n) * 3.0 + rng.uniform(-1, 1, (n, n))


# ------------------------------------------------------------------------------------------
# 1. first-order checks for every differentiable op
# ------------------------------------------------------------------------------------------
UNARY = {"neg": tf.negative, "abs": tf.abs, "square": tf.square, "relu": tf.nn.relu, "sqrt": tf.sqrt,
         "rsqrt": tf.rsqrt, "exp": tf.exp, "log": tf.log, "tanh": tf.tanh, "sigmoid": tf.sigmoid,
         "identity": tf.identity,
         # ops/math_extra.py (tests/test_math_extra_ops.py checks their values and TF's kink conventions)
         "sin": tf.sin, "cos": tf.cos, "tan": tf.tan, "log1p": tf.log1p, "expm1": tf.expm1,
         "reciprocal": tf.reciprocal, "elu": tf.nn.elu, "selu": tf.nn.selu, "relu6": tf.nn.relu6,
         "softplus": tf.nn.softplus, "softsign": tf.nn.softsign, "erf": tf.math.erf}


def unary_input(op, shape, rng):
    if op in ("abs", "relu", "elu", "selu"):
        return away_from_zero(shape, rng)
    if op == "relu6":      # kinks at 0 and 6
        return rng.choice([-1.0, 3.0, 7.0], shape) + rng.uniform(-0.7, 0.7, shape)
    return domain(op, shape, rng)


@pytest.mark.parametrize("op", sorted(UNARY))
@pytest.mark.parametrize("shape, static", [((2, 3), (2, 3)), ((), ()), ((4, 3), (None, 3))],
                         ids=["2x3", "scalar", "batch_none"])
def test_unary_gradient(op, shape, static):
    rng = np.random.RandomState(1)
    check_grads(UNARY[op], [unary_input(op, shape, rng)], shapes=[static])


BINARY = {"add": tf.add, "sub": tf.subtract, "mul": tf.multiply, "div": tf.truediv, "pow": tf.pow,
          "maximum": tf.maximum, "minimum": tf.minimum, "floormod": tf.floormod,
          "squared_difference": tf.squared_difference}

SHAPE_PAIRS = [  # (runtime shapes, static placeholder shapes)
    (((2, 3), (2, 3)), None),
    (((3, 1), (1, 4)), None),
    (((2, 3), (3,)), None),
    (((), (2, 3)), None),
    (((2, 3), ()), None),
    (((4, 3), (3,)), ((None, 3), (3,))),
    (((4, 1), (1, 3)), ((None, 1), (1, 3))),
]


def binary_inputs(op, sx, sy, rng):
    if op in ("maximum", "minimum"):
        return separated_pair(sx, sy, rng)
    if op == "floormod":
        return floormod_pair(sx, sy, rng)
    return domain(op, sx, rng), domain(op, sy, rng)


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("shapes, static", SHAPE_PAIRS,
                         ids=["same", "3x1_1x4", "2x3_3", "scalar_2x3", "2x3_scalar", "none_3", "none1_1x3"])
def test_binary_gradient_with_broadcasting(op, shapes, static):
    rng = np.random.RandomState(2)
    x, y = binary_inputs(op, *shapes, rng)
    check_grads(BINARY[op], [x, y], shapes=static)


def test_operator_overloads_and_fan_in():
    rng = np.random.RandomState(3)
    x, y = rng.uniform(0.5, 2, (2, 3)), rng.uniform(0.5, 2, (3,))
    check_grads(lambda a, b: a * a - a / b + b ** 2 + (a + b) * a, [x, y])


def test_select_gradient():
    rng = np.random.RandomState(4)
    cond = rng.rand(2, 3) > 0.5
    check_grads(lambda a, b: tf.where(tf.constant(cond), a, b), [rng.randn(2, 3), rng.randn(2, 3)])
    cond_b = np.array([[True], [False], [True]])
    g = check_grads(lambda a, b: tf.where(tf.constant(cond_b), a, b), [rng.randn(1, 4), rng.randn(3, 4)])
    # closed form with w: unselected rows of a get nothing, selected rows of b get nothing
    assert np.all(g[1][[0, 2]] == 0) and np.all(g[1][1] != 0)


def test_select_gradient_condition_from_data():
    rng = np.random.RandomState(5)
    x = away_from_zero((3, 4), rng)
    check_grads(lambda a: tf.where(a > 0, tf.exp(a), a * a), [x])


def test_add_n_gradient():
    rng = np.random.RandomState(6)
    args = [rng.randn(2, 3) for _ in range(3)]
    check_grads(lambda a, b, c: tf.add_n([a, b, c]) * c, args)
    check_grads(lambda a, b, c: tf.add_n([a, b, c]), [rng.randn(4, 3) for _ in range(3)],
                shapes=[(None, 3)] * 3)


def test_cast_gradient_float_to_float():
    x64 = tf.placeholder(F64, (2, 3))
    x32 = tf.placeholder(tf.float32, (2, 3))
    w = np.arange(6.0).reshape(2, 3) - 2.5
    y32 = tf.cast(x64, tf.float32) * tf.constant(w.astype(np.float32))
    y64 = tf.cast(x32, F64) * tf.constant(w)
    g64 = tf.gradients(y32, x64)[0]
    g32 = tf.gradients(y64, x32)[0]
    assert g64.dtype == F64 and g32.dtype == tf.float32
    with tf.Session() as sess:
        a, b = sess.run([g64, g32], {x64: np.ones((2, 3)), x32: np.ones((2, 3))})
    np.testing.assert_array_equal(a, w)
    np.testing.assert_array_equal(b, w.astype(np.float32))
    assert a.dtype == np.float64 and b.dtype == np.float32
    # float -> int -> float: no gradient flows through an integer
    assert tf.gradients(tf.cast(tf.cast(x64, tf.int32), F64), x64) == [None]


REDUCTIONS = {"reduce_sum": tf.reduce_sum, "reduce_mean": tf.reduce_mean, "reduce_max": tf.reduce_max,
              "reduce_min": tf.reduce_min, "reduce_prod": tf.reduce_prod}


def reduce_input(op, shape, rng):
    if op in ("reduce_max", "reduce_min"):
        return distinct(shape, rng)
    return domain(op, shape, rng)


@pytest.mark.parametrize("op", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 2), -1, (1, 2)], ids=["all", "0", "1", "02", "m1", "12"])
@pytest.mark.parametrize("keepdims", [False, True], ids=["drop", "keep"])
def test_reduction_gradient(op, axis, keepdims):
    rng = np.random.RandomState(7)
    x = reduce_input(op, (2, 3, 4), rng)
    check_grads(lambda a: REDUCTIONS[op](a, axis=axis, keepdims=keepdims), [x])


@pytest.mark.parametrize("op", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis, keepdims", [(0, False), (None, False), (1, True), (0, True)])
def test_reduction_gradient_unknown_batch(op, axis, keepdims):
    rng = np.random.RandomState(8)
    x = reduce_input(op, (5, 3), rng)
    check_grads(lambda a: REDUCTIONS[op](a, axis=axis, keepdims=keepdims), [x], shapes=[(None, 3)])


def test_reduction_closed_forms():
    x = tf.placeholder(F64, (None, 4))
    value = np.array([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, 0.5, 0.5]])
    mean_g, max_g, min_g, prod_g = (tf.gradients(fn(x, axis=1), x)[0] for fn in
                                    (tf.reduce_mean, tf.reduce_max, tf.reduce_min, tf.reduce_prod))
    with tf.Session() as sess:
        mean_v, max_v, min_v, prod_v = sess.run([mean_g, max_g, min_g, prod_g], {x: value})
    np.testing.assert_allclose(mean_v, np.full((2, 4), 0.25))
    # TF 1.x splits the gradient of a tied extremum evenly among the ties
    np.testing.assert_allclose(max_v, [[0, 0.5, 0.5, 0], [0.25] * 4])
    np.testing.assert_allclose(min_v, [[0, 0, 0, 1], [0.25] * 4])
    np.testing.assert_allclose(prod_v, [[-18, -6, -6, 9], [0.125] * 4])


def test_reduce_prod_gradient_with_zeros():
    """TF 1.x's Prod gradient is the product of the other elements, also when an element is 0."""
    x = tf.placeholder(F64, (3, 3))
    g = tf.gradients(tf.reduce_prod(x, axis=1), x)[0]
    value = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 5.0], [1.5, 2.0, 4.0]])
    with tf.Session() as sess:
        result = sess.run(g, {x: value})
    np.testing.assert_allclose(result, [[6, 0, 0], [0, 0, 0], [8, 6, 3]])


@pytest.mark.parametrize("shape, static, new_shape", [
    ((2, 3, 4), None, (6, 4)), ((2, 3, 4), None, (4, -1)), ((2, 3, 4), None, (24,)),
    ((2, 3, 4), None, (2, 1, 12)), ((4, 6), (None, 6), (-1, 2, 3)), ((4, 2, 3), (None, 2, 3), (-1, 6))])
def test_reshape_gradient(shape, static, new_shape):
    rng = np.random.RandomState(9)
    check_grads(lambda a: tf.reshape(a, new_shape) * tf.reshape(a, new_shape), [rng.randn(*shape)],
                shapes=[static] if static else None)


def test_expand_dims_and_squeeze_gradient():
    rng = np.random.RandomState(10)
    check_grads(lambda a: tf.squeeze(tf.expand_dims(a, 1) * a[:, None, :], axis=1), [rng.randn(3, 4)])


@pytest.mark.parametrize("shape, perm", [((2, 3), (1, 0)), ((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (1, 2, 0)),
                                         ((2, 3, 4), None)])
def test_transpose_gradient(shape, perm):
    rng = np.random.RandomState(11)
    check_grads(lambda a: tf.transpose(a, perm) if perm else tf.transpose(a), [rng.randn(*shape)])


@pytest.mark.parametrize("shape, target", [((3, 1), (2, 3, 4)), ((), (2, 3)), ((4,), (3, 4)), ((1, 4), (3, 4)),
                                           ((2, 3), (2, 3))])
def test_broadcast_to_gradient(shape, target):
    rng = np.random.RandomState(12)
    check_grads(lambda a: tf.broadcast_to(a, target), [rng.randn(*shape)])


SLICES = {
    "rows_cols_step": (lambda a: a[1:4, ::2], (5, 6)),
    "reverse_rows": (lambda a: a[::-1], (5, 6)),
    "negative_steps": (lambda a: a[4:0:-2, 5::-3], (5, 6)),
    "int_index_last": (lambda a: a[-1], (5, 6)),
    "int_index_col": (lambda a: a[:, 2], (5, 6)),
    "ellipsis": (lambda a: a[..., 1:], (5, 6)),
    "newaxis": (lambda a: a[None, 1:3, -2:], (5, 6)),
    "newaxis_reverse": (lambda a: a[1:2, None, ::-1], (5, 6)),
    "3d_int_neg_step": (lambda a: a[1, :, ::-2], (2, 3, 4)),
    "3d_ellipsis_int": (lambda a: a[..., 0], (2, 3, 4)),
    "overlapping_slices": (lambda a: a[1:] * a[:-1] + a[::-1][:4], (5,)),
}


@pytest.mark.parametrize("case", sorted(SLICES))
def test_strided_slice_gradient(case):
    fn, shape = SLICES[case]
    rng = np.random.RandomState(13)
    check_grads(fn, [rng.randn(*shape)])


def test_unstack_gradient():
    rng = np.random.RandomState(14)
    check_grads(lambda a: tf.add_n([t * float(k + 1) for k, t in enumerate(tf.unstack(a, axis=1))]) * a[:, 0],
                [rng.randn(3, 4)])


@pytest.mark.parametrize("shapes, axis", [(((2, 3), (2, 1), (2, 2)), 1), (((1, 3), (2, 3)), 0),
                                          (((2, 3), (2, 2)), -1), (((2, 1, 2), (2, 2, 2)), 1)])
def test_concat_gradient(shapes, axis):
    rng = np.random.RandomState(15)
    check_grads(lambda *xs: tf.concat(list(xs), axis), [rng.randn(*s) for s in shapes])


def test_stack_gradient():
    rng = np.random.RandomState(16)
    check_grads(lambda a, b: tf.stack([a, b * a], axis=1), [rng.randn(2, 3), rng.randn(2, 3)])


def test_concat_gradient_unknown_batch():
    rng = np.random.RandomState(17)
    check_grads(lambda a, b: tf.concat([a, b], 1), [rng.randn(4, 2), rng.randn(4, 3)],
                shapes=[(None, 2), (None, 3)])


def test_concat_gradient_unknown_sizes_along_the_axis():
    rng = np.random.RandomState(20)
    check_grads(lambda a, b, c: tf.concat([a, b * b, c], 0), [rng.randn(2, 3), rng.randn(3, 3), rng.randn(1, 3)],
                shapes=[(None, 3), (None, None), (None, 3)])


def test_concat_gradient_of_unknown_sizes_twice():
    """Second order through the shape-dependent concat gradient (and its own gradient rule)."""
    x = tf.placeholder(tf.float64, (None, 2))
    y = tf.placeholder(tf.float64, (None, 2))
    out = tf.concat([x * x, y], 0)
    first = tf.gradients(tf.reduce_sum(out * out), x)[0]               # 4 x^3
    second = tf.gradients(tf.reduce_sum(first), x)[0]                  # 12 x^2
    x_value = np.array([[1.0, 2.0], [3.0, 4.0], [0.5, -1.0]])
    with tf.Session() as sess:
        d1, d2 = sess.run([first, second], {x: x_value, y: np.ones((2, 2))})
    np.testing.assert_allclose(d1, 4 * x_value ** 3)
    np.testing.assert_allclose(d2, 12 * x_value ** 2)


@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
def test_matmul_gradient(transpose_a, transpose_b):
    rng = np.random.RandomState(18)
    a = domain("matmul", (4, 3) if transpose_a else (3, 4), rng)
    b = domain("matmul", (2, 4) if transpose_b else (4, 2), rng)
    g = check_grads(lambda x, y: tf.matmul(x, y, transpose_a=transpose_a, transpose_b=transpose_b), [a, b])
    assert g[0].shape == a.shape and g[1].shape == b.shape


def test_matmul_gradient_unknown_batch():
    rng = np.random.RandomState(19)
    check_grads(lambda x, w, b: tf.tanh(tf.matmul(x, w) + b), [rng.randn(5, 3), rng.randn(3, 2), rng.randn(2)],
                shapes=[(None, 3), (3, 2), (2,)])


def test_matrix_inverse_gradient():
    rng = np.random.RandomState(20)
    check_grads(tf.matrix_inverse, [nonsingular(3, rng)])
    check_grads(lambda a: tf.matmul(tf.matrix_inverse(a), a, transpose_b=True), [nonsingular(4, rng)])


def test_sign_floordiv_have_zero_or_no_gradient():
    x = tf.placeholder(F64, (3,))
    y = tf.placeholder(F64, (3,))
    gs = tf.gradients(tf.sign(x), x)[0]
    assert tf.gradients(tf.floordiv(x, y), [x, y]) == [None, None]
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(gs, {x: [-1.0, 0.5, 2.0]}), np.zeros(3))


def test_minmax_relu_abs_at_ties_and_zero_follow_tf():
    x = tf.placeholder(F64, (3,))
    y = tf.placeholder(F64, (3,))
    fetch = tf.gradients(tf.maximum(x, y), [x, y]) + tf.gradients(tf.minimum(x, y), [x, y]) + \
        tf.gradients(tf.nn.relu(x), x) + tf.gradients(tf.abs(x), x)
    with tf.Session() as sess:
        mx, my, nx, ny, r, a = sess.run(fetch, {x: [1.0, 2.0, 0.0], y: [1.0, 1.0, 3.0]})
    # TF 1.x: maximum/minimum send a tie's gradient to x; relu'(0) = abs'(0) = 0
    np.testing.assert_array_equal(mx, [1, 1, 0])
    np.testing.assert_array_equal(my, [0, 0, 1])
    np.testing.assert_array_equal(nx, [1, 0, 1])
    np.testing.assert_array_equal(ny, [0, 1, 0])
    np.testing.assert_array_equal(r, [1, 1, 0])
    np.testing.assert_array_equal(a, [1, 1, 0])


def test_leaky_relu_value_and_gradient():
    x = tf.placeholder(F64, (5,))
    y = tf.nn.leaky_relu(x, alpha=0.2)
    g = tf.gradients(y, x)[0]
    v = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    with tf.Session() as sess:
        out, grad = sess.run([y, g], {x: v})
    np.testing.assert_allclose(out, np.where(v > 0, v, 0.2 * v))
    np.testing.assert_allclose(grad, [0.2, 0.2, 0.2, 1.0, 1.0])     # TF 1.x: alpha at 0
    rng = np.random.RandomState(31)
    check_grads(lambda a: tf.nn.leaky_relu(a, alpha=0.1), [away_from_zero((3, 4), rng)])


def test_pow_gradient_negative_base_integer_exponent():
    x = tf.placeholder(F64, (4,))
    gx = tf.gradients(tf.pow(x, tf.constant(np.float64(3.0))), x)[0]
    with tf.Session() as sess:
        value = sess.run(gx, {x: [-2.0, -0.5, 0.0, 1.5]})
    np.testing.assert_allclose(value, 3 * np.array([-2.0, -0.5, 0.0, 1.5]) ** 2)


def test_every_differentiable_op_is_covered():
    """New ops of these kinds must come with a gradient check in this file."""
    wanted = {name for name, op in all_ops().items()
              if op.kind in ("elementwise", "reduce", "layout", "library") and op.differentiable}
    wanted -= {"scatter_slice"}       # only produced by expanding slice_grad; checked through strided_slice
    wanted -= {"sign", "floordiv"}    # zero / no gradient: test_sign_floordiv_have_zero_or_no_gradient
    listed = set(UNARY) | set(BINARY) | set(REDUCTIONS) | {
        "select", "cast", "add_n", "reshape", "transpose", "broadcast_to", "strided_slice", "concat", "matmul",
        "matrix_inverse"}
    listed |= {"slice", "reverse", "gather", "segment_sum", "scan", "top_k"}   # tests/test_array_ops_extra.py
    listed |= {"conv2d", "conv2d_backprop_filter", "conv2d_backprop_input", "depthwise_conv2d_native",  # test_conv_ops.py
               "depthwise_conv2d_native_backprop_filter", "depthwise_conv2d_native_backprop_input"}
    listed |= {"avg_pool", "avg_pool_grad", "max_pool", "max_pool_grad", "max_pool_grad_grad"}   # test_pool_ops.py
    listed |= {"cond", "while"}   # tests/test_control_flow_ops.py (while: refused by name, never a wrong gradient)
    listed |= {"lstm_block"}      # tests/test_lstm_fast.py (vs finite differences and the composite path)
    assert wanted <= listed, f"ops without a gradient check: {sorted(wanted - listed)}"
    for name in wanted:
        assert all_ops()[name].grad is not None, name


# ------------------------------------------------------------------------------------------
# 2. closed forms
# ------------------------------------------------------------------------------------------
def _np_softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_closed_form_unary_derivatives():
    x = tf.placeholder(F64, (7,))
    fns = [tf.sigmoid, tf.tanh, tf.exp, tf.log, tf.sqrt, tf.rsqrt, tf.square]
    grads = [tf.gradients(fn(x), x)[0] for fn in fns]
    v = np.linspace(0.2, 3.0, 7)
    with tf.Session() as sess:
        out = sess.run(grads, {x: v})
    s = 1 / (1 + np.exp(-v))
    expected = [s * (1 - s), 1 - np.tanh(v) ** 2, np.exp(v), 1 / v, 0.5 / np.sqrt(v), -0.5 * v ** -1.5, 2 * v]
    for got, want in zip(out, expected):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_closed_form_pow_and_div():
    x, y = tf.placeholder(F64, (4,)), tf.placeholder(F64, (4,))
    xv, yv = np.array([0.5, 1.0, 2.0, 3.0]), np.array([1.5, -2.0, 0.5, 3.0])
    grads = tf.gradients(tf.pow(x, y), [x, y]) + tf.gradients(x / y, [x, y])
    with tf.Session() as sess:
        px, py, dx, dy = sess.run(grads, {x: xv, y: yv})
    np.testing.assert_allclose(px, yv * xv ** (yv - 1), rtol=1e-12)
    np.testing.assert_allclose(py, xv ** yv * np.log(xv), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dx, 1 / yv, rtol=1e-12)
    np.testing.assert_allclose(dy, -xv / yv ** 2, rtol=1e-12)


@pytest.mark.parametrize("ta, tb", [(False, False), (False, True), (True, False), (True, True)])
def test_closed_form_matmul(ta, tb):
    rng = np.random.RandomState(21)
    a = rng.randn(*((4, 3) if ta else (3, 4)))
    b = rng.randn(*((2, 4) if tb else (4, 2)))
    w = rng.randn(3, 2)
    pa, pb = tf.placeholder(F64, a.shape), tf.placeholder(F64, b.shape)
    ga, gb = tf.gradients(tf.matmul(pa, pb, transpose_a=ta, transpose_b=tb), [pa, pb], grad_ys=tf.constant(w))
    with tf.Session() as sess:
        da, db = sess.run([ga, gb], {pa: a, pb: b})
    A, B = (a.T if ta else a), (b.T if tb else b)
    dA, dB = w @ B.T, A.T @ w
    np.testing.assert_allclose(da, dA.T if ta else dA, rtol=1e-12)
    np.testing.assert_allclose(db, dB.T if tb else dB, rtol=1e-12)


def test_closed_form_matrix_inverse():
    rng = np.random.RandomState(22)
    a, w = nonsingular(3, rng), rng.randn(3, 3)
    p = tf.placeholder(F64, (3, 3))
    g = tf.gradients(tf.matrix_inverse(p), p, grad_ys=w)[0]
    with tf.Session() as sess:
        got = sess.run(g, {p: a})
    inv = np.linalg.inv(a)
    np.testing.assert_allclose(got, -inv.T @ w @ inv.T, rtol=1e-10)


def test_closed_form_softmax_family_and_l2_loss():
    rng = np.random.RandomState(23)
    z = rng.randn(4, 5) * 3
    labels = np.eye(5)[[0, 3, 1, 4]]
    sparse = np.array([0, 3, 1, 4], np.int32)
    w = rng.randn(4, 5)
    x = tf.placeholder(F64, (None, 5))
    xent = tf.nn.softmax_cross_entropy_with_logits_v2(labels=tf.constant(labels), logits=x)
    sparse_xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.constant(sparse), logits=x)
    fetch = [tf.gradients(xent, x)[0], tf.gradients(tf.reduce_mean(sparse_xent), x)[0],
             tf.gradients(tf.nn.softmax(x), x, grad_ys=tf.constant(w))[0],
             tf.gradients(tf.nn.log_softmax(x), x, grad_ys=tf.constant(w))[0],
             tf.gradients(tf.nn.l2_loss(x), x)[0], tf.nn.l2_loss(x),
             tf.gradients(tf.losses.mean_squared_error(tf.constant(labels), x), x)[0]]
    with tf.Session() as sess:
        g_xent, g_sparse, g_soft, g_log, g_l2, l2, g_mse = sess.run(fetch, {x: z})
    s = _np_softmax(z)
    np.testing.assert_allclose(g_xent, s - labels, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g_sparse, (s - labels) / 4, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g_soft, s * (w - np.sum(w * s, axis=1, keepdims=True)), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(g_log, w - s * np.sum(w, axis=1, keepdims=True), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(g_l2, z, rtol=1e-15)
    np.testing.assert_allclose(l2, 0.5 * np.sum(z ** 2), rtol=1e-14)
    np.testing.assert_allclose(g_mse, 2 * (z - labels) / z.size, rtol=1e-12)


def test_closed_form_sigmoid_cross_entropy_gradient():
    z = np.array([-1000.0, -30.0, -2.0, 0.0, 0.0, 0.0, 1.5, 30.0, 1000.0])
    t = np.array([1.0, 0.0, 0.3, 0.0, 1.0, 0.5, 1.0, 1.0, 0.0])
    x = tf.placeholder(F64, (None,))
    g = tf.gradients(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.constant(t), logits=x), x)[0]
    with tf.Session() as sess:
        got = sess.run(g, {x: z})
    sigmoid = np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))
    np.testing.assert_allclose(got, sigmoid - t, rtol=1e-12, atol=1e-15)


def test_third_derivative_of_tanh():
    x = tf.placeholder(F64, (5,))
    y = tf.tanh(x)
    d1 = tf.gradients(y, x)[0]
    d2 = tf.gradients(d1, x)[0]
    d3 = tf.gradients(d2, x)[0]
    v = np.linspace(-2, 2, 5)
    with tf.Session() as sess:
        g1, g2, g3 = sess.run([d1, d2, d3], {x: v})
    t = np.tanh(v)
    np.testing.assert_allclose(g1, 1 - t ** 2, rtol=1e-12)
    np.testing.assert_allclose(g2, -2 * t * (1 - t ** 2), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g3, -2 * (1 - t ** 2) * (1 - 3 * t ** 2), rtol=1e-11, atol=1e-14)


# ------------------------------------------------------------------------------------------
# 3. second order: Hessian-vector products against finite differences of the gradient
# ------------------------------------------------------------------------------------------
def _xent(z, labels):
    return tf.nn.softmax_cross_entropy_with_logits_v2(labels=tf.constant(labels), logits=z)


SECOND_ORDER = {
    "tanh": (tf.tanh, [(2, 3)], None),
    "sigmoid": (tf.sigmoid, [(2, 3)], None),
    "exp": (tf.exp, [(2, 3)], None),
    "log_sqrt_rsqrt": (lambda a: tf.log(a) * tf.sqrt(a) + tf.rsqrt(a), [(2, 3)], None),
    "mul": (lambda a, b: a * b * a, [(2, 3), (2, 3)], None),
    "mul_broadcast": (lambda a, b: a * b, [(3, 1), (1, 4)], None),
    "div_pow_broadcast": (lambda a, b: tf.pow(a, b) / b, [(2, 3), (3,)], None),
    "matmul": (lambda a, b: tf.matmul(a, b) * tf.matmul(a, b), [(3, 4), (4, 2)], None),
    "matmul_transposed": (lambda a, b: tf.tanh(tf.matmul(a, b, transpose_a=True, transpose_b=True)),
                          [(4, 3), (2, 4)], None),
    "reduce_mean_batch_none": (lambda a: tf.exp(tf.reduce_mean(a, axis=0)) * tf.reduce_mean(a * a),
                               [(5, 3)], [(None, 3)]),
    "reduce_sum_keepdims": (lambda a: tf.sigmoid(tf.reduce_sum(a * a, axis=1, keepdims=True)) * a,
                            [(2, 3)], None),
    "reduce_max": (lambda a: tf.square(tf.reduce_max(a, axis=1)), [(3, 4)], None),
    "reduce_prod": (lambda a: tf.reduce_prod(a, axis=0), [(3, 2)], None),
    "slice_reshape_transpose": (lambda a: tf.exp(tf.reshape(tf.transpose(a[::-1, 1::2]), (-1,))) * a[0, 0],
                                [(3, 4)], None),
    "concat_broadcast_to": (lambda a, b: tf.square(tf.concat([a, tf.broadcast_to(b, (2, 3))], 1)),
                            [(2, 2), (1, 3)], None),
    "matrix_inverse": (tf.matrix_inverse, [(3, 3)], None),
    "softmax_xent": (lambda z: _xent(z, np.eye(4)[[1, 0, 3]]), [(3, 4)], None),
    "softmax_xent_batch_none": (lambda z: _xent(z, np.eye(4)[[1, 0, 3]]), [(3, 4)], [(None, 4)]),
    "sigmoid_xent": (lambda z: tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.constant(np.array([[0.0, 1.0, 0.3]])), logits=z), [(2, 3)], None),
}


@pytest.mark.parametrize("case", sorted(SECOND_ORDER))
def test_hessian_vector_product(case):
    fn, shapes, static = SECOND_ORDER[case]
    rng = np.random.RandomState(24)
    if case == "matrix_inverse":
        args = [nonsingular(3, rng)]
    elif case == "div_pow_broadcast" or case == "log_sqrt_rsqrt" or case == "reduce_prod":
        args = [rng.uniform(0.5, 2.0, s) for s in shapes]
    elif case == "reduce_max":
        args = [distinct(shapes[0], rng)]
    elif case == "sigmoid_xent":
        args = [away_from_zero(shapes[0], rng)]
    else:
        args = [rng.uniform(-1.5, 1.5, s) for s in shapes]
    check_grads(fn, args, shapes=static, order=2)


# ------------------------------------------------------------------------------------------
# 4. tf.gradients semantics
# ------------------------------------------------------------------------------------------
def test_unconnected_and_integer_inputs_give_none():
    x = tf.placeholder(F64, (3,))
    z = tf.placeholder(F64, (3,))
    n = tf.placeholder(tf.int32, (3,))
    y = tf.reduce_sum(x * tf.cast(n, F64))
    gx, gz, gn = tf.gradients(y, [x, z, n])
    assert gz is None and gn is None and gx is not None
    i = tf.cast(x, tf.int32)                     # an integer intermediate
    assert tf.gradients(tf.cast(i, F64) * 2.0, [x, i]) == [None, None]
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(gx, {x: np.ones(3), n: [1, 2, 3]}), [1, 2, 3])


def test_stop_gradient_blocks():
    x = tf.placeholder(F64, (3,))
    only_stopped = tf.stop_gradient(x) * 2.0
    assert tf.gradients(only_stopped, x) == [None]
    g = tf.gradients(tf.stop_gradient(x) * x, x)[0]         # d/dx c*x with c = x held constant
    a = x * 3.0
    y = a * a + x
    g_stop = tf.gradients(y, x, stop_gradients=[a])[0]       # a treated as a constant: dy/dx = 1
    g_free = tf.gradients(y, x)[0]
    v = np.array([1.0, -2.0, 0.5])
    with tf.Session() as sess:
        got, stopped, free = sess.run([g, g_stop, g_free], {x: v})
    np.testing.assert_allclose(got, v)
    np.testing.assert_allclose(stopped, np.ones(3))
    np.testing.assert_allclose(free, 18 * v + 1)


def test_gradients_are_total_derivatives_when_xs_depend_on_each_other():
    # the example of TF 1.x's tf.gradients docstring
    a = tf.constant(0.0)
    b = 2 * a
    total = tf.gradients(a + b, [a, b])
    with tf.Session() as sess:
        assert sess.run(total) == [3.0, 1.0]


def test_stop_gradients_that_are_xs_get_partial_derivatives():
    # the example of TF 1.x's tf.gradients docstring: partial derivatives [1.0, 1.0]
    a = tf.constant(0.0)
    b = 2 * a
    partial = tf.gradients(a + b, [a, b], stop_gradients=[a, b])
    assert None not in partial
    with tf.Session() as sess:
        assert sess.run(partial) == [1.0, 1.0]


def test_list_of_ys_sums_and_grad_ys():
    x = tf.placeholder(F64, (3,))
    y1, y2 = tf.square(x), tf.exp(x)
    g_sum = tf.gradients([y1, y2], x)[0]
    w1, w2 = np.array([1.0, 2.0, -1.0]), np.array([0.5, -3.0, 4.0])
    g_w = tf.gradients([y1, y2], x, grad_ys=[tf.constant(w1), w2])[0]
    g_single = tf.gradients(y1, x, grad_ys=w1)[0]
    g_scalar = tf.gradients(tf.reduce_sum(y1), x, grad_ys=tf.constant(np.float64(3.0)))[0]
    v = np.array([0.5, -1.0, 2.0])
    with tf.Session() as sess:
        s, w, single, scalar = sess.run([g_sum, g_w, g_single, g_scalar], {x: v})
    dy2 = np.exp(v)
    np.testing.assert_allclose(s, 2 * v + dy2, rtol=1e-12)
    np.testing.assert_allclose(w, w1 * 2 * v + w2 * dy2, rtol=1e-12)
    np.testing.assert_allclose(single, w1 * 2 * v, rtol=1e-12)
    np.testing.assert_allclose(scalar, 6 * v, rtol=1e-12)


def test_gradient_of_x_wrt_itself_and_of_shared_subexpression():
    x = tf.placeholder(F64, (2,))
    y = tf.exp(x)
    z = y * y + y                 # y feeds two consumers: fan-in is summed
    gx, gz = tf.gradients(x, x)[0], tf.gradients(z, x)[0]
    v = np.array([0.1, -0.4])
    with tf.Session() as sess:
        ones, dz = sess.run([gx, gz], {x: v})
    np.testing.assert_array_equal(ones, [1.0, 1.0])
    np.testing.assert_allclose(dz, 2 * np.exp(2 * v) + np.exp(v), rtol=1e-12)


def test_gradients_with_respect_to_variables():
    w = tf.Variable(np.array([[1.0, -2.0], [0.5, 3.0]]), name="w")
    b = tf.Variable(np.float64(0.25), name="b")
    x = tf.placeholder(F64, (None, 2))
    loss = tf.reduce_sum(tf.square(tf.matmul(x, w) + b))
    gw, gb = tf.gradients(loss, [w, b])
    assert tf.gradients(loss, w)[0] is not None
    xv = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, 1.0]])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        dw, db = sess.run([gw, gb], {x: xv})
        sess.run(w.assign(np.zeros((2, 2))))
        dw0 = sess.run(gw, {x: xv})
    r = 2 * (xv @ np.array([[1.0, -2.0], [0.5, 3.0]]) + 0.25)
    np.testing.assert_allclose(dw, xv.T @ r, rtol=1e-12)
    np.testing.assert_allclose(db, r.sum(), rtol=1e-12)
    np.testing.assert_allclose(dw0, xv.T @ (2 * np.full((3, 2), 0.25)), rtol=1e-12)


def test_float32_gradients_agree_with_float64():
    rng = np.random.RandomState(30)
    values = [rng.randn(6, 4), rng.randn(4, 5) * 0.5, rng.randn(5)]
    labels = np.eye(5)[rng.randint(0, 5, 6)]

    def build(dtype):
        x, w, b = (tf.placeholder(dtype, (None,) + v.shape[1:] if k == 0 else v.shape) for k, v in enumerate(values))
        hidden = tf.tanh(tf.matmul(x, w) + b)
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(
            labels=tf.constant(labels.astype(dtype.np)), logits=hidden * 3.0)) + tf.nn.l2_loss(w) * 0.1
        return [x, w, b], tf.gradients(loss, [x, w, b])

    p32, g32 = build(tf.float32)
    p64, g64 = build(F64)
    with tf.Session() as sess:
        r32 = sess.run(g32, dict(zip(p32, [v.astype(np.float32) for v in values])))
        r64 = sess.run(g64, dict(zip(p64, values)))
    for a, b in zip(r32, r64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)


def test_mlp_gradient_unknown_batch():
    rng = np.random.RandomState(25)

    def mlp(x, w1, b1, w2):
        hidden = tf.nn.relu(tf.matmul(x, w1) + b1)
        logits = tf.matmul(hidden, w2)
        return tf.nn.softmax_cross_entropy_with_logits_v2(labels=tf.constant(np.eye(3)[[0, 2, 1, 1, 0]]),
                                                          logits=logits)

    x, w1, b1, w2 = rng.randn(5, 4), rng.randn(4, 6), rng.randn(6), rng.randn(6, 3)
    pre = x @ w1 + b1
    assert np.min(np.abs(pre)) > 1e-3      # away from relu's kink
    check_grads(mlp, [x, w1, b1, w2], shapes=[(None, 4), (4, 6), (6,), (6, 3)])


# ------------------------------------------------------------------------------------------
# 5. tf.nn composites, clip ops, losses, initializers
# ------------------------------------------------------------------------------------------
EXTREME = np.array([[1000.0, 0.0, -1000.0, 3.0], [-1000.0, -1000.0, -999.0, -1001.0],
                    [0.5, -0.25, 2.0, 1.0]])
EXTREME_LABELS = np.array([[0.0, 0.0, 1.0, 0.0], [0.2, 0.3, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0]])


def _np_log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def test_softmax_family_values_with_extreme_logits():
    x = tf.placeholder(F64, (None, 4))
    labels = tf.constant(EXTREME_LABELS)
    sparse = tf.constant(np.array([2, 2, 1], np.int64))
    fetch = [tf.nn.softmax(x), tf.nn.log_softmax(x),
             tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=x),
             tf.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=x),
             tf.nn.sparse_softmax_cross_entropy_with_logits(labels=sparse, logits=x),
             tf.nn.softmax(x, axis=0),
             tf.gradients(tf.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=x), x)[0]]
    with tf.Session() as sess:
        soft, logsoft, xent1, xent2, sparse_xent, soft0, g = sess.run(fetch, {x: EXTREME})
    for value in (soft, logsoft, xent1, xent2, sparse_xent, soft0, g):
        assert np.all(np.isfinite(value))
    np.testing.assert_allclose(soft, _np_softmax(EXTREME), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(soft0, _np_softmax(EXTREME, axis=0), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(logsoft, _np_log_softmax(EXTREME), rtol=1e-12)
    expected = -np.sum(EXTREME_LABELS * _np_log_softmax(EXTREME), axis=-1)
    np.testing.assert_allclose(xent1, expected, rtol=1e-12)
    np.testing.assert_allclose(xent2, expected, rtol=1e-12)
    np.testing.assert_allclose(xent1[0], 2000.0)           # log-softmax of -1000 next to 1000
    np.testing.assert_allclose(sparse_xent, -_np_log_softmax(EXTREME)[np.arange(3), [2, 2, 1]], rtol=1e-12)
    np.testing.assert_allclose(g, _np_softmax(EXTREME) - EXTREME_LABELS, rtol=1e-12, atol=1e-15)


def test_softmax_float32_extreme_logits_finite():
    x = tf.constant(EXTREME.astype(np.float32))
    with tf.Session() as sess:
        soft, xent = sess.run([tf.nn.softmax(x), tf.nn.softmax_cross_entropy_with_logits_v2(
            labels=tf.constant(EXTREME_LABELS.astype(np.float32)), logits=x)])
    assert np.all(np.isfinite(soft)) and np.all(np.isfinite(xent))
    np.testing.assert_allclose(soft, _np_softmax(EXTREME), rtol=1e-5, atol=1e-30)
    np.testing.assert_allclose(xent, -np.sum(EXTREME_LABELS * _np_log_softmax(EXTREME), axis=-1), rtol=1e-5)


def test_sigmoid_cross_entropy_values_with_extreme_logits():
    z = np.array([-1000.0, -1000.0, -5.0, 0.0, 0.0, 2.0, 1000.0, 1000.0])
    t = np.array([0.0, 1.0, 0.25, 0.0, 1.0, 0.5, 0.0, 1.0])
    x = tf.placeholder(F64, (8,))
    with tf.Session() as sess:
        got = sess.run(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.constant(t), logits=x), {x: z})
    assert np.all(np.isfinite(got))
    expected = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got[[0, 1, 6, 7]], [0.0, 1000.0, 1000.0, 0.0], atol=1e-12)


def test_softmax_family_gradients_vs_finite_differences():
    rng = np.random.RandomState(26)
    z = rng.randn(3, 4) * 2
    labels = rng.dirichlet(np.ones(4), size=3)
    check_grads(tf.nn.softmax, [z], shapes=[(None, 4)])
    check_grads(lambda a: tf.nn.softmax(a, axis=0), [z])
    check_grads(tf.nn.log_softmax, [z])
    check_grads(lambda a: tf.nn.softmax_cross_entropy_with_logits(labels=tf.constant(labels), logits=a), [z])
    # v2 also differentiates the labels (TF 1.x: d/dlabels = -log_softmax)
    check_grads(lambda lab, a: tf.nn.softmax_cross_entropy_with_logits_v2(labels=lab, logits=a), [labels, z])
    check_grads(lambda a: tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.constant(np.array([3, 0, 1], np.int32)), logits=a), [z], shapes=[(None, 4)])
    check_grads(lambda lab, a: tf.nn.sigmoid_cross_entropy_with_logits(labels=lab, logits=a),
                [rng.uniform(0, 1, (3, 4)), away_from_zero((3, 4), rng)])


def test_softmax_cross_entropy_v1_stops_label_gradient():
    lab = tf.placeholder(F64, (2, 3))
    z = tf.placeholder(F64, (2, 3))
    assert tf.gradients(tf.nn.softmax_cross_entropy_with_logits(labels=lab, logits=z), lab) == [None]
    assert tf.gradients(tf.nn.softmax_cross_entropy_with_logits_v2(labels=lab, logits=z), lab)[0] is not None


def test_moments_and_batch_normalization_values():
    rng = np.random.RandomState(27)
    xv = rng.randn(6, 4, 3) * 2 + 1
    x = tf.placeholder(F64, (None, 4, 3))
    mean0, var0 = tf.nn.moments(x, axes=[0])
    mean01, var01 = tf.nn.moments(x, axes=[0, 1], keep_dims=True)
    scale, offset = np.array([0.5, 2.0, -1.0]), np.array([0.1, 0.0, -0.3])
    bn = tf.nn.batch_normalization(x, mean01, var01, tf.constant(offset), tf.constant(scale), 1e-3)
    bn_plain = tf.nn.batch_normalization(x, mean01, var01, None, None, 1e-3)
    with tf.Session() as sess:
        m0, v0, m01, v01, y, y_plain = sess.run([mean0, var0, mean01, var01, bn, bn_plain], {x: xv})
    assert m0.shape == (4, 3) and m01.shape == (1, 1, 3)
    np.testing.assert_allclose(m0, xv.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(v0, xv.var(axis=0), rtol=1e-12)
    np.testing.assert_allclose(m01, xv.mean(axis=(0, 1), keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(v01, xv.var(axis=(0, 1), keepdims=True), rtol=1e-12)
    normalized = (xv - m01) / np.sqrt(v01 + 1e-3)
    np.testing.assert_allclose(y, normalized * scale + offset, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(y_plain, normalized, rtol=1e-12, atol=1e-14)


def test_moments_and_batch_normalization_gradients():
    rng = np.random.RandomState(28)

    def normalized(a, s, o):
        mean, var = tf.nn.moments(a, axes=[0])
        return tf.nn.batch_normalization(a, mean, var, o, s, 1e-3)

    check_grads(lambda a: tf.add_n(list(tf.nn.moments(a, axes=[0]))), [rng.randn(5, 3)], shapes=[(None, 3)])
    check_grads(normalized, [rng.randn(5, 3), rng.uniform(0.5, 2, 3), rng.randn(3)],
                shapes=[(None, 3), (3,), (3,)])


@pytest.mark.parametrize("kwargs, keep", [({"rate": 0.3}, 0.7), ({"keep_prob": 0.25}, 0.25)])
def test_dropout_scaling_fraction_and_gradient(kwargs, keep):
    x = tf.placeholder(tf.float32, (None, 500))
    y = tf.nn.dropout(x, **kwargs)
    g = tf.gradients(y, x)[0]
    xv = np.full((200, 500), 2.0, np.float32)
    with tf.Session() as sess:
        out, grad = sess.run([y, g], {x: xv})
        out2 = sess.run(y, {x: xv})
    kept = out != 0
    np.testing.assert_allclose(out[kept], 2.0 / keep, rtol=1e-6)
    assert abs(kept.mean() - keep) < 0.01
    np.testing.assert_allclose(grad, np.where(kept, 1.0 / keep, 0.0), rtol=1e-6)    # same mask, scaled
    assert np.any(out2 != out)                       # successive runs draw a new mask


def test_dropout_noise_shape_shares_the_mask():
    x = tf.ones((300, 40))
    rows = tf.nn.dropout(x, keep_prob=0.5, noise_shape=[300, 1], seed=1)
    cols = tf.nn.dropout(x, rate=0.25, noise_shape=[1, 40], seed=2)
    same = tf.nn.dropout(x, rate=0.25, noise_shape=[None, 1], seed=3)
    with tf.Session() as sess:
        r, c, s = sess.run([rows, cols, same])
    assert np.all(r == r[:, :1]) and set(np.unique(r)) == {0.0, 2.0}
    assert abs((r[:, 0] != 0).mean() - 0.5) < 0.1
    assert np.all(c == c[:1]) and set(np.unique(c)) == {0.0, np.float32(1 / 0.75)}
    assert np.all(s == s[:, :1]) and 0 < np.count_nonzero(s[:, 0]) < 300


def test_dropout_is_deterministic_with_a_seed():
    def build():
        tf.reset_default_graph()
        tf.set_random_seed(1234)
        x = tf.ones((50, 40))
        return tf.nn.dropout(x, rate=0.5), tf.nn.dropout(x, keep_prob=0.5, seed=7)

    a, b = build()
    with tf.Session() as sess:
        first = sess.run([a, b])
    with tf.Session() as sess:
        again = sess.run([a, b])
    a2, b2 = build()
    with tf.Session() as sess:
        rebuilt = sess.run([a2, b2])
    for u, v, w in zip(first, again, rebuilt):
        np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(u, w)
    assert np.any(first[0] != first[1])


def test_clip_by_value_and_gradient():
    x = tf.placeholder(F64, (6,))
    y = tf.clip_by_value(x, -1.0, 2.0)
    g = tf.gradients(y, x)[0]
    v = np.array([-3.0, -0.5, 0.0, 1.5, 2.5, 10.0])
    with tf.Session() as sess:
        out, grad = sess.run([y, g], {x: v})
    np.testing.assert_array_equal(out, np.clip(v, -1.0, 2.0))
    np.testing.assert_array_equal(grad, [0, 1, 1, 1, 0, 0])


@pytest.mark.parametrize("clip_norm", [1.0, 100.0])
def test_clip_by_global_norm(clip_norm):
    a_v, b_v = np.array([[3.0, 0.0], [1.0, -2.0]]), np.array([4.0, -1.0, 0.5])
    a, b = tf.constant(a_v), tf.constant(b_v)
    (ca, none, cb), norm = tf.clip_by_global_norm([a, None, b], clip_norm)
    assert none is None
    with tf.Session() as sess:
        ra, rb, rn, gn = sess.run([ca, cb, norm, tf.global_norm([a, b])])
    expected_norm = np.sqrt(np.sum(a_v ** 2) + np.sum(b_v ** 2))
    np.testing.assert_allclose([rn, gn], [expected_norm] * 2, rtol=1e-12)
    scale = clip_norm / max(expected_norm, clip_norm)
    np.testing.assert_allclose(ra, a_v * scale, rtol=1e-12)
    np.testing.assert_allclose(rb, b_v * scale, rtol=1e-12)
    if clip_norm == 1.0:
        np.testing.assert_allclose(np.sqrt(np.sum(ra ** 2) + np.sum(rb ** 2)), 1.0, rtol=1e-12)


def test_clip_by_global_norm_non_finite_and_zero_norm():
    a = tf.placeholder(tf.float32, (3,))
    (clipped,), norm = tf.clip_by_global_norm([a], 1.0)
    with tf.Session() as sess:
        bad, bad_norm = sess.run([clipped, norm], {a: [1.0, np.inf, 2.0]})
        zero, zero_norm = sess.run([clipped, norm], {a: [0.0, 0.0, 0.0]})
    assert np.isinf(bad_norm) and np.all(np.isnan(bad))       # TF 1.x: NaN, not silently zero
    assert zero_norm == 0 and np.all(zero == 0)


def test_mean_squared_error_value_and_gradient():
    rng = np.random.RandomState(29)
    labels, pred = rng.randn(4, 3), rng.randn(4, 3)
    p = tf.placeholder(F64, (None, 3))
    loss = tf.losses.mean_squared_error(tf.constant(labels), p)
    with tf.Session() as sess:
        value = sess.run(loss, {p: pred})
    np.testing.assert_allclose(value, np.mean((pred - labels) ** 2), rtol=1e-12)
    check_grads(lambda q: tf.losses.mean_squared_error(tf.constant(labels), q), [pred], shapes=[(None, 3)])


def test_losses_weights_sum_by_nonzero_weights():
    """TF 1.x's default loss reduction divides sum(weights * loss) by the count of nonzero weights."""
    labels, pred = np.arange(12.0).reshape(4, 3), np.ones((4, 3))
    w_rows = np.array([[1.0], [0.0], [2.0], [0.0]])
    p = tf.placeholder(F64, (None, 3))
    lab = tf.constant(labels)
    fetch = [tf.losses.mean_squared_error(lab, p, weights=tf.constant(w_rows)),
             tf.losses.mean_squared_error(lab, p, weights=3.0),
             tf.losses.mean_squared_error(lab, p, weights=0.0),
             tf.losses.absolute_difference(lab, p, weights=tf.constant(w_rows)),
             tf.losses.absolute_difference(lab, p)]
    with tf.Session() as sess:
        mse_w, mse_3, mse_0, abs_w, abs_1 = sess.run(fetch, {p: pred})
    sq, ab = (pred - labels) ** 2, np.abs(pred - labels)
    np.testing.assert_allclose(mse_w, np.sum(w_rows * sq) / 6, rtol=1e-12)
    np.testing.assert_allclose(mse_3, 3 * np.mean(sq), rtol=1e-12)
    assert mse_0 == 0.0
    np.testing.assert_allclose(abs_w, np.sum(w_rows * ab) / 6, rtol=1e-12)
    np.testing.assert_allclose(abs_1, np.mean(ab), rtol=1e-12)


def _init_values(initializers, shape, dtype=tf.float32):
    variables = [tf.Variable(init(shape, dtype)) for init in initializers]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        return sess.run(variables)


def test_constant_and_zeros_initializers():
    c, z, o, c64 = _init_values([tf.constant_initializer(0.5), tf.zeros_initializer(), tf.ones_initializer(),
                                 tf.constant_initializer(-2.0, dtype=F64)], (3, 4))
    assert c.shape == z.shape == o.shape == (3, 4) and c.dtype == np.float32
    np.testing.assert_array_equal(c, np.full((3, 4), 0.5))
    np.testing.assert_array_equal(z, np.zeros((3, 4)))
    np.testing.assert_array_equal(o, np.ones((3, 4)))
    np.testing.assert_array_equal(c64, np.full((3, 4), -2.0))
    (v,) = _init_values([tf.constant_initializer([1.0, 2.0, 3.0])], (3,))
    np.testing.assert_array_equal(v, [1, 2, 3])


def test_random_initializer_statistics():
    tf.set_random_seed(3)
    shape = (200, 300)
    fan_in, fan_out = shape
    normal, uniform, trunc, glorot_u, glorot_n, he, xavier, xavier_n = _init_values([
        tf.random_normal_initializer(mean=1.0, stddev=2.0), tf.random_uniform_initializer(-3.0, 5.0),
        tf.truncated_normal_initializer(mean=0.5, stddev=0.1), tf.glorot_uniform_initializer(),
        tf.glorot_normal_initializer(), tf.initializers.he_normal(), tf.contrib.layers.xavier_initializer(),
        tf.contrib.layers.xavier_initializer(uniform=False)], shape)
    for value in (normal, uniform, trunc, glorot_u, glorot_n, he, xavier, xavier_n):
        assert value.shape == shape and value.dtype == np.float32
    assert abs(normal.mean() - 1.0) < 0.05 and abs(normal.std() - 2.0) < 0.05
    assert uniform.min() >= -3.0 and uniform.max() < 5.0
    assert abs(uniform.mean() - 1.0) < 0.05 and abs(uniform.std() - 8 / np.sqrt(12)) < 0.05
    # truncated normal: within two standard deviations, std = 0.8796 * stddev
    assert trunc.min() >= 0.5 - 0.2 - 1e-6 and trunc.max() <= 0.5 + 0.2 + 1e-6
    assert abs(trunc.mean() - 0.5) < 0.005 and abs(trunc.std() - 0.08796) < 0.003
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    for u in (glorot_u, xavier):
        assert u.min() >= -limit and u.max() <= limit
        assert u.max() > 0.99 * limit and u.min() < -0.99 * limit
        assert abs(u.std() - limit / np.sqrt(3)) < 0.02 * limit
    for n, std in ((glorot_n, np.sqrt(2.0 / (fan_in + fan_out))), (xavier_n, np.sqrt(2.0 / (fan_in + fan_out))),
                   (he, np.sqrt(2.0 / fan_in))):
        assert abs(n.mean()) < 0.05 * std
        assert abs(n.std() - std) < 0.03 * std
        assert np.abs(n).max() <= 2 * std / 0.87962566103423978 + 1e-6
    assert np.any(glorot_u != xavier)        # different ops draw different values


def test_initializers_are_reproducible_with_a_seed():
    def build():
        tf.reset_default_graph()
        tf.set_random_seed(11)
        return _init_values([tf.glorot_uniform_initializer(), tf.random_normal_initializer(seed=5)], (4, 5))

    first, second = build(), build()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
