"""tf.train training utilities against hand-computed numpy: learning-rate schedules of the global
step, ExponentialMovingAverage (values, names, collections, variables_to_restore with a Saver round
trip), Adadelta / Ftrl / Proximal optimizers vs numpy re-implementations of TF's kernels, and the
compute_gradients / apply_gradients workflow (var_list freezing, clipping, None gradients)."""
import math

import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import UnsupportedError


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


# ---- learning-rate schedules ----------------------------------------------------------------
STEPS = [0, 3, 10, 15, 25]


def np_schedules(step):
    lr = 0.1
    p = step / 10.0
    ps = math.floor(p)
    poly_steps = 10.0 * (math.ceil(step / 10.0) if step else 1.0)
    return {
        "exp": lr * 0.5 ** p,
        "exp_stair": lr * 0.5 ** ps,
        "natural": lr * math.exp(-0.5 * p),
        "natural_stair": lr * math.exp(-0.5 * ps),
        "inverse": lr / (1 + 0.5 * p),
        "inverse_stair": lr / (1 + 0.5 * ps),
        "poly": (lr - 0.01) * (1 - min(step, 10) / 10.0) ** 2.0 + 0.01,
        "poly_cycle": (lr - 0.01) * (1 - step / poly_steps) + 0.01,
        "cosine": lr * (0.9 * 0.5 * (1 + math.cos(math.pi * min(step, 10) / 10.0)) + 0.1),
        "piecewise": 1.0 if step <= 3 else (0.5 if step <= 10 else 0.1),
    }


def test_schedules_match_tf1_formulas_at_several_steps():
    gs = tf.train.get_or_create_global_step()
    t = tf.train
    schedules = {
        "exp": t.exponential_decay(0.1, gs, 10, 0.5),
        "exp_stair": t.exponential_decay(0.1, gs, 10, 0.5, staircase=True),
        "natural": t.natural_exp_decay(0.1, gs, 10, 0.5),
        "natural_stair": t.natural_exp_decay(0.1, gs, 10, 0.5, staircase=True),
        "inverse": t.inverse_time_decay(0.1, gs, 10, 0.5),
        "inverse_stair": t.inverse_time_decay(0.1, gs, 10, 0.5, staircase=True),
        "poly": t.polynomial_decay(0.1, gs, 10, end_learning_rate=0.01, power=2.0),
        "poly_cycle": t.polynomial_decay(0.1, gs, 10, end_learning_rate=0.01, cycle=True),
        "cosine": t.cosine_decay(0.1, gs, 10, alpha=0.1),
        "piecewise": t.piecewise_constant(gs, [3, 10], [1.0, 0.5, 0.1]),
    }
    assert schedules["exp"].op.name == "ExponentialDecay" and schedules["exp_stair"].op.name == "ExponentialDecay_1"
    assert schedules["piecewise"].op.name == "PiecewiseConstant"
    assert all(s.dtype == tf.float32 for s in schedules.values())
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in STEPS:
            gs.load(step, sess)
            got = sess.run(schedules)
            want = np_schedules(step)
            for key in schedules:
                np.testing.assert_allclose(got[key], want[key], rtol=2e-6, err_msg=f"{key} at step {step}")


def test_schedule_float64_and_tensor_arguments():
    step = tf.placeholder(tf.int32, [])
    lr = tf.train.exponential_decay(tf.constant(0.2, tf.float64), step, 4, 0.9, staircase=True)
    cos = tf.train.cosine_decay(np.float64(1.0), step, 7)
    assert lr.dtype == tf.float64 and cos.dtype == tf.float64
    with tf.Session() as sess:
        for s in (0, 5, 9):
            got_lr, got_cos = sess.run([lr, cos], {step: s})
            assert got_lr == pytest.approx(0.2 * 0.9 ** (s // 4), rel=1e-12)
            assert got_cos == pytest.approx(0.5 * (1 + math.cos(math.pi * min(s, 7) / 7)), abs=1e-12)


def test_schedule_errors():
    with pytest.raises(ValueError, match="global_step is required for exponential_decay"):
        tf.train.exponential_decay(0.1, None, 10, 0.5)
    with pytest.raises(ValueError, match="1 less than the length of values"):
        tf.train.piecewise_constant(tf.constant(1), [1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="same dtype as x"):
        tf.train.piecewise_constant(tf.constant(1.0), [1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="same dtype"):
        tf.train.piecewise_constant(tf.constant(1), [1], [0.1, 2])


def test_optimizer_with_decayed_learning_rate_and_global_step():
    """var -= lr(step) * grad with lr read before the step increments (as TF)."""
    gs = tf.train.get_or_create_global_step()
    w = tf.Variable([1.0, -2.0], name="w")
    lr = tf.train.exponential_decay(0.5, gs, 1, 0.5)
    loss = tf.reduce_sum(tf.square(w))
    train = tf.train.GradientDescentOptimizer(lr).minimize(loss, global_step=gs)
    expected = np.array([1.0, -2.0])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(3):
            sess.run(train)
            expected = expected - 0.5 * 0.5 ** step * 2 * expected
            np.testing.assert_allclose(sess.run(w), expected, rtol=1e-6)
            assert tf.train.global_step(sess, gs) == step + 1
        assert isinstance(tf.train.global_step(sess, gs), int)


@pytest.mark.parametrize("make", [
    lambda lr: tf.train.AdamOptimizer(lr), lambda lr: tf.train.AdadeltaOptimizer(lr),
    lambda lr: tf.train.FtrlOptimizer(lr), lambda lr: tf.train.RMSPropOptimizer(lr),
])
def test_tensor_and_callable_learning_rates_match_python_floats(make):
    """A schedule tensor (piecewise_constant at step 0) or a callable gives the float's update."""
    results = []
    for kind in ("float", "tensor", "callable"):
        tf.reset_default_graph()
        gs = tf.train.get_or_create_global_step()
        w = tf.Variable([1.0, -2.0], name="w")
        lr = {"float": 0.05, "tensor": tf.train.piecewise_constant(gs, [5], [0.05, 1.0]),
              "callable": lambda: 0.05}[kind]
        train = make(lr).minimize(tf.reduce_sum(tf.square(w)), global_step=gs)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(train)
            sess.run(train)
            results.append(sess.run(w))
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6)
    np.testing.assert_allclose(results[2], results[0], rtol=1e-6)
    assert np.abs(results[0] - [1.0, -2.0]).max() > 1e-5      # Adadelta moves little at first


def test_global_step_helpers():
    assert tf.train.get_global_step() is None
    gs = tf.train.create_global_step()
    assert gs.op.name == "global_step" and gs.dtype == tf.int64 and not gs.trainable
    assert tf.train.get_global_step() is gs and tf.train.get_or_create_global_step() is gs
    with pytest.raises(ValueError, match="already exists"):
        tf.train.create_global_step()
    tf.train.assert_global_step(gs)
    with pytest.raises(TypeError, match="integer"):
        tf.train.assert_global_step(tf.Variable(0.0))


# ---- ExponentialMovingAverage -------------------------------------------------------------------
def test_ema_names_collections_and_values():
    w = tf.Variable([1.0, 2.0], name="w")
    b = tf.Variable(5.0, name="b")
    ema = tf.train.ExponentialMovingAverage(decay=0.9)
    update = ema.apply([w, b])
    shadow_w, shadow_b = ema.average(w), ema.average(b)
    assert shadow_w.op.name == "w/ExponentialMovingAverage" and ema.average_name(b) == "b/ExponentialMovingAverage"
    assert not shadow_w.trainable and shadow_w in tf.global_variables()
    assert shadow_w not in tf.trainable_variables()
    assert tf.moving_average_variables() == [w, b]      # as TF: the averaged variables
    assert update.name == "ExponentialMovingAverage"
    assert ema.average(tf.Variable(0.0)) is None
    with pytest.raises(ValueError, match="already computed"):
        ema.apply([w])
    assign_w = w.assign([3.0, -1.0])
    assign_b = b.assign_add(1.0)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_allclose(sess.run(shadow_w), [1.0, 2.0])     # starts at the initial value
        sw, sb = np.array([1.0, 2.0]), 5.0
        sess.run(assign_w)
        for _ in range(3):
            sess.run(assign_b)
            sess.run(update)
            bv = sess.run(b)
            sw = sw - 0.1 * (sw - np.array([3.0, -1.0]))
            sb = sb - 0.1 * (sb - bv)
            np.testing.assert_allclose(sess.run(shadow_w), sw, rtol=1e-6)
            assert sess.run(shadow_b) == pytest.approx(sb, rel=1e-6)


def test_ema_with_num_updates_after_training_step():
    """decay = min(decay, (1 + n) / (10 + n)) with the global step; the EMA runs after the train op."""
    gs = tf.train.get_or_create_global_step()
    w = tf.Variable(4.0, name="w")
    train = tf.train.GradientDescentOptimizer(0.25).minimize(tf.square(w), global_step=gs)
    ema = tf.train.ExponentialMovingAverage(0.99, num_updates=gs, name="avg")
    with tf.control_dependencies([train]):
        train_and_average = ema.apply([w])
    assert ema.average(w).op.name == "w/avg"
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        wv, shadow = 4.0, 4.0
        for step in range(3):
            sess.run(train_and_average)
            wv = wv - 0.25 * 2 * wv
            n = step + 1                  # the step was incremented before the average reads it
            decay = min(0.99, (1.0 + n) / (10.0 + n))
            shadow = shadow - (1 - decay) * (shadow - wv)
            assert sess.run(w) == pytest.approx(wv, rel=1e-6)
            assert sess.run(ema.average(w)) == pytest.approx(shadow, rel=1e-6)


def test_ema_of_tensor_starts_at_zero_and_zero_debias_rules():
    x = tf.placeholder(tf.float32, [2], name="x")
    y = tf.identity(x * 2.0, name="y")
    ema = tf.train.ExponentialMovingAverage(0.5)
    update = ema.apply([y])
    assert ema.average(y).op.name == "y/ExponentialMovingAverage"
    assert tf.moving_average_variables() == []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(update, {x: [1.0, 2.0]})
        np.testing.assert_allclose(sess.run(ema.average(y)), [1.0, 2.0])   # 0 - 0.5 * (0 - [2, 4])
    # zero_debias only changes averages of tensors in TF: accepted for variables, refused for tensors
    v = tf.Variable(1.0, name="v")
    tf.train.ExponentialMovingAverage(0.5, zero_debias=True).apply([v])
    with pytest.raises(UnsupportedError, match="zero_debias"):
        tf.train.ExponentialMovingAverage(0.5, zero_debias=True).apply([y])
    with pytest.raises(TypeError, match="half, float, or double"):
        tf.train.ExponentialMovingAverage(0.5).apply([tf.Variable(1, name="i")])


def test_ema_variables_to_restore_with_saver_round_trip(tmp_path):
    w = tf.Variable([1.0, 2.0], name="w")
    tf.Variable(0, trainable=False, name="step")
    ema = tf.train.ExponentialMovingAverage(0.5)
    update = ema.apply([w])
    assign = w.assign([5.0, 10.0])
    saver = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(assign)
        sess.run(update)
        sess.run(update)
        averaged = sess.run(ema.average(w))           # 1 -> 3 -> 4, 2 -> 6 -> 8
        np.testing.assert_allclose(averaged, [4.0, 8.0])
        path = saver.save(sess, str(tmp_path / "model.ckpt"))
    tf.reset_default_graph()
    w2 = tf.Variable([0.0, 0.0], name="w")
    step2 = tf.Variable(7, trainable=False, name="step")
    ema2 = tf.train.ExponentialMovingAverage(0.5)
    restore_map = ema2.variables_to_restore()
    assert restore_map == {"w/ExponentialMovingAverage": w2, "step": step2}
    with tf.Session() as sess:
        tf.train.Saver(restore_map).restore(sess, path)
        np.testing.assert_allclose(sess.run(w2), averaged)
        assert sess.run(step2) == 0


# ---- Adadelta, Ftrl, Proximal optimizers vs numpy TF kernels --------------------------------------
GRADS = [np.array([0.5, -1.0, 2.0]), np.array([-0.3, 0.2, 1.5]), np.array([1.0, 0.1, -0.05])]
W0 = np.array([0.2, -0.4, 1.0])


def np_adadelta(w, lr=0.5, rho=0.9, eps=1e-6):
    accum, accum_update = np.zeros_like(w), np.zeros_like(w)
    for g in GRADS:
        accum = rho * accum + (1 - rho) * g * g
        update = np.sqrt(accum_update + eps) / np.sqrt(accum + eps) * g
        accum_update = rho * accum_update + (1 - rho) * update * update
        w = w - lr * update
        yield w, accum, accum_update


def np_ftrl(w, lr, power, init, l1, l2, shrinkage):
    accum, linear = np.full_like(w, init), np.zeros_like(w)
    for g in GRADS:
        g_shrunk = g + 2 * shrinkage * w
        new_accum = accum + g * g
        linear = linear + g_shrunk - (new_accum ** -power - accum ** -power) / lr * w
        quadratic = new_accum ** -power / lr + 2 * l2
        w = np.where(np.abs(linear) > l1, (np.sign(linear) * l1 - linear) / quadratic, 0.0)
        accum = new_accum
        yield w, accum, linear


def run_fed_gradients(opt, n=3):
    """Applies GRADS (fed) to a float64 variable; yields (var, slot values) per step."""
    w = tf.Variable(W0.copy(), name="w")
    g = tf.placeholder(tf.float64, [3], name="g")
    train = opt.apply_gradients([(g, w)])
    slots = [opt.get_slot(w, name) for name in opt.get_slot_names()]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for grad in GRADS[:n]:
            sess.run(train, {g: grad})
            yield sess.run([w] + slots)


def test_adadelta_matches_tf_kernel_for_three_steps():
    opt = tf.train.AdadeltaOptimizer(learning_rate=0.5, rho=0.9, epsilon=1e-6)
    got = list(run_fed_gradients(opt))
    assert opt.get_slot_names() == ["accum", "accum_update"]
    assert sorted(s.op.name for s in opt.variables()) == ["w/Adadelta", "w/Adadelta_1"]
    for (w, accum, accum_update), want in zip(got, np_adadelta(W0.copy())):
        np.testing.assert_allclose(w, want[0], rtol=1e-12)
        np.testing.assert_allclose(accum, want[1], rtol=1e-12)
        np.testing.assert_allclose(accum_update, want[2], rtol=1e-12)


def test_adadelta_defaults():
    opt = tf.train.AdadeltaOptimizer()
    assert (opt._learning_rate, opt._rho, opt._epsilon) == (0.001, 0.95, 1e-8)


@pytest.mark.parametrize("power,init,l1,l2,shrinkage", [
    (-0.5, 0.1, 0.0, 0.0, 0.0),
    (-0.5, 0.1, 0.3, 0.2, 0.0),
    (-0.7, 0.5, 0.05, 0.1, 0.1),
])
def test_ftrl_matches_tf_kernel_for_three_steps(power, init, l1, l2, shrinkage):
    opt = tf.train.FtrlOptimizer(0.3, learning_rate_power=power, initial_accumulator_value=init,
                                 l1_regularization_strength=l1, l2_regularization_strength=l2,
                                 l2_shrinkage_regularization_strength=shrinkage)
    got = list(run_fed_gradients(opt))
    assert opt.get_slot_names() == ["accum", "linear"]
    assert sorted(v.op.name for v in opt.variables()) == ["w/Ftrl", "w/Ftrl_1"]
    for (w, accum, linear), want in zip(got, np_ftrl(W0.copy(), 0.3, power, init, l1, l2, shrinkage)):
        np.testing.assert_allclose(w, want[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(accum, want[1], rtol=1e-12)
        np.testing.assert_allclose(linear, want[2], rtol=1e-12)
    if l1 == 0.3:     # a large l1 zeroes coordinates
        assert np.any(got[-1][0] == 0.0)


def test_ftrl_argument_errors():
    with pytest.raises(ValueError, match="learning_rate_power"):
        tf.train.FtrlOptimizer(0.1, learning_rate_power=0.5)
    with pytest.raises(ValueError, match="l1_regularization_strength"):
        tf.train.FtrlOptimizer(0.1, l1_regularization_strength=-1.0)


def test_proximal_optimizers_match_tf_kernels():
    lr, l1, l2 = 0.4, 0.05, 0.1
    got = list(run_fed_gradients(tf.train.ProximalGradientDescentOptimizer(lr, l1, l2)))
    w = W0.copy()
    for (gw,), g in zip(got, GRADS):
        prox = w - lr * g
        w = np.sign(prox) * np.maximum(np.abs(prox) - lr * l1, 0) / (1 + lr * l2)
        np.testing.assert_allclose(gw, w, rtol=1e-12)
    tf.reset_default_graph()
    got = list(run_fed_gradients(tf.train.ProximalAdagradOptimizer(lr, 0.1, l1, l2)))
    w, accum = W0.copy(), np.full(3, 0.1)
    for (gw, gaccum), g in zip(got, GRADS):
        accum = accum + g * g
        step = lr / np.sqrt(accum)
        prox = w - step * g
        w = np.sign(prox) * np.maximum(np.abs(prox) - step * l1, 0) / (1 + step * l2)
        np.testing.assert_allclose(gw, w, rtol=1e-12)
        np.testing.assert_allclose(gaccum, accum, rtol=1e-12)


# ---- compute_gradients / apply_gradients workflow ----------------------------------------------
def two_layer_model():
    x = tf.constant([[1.0, 2.0], [0.5, -1.0]])
    with tf.variable_scope("hidden1"):
        w1 = tf.get_variable("kernel", initializer=tf.constant([[0.1, 0.2], [0.3, -0.4]]))
    with tf.variable_scope("outputs"):
        w2 = tf.get_variable("kernel", initializer=tf.constant([[1.0], [-1.0]]))
    loss = tf.reduce_mean(tf.square(tf.matmul(tf.tanh(tf.matmul(x, w1)), w2) - 1.0))
    return w1, w2, loss


def test_var_list_freezes_lower_layers():
    """Geron ch. 11: train only the upper layer's variables."""
    w1, w2, loss = two_layer_model()
    train_vars = tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope="outputs")
    assert train_vars == [w2]
    train = tf.train.MomentumOptimizer(0.1, 0.9).minimize(loss, var_list=train_vars)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        w1_before, w2_before = sess.run([w1, w2])
        for _ in range(3):
            sess.run(train)
        w1_after, w2_after = sess.run([w1, w2])
    np.testing.assert_array_equal(w1_after, w1_before)
    assert np.abs(w2_after - w2_before).max() > 1e-3


def test_apply_gradients_with_clipped_gradients():
    w1, w2, loss = two_layer_model()
    opt = tf.train.GradientDescentOptimizer(0.5)
    grads_and_vars = opt.compute_gradients(loss)
    assert [v for _, v in grads_and_vars] == [w1, w2]
    threshold = 0.05
    capped = [(tf.clip_by_value(g, -threshold, threshold), v) for g, v in grads_and_vars]
    train = opt.apply_gradients(capped)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        before = sess.run([w1, w2])
        grads = sess.run([g for g, _ in grads_and_vars])
        sess.run(train)
        after = sess.run([w1, w2])
    assert max(np.abs(g).max() for g in grads) > threshold          # the clip matters
    for b, a, g in zip(before, after, grads):
        np.testing.assert_allclose(a, b - 0.5 * np.clip(g, -threshold, threshold), rtol=1e-6)


def test_none_gradients_skipped_and_all_none_raises():
    w = tf.Variable(2.0, name="w")
    unused = tf.Variable(1.0, name="unused")
    opt = tf.train.AdadeltaOptimizer(1.0)
    grads_and_vars = opt.compute_gradients(tf.square(w), var_list=[w, unused])
    assert grads_and_vars[1][0] is None
    opt.apply_gradients(grads_and_vars)
    assert opt.get_slot(unused, "accum") is None and opt.get_slot(w, "accum") is not None
    with pytest.raises(ValueError, match="No gradients provided for any variable"):
        opt.apply_gradients([(None, unused)])
    with pytest.raises(ValueError, match="No gradients provided for any variable"):
        tf.train.GradientDescentOptimizer(0.1).minimize(tf.square(w) * 0.0 + tf.constant(1.0),
                                                        var_list=[unused])
    with pytest.raises(ValueError, match="No variables provided"):
        opt.apply_gradients([])


def test_compute_gradients_argument_checks():
    w = tf.Variable(2.0, name="w")
    opt = tf.train.GradientDescentOptimizer(0.1)
    loss = tf.square(w)
    for gate in (tf.train.Optimizer.GATE_NONE, tf.train.Optimizer.GATE_OP, tf.train.Optimizer.GATE_GRAPH):
        opt.compute_gradients(loss, gate_gradients=gate, aggregation_method=None)
    with pytest.raises(ValueError, match="gate_gradients must be one of"):
        opt.compute_gradients(loss, gate_gradients=5)
    with pytest.raises(ValueError, match="Invalid aggregation_method"):
        opt.compute_gradients(loss, aggregation_method=7)
    with pytest.raises(ValueError, match="Invalid type tf.int32"):
        opt.compute_gradients(tf.constant(3), var_list=[w])
    with pytest.raises(TypeError, match="global_step must be a tf.Variable"):
        opt.minimize(loss, global_step=tf.constant(0))


def test_minimize_increments_global_step_and_nesterov_matches_tf():
    gs = tf.train.get_or_create_global_step()
    w = tf.Variable([1.0, -3.0], name="w")
    opt = tf.train.MomentumOptimizer(0.1, 0.9, use_nesterov=True)
    train = opt.minimize(tf.reduce_sum(tf.square(w)), global_step=gs)
    assert opt.get_slot_names() == ["momentum"] and opt.get_slot(w, "momentum").op.name == "w/Momentum"
    wv, accum = np.array([1.0, -3.0]), np.zeros(2)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(3):
            sess.run(train)
            g = 2 * wv
            accum = 0.9 * accum + g
            wv = wv - 0.1 * (g + 0.9 * accum)
            np.testing.assert_allclose(sess.run(w), wv, rtol=1e-6)
            assert tf.train.global_step(sess, gs) == step + 1
