"""Run-time checks in compiled code (issue 15, items 4 and 8): data that TF rejects at
run time (sparse labels outside [0, classes), an integer divisor of zero) raises
InvalidArgumentError naming the node and the user's line, from the compiled run
(jitflow/ops/checks.py, codegen/checks.py, runtime/checks.py); valid data gives
the same values as before, and graphs without checks compile exactly as before."""
import os
import re

import numpy as np
import pytest

import jitflow as tf
from jitflow import keras
from jitflow.codegen import ptx
from jitflow.framework.lowering import lower_run
from jitflow.ops import get_op
from jitflow.ops.checks import CHECK_STATUS_BASE, CheckFailed

THIS_FILE = os.path.basename(__file__)
f32 = np.float32


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def _np_sparse_xent(logits, labels):
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_p, labels[..., None].astype(np.int64), axis=-1)[..., 0]


def _line_of(text: str) -> int:
    """The line of this file that contains `text` (the user line an error must name)."""
    with open(__file__) as f:
        return next(i for i, line in enumerate(f, 1) if text in line and "_line_of" not in line)


# ---- item 4: sparse softmax cross-entropy labels ------------------------------------------------
def test_item4_sparse_xent_labels_out_of_range_raise():
    x = tf.placeholder(tf.float32, (None, 10))
    y = tf.placeholder(tf.int32, (None,))
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x)   # the user's line
    logits = np.random.default_rng(0).standard_normal((4, 10)).astype(f32)
    with tf.Session() as sess:
        good = np.array([0, 3, 9, 1], np.int32)
        np.testing.assert_allclose(sess.run(xent, {x: logits, y: good}), _np_sparse_xent(logits, good), rtol=1e-5)
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            sess.run(xent, {x: logits, y: np.array([1, 2, 10, 3], np.int32)})     # 1-based labels
        text = str(info.value)
        assert "Received a label value of 10 which is outside the valid range of [0, 10)." in text
        assert "node 'SparseSoftmaxCrossEntropyWithLogits/labels'" in text
        assert f"{THIS_FILE}:{_line_of('# the user' + chr(39) + 's line')}" in text
        with pytest.raises(tf.errors.InvalidArgumentError, match="label value of -1 "):
            sess.run(xent, {x: logits, y: np.array([0, -1, 2, 3], np.int32)})
        # the first failing label is reported, and a good run afterwards works
        with pytest.raises(tf.errors.InvalidArgumentError, match="label value of 12 "):
            sess.run(xent, {x: logits, y: np.array([0, 12, 11, -5], np.int32)})
        np.testing.assert_allclose(sess.run(xent, {x: logits, y: good}), _np_sparse_xent(logits, good), rtol=1e-5)


def test_item4_bad_labels_stop_the_training_step_before_any_update():
    rng = np.random.default_rng(1)
    x = tf.placeholder(tf.float32, (None, 5))
    y = tf.placeholder(tf.int64, (None,))
    w = tf.Variable(rng.standard_normal((5, 3)).astype(f32))
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=tf.matmul(x, w)))
    train = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    xs = rng.standard_normal((8, 5)).astype(f32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        before = sess.run(w)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"label value of 3 which is outside the valid "
                                                                 r"range of \[0, 3\)"):
            sess.run([train, loss], {x: xs, y: np.arange(1, 9) % 3 + (np.arange(8) == 5) * 3})
        np.testing.assert_array_equal(sess.run(w), before)          # the step did not half-run
        labels = np.arange(8) % 3
        sess.run(train, {x: xs, y: labels})
        assert not np.array_equal(sess.run(w), before)


def test_item4_gradient_with_checked_labels_matches_finite_differences():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((3, 4))
    labels = np.array([2, 0, 3], np.int32)
    x = tf.placeholder(tf.float64, (3, 4))
    loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.constant(labels) * 1, logits=x))
    grad = tf.gradients(loss, x)[0]
    with tf.Session() as sess:
        g = sess.run(grad, {x: logits})
        eps, numeric = 1e-6, np.zeros_like(logits)
        for i in np.ndindex(*logits.shape):
            d = np.zeros_like(logits)
            d[i] = eps
            numeric[i] = (sess.run(loss, {x: logits + d}) - sess.run(loss, {x: logits - d})) / (2 * eps)
    np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


def test_item4_losses_jit_and_constant_labels():
    logits = np.random.default_rng(3).standard_normal((4, 5)).astype(f32)
    bad = np.array([[1], [2], [3], [5]], np.int64)
    loss = tf.losses.sparse_softmax_cross_entropy(bad, tf.constant(logits))
    with tf.Session() as sess, pytest.raises(tf.errors.InvalidArgumentError, match="label value of 5 "):
        sess.run(loss)
    good = tf.losses.sparse_softmax_cross_entropy(bad % 5, tf.constant(logits))
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(good), _np_sparse_xent(logits, bad[:, 0] % 5).mean(), rtol=1e-5)

    @tf.jit
    def f(lg, lb):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=lb, logits=lg))
    good_labels = np.array([0, 4, 2, 1], np.int32)
    np.testing.assert_allclose(f(logits, good_labels), _np_sparse_xent(logits, good_labels).mean(), rtol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="label value of 7 "):
        f(logits, np.array([0, 7, 2, 1], np.int32))


def test_item4_keras_sparse_categorical_crossentropy_rejects_bad_labels():
    rng = np.random.default_rng(4)
    xs = rng.standard_normal((32, 6)).astype(f32)
    model = keras.Sequential([keras.layers.Dense(8, activation="relu", input_shape=(6,)),
                              keras.layers.Dense(4, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    weights = [w.copy() for w in model.get_weights()]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"label value of 4 which is outside the valid "
                                                             r"range of \[0, 4\)"):
        model.fit(xs, np.arange(32) % 4 + 1, epochs=1, batch_size=8, shuffle=False, verbose=0)   # 1-based
    for before, after in zip(weights, model.get_weights()):          # the first batch failed: no update
        np.testing.assert_array_equal(before, after)
    model.fit(xs, np.arange(32) % 4, epochs=1, batch_size=8, verbose=0)
    # the loss functions themselves: from probabilities (not a softmax's output) and from logits
    probs = tf.constant(np.full((2, 3), 1 / 3, f32))
    for loss in (keras.losses.sparse_categorical_crossentropy(tf.constant([0, 3]), probs),
                 keras.losses.sparse_categorical_crossentropy(tf.constant([3, 0]), probs * 2.0, from_logits=True)):
        with tf.Session() as sess, pytest.raises(tf.errors.InvalidArgumentError, match="label value of 3 "):
            sess.run(loss)
    with tf.Session() as sess:
        value = sess.run(keras.losses.sparse_categorical_crossentropy(tf.constant([0, 2]), probs))
    np.testing.assert_allclose(value, [np.log(3.0)] * 2, rtol=1e-5)


def test_item4_labels_inside_a_cond_branch_that_is_not_taken_are_not_checked():
    x = tf.placeholder(tf.float32, (2, 3))
    y = tf.placeholder(tf.int32, (2,))
    use_sparse = tf.placeholder(tf.bool, ())
    loss = tf.cond(use_sparse,
                   lambda: tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x)),
                   lambda: tf.constant(0.0))
    logits = np.zeros((2, 3), f32)
    with tf.Session() as sess:
        assert sess.run(loss, {x: logits, y: [5, 7], use_sparse: False}) == 0.0
        np.testing.assert_allclose(sess.run(loss, {x: logits, y: [0, 2], use_sparse: True}), 2 * np.log(3.0),
                                   rtol=1e-6)
        with pytest.raises(tf.errors.InvalidArgumentError, match="label value of 5 "):
            sess.run(loss, {x: logits, y: [5, 7], use_sparse: True})


# ---- item 8: integer division and modulo by zero ------------------------------------------------
@pytest.mark.parametrize("dtype", [tf.int32, tf.int64], ids=lambda d: d.name)
def test_item8_integer_division_by_zero_raises(dtype):
    a = tf.placeholder(dtype, (None,))
    b = tf.placeholder(dtype, (None,))
    q = a // b                                                              # quotient line
    r = tf.floormod(a, b)
    d = tf.div(a, b)
    m = a % b
    av = np.array([7, -7, 9, -9, 0], dtype.np)
    bv = np.array([2, 2, -4, -4, 3], dtype.np)
    with tf.Session() as sess:
        got = sess.run([q, r, d, m], {a: av, b: bv})
        for value, want in zip(got, [av // bv, av % bv, av // bv, av % bv]):   # floor semantics, as TF
            np.testing.assert_array_equal(value, want)
        zero = np.array([2, 2, 0, -4, 3], dtype.np)
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            sess.run(q, {a: av, b: zero})
        text = str(info.value)
        assert text.startswith("Integer division by zero")
        assert "node 'floordiv/divisor' (FloorDiv)" in text
        assert f"{THIS_FILE}:{_line_of('# quotient line')}" in text
        for t, what in ((r, "(FloorMod)"), (d, "(FloorDiv)"), (m, "(FloorMod)")):
            with pytest.raises(tf.errors.InvalidArgumentError, match="Integer division by zero") as info:
                sess.run(t, {a: av, b: zero})
            assert what in str(info.value)
        # a failed run leaves the session usable
        np.testing.assert_array_equal(sess.run(q, {a: av, b: bv}), av // bv)


def test_item8_broadcast_scalar_and_constant_divisors():
    a = tf.placeholder(tf.int32, (3, 4))
    s = tf.placeholder(tf.int32, ())
    av = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    graph = tf.get_default_graph()
    q_const = a // 3                      # a constant nonzero divisor needs no check
    assert not any(op.type == "CheckNonzero" for op in graph.get_operations())
    q_scalar = tf.floordiv(a, s)
    q_zero_const = tf.floormod(a, tf.constant(0))
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(q_const, {a: av}), av // 3)
        np.testing.assert_array_equal(sess.run(q_scalar, {a: av, s: -5}), av // -5)
        with pytest.raises(tf.errors.InvalidArgumentError, match="Integer division by zero"):
            sess.run(q_scalar, {a: av, s: 0})
        with pytest.raises(tf.errors.InvalidArgumentError, match="Integer division by zero"):
            sess.run(q_zero_const, {a: av})


def test_item8_float_division_by_zero_is_not_an_error():
    x = tf.placeholder(tf.float32, (3,))
    y = tf.placeholder(tf.float32, (3,))
    ints = tf.placeholder(tf.int32, (2,))
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(x // y, {x: [1, -1, 2], y: [0, 0, 1]}), [np.inf, -np.inf, 2])
        np.testing.assert_array_equal(sess.run(ints / 0, {ints: [1, -1]}), [np.inf, -np.inf])  # truediv: floats
    assert not any(op.type == "CheckNonzero" for op in tf.get_default_graph().get_operations())


def test_item8_jit_and_large_parallel_division():
    @tf.jit
    def f(a, b):
        return a // b, a % b
    rng = np.random.default_rng(5)
    av = rng.integers(-1000, 1000, (600, 512)).astype(np.int64)     # big enough for the threaded loops
    bv = rng.integers(1, 9, (600, 512)).astype(np.int64) * rng.choice([-1, 1], (600, 512))
    q, r = f(av, bv)
    np.testing.assert_array_equal(q, av // bv)
    np.testing.assert_array_equal(r, av % bv)
    bv[599, 511] = 0
    with pytest.raises(tf.errors.InvalidArgumentError, match="Integer division by zero"):
        f(av, bv)


def test_item8_divisor_in_an_untaken_cond_branch_is_not_checked():
    a = tf.placeholder(tf.int32, ())
    b = tf.placeholder(tf.int32, ())
    safe = tf.cond(tf.not_equal(b, 0), lambda: a // b, lambda: tf.constant(0))
    guarded = tf.where(tf.not_equal(b, 0), a // b, 0)        # TF computes both sides of a where: raises
    with tf.Session() as sess:
        assert sess.run(safe, {a: 7, b: 2}) == 3
        assert sess.run(safe, {a: 7, b: 0}) == 0
        with pytest.raises(tf.errors.InvalidArgumentError, match="Integer division by zero"):
            sess.run(guarded, {a: 7, b: 0})


# ---- the mechanism ------------------------------------------------------------------------------
def test_check_ops_match_their_references():
    """Compiled check ops (through create_op) against their numpy references: identity when the
    condition holds, an error exactly when the reference raises."""
    rng = np.random.default_rng(6)
    graph = tf.get_default_graph()
    for dtype in (tf.int32, tf.int64, tf.int8, tf.uint8):
        x = tf.placeholder(dtype, (5, 7))
        on = tf.placeholder(tf.bool, ())
        cases = {"check_range": ({"lo": 2, "hi": 9, "what": "label"}, (2, 9)),
                 "check_nonzero": ({}, (-3 if dtype != tf.uint8 else 0, 4))}
        for name, (attrs, (lo, hi)) in cases.items():
            opdef = get_op(name)
            out = graph.create_op(name, [x], attrs).outputs[0]
            gated = graph.create_op(name, [x, on], attrs).outputs[0]
            with tf.Session() as sess:
                for trial in range(6):
                    value = rng.integers(lo - (trial % 2), hi + (trial % 2), (5, 7)).astype(dtype.np)
                    try:
                        want = opdef.reference(value, **attrs)
                    except CheckFailed as exc:
                        with pytest.raises(tf.errors.InvalidArgumentError) as info:
                            sess.run(out, {x: value})
                        assert str(exc) in str(info.value)
                        np.testing.assert_array_equal(sess.run(gated, {x: value, on: False}), value)
                    else:
                        np.testing.assert_array_equal(sess.run(out, {x: value}), want)
                        np.testing.assert_array_equal(sess.run(gated, {x: value, on: True}), want)


def test_checks_get_their_own_kernel_and_graphs_without_checks_are_unchanged():
    y = tf.placeholder(tf.int32, (None,))
    x = tf.placeholder(tf.float32, (None, 10))
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x))
    feed = {x: np.zeros((256, 10), f32), y: np.arange(256, dtype=np.int32) % 10}
    executable = _build(loss, feed)
    kinds = [k.kind for k in executable.schedule.kernels]
    assert kinds.count("check") == 1 and kinds[0] == "check"      # before every reader of the labels
    llvm_ir = executable.llvm_ir
    assert "%detail" in llvm_ir
    # in the loop, a failing element only ORs a bit into the flag (no branch); one test after the loop
    check_fn = llvm_ir.split("@k0_check(")[1].split("\n}\n")[0]
    assert check_fn.count("or i32") == 1
    loop_body = re.search(r"\n(g0__body\d+):\n(.*?)\n  br label", check_fn, re.S).group(2)
    assert "or i32" in loop_body and "br " not in loop_body
    plain = tf.placeholder(tf.float32, (None, 10))
    executable = _build(tf.nn.softmax(plain) * 2.0 // 3.0, {plain: np.zeros((4, 10), f32)})
    assert "check" not in [k.kind for k in executable.schedule.kernels] and "%detail" not in executable.llvm_ir


def _build(fetch, feed):
    from jitflow.runtime.build import build_executable
    return build_executable(lower_run(tf.get_default_graph(), [fetch], feed).function)


def test_failed_check_status_codes_name_the_kernel():
    from jitflow.runtime.checks import check_error
    a = tf.placeholder(tf.int32, (4,))
    b = tf.placeholder(tf.int32, (4,))
    out = (a // b) + tf.floormod(a, b + 1)
    schedule = _build(out, {a: np.ones(4, np.int32), b: np.ones(4, np.int32)}).schedule
    with tf.Session() as sess:
        positions = [i for i, k in enumerate(schedule.kernels) if k.kind == "check"]
        assert len(positions) == 2
        names = [str(check_error(schedule, CHECK_STATUS_BASE + p, 0)) for p in positions]
        assert "floordiv/divisor" in names[0] and "floormod/divisor" in names[1]
        with pytest.raises(tf.errors.InvalidArgumentError, match="floormod/divisor"):
            sess.run(out, {a: np.ones(4, np.int32), b: np.array([1, 2, -1, 3], np.int32)})


@pytest.mark.skipif(ptx.ptxas_path() is None, reason="ptxas is not on PATH")
def test_gpu_check_kernels_assemble_and_report_a_status():
    from jitflow.runtime.gpu_build import gpu_program
    y = tf.placeholder(tf.int64, (None,))
    x = tf.placeholder(tf.float32, (None, 10))
    a = tf.placeholder(tf.int32, (None,))
    fetches = [tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x), a // (a - 1)]
    lowered = lower_run(tf.get_default_graph(), fetches,
                        {x: np.zeros((64, 10), f32), y: np.zeros(64, np.int64), a: np.zeros(100, np.int32)})
    program = gpu_program(lowered.function, "sm_90", verify=True)
    ok, log = ptx.check_ptx(program.ptx, "sm_90")
    assert ok, log
    assert program.plan.has_status
    assert sum(1 for launch in program.plan.launches if launch.kernel.endswith("_check")) == 2
