"""Reverse mode as an IR-to-IR transform (jitflow/passes/autodiff_ir.py) and tf.gradients as a request
op the lowering fulfils with it (jitflow/passes/autodiff_request.py)."""

import numpy as np
import pytest

import jitflow as tf
from test_deep_graphs import shallow_stack as _shallow_stack
from jitflow.framework.lowering import lower_run
from jitflow.ir.parser import parse_function
from jitflow.ir.printer import print_function
from jitflow.ir.verify import verify_function
from jitflow.ops import get_op
from jitflow.passes.autodiff_ir import differentiate
from jitflow.runtime.build import build_executable


def _infer(op, types, attrs):
    return get_op(op).infer(types, attrs, op)


def _fd_grad(f, args, k, h=1e-6):
    """Central differences of scalar f w.r.t. args[k] (float64)."""
    x = args[k]
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        plus = [a.copy() for a in args]
        minus = [a.copy() for a in args]
        plus[k][i] += h
        minus[k][i] -= h
        out[i] = (f(*plus) - f(*minus)) / (2 * h)
    return out


HAND_BUILT = {
    "broadcast_mul_sin": ("""func @f(%x: f64[2,3], %y: f64[3], %e0: !effect) -> (f64[], !effect) {
  %0 = mul %x, %y : f64[2,3]
  %1 = sin %0 : f64[2,3]
  %2 = reduce_sum %1 {axes=[0,1], keepdims=false} : f64[]
  return %2, %e0
}
""", lambda x, y: np.sum(np.sin(x * y)), [(2, 3), (3,)]),
    "matmul_tanh_fanout": ("""func @f(%a: f64[2,4], %b: f64[4,3], %e0: !effect) -> (f64[], !effect) {
  %0 = matmul %a, %b {transpose_a=false, transpose_b=false} : f64[2,3]
  %1 = tanh %0 : f64[2,3]
  %2 = mul %1, %0 : f64[2,3]
  %3 = exp %1 : f64[2,3]
  %4 = add %2, %3 : f64[2,3]
  %5 = reduce_mean %4 {axes=[0,1], keepdims=false} : f64[]
  return %5, %e0
}
""", lambda a, b: np.mean(np.tanh(a @ b) * (a @ b) + np.exp(np.tanh(a @ b))), [(2, 4), (4, 3)]),
    "div_log_transpose": ("""func @f(%x: f64[3,2], %y: f64[2,3], %e0: !effect) -> (f64[], !effect) {
  %0 = transpose %x {perm=[1,0]} : f64[2,3]
  %1 = mul %y, %y : f64[2,3]
  %2 = div %0, %1 : f64[2,3]
  %3 = square %2 : f64[2,3]
  %4 = log1p %3 : f64[2,3]
  %5 = reduce_sum %4 {axes=[0,1], keepdims=false} : f64[]
  return %5, %e0
}
""", lambda x, y: np.sum(np.log1p((x.T / (y * y)) ** 2)), [(3, 2), (2, 3)]),
}


@pytest.mark.parametrize("case", sorted(HAND_BUILT))
def test_reverse_mode_on_hand_built_ir_matches_finite_differences(case):
    text, ref, shapes = HAND_BUILT[case]
    fn = parse_function(text)
    d = differentiate(fn)
    verify_function(d, infer=_infer)
    rng = np.random.default_rng(1)
    args = [rng.uniform(0.5, 1.5, s) for s in shapes]
    value, *grads = build_executable(d)(args, [])
    assert float(value) == pytest.approx(ref(*args), rel=1e-12)
    for k, g in enumerate(grads):
        np.testing.assert_allclose(g, _fd_grad(ref, args, k), rtol=1e-6, atol=1e-8)


def test_adjoint_nodes_print_and_the_text_round_trips():
    fn = differentiate(parse_function(HAND_BUILT["broadcast_mul_sin"][0]))
    text = print_function(fn)
    assert "cos" in text and "[gradients/sin_grad]" in text and "[gradients/mul_grad]" in text
    assert print_function(parse_function(text)) == text
    # a Session's function: the request is expanded into adjoint nodes in the printed IR
    x = tf.placeholder(tf.float32, [3], name="x")
    g, = tf.gradients(tf.reduce_sum(tf.exp(x)), [x])
    assert g.name.startswith("gradients/") and g.op.type == "SymbolicGradient"
    lowered = lower_run(tf.get_default_graph(), [g], {x: np.zeros(3, np.float32)})
    text = print_function(lowered.function)
    assert "exp" in text and "gradients/SymbolicGradient/Exp_grad" in text
    assert print_function(parse_function(text)) == text


def test_request_gives_none_for_unconnected_and_integer_xs():
    x = tf.placeholder(tf.float64, [3])
    z = tf.placeholder(tf.float64, [3])
    n = tf.placeholder(tf.int32, [3])
    y = tf.reduce_sum(x * tf.cast(n, tf.float64)) + tf.reduce_sum(tf.stop_gradient(z))
    gx, gz, gn = tf.gradients(y, [x, z, n])
    assert gz is None and gn is None and gx is not None
    assert tf.gradients(tf.zeros_like(x) + 1.0, x) == [None]
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(gx, {x: np.ones(3), n: [1, 2, 3], z: np.ones(3)}), [1, 2, 3])


def test_grad_of_grad_and_hessian_vector_product_match_finite_differences():
    x = tf.placeholder(tf.float64, [4])
    u = tf.placeholder(tf.float64, [4])
    y = tf.reduce_sum(tf.sin(x) * x * x) + tf.reduce_prod(tf.exp(x * 0.1))
    g, = tf.gradients(y, x)
    hvp, = tf.gradients(tf.reduce_sum(g * u), x)
    second, = tf.gradients(tf.reduce_sum(g), x)
    xv, uv = np.array([0.3, -0.7, 1.1, 0.2]), np.array([1.0, -0.5, 0.25, 2.0])
    with tf.Session() as sess:
        gv, hv, sv = sess.run([g, hvp, second], {x: xv, u: uv})
        h = 1e-5
        fd = (sess.run(g, {x: xv + h * uv}) - sess.run(g, {x: xv - h * uv})) / (2 * h)
        fd_sum = (np.array([sess.run(tf.reduce_sum(g), {x: xv + h * e}) for e in np.eye(4)]) -
                  np.array([sess.run(tf.reduce_sum(g), {x: xv - h * e}) for e in np.eye(4)])) / (2 * h)
    np.testing.assert_allclose(gv, np.cos(xv) * xv ** 2 + 2 * xv * np.sin(xv) + 0.1 * np.prod(np.exp(0.1 * xv)),
                               rtol=1e-10)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(sv, fd_sum, rtol=1e-6, atol=1e-8)


def test_jit_grad_of_grad_goes_through_requests():
    f = lambda x: tf.reduce_sum(x ** 3)       # noqa: E731
    gg = tf.grad(lambda x: tf.reduce_sum(tf.grad(f)(x)))
    xv = np.array([1.0, -2.0, 0.5], np.float64)
    np.testing.assert_allclose(gg(xv), 6 * xv)




def test_20000_op_chain_differentiates_without_recursion():
    steps = 20_000
    x = tf.placeholder(tf.float32, [4], name="x")
    y = x
    for _ in range(steps):
        y = tf.sin(y)
    with _shallow_stack():
        g, = tf.gradients(y, [x])
        lowered = lower_run(tf.get_default_graph(), [g], {x: np.zeros(4, np.float32)})
        verify_function(lowered.function, infer=_infer)
    assert sum(node.op == "cos" for node in lowered.function.nodes) == steps


def test_region_ops_are_differentiated_in_the_ir():
    """The gradient of a while loop is a recording loop and a backward loop in the IR (and of a cond, a
    cond over the branch adjoints); values match finite differences and the unrolled graph."""
    x = tf.placeholder(tf.float64, [3], name="x")
    w = tf.placeholder(tf.float64, [3], name="w")

    def body(i, h):
        return i + 1, tf.tanh(h * w + x)
    _, h = tf.while_loop(lambda i, h: i < 4, body, [tf.constant(0), x], maximum_iterations=10)
    y = tf.reduce_sum(tf.cond(tf.reduce_sum(h) > 0.0, lambda: h * h, lambda: -h))
    gx, gw = tf.gradients(y, [x, w])
    unrolled = x
    for _ in range(4):
        unrolled = tf.tanh(unrolled * w + x)
    y_unrolled = tf.reduce_sum(tf.cond(tf.reduce_sum(unrolled) > 0.0, lambda: unrolled * unrolled,
                                       lambda: -unrolled))
    ux, uw = tf.gradients(y_unrolled, [x, w])
    xv, wv = np.array([0.3, -0.2, 0.5]), np.array([0.9, 1.1, -0.4])
    feed = {x: xv, w: wv}
    lowered = lower_run(tf.get_default_graph(), [gx, gw], feed)
    text = print_function(lowered.function)
    assert text.count("= while ") == 3 and "_grad]" in text     # forward, recording and backward loops
    assert print_function(parse_function(text)) == text
    with tf.Session() as sess:
        got = sess.run([gx, gw], feed)
        want = sess.run([ux, uw], feed)
        h = 1e-6
        fd_w = [(sess.run(y, {x: xv, w: wv + h * e}) - sess.run(y, {x: xv, w: wv - h * e})) / (2 * h)
                for e in np.eye(3)]
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[1], fd_w, rtol=1e-6, atol=1e-9)


def test_gradient_flows_through_a_fed_intermediate_as_in_tf():
    """Feeding t = 2 sin(x): the ops after t read the fed value, the gradient goes on through sin at x."""
    x = tf.placeholder(tf.float64, [3])
    t = tf.sin(x) * 2.0
    g, = tf.gradients(tf.reduce_sum(t * t), x)
    xv, tv = np.array([0.1, 0.5, 1.0]), np.array([1.0, 2.0, 3.0])
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(g, {x: xv, t: tv}), 4 * tv * np.cos(xv), rtol=1e-12)
        np.testing.assert_allclose(sess.run(g, {x: xv}), 8 * np.sin(xv) * np.cos(xv), rtol=1e-12)
        with pytest.raises(tf.errors.InvalidArgumentError, match="must feed a value for placeholder"):
            sess.run(g, {t: tv})          # the gradient needs cos(x): x must be fed, as in TF


def test_unfed_placeholder_is_fine_when_the_gradient_needs_only_its_shape():
    x = tf.placeholder(tf.float64, [2, 3])
    w = tf.placeholder(tf.float64, [3, 2])
    gw, = tf.gradients(tf.reduce_sum(tf.matmul(x, w)), w)      # needs x
    gx, = tf.gradients(tf.reduce_sum(tf.matmul(x, w)), x)      # needs w only
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(gx, {w: np.ones((3, 2))}), np.full((2, 3), 2.0))
        with pytest.raises(tf.errors.InvalidArgumentError, match="must feed a value for placeholder"):
            sess.run(gw, {w: np.ones((3, 2))})


def test_gradient_needs_only_the_variables_its_value_reads():
    """TF: d(w1*x + (w2*y)^2)/dw1 = x reads neither w2 nor y, so neither must be initialized or fed;
    fetching the loss itself still needs w2 initialized."""
    with tf.Graph().as_default():
        w1, w2 = tf.Variable(2.0), tf.Variable(3.0)
        x, y = tf.placeholder(tf.float32, []), tf.placeholder(tf.float32, [])
        loss = w1 * x + tf.square(w2 * y)
        g = tf.gradients(loss, [w1])[0]
        with tf.Session() as sess:
            sess.run(w1.initializer)
            assert sess.run(g, {x: 5.0}) == 5.0
            with pytest.raises(tf.errors.FailedPreconditionError, match="uninitialized"):
                sess.run(loss, {x: 5.0, y: 1.0})
