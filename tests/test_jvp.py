"""jitflow.jvp: forward mode as an IR transform (jitflow/passes/autodiff_forward.py), checked against
central finite differences and against reverse mode (<w, J v> = <grad <w, f>, v>)."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.framework.lowering import lower_run
from jitflow.ir.printer import print_function
from jitflow.passes.autodiff_forward import tangent_kind
from jitflow.ops import get_op

POS = (0.5, 2.0)
ANY = (-1.5, 1.5)

UNARY = {   # name -> (fn, domain)
    "exp": (tf.exp, ANY), "log": (tf.log, POS), "sin": (tf.sin, ANY), "cos": (tf.cos, ANY),
    "tanh": (tf.tanh, ANY), "sigmoid": (tf.sigmoid, ANY), "sqrt": (tf.sqrt, POS), "square": (tf.square, ANY),
    "abs": (tf.abs, POS), "relu": (tf.nn.relu, POS), "softplus": (tf.nn.softplus, ANY), "erf": (tf.erf, ANY),
    "reciprocal": (tf.reciprocal, POS), "rsqrt": (tf.rsqrt, POS), "expm1": (tf.expm1, ANY),
    "log1p": (tf.log1p, POS), "neg": (tf.negative, ANY), "elu": (tf.nn.elu, ANY), "selu": (tf.nn.selu, ANY),
    "softsign": (tf.nn.softsign, ANY), "tan": (tf.tan, (-1.0, 1.0)),
}
BINARY = {  # broadcasting [3,4] with [4]
    "add": tf.add, "sub": tf.subtract, "mul": tf.multiply, "div": tf.divide, "pow": tf.pow,
    "maximum": tf.maximum, "minimum": tf.minimum, "squared_difference": tf.squared_difference,
}
STRUCTURED = {  # name -> (fn, shapes)
    "matmul": (lambda a, b: tf.matmul(a, b), [(3, 4), (4, 2)]),
    "matmul_t": (lambda a, b: tf.matmul(a, b, transpose_b=True), [(3, 4), (2, 4)]),
    "reduce_sum": (lambda x: tf.reduce_sum(x * x, axis=1), [(3, 4)]),
    "reduce_mean": (lambda x: tf.reduce_mean(tf.sin(x), axis=0, keepdims=True), [(3, 4)]),
    "reduce_max": (lambda x: tf.reduce_max(x, axis=1), [(3, 4)]),
    "reduce_min": (lambda x: tf.reduce_min(x, axis=0), [(3, 4)]),
    "reduce_prod": (lambda x: tf.reduce_prod(x, axis=1), [(3, 4)]),
    "reshape_transpose": (lambda x: tf.transpose(tf.reshape(tf.exp(x), [4, 3]), [1, 0]), [(3, 4)]),
    "concat_slice": (lambda x, y: tf.concat([x, y * 2.0], axis=0)[1:4], [(3, 4), (2, 4)]),
    "broadcast_to": (lambda x: tf.broadcast_to(x, [3, 4]) * 1.5, [(4,)]),
    "softmax": (lambda x: tf.nn.softmax(x), [(3, 4)]),
    "softmax_xent": (lambda x, y: tf.nn.softmax_cross_entropy_with_logits_v2(labels=tf.nn.softmax(y), logits=x),
                     [(3, 4), (3, 4)]),
    "log_softmax": (lambda x: tf.nn.log_softmax(x), [(3, 4)]),
    "select": (lambda x, y: tf.where(x > 0.0, x * y, y - x), [(3, 4), (3, 4)]),
    "add_n": (lambda x, y: tf.add_n([x, y, x * y]), [(3, 4), (3, 4)]),
    "matrix_inverse": (lambda x: tf.matrix_inverse(x + 3.0 * tf.eye(3, dtype=tf.float64)), [(3, 3)]),
    "gather": (lambda x: tf.gather(x, [2, 0, 2], axis=0), [(3, 4)]),
    "conv2d": (lambda x, f: tf.nn.conv2d(x, f, [1, 1, 1, 1], "SAME"), [(1, 4, 4, 2), (3, 3, 2, 3)]),
    "max_pool": (lambda x: tf.nn.max_pool(x, [1, 2, 2, 1], [1, 2, 2, 1], "VALID"), [(1, 4, 4, 2)]),
}


def _cases():
    cases = []
    for name, (fn, dom) in UNARY.items():
        cases.append(("u_" + name, fn, [(3, 4)], dom))
    for name, fn in BINARY.items():
        cases.append(("b_" + name, fn, [(3, 4), (4,)], POS if name == "pow" else ANY))
    for name, (fn, shapes) in STRUCTURED.items():
        cases.append(("s_" + name, fn, shapes, ANY))
    return cases


CASES = _cases()


def _jvp_fd(f, args, dirs, h=1e-6):
    plus = f(*[a + h * d for a, d in zip(args, dirs)])
    minus = f(*[a - h * d for a, d in zip(args, dirs)])
    return (np.asarray(plus) - np.asarray(minus)) / (2 * h)


@pytest.mark.parametrize("name,fn,shapes,dom", CASES, ids=[c[0] for c in CASES])
def test_jvp_matches_finite_differences_and_reverse_mode(name, fn, shapes, dom):
    rng = np.random.default_rng(abs(hash(name)) % 2 ** 32)
    lo, hi = dom
    args = [rng.uniform(lo, hi, s) for s in shapes]
    if name in ("b_maximum", "b_minimum"):      # stay away from ties
        args[0] = args[0] + 0.3 * np.sign(args[0] - args[1])
    dirs = [rng.uniform(-1, 1, s) for s in shapes]
    out, tangent = tf.jvp(fn, tuple(args), tuple(dirs))
    f = tf.jit(fn)
    np.testing.assert_allclose(out, f(*args), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tangent, _jvp_fd(f, args, dirs), rtol=1e-5, atol=1e-6)
    w = rng.uniform(-1, 1, np.shape(out))
    grads = tf.grad(lambda *xs: tf.reduce_sum(fn(*xs) * w), argnums=tuple(range(len(args))))(*args)
    reverse = sum(float(np.sum(g * d)) for g, d in zip(grads, dirs))
    assert float(np.sum(w * tangent)) == pytest.approx(reverse, rel=1e-9, abs=1e-10)


def test_jvp_through_a_while_loop_and_a_cond():
    def f(x, w):
        def body(i, h):
            return i + 1, tf.tanh(h * w + x)
        _, h = tf.while_loop(lambda i, h: i < 6, body, [tf.constant(0), x])
        return tf.cond(tf.reduce_sum(h) > 0.0, lambda: h * h, lambda: -h)
    x, w = np.array([0.3, -0.2, 0.5]), np.array([0.9, 1.1, -0.4])
    tx, tw = np.array([1.0, 0.5, -1.0]), np.array([0.2, -0.3, 0.1])
    out, tangent = tf.jvp(f, (x, w), (tx, tw))
    np.testing.assert_allclose(tangent, _jvp_fd(tf.jit(f), [x, w], [tx, tw]), rtol=1e-6, atol=1e-8)


def test_jvp_inside_jit_and_of_an_unconnected_output():
    @tf.jit
    def both(x, t):
        return tf.jvp(lambda v: (tf.sin(v) * 2.0, tf.ones_like(v)), (x,), (t,))
    x, t = np.array([0.1, 0.7], np.float32), np.array([1.0, -2.0], np.float32)
    (y, one), (ty, tone) = both(x, t)
    np.testing.assert_allclose(ty, 2 * np.cos(x) * t, rtol=1e-6)
    np.testing.assert_array_equal(tone, [0.0, 0.0])
    with pytest.raises(TypeError, match="dtype and shape"):
        tf.jvp(tf.sin, (x,), (np.ones(3, np.float32),))


def test_tangent_rules_come_from_the_records_and_show_in_the_ir():
    assert tangent_kind(get_op("tanh")) == "elementwise"
    assert tangent_kind(get_op("transpose")) == "linear" and tangent_kind(get_op("reduce_sum")) == "linear"
    assert tangent_kind(get_op("matmul")) == "bilinear" and tangent_kind(get_op("conv2d")) == "bilinear"
    assert tangent_kind(get_op("reduce_max")) == "transpose"
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [3])
        t = tf.placeholder(tf.float32, [3])
        from jitflow.transforms import _jvp_traced
        _, tangent = _jvp_traced(lambda v: tf.exp(v))((x,), (t,))
        lowered = lower_run(g, [tangent], {x: np.zeros(3, np.float32), t: np.ones(3, np.float32)})
    assert "[jvp/JVP/Exp_jvp]" in print_function(lowered.function)
