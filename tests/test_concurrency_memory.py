"""Concurrency and memory: threads calling Session.run and jitted functions at once agree with
serial runs bit for bit; long loops of calls keep resident memory flat; compiled code is freed
(and unloaded from the JIT) when its graphs, sessions and jitted functions are gone, while the
process-wide memory cache stays bounded.

The memory measurements run in fresh subprocesses (clean numbers, their own cache settings) and
print JSON; docs/RELIABILITY.md quotes them.
"""
import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import weakref

import numpy as np
import pytest

import jitflow as tf
from jitflow.codegen import cpu
from jitflow.runtime import build

THREADS = 8


def _run_threads(work, n=THREADS):
    """Runs work(thread_index) in n threads started together; re-raises the first failure."""
    barrier = threading.Barrier(n)
    errors = []

    def body(k):
        try:
            barrier.wait()
            work(k)
        except BaseException as exc:   # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def _graph():
    """Fetches covering the kernel kinds: fused elementwise, a softmax row group, a reduction
    split across threads (over PARALLEL_MIN_WORK), GEMM, slices, argmax, a variable read."""
    x = tf.placeholder(tf.float32, [None, 40], name="x")
    big = tf.placeholder(tf.float32, [600, 1024], name="big")
    w = tf.Variable(np.linspace(-1, 1, 40 * 8, dtype=np.float32).reshape(40, 8), name="w")
    logits = tf.matmul(x, w)
    fetches = {
        "elementwise": tf.tanh(x) * 2.0 - x,
        "softmax": tf.nn.softmax(x * 3.0),
        "log_softmax_sum": tf.reduce_sum(tf.nn.log_softmax(x), 1),
        "parallel": tf.reduce_sum(tf.exp(big * 0.001) * big, axis=1),
        "parallel_all": tf.reduce_max(big * 2.0 - 1.0),
        "gemm": logits,
        "argmax": tf.argmax(logits, 1),
        "slices": tf.matmul(x, w[::-1, ::3]) + w[5, 1:2],
    }
    return x, big, w, fetches


def _feeds(rng, rows):
    return (rng.standard_normal((rows, 40)).astype(np.float32),
            rng.standard_normal((600, 1024)).astype(np.float32))


def test_threads_share_a_session_and_agree_with_serial_runs():
    x, big, w, fetches = _graph()
    rng = np.random.default_rng(0)
    inputs = [_feeds(rng, rows) for rows in (1, 7, 64, 64, 130)]
    names = sorted(fetches)
    with tf.Session() as serial:
        serial.run(w.initializer)
        expected = [[serial.run(fetches[n], {x: a, big: b}) for n in names] for a, b in inputs]
    sess = tf.Session()           # fresh: the threads also race to compile each signature
    sess.run(w.initializer)

    def work(k):
        order = np.random.default_rng(k).permutation(len(inputs) * len(names))
        for _ in range(3):
            for flat in order:
                i, j = divmod(int(flat), len(names))
                got = sess.run(fetches[names[j]], {x: inputs[i][0], big: inputs[i][1]})
                np.testing.assert_array_equal(got, expected[i][j], err_msg=f"{names[j]} input {i} thread {k}")
            all_at_once = sess.run([fetches[n] for n in names], {x: inputs[k % 5][0], big: inputs[k % 5][1]})
            for got, want in zip(all_at_once, expected[k % 5]):
                np.testing.assert_array_equal(got, want)
    _run_threads(work)
    sess.close()


def test_threads_call_jitted_functions_and_agree_with_serial_calls():
    @tf.jit
    def step(a, b):
        h = tf.nn.relu(tf.matmul(a, b))
        return tf.nn.softmax(h), tf.reduce_sum(h * h), tf.argmax(h, 1)

    @tf.jit
    def wide(v):
        return tf.reduce_sum(tf.sqrt(tf.abs(v)) * v, axis=0)

    rng = np.random.default_rng(1)
    cases = [(rng.standard_normal((n, 16)).astype(np.float32), rng.standard_normal((16, 24)).astype(np.float32))
             for n in (1, 5, 64, 200)]
    vs = [rng.standard_normal((700, 512)).astype(np.float32), rng.standard_normal((3, 9)).astype(np.float32)]
    fresh_step, fresh_wide = tf.jit(step.fn), tf.jit(wide.fn)
    expected = [fresh_step(a, b) for a, b in cases]
    expected_wide = [fresh_wide(v) for v in vs]

    def work(k):
        for rep in range(20):
            i = (k + rep) % len(cases)
            for got, want in zip(step(*cases[i]), expected[i]):
                np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(wide(vs[(k + rep) % 2]), expected_wide[(k + rep) % 2])
    _run_threads(work)
    assert step.trace_count == len(cases)       # each signature traced once, even under the race


# ---- resident memory (fresh processes) ------------------------------------------------------------
MEMORY_SCRIPT = textwrap.dedent("""
    import gc, json, os, sys, weakref
    import numpy as np
    import jitflow as tf
    from jitflow.codegen import cpu
    from jitflow.runtime import build

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20

    report = {}
    # 1. 10,000 Session.run calls: feeds, a variable update, a small and a 2 MB output (recycled)
    x = tf.placeholder(tf.float32, [64, 128])
    v = tf.Variable(np.zeros(128, np.float32))
    update = tf.assign_add(v, tf.reduce_mean(x, 0))
    small = tf.nn.softmax(x)[:, :4]
    large = tf.broadcast_to(x, [64, 64, 128]) * 1.5
    sess = tf.Session()
    sess.run(v.initializer)
    feed = {x: np.ones((64, 128), np.float32)}
    def session_call():
        sess.run([update, small], feed)
        return sess.run(large, feed).sum()
    for _ in range(1000):
        session_call()
    gc.collect(); before = rss_mb()
    for _ in range(10000):
        session_call()
    gc.collect(); report["session_run"] = {"calls": 10000, "rss_before_mb": round(before, 1),
                                           "growth_mb": round(rss_mb() - before, 2)}
    # 2. 10,000 jitted calls
    @tf.jit
    def f(a, b):
        return tf.reduce_sum(tf.tanh(a) * b, axis=1), tf.nn.relu(a - b)
    a = np.ones((32, 64), np.float32); b = np.full((32, 64), 0.5, np.float32)
    for _ in range(1000):
        f(a, b)
    gc.collect(); before = rss_mb()
    for _ in range(10000):
        f(a, b)
    gc.collect(); report["jit_calls"] = {"calls": 10000, "growth_mb": round(rss_mb() - before, 2)}
    sess.close()
    del sess, f
    # 3. 200 distinct graphs/sessions and jitted functions built and dropped
    refs, base_libraries = [], cpu.live_libraries()
    def one(n):
        g = tf.Graph()
        with g.as_default():
            p = tf.placeholder(tf.float32, [n, 3])
            y = tf.nn.softmax(tf.matmul(p, tf.ones([3, 5])) * 2.0) + tf.reduce_mean(p)
        with tf.Session(graph=g) as s:
            s.run(y, {p: np.ones((n, 3), np.float32)})
            refs.append(weakref.ref(next(iter(s._compiled.values())).executable))
        jf = tf.jit(lambda q: tf.exp(q) * float(n))
        jf(np.ones(n + 1000, np.float32))
        refs.append(weakref.ref(jf._cache[next(iter(jf._cache))].executable))
    for n in range(1, 21):
        one(n)
    gc.collect(); before = rss_mb()
    for n in range(21, 221):
        one(n)
    gc.collect()
    report["graphs"] = {"built": 400, "growth_mb": round(rss_mb() - before, 2),
                        "alive": sum(r() is not None for r in refs), "lru": len(build._recent),
                        "live_libraries": cpu.live_libraries() - base_libraries,
                        "compiles": __import__("jitflow.runtime", fromlist=["stats"]).stats()["compiles"]}
    print(json.dumps(report))
""")


def _memory_report(cache_dir, entries="16"):
    env = dict(os.environ, JITFLOW_CACHE_DIR=str(cache_dir), JITFLOW_MEMORY_CACHE_ENTRIES=entries)
    proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=400)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def memory_reports(tmp_path_factory):
    """Two runs of MEMORY_SCRIPT on one cache directory: cold (every graph compiled by LLVM) and
    warm (object code from the disk cache: no LLVM optimization in the process)."""
    cache = tmp_path_factory.mktemp("memcache")
    cold = _memory_report(cache)
    warm = _memory_report(cache)
    print("\nmemory (cold):", json.dumps(cold), "\nmemory (warm):", json.dumps(warm))
    return cold, warm


def test_ten_thousand_session_runs_and_jitted_calls_keep_memory_flat(memory_reports):
    for report in memory_reports:
        assert report["session_run"]["growth_mb"] < 20, report
        assert report["jit_calls"]["growth_mb"] < 20, report


def test_dropped_graphs_and_jit_functions_free_their_code(memory_reports):
    cold, warm = memory_reports
    for report in (cold, warm):
        graphs = report["graphs"]
        assert graphs["alive"] <= 16 and graphs["lru"] <= 16, report     # only the bounded LRU keeps any
        assert graphs["live_libraries"] <= 16, report                     # the rest is unloaded from the JIT
    assert cold["graphs"]["compiles"] >= 400 and warm["graphs"]["compiles"] == 0
    # With object code from the disk cache nothing is left behind beyond allocator noise...
    assert warm["graphs"]["growth_mb"] < 20, warm
    # ...while compiling leaks inside llvmlite (~0.1-0.35 MB per LLVM optimization: its pass builder's
    # PassInstrumentationCallbacks are never freed; see docs/RELIABILITY.md), bounded here loosely.
    assert cold["graphs"]["growth_mb"] < 400 * 0.5, cold


# ---- the process-wide memory cache, in process ---------------------------------------------------------
def _executable_of(sess):
    return next(iter(sess._compiled.values())).executable


def test_memory_cache_is_bounded_and_weak(monkeypatch):
    monkeypatch.setenv("JITFLOW_MEMORY_CACHE_ENTRIES", "4")
    build.clear_memory_cache()
    gc.collect()
    base = cpu.live_libraries()
    refs, sessions = [], []
    for n in range(12):
        g = tf.Graph()
        with g.as_default():
            y = tf.constant(np.arange(n + 2, dtype=np.float32)) * 2.0 + float(n)
        s = tf.Session(graph=g)
        s.run(y)
        refs.append(weakref.ref(_executable_of(s)))
        if n == 0:
            sessions.append((s, g, y))      # kept in use: must stay cached and alive
        else:
            s.close()
    gc.collect()
    assert len(build._recent) <= 4
    alive = [r() is not None for r in refs]
    assert alive[0] and sum(alive) <= 5
    assert cpu.live_libraries() - base <= 5
    # the executable still in use is found again even though the LRU evicted it
    s0, g0, y0 = sessions[0]
    hits = build.counters.stats()["memory_cache_hits"]
    with tf.Session(graph=g0) as again:
        again.run(y0)
        assert _executable_of(again) is refs[0]()
    assert build.counters.stats()["memory_cache_hits"] == hits + 1
    s0.close()


def test_memory_cache_bytes_limit(monkeypatch):
    """Executables owning large constants are not kept around by the LRU beyond the byte budget."""
    monkeypatch.setenv("JITFLOW_MEMORY_CACHE_BYTES", str(3 << 20))
    build.clear_memory_cache()
    refs = []
    for n in range(6):
        g = tf.Graph()
        with g.as_default():
            y = tf.constant(np.full((1 << 18,), n, np.float32)) * 2.0       # a 1 MiB constant
        with tf.Session(graph=g) as s:
            s.run(y)
            refs.append(weakref.ref(_executable_of(s)))
    gc.collect()
    assert sum(r() is not None for r in refs) <= 3
    assert build._recent_bytes[0] <= 3 << 20


def test_dropped_executable_is_unloaded_from_the_jit():
    build.clear_memory_cache()
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [5])
        y = tf.exp(x) * 3.25 + 1.0
    sess = tf.Session(graph=g)
    sess.run(y, {x: np.ones(5)})
    executable = _executable_of(sess)
    library, ref = executable._loaded.library, weakref.ref(executable)
    jit = cpu._initialize()["jit"]
    sess.close()
    del sess, executable
    build.clear_memory_cache()
    gc.collect()
    assert ref() is None
    with pytest.raises(RuntimeError, match="jf_entry"):      # the symbol is gone: the code was removed
        jit.lookup(library, "jf_entry")


def test_build_leaves_no_per_key_locks_behind():
    for n in range(5):
        g = tf.Graph()
        with g.as_default():
            y = tf.constant(np.float32(n + 0.5)) * tf.constant(np.arange(3, dtype=np.float32))
        with tf.Session(graph=g) as s:
            s.run(y)
    assert not build._key_locks
