"""Shape-polymorphic Session runs (jitflow/shape_poly.py): symbolic dims (jitflow/ir/symdim.py) through
lowering, passes, scheduling, codegen (codegen/symdims.py) and the runtime (runtime/poly_executable.py)."""
from __future__ import annotations

import numpy as np
import pytest

import jitflow as tf
from jitflow.framework.lowering import lower_run
from jitflow.ir.parser import parse_function
from jitflow.ir.printer import print_function
from jitflow.ir.symdim import NeedsConcreteShape, SymDim, align_up, parse, provably_le
from jitflow.runtime import counters

S0, S1 = SymDim.symbol(0), SymDim.symbol(1)


def _delta(before, keys=("compiles", "executables", "poly_compiles", "poly_fallbacks")):
    after = counters.stats()
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2 ** 20


# ---- SymDim ------------------------------------------------------------------------------------
def test_symdim_arithmetic_and_questions():
    d = 784 * S0 + 16
    assert d.text == "784*s0+16" and str(d) == '%"784*s0+16"'
    assert (d - 16) // 784 == S0 and (4 * S0 + 6) % 2 == 0
    assert S0 - S0 == 0 and isinstance((S0 + 1) - S0, int)
    assert S0 * S1 == S1 * S0 and hash(2 * S0 + 1) == hash(1 + S0 * 2)
    assert d.evaluate([3]) == 784 * 3 + 16
    # answered for every value >= 2
    assert (S0 == 1) is False and (S0 != 0) is True and S0 > 1 and max(S0, 1) is S0 and bool(S0)
    assert provably_le(S0, 2 * S0) and not provably_le(S0, 100)
    for question in (lambda: S0 == 5, lambda: S0 < 7, lambda: int(S0), lambda: float(S0),
                     lambda: S0 // 3, lambda: 1.0 / S0, lambda: S0 == S1):
        with pytest.raises(NeedsConcreteShape):
            question()
    aligned = align_up(40 * S0 + 3, 64)
    assert aligned.text == "64*s0+64" and all(aligned.evaluate([n]) % 64 == 0 for n in range(2, 50))
    for text in ("784*s0+16", "s0*s1", "-s0+3", "s0*s0+2*s1"):
        assert parse(text).text == text
    assert parse("12") == 12


# ---- the training MLP ----------------------------------------------------------------------------
def _mlp(features=784, hidden=32, optimizer="adam", seed=0):
    g = tf.Graph()
    with g.as_default():
        tf.set_random_seed(seed)
        x = tf.placeholder(tf.float32, [None, features])
        y = tf.placeholder(tf.int64, [None])
        h = tf.layers.dense(x, hidden, activation=tf.nn.relu, name="d0")
        logits = tf.layers.dense(h, 10, name="out")
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        opt = tf.train.AdamOptimizer(1e-3) if optimizer == "adam" else tf.train.GradientDescentOptimizer(0.1)
        train = opt.minimize(loss)
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
        init = tf.global_variables_initializer()
        g.weights = tf.trainable_variables()
    return g, x, y, [loss, train, acc], init


def _train(sizes, features=784, optimizer="adam"):
    g, x, y, fetches, init = _mlp(features, optimizer=optimizer)
    rng = np.random.default_rng(1)
    with tf.Session(graph=g) as sess:
        sess.run(init)
        results = []
        for n in sizes:
            xs = rng.standard_normal((n, features)).astype(np.float32)
            ys = rng.integers(0, 10, n).astype(np.int64)
            loss, _, acc = sess.run(fetches, {x: xs, y: ys})
            results.append((loss, acc))
        weights = sess.run(g.weights)
    return results, weights


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_training_mlp_matches_concrete_compiles(monkeypatch, optimizer):
    sizes = [5, 7, 2, 3, 17, 1000, 1, 0, 64]
    before = counters.stats()
    poly, poly_weights = _train(sizes, optimizer=optimizer)
    delta = _delta(before)
    assert delta["poly_compiles"] == 1 and delta["poly_fallbacks"] == 0
    # init, batch 5 (first shape: specialized), the polymorphic one, batch 1, batch 0, reading the weights
    assert delta["executables"] <= 6
    monkeypatch.setenv("JITFLOW_SHAPE_POLYMORPHIC", "0")
    before = counters.stats()
    concrete, concrete_weights = _train(sizes, optimizer=optimizer)
    assert _delta(before)["poly_compiles"] == 0
    for a, b in zip(poly_weights, concrete_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for n, (a, b) in zip(sizes, zip(poly, concrete)):
        if n == 0:
            assert np.isnan(a[0]) and np.isnan(b[0])
            continue
        np.testing.assert_allclose(a[0], b[0], rtol=1e-5, err_msg=f"loss at batch {n}")
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6, err_msg=f"accuracy at batch {n}")


def test_two_thousand_batch_sizes_compile_a_few_executables():
    """2,000 distinct batch sizes (2..2001) through one Session.run of a training step."""
    g, x, y, fetches, init = _mlp(features=16, hidden=8)
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((2001, 16)).astype(np.float32)
    ys = rng.integers(0, 10, 2001).astype(np.int64)
    with tf.Session(graph=g) as sess:
        sess.run(init)
        before = counters.stats()
        sess.run(fetches, {x: xs[:50], y: ys[:50]})
        sess.run(fetches, {x: xs[:60], y: ys[:60]})
        rss = _rss_mb()
        losses = [sess.run(fetches, {x: xs[:n], y: ys[:n]})[0] for n in range(2, 2002)]
        grown = _rss_mb() - rss
        delta = _delta(before)
    assert delta["executables"] <= 3 and delta["compiles"] <= 3, delta
    assert delta["poly_compiles"] == 1
    assert grown < 50, f"RSS grew by {grown:.1f} MB"
    assert np.all(np.isfinite(losses))


def test_reduction_over_batch_and_broadcast_against_row():
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [None, 5])
        row = tf.constant(np.arange(5, dtype=np.float32).reshape(1, 5))
        centered = x - tf.reduce_mean(x, axis=0, keepdims=True)
        out = [tf.reduce_sum(centered * row, axis=0), tf.reduce_max(x * row, axis=1), tf.reduce_mean(x)]
    rng = np.random.default_rng(3)
    before = counters.stats()
    with tf.Session(graph=g) as sess:
        for n in (4, 9, 2, 33, 1, 0, 300):
            xs = rng.standard_normal((n, 5)).astype(np.float32)
            got = sess.run(out, {x: xs})
            r = np.arange(5, dtype=np.float32).reshape(1, 5)
            mean0 = xs.mean(0, keepdims=True) if n else np.full((1, 5), np.nan, np.float32)
            want = [((xs - mean0) * r).sum(0), (xs * r).max(1) if n else np.zeros(0),
                    xs.mean() if n else np.nan]
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert _delta(before)["poly_compiles"] == 1


def test_shape_arithmetic_still_right():
    """`tf.shape(x)[0]` arithmetic: compiled symbolically or concretely, the values are right, and a
    failed symbolic attempt is counted once, not retried on every new size."""
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [None, 3])
        n = tf.shape(x)[0]
        y = tf.reshape(x, tf.stack([n * 3])) * tf.cast(n, tf.float32)
    before = counters.stats()
    with tf.Session(graph=g) as sess:
        for rows in (4, 5, 6, 7, 8):
            xs = np.arange(rows * 3, dtype=np.float32).reshape(rows, 3)
            np.testing.assert_allclose(sess.run(y, {x: xs}), xs.reshape(-1) * rows)
    delta = _delta(before)
    assert delta["poly_compiles"] + delta["poly_fallbacks"] == 1, delta


def test_batch_size_as_a_run_time_value():
    """`tf.shape(x)[0]` used as a number (not as a shape) is a run-time value of a polymorphic run."""
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [None, 3])
        batch = tf.cast(tf.shape(x)[0], tf.float32)
        y = [tf.reduce_sum(x) / batch, tf.shape(x) * 2, tf.size(x[:, 0:2])]
    before = counters.stats()
    with tf.Session(graph=g) as sess:
        for n in (4, 5, 2, 31, 1):
            xs = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
            mean, shape2, size = sess.run(y, {x: xs})
            np.testing.assert_allclose(mean, xs.sum() / n, rtol=1e-6)
            np.testing.assert_array_equal(shape2, [2 * n, 6])
            assert size == 2 * n
    delta = _delta(before)
    assert delta["poly_compiles"] == 1 and delta["poly_fallbacks"] == 0, delta


def test_fallback_is_counted_once_and_not_retried():
    """Reshaping [n, 6] to [-1, 4] is exact only for even n: the symbolic attempt raises NeedsConcreteShape
    (6*s0 // 4), the structure falls back to concrete compiles, and the attempt is never repeated."""
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [None, 6])
        y = tf.reduce_sum(tf.reshape(x, [-1, 4]), axis=1)
    before = counters.stats()
    with tf.Session(graph=g) as sess:
        for n in (2, 4, 6, 8, 10, 12):
            xs = np.arange(n * 6, dtype=np.float32).reshape(n, 6)
            np.testing.assert_allclose(sess.run(y, {x: xs}), xs.reshape(-1, 4).sum(1))
    delta = _delta(before)
    assert delta["poly_fallbacks"] == 1 and delta["poly_compiles"] == 0 and delta["executables"] == 6, delta


def test_two_symbols():
    """Feeds whose unknown dims differ get two symbols (s0, s1); a concat has s0+s1 elements."""
    g = tf.Graph()
    with g.as_default():
        a = tf.placeholder(tf.float32, [None])
        b = tf.placeholder(tf.float32, [None])
        out = [tf.concat([a, b * 2.0], 0), tf.reduce_sum(a) - tf.reduce_mean(b)]
    before = counters.stats()
    with tf.Session(graph=g) as sess:
        for n, m in ((3, 5), (4, 6), (7, 2), (9, 9)):
            av, bv = np.arange(n, dtype=np.float32), np.arange(m, dtype=np.float32) + 1
            cat, scalar = sess.run(out, {a: av, b: bv})
            np.testing.assert_allclose(cat, np.concatenate([av, 2 * bv]))
            np.testing.assert_allclose(scalar, av.sum() - bv.mean(), rtol=1e-6)
    assert _delta(before)["poly_compiles"] == 1


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("JITFLOW_SHAPE_POLYMORPHIC", "0")
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [None, 2])
        y = tf.reduce_sum(x * 2.0, axis=1)
    before = counters.stats()
    with tf.Session(graph=g) as sess:
        for n in (2, 3, 4):
            np.testing.assert_allclose(sess.run(y, {x: np.ones((n, 2), np.float32)}), np.full(n, 4.0))
    assert _delta(before)["poly_compiles"] == 0


def test_ir_text_roundtrip_with_symbols():
    g, x, y, fetches, init = _mlp(features=6, hidden=4)
    with tf.Session(graph=g) as sess:
        feeds = sess._convert_feeds({x: np.zeros((3, 6), np.float32), y: np.zeros(3, np.int64)})
        lowered = lower_run(g, [sess._as_target(t) for t in fetches], feeds, {id(x): (S0, 6), id(y): (S0,)})
    text = print_function(lowered.function, locations=False)
    assert "f32[s0,6]" in text and 'sym:"s0"' in text
    again = parse_function(text)
    assert print_function(again, locations=False) == text
    shapes = {v.type.shape for v in again.params if hasattr(v.type, "shape") and v.type.shape}
    assert (S0, 6) in shapes


def test_dim_value_op_matches_reference():
    """dim_value (jitflow/ops/symbolic.py) with a concrete dim compiles to the constant its reference gives."""
    from jitflow.ops import get_op
    g = tf.Graph()
    with g.as_default():
        outs = [g.create_op("dim_value", [], {"dim": 7, "dtype": dt}).outputs[0] for dt in (tf.float32, tf.int64)]
    with tf.Session(graph=g) as sess:
        got = sess.run(outs)
    for value, dt in zip(got, (tf.float32, tf.int64)):
        assert value == get_op("dim_value").reference(dim=7, dtype=dt) and value.dtype == dt.as_numpy_dtype


def test_concurrent_calls_of_one_polymorphic_executable():
    import threading
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [None, 4])
        y = tf.reduce_sum(x, axis=1) / tf.reduce_mean(x * 0.0 + 1.0)
    with tf.Session(graph=g) as sess:
        sess.run(y, {x: np.ones((3, 4), np.float32)})
        sess.run(y, {x: np.ones((5, 4), np.float32)})
        errors = []

        def worker(n):
            for _ in range(30):
                got = sess.run(y, {x: np.full((n, 4), n, np.float32)})
                if got.shape != (n,) or not np.allclose(got, 4 * n):
                    errors.append((n, got))
        threads = [threading.Thread(target=worker, args=(n,)) for n in (6, 40, 300)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
