"""Tiered compilation (runtime/tiered_build.py, codegen/quick_tier.py): the quick tier computes
bit-identical results to the optimized code, the optimized code replaces it at the second call, the
disk cache keeps both tiers, and JITFLOW_TIERED_COMPILE=0 turns it off."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.codegen.quick_tier import quick_tier_text, skipped_functions
from jitflow.framework.lowering import lower_run
from jitflow.runtime import build, counters, tiered_build

pytestmark = pytest.mark.skipif(not tiered_build.enabled(), reason="tiered compilation needs compile workers")


def _executable(graph, fetches, feeds):
    lowered = lower_run(graph, fetches, feeds)
    return build.build_executable(lowered.function), [feeds[t] for t in lowered.feed_tensors]


def _bitwise_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _mlp_gradients(rng):
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [None, 64])
        y = tf.placeholder(tf.int32, [None])
        w1 = tf.placeholder(tf.float32, [64, 48])
        b1 = tf.placeholder(tf.float32, [48])
        w2 = tf.placeholder(tf.float32, [48, 10])
        h = tf.nn.relu(tf.matmul(x, w1) + b1)
        logits = tf.matmul(h, w2)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), y), tf.float32))
        fetches = [loss, accuracy] + tf.gradients(loss, [w1, b1, w2])
    feeds = {x: rng.standard_normal((77, 64)).astype(np.float32), y: rng.integers(0, 10, 77).astype(np.int32),
             w1: (rng.standard_normal((64, 48)) * 0.2).astype(np.float32),
             b1: rng.standard_normal(48).astype(np.float32),
             w2: (rng.standard_normal((48, 10)) * 0.2).astype(np.float32)}
    return g, fetches, feeds


def _math_mix(rng):
    g = tf.Graph()
    with g.as_default():
        a = tf.placeholder(tf.float32, [37, 129])
        b = tf.placeholder(tf.float64, [5, 300])
        pieces = [tf.tanh(a), tf.sigmoid(a), tf.exp(a * 0.3), tf.log1p(tf.abs(a)), tf.math.erf(a),
                  tf.pow(tf.abs(a) + 0.5, 1.7), tf.nn.softplus(a), tf.sin(a) * tf.cos(a), tf.expm1(a * 0.1)]
        fetches = pieces + [tf.reduce_sum(tf.add_n(pieces), 1), tf.reduce_max(a, 0), tf.reduce_mean(a),
                            tf.reduce_logsumexp(a, 1), tf.reduce_prod(tf.sigmoid(a), 0),
                            tf.reduce_sum(b * b, 1), tf.reduce_mean(tf.tanh(b)), tf.cumsum(a, 1),
                            tf.nn.softmax(a), tf.nn.l2_normalize(b, 1)]
    feeds = {a: rng.standard_normal((37, 129)).astype(np.float32), b: rng.standard_normal((5, 300))}
    return g, fetches, feeds


@pytest.mark.parametrize("make", [_mlp_gradients, _math_mix])
def test_quick_tier_is_bit_identical_to_optimized_code(make, monkeypatch):
    monkeypatch.setenv("JITFLOW_CACHE", "0")
    graph, fetches, feeds = make(np.random.default_rng(5))
    executable, args = _executable(graph, fetches, feeds)
    assert executable.upgrade is not None, "a module with elementwise kernels has a quick tier"
    quick = executable(args, [])
    executable.wait_optimized(timeout=120)
    assert executable.upgrade is None and executable._retired, "the optimized code was installed"
    optimized = executable(args, [])
    for q, o in zip(quick, optimized):
        assert _bitwise_equal(q, o)


def test_optimized_compile_starts_at_the_second_call(monkeypatch):
    monkeypatch.setenv("JITFLOW_CACHE", "0")
    graph, fetches, feeds = _math_mix(np.random.default_rng(6))
    before = counters.stats().get("background_compiles", 0)
    executable, args = _executable(graph, fetches[:3], feeds)
    executable(args, [])
    assert executable.upgrade is not None and executable.upgrade.thread is None   # run once: no second compile
    executable(args, [])
    assert executable.upgrade is None or executable.upgrade.thread is not None
    assert tiered_build.wait_for_background_compiles(timeout=120)
    assert counters.stats().get("background_compiles", 0) == before + 1
    assert executable.upgrade is None


def test_session_results_do_not_change_when_the_code_is_swapped(monkeypatch):
    monkeypatch.setenv("JITFLOW_CACHE", "0")
    rng = np.random.default_rng(7)
    x_data = rng.standard_normal((50, 8)).astype(np.float32)
    y_data = (x_data @ rng.standard_normal((8, 1))).astype(np.float32)

    def train(wait_each_step):
        g = tf.Graph()
        with g.as_default():
            tf.set_random_seed(3)
            x = tf.placeholder(tf.float32, [None, 8])
            y = tf.placeholder(tf.float32, [None, 1])
            hidden = tf.layers.dense(x, 16, activation=tf.tanh)
            loss = tf.reduce_mean(tf.square(tf.layers.dense(hidden, 1) - y))
            step = tf.train.AdamOptimizer(0.01).minimize(loss)
            with tf.Session() as sess:
                sess.run(tf.global_variables_initializer())
                losses = []
                for _ in range(20):
                    losses.append(sess.run([step, loss], {x: x_data, y: y_data})[1])
                    if wait_each_step:
                        tiered_build.wait_for_background_compiles(timeout=120)
                return np.array(losses)

    build.clear_memory_cache()
    swapped_late = train(False)
    build.clear_memory_cache()
    swapped_early = train(True)
    assert _bitwise_equal(swapped_late, swapped_early)


def test_disk_cache_entry_holds_the_quick_then_the_optimized_object(monkeypatch, tmp_path):
    from jitflow.runtime.kernel_cache import disk_cache
    monkeypatch.setenv("JITFLOW_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("JITFLOW_CACHE", raising=False)
    graph, fetches, feeds = _math_mix(np.random.default_rng(8))
    build.clear_memory_cache()
    executable, args = _executable(graph, fetches[:4], feeds)
    key = executable.cache_key
    assert disk_cache().load(key)[1]["tier"] == tiered_build.QUICK
    del executable
    build.clear_memory_cache()
    again, args = _executable(graph, fetches[:4], feeds)     # a later process finds the quick entry ...
    assert again.cache_key == key and again.upgrade is not None
    quick = again(args, [])
    again.wait_optimized(timeout=120)                        # ... optimizes it and replaces the entry
    assert "tier" not in disk_cache().load(key)[1]
    for q, o in zip(quick, again(args, [])):
        assert _bitwise_equal(q, o)
    del again
    build.clear_memory_cache()
    third, args = _executable(graph, fetches[:4], feeds)
    assert third.upgrade is None, "the optimized object is loaded as it is"


def test_tiering_off_compiles_fully_before_the_first_call(monkeypatch):
    monkeypatch.setenv("JITFLOW_CACHE", "0")
    monkeypatch.setenv("JITFLOW_TIERED_COMPILE", "0")
    graph, fetches, feeds = _math_mix(np.random.default_rng(9))
    executable, args = _executable(graph, fetches[:2], feeds)
    assert executable.upgrade is None and not executable._retired


def test_quick_tier_text_keeps_reductions_and_inline_helpers_optimized():
    text = "\n".join([
        "define internal float @h(float %x) alwaysinline nounwind {", "entry:", "  ret float %x", "}",
        "define internal void @k0(ptr %a) noinline nounwind {", "entry:", "  ret void", "}",
        "define internal void @k1(ptr %a) noinline nounwind {", "entry:", "  %s = fadd reassoc float 1.0, 2.0",
        "  ret void", "}",
        "define i32 @jf_entry(ptr %slots) nounwind {", "entry:", "  ret i32 0", "}", ""])
    quick = quick_tier_text(text)
    heads = [line for line in quick.splitlines() if line.startswith("define")]
    assert "optnone" not in heads[0] and "optnone" not in heads[2]
    assert "noinline optnone nounwind" in heads[1] and "noinline optnone nounwind" in heads[3]
    assert skipped_functions(quick) == 2


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_optimized_compile(monkeypatch):
    """Forking while an optimized compile is pending: the child compiles on its own workers (the
    parent's compile-worker pipes and background threads are not shared) and gets the same bits."""
    import os
    monkeypatch.setenv("JITFLOW_CACHE", "0")
    graph, fetches, feeds = _math_mix(np.random.default_rng(10))
    executable, args = _executable(graph, fetches[:5], feeds)
    quick = executable(args, [])
    executable(args, [])                    # the second call starts the background compile
    pid = os.fork()
    if pid == 0:                            # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            executable.wait_optimized(timeout=120)
            same = all(_bitwise_equal(q, o) for q, o in zip(quick, executable(args, [])))
            code = 0 if executable.upgrade is None and same else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    executable.wait_optimized(timeout=120)
    for q, o in zip(quick, executable(args, [])):
        assert _bitwise_equal(q, o)
