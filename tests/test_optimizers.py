"""tf.train optimizers against numpy implementations of the TF 1.x update formulas
(shared/TF1-SEMANTICS.md), slot variables, global_step, compute/apply_gradients, errors, and
the steady state of a training loop: one native launch per step, no recompiles."""
import numpy as np
import pytest

import jitflow as tf
import jitflow.runtime

A = np.array([1.0, 2.5, 0.5])
C = np.array([0.5, -1.0, 2.0])
W0 = np.array([1.0, 1.0, -1.0])
B0 = 0.3


# loss(w, b) = 0.5 * sum(A * (w - C)^2) + 2 * (b - 1.5)^2 + w[0] * b
def build_loss():
    w = tf.Variable(W0.copy(), name="w")
    b = tf.Variable(np.float64(B0), name="b")
    loss = 0.5 * tf.reduce_sum(tf.constant(A) * tf.square(w - tf.constant(C))) \
        + 2.0 * tf.square(b - 1.5) + w[0] * b
    return w, b, loss


def np_loss(w, b):
    return 0.5 * np.sum(A * (w - C) ** 2) + 2 * (b - 1.5) ** 2 + w[0] * b


def np_grads(w, b):
    gw = A * (w - C)
    gw[0] += b
    return gw, 4 * (b - 1.5) + w[0]


# ---- numpy reference optimizers (state per variable: a dict) ---------------------------------
def sgd(lr):
    def step(var, g, state, t):
        return var - lr * g
    return step


def momentum(lr, mom, nesterov=False):
    def step(var, g, state, t):
        state["accum"] = mom * state.get("accum", 0.0) + g
        return var - lr * (g + mom * state["accum"]) if nesterov else var - lr * state["accum"]
    return step


def adam(lr, b1=0.9, b2=0.999, eps=1e-8):
    def step(var, g, state, t):
        lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
        state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        return var - lr_t * state["m"] / (np.sqrt(state["v"]) + eps)
    return step


def rmsprop(lr, decay=0.9, mom=0.0, eps=1e-10, centered=False):
    def step(var, g, state, t):
        state["ms"] = decay * state.get("ms", 1.0) + (1 - decay) * g * g
        denominator = state["ms"]
        if centered:
            state["mg"] = decay * state.get("mg", 0.0) + (1 - decay) * g
            denominator = denominator - state["mg"] ** 2
        state["mom"] = mom * state.get("mom", 0.0) + lr * g / np.sqrt(denominator + eps)
        return var - state["mom"]
    return step


def adagrad(lr, init=0.1):
    def step(var, g, state, t):
        state["accum"] = state.get("accum", init) + g * g
        return var - lr * g / np.sqrt(state["accum"])
    return step


CASES = {
    "sgd": (lambda: tf.train.GradientDescentOptimizer(0.1), sgd(0.1)),
    "momentum": (lambda: tf.train.MomentumOptimizer(0.05, 0.9), momentum(0.05, 0.9)),
    "nesterov": (lambda: tf.train.MomentumOptimizer(0.05, 0.9, use_nesterov=True), momentum(0.05, 0.9, True)),
    "adam": (lambda: tf.train.AdamOptimizer(0.1), adam(0.1)),
    "adam_custom": (lambda: tf.train.AdamOptimizer(0.05, beta1=0.5, beta2=0.9, epsilon=1e-3),
                    adam(0.05, 0.5, 0.9, 1e-3)),
    "rmsprop": (lambda: tf.train.RMSPropOptimizer(0.01), rmsprop(0.01)),
    "rmsprop_momentum": (lambda: tf.train.RMSPropOptimizer(0.01, decay=0.8, momentum=0.5, epsilon=1e-6),
                         rmsprop(0.01, 0.8, 0.5, 1e-6)),
    "rmsprop_centered": (lambda: tf.train.RMSPropOptimizer(0.01, momentum=0.3, centered=True),
                         rmsprop(0.01, 0.9, 0.3, 1e-10, centered=True)),
    "adagrad": (lambda: tf.train.AdagradOptimizer(0.3), adagrad(0.3)),
    "adagrad_init": (lambda: tf.train.AdagradOptimizer(0.3, initial_accumulator_value=1.0), adagrad(0.3, 1.0)),
}


def run_reference(update, steps, w=W0, b=B0, transform=lambda g: g):
    w, b = np.array(w, np.float64), np.float64(b)
    sw, sb, out = {}, {}, []
    for t in range(1, steps + 1):
        gw, gb = (transform(g) for g in np_grads(w, b))
        w, b = update(w, gw, sw, t), update(b, gb, sb, t)
        out.append((w.copy(), np.float64(b)))
    return out, sw, sb


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimizer_steps_match_tf1_formulas(case):
    make, update = CASES[case]
    w, b, loss = build_loss()
    train = make().minimize(loss)
    expected, _, _ = run_reference(update, 5)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for t, (ew, eb) in enumerate(expected, 1):
            assert sess.run(train) is None
            got_w, got_b = sess.run([w, b])
            assert got_w.dtype == np.float64
            np.testing.assert_allclose(got_w, ew, rtol=1e-12, atol=1e-14, err_msg=f"{case}: w after step {t}")
            np.testing.assert_allclose(got_b, eb, rtol=1e-12, atol=1e-14, err_msg=f"{case}: b after step {t}")


def test_adam_slots_and_beta_powers():
    w, b, loss = build_loss()
    opt = tf.train.AdamOptimizer(0.1)
    train = opt.minimize(loss)
    global_names = {v.op.name for v in tf.global_variables()}
    trainable_names = {v.op.name for v in tf.trainable_variables()}
    assert {"beta1_power", "beta2_power", "w/Adam", "w/Adam_1", "b/Adam", "b/Adam_1"} <= global_names
    assert trainable_names == {"w", "b"}
    assert opt.get_slot(w, "m").op.name == "w/Adam" and opt.get_slot(w, "v").op.name == "w/Adam_1"
    assert sorted(opt.get_slot_names()) == ["m", "v"]
    _, state_w, _ = run_reference(adam(0.1), 3)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(3):
            sess.run(train)
        powers = [v for name in ("beta1_power", "beta2_power") for v in tf.global_variables()
                  if v.op.name == name]
        m, v, p1, p2 = sess.run([opt.get_slot(w, "m"), opt.get_slot(w, "v")] + powers)
    np.testing.assert_allclose(m, state_w["m"], rtol=1e-12)
    np.testing.assert_allclose(v, state_w["v"], rtol=1e-12)
    np.testing.assert_allclose([p1, p2], [0.9 ** 4, 0.999 ** 4], rtol=1e-12)


@pytest.mark.parametrize("make, slots", [
    (lambda: tf.train.MomentumOptimizer(0.1, 0.9), {"w/Momentum"}),
    (lambda: tf.train.RMSPropOptimizer(0.1), {"w/RMSProp", "w/RMSProp_1"}),
    (lambda: tf.train.AdagradOptimizer(0.1), {"w/Adagrad"}),
    (lambda: tf.train.GradientDescentOptimizer(0.1), set())])
def test_slot_variables_are_global_not_trainable(make, slots):
    w, b, loss = build_loss()
    make().minimize(loss)
    global_names = {v.op.name for v in tf.global_variables()}
    assert slots <= global_names
    assert {v.op.name for v in tf.trainable_variables()} == {"w", "b"}


@pytest.mark.parametrize("use_helper", [True, False])
def test_minimize_increments_global_step(use_helper):
    w, b, loss = build_loss()
    step = tf.train.get_or_create_global_step() if use_helper else tf.Variable(0, trainable=False, name="step")
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss, global_step=step)
    if use_helper:
        assert tf.train.get_global_step() is step
    assert step not in tf.trainable_variables()
    expected, _, _ = run_reference(sgd(0.1), 3)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(3):
            sess.run(train)
        assert sess.run(step) == 3
        np.testing.assert_allclose(sess.run(w), expected[-1][0], rtol=1e-12)


def test_compute_and_apply_gradients_split():
    w, b, loss = build_loss()
    opt = tf.train.MomentumOptimizer(0.05, 0.9)
    grads_and_vars = opt.compute_gradients(loss)
    assert [v for _, v in grads_and_vars] == [w, b]
    clipped = [(tf.clip_by_value(g, -0.5, 0.5), v) for g, v in grads_and_vars]
    train = opt.apply_gradients(clipped)
    expected, _, _ = run_reference(momentum(0.05, 0.9), 4, transform=lambda g: np.clip(g, -0.5, 0.5))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        gw, gb = sess.run([g for g, _ in grads_and_vars])
        ref_gw, ref_gb = np_grads(W0, B0)
        np.testing.assert_allclose(gw, ref_gw, rtol=1e-12)
        np.testing.assert_allclose(gb, ref_gb, rtol=1e-12)
        for ew, eb in expected:
            sess.run(train)
            got_w, got_b = sess.run([w, b])
            np.testing.assert_allclose(got_w, ew, rtol=1e-12)
            np.testing.assert_allclose(got_b, eb, rtol=1e-12)


def test_apply_gradients_skips_variables_without_gradient():
    w, b, loss = build_loss()
    unused = tf.Variable(np.array([5.0, 6.0]), name="unused")
    opt = tf.train.AdamOptimizer(0.1)
    grads_and_vars = opt.compute_gradients(loss, var_list=[w, b, unused])
    assert grads_and_vars[2] == (None, unused)
    train = opt.apply_gradients(grads_and_vars)
    assert opt.get_slot(unused, "m") is None
    expected, _, _ = run_reference(adam(0.1), 2)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train)
        sess.run(train)
        got_w, got_u = sess.run([w, unused])
    np.testing.assert_allclose(got_w, expected[-1][0], rtol=1e-12)
    np.testing.assert_array_equal(got_u, [5.0, 6.0])


def test_minimize_with_var_list_updates_only_those():
    w, b, loss = build_loss()
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss, var_list=[b])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train)
        got_w, got_b = sess.run([w, b])
    np.testing.assert_array_equal(got_w, W0)
    np.testing.assert_allclose(got_b, B0 - 0.1 * np_grads(W0, B0)[1], rtol=1e-12)


def test_learning_rate_tensor():
    w, b, loss = build_loss()
    lr = tf.placeholder(tf.float32, ())
    train = tf.train.GradientDescentOptimizer(lr).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train, {lr: 0.5})
        got_w = sess.run(w)
    np.testing.assert_allclose(got_w, W0 - 0.5 * np_grads(W0, B0)[0], rtol=1e-12)


def test_minimize_without_gradients_raises():
    tf.Variable(np.ones(3), name="w")
    x = tf.placeholder(tf.float64, (3,))
    for loss in (tf.constant(3.0, tf.float64) * 2.0, tf.reduce_sum(x * x)):
        with pytest.raises(ValueError, match="No gradients"):
            tf.train.AdamOptimizer(0.1).minimize(loss)
    with pytest.raises(ValueError, match="No gradients"):
        tf.train.GradientDescentOptimizer(0.1).apply_gradients([(None, tf.trainable_variables()[0])])


TRAINERS = {
    "sgd": lambda: tf.train.GradientDescentOptimizer(0.1),
    "momentum": lambda: tf.train.MomentumOptimizer(0.02, 0.9, use_nesterov=True),
    "adam": lambda: tf.train.AdamOptimizer(0.05),
    "rmsprop": lambda: tf.train.RMSPropOptimizer(0.01, momentum=0.5),
    "adagrad": lambda: tf.train.AdagradOptimizer(0.5),
}


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_training_loop_one_launch_per_step_no_recompiles(name):
    rng = np.random.RandomState(0)
    x_data = rng.randn(64, 3).astype(np.float32)
    y_data = (x_data @ np.array([[1.5], [-2.0], [0.5]]) + 0.7).astype(np.float32)
    x = tf.placeholder(tf.float32, (None, 3))
    y = tf.placeholder(tf.float32, (None, 1))
    w = tf.Variable(tf.zeros((3, 1)), name="w")
    bias = tf.Variable(0.0, name="bias")
    loss = tf.losses.mean_squared_error(y, tf.matmul(x, w) + bias)
    train = TRAINERS[name]().minimize(loss, global_step=tf.train.get_or_create_global_step())
    feed = {x: x_data, y: y_data}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run([train, loss], feed)                   # warm-up: compiles the step once
        before = jitflow.runtime.stats()
        losses = [sess.run([train, loss], feed)[1] for _ in range(100)]
        after = jitflow.runtime.stats()
    assert after["compiles"] == before["compiles"], "a training step recompiled"
    assert after["launches"] - before["launches"] == 100, "expected exactly one native launch per step"
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.2 * losses[0], (losses[0], losses[-1])
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
