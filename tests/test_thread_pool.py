"""The persistent worker pool (codegen/thread_pool.py) and the one thread budget
(runtime/thread_budget.py): parallel results equal single-threaded ones, many calls, two
sessions in two Python threads, thread-creation failure, JITFLOW_NUM_THREADS=1, BLAS on one thread."""
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import jitflow as tf
from jitflow.codegen import cpu, thread_pool
from jitflow.runtime import blas, thread_budget

ROWS, COLS = 2048, 512          # 1M elements: well above cpu.PARALLEL_MIN_WORK


def _data(seed=0, shape=(ROWS, COLS)):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _kernels():
    """The jitted functions every comparison runs (built fresh in each process)."""
    return {
        "elementwise": tf.jit(lambda a: tf.exp(a * 0.5) * 2.0 + a),
        "row_sums": tf.jit(lambda a: tf.reduce_sum(a * a, axis=1)),
        "row_max_softmax": tf.jit(lambda a: (tf.reduce_max(a, axis=-1), tf.nn.softmax(a))),
        "matmul": tf.jit(lambda a, b: tf.matmul(a, b)),
        "matmul_ta": tf.jit(lambda a, b: tf.matmul(a, b, transpose_a=True)),
    }


def _run_all(kernels, x, w, wt):
    out = {"elementwise": kernels["elementwise"](x), "row_sums": kernels["row_sums"](x)}
    out["row_max"], out["softmax"] = kernels["row_max_softmax"](x)
    out["matmul"] = kernels["matmul"](x, w)
    out["matmul_ta"] = kernels["matmul_ta"](wt, w)
    return {k: np.asarray(v) for k, v in out.items()}


SINGLE = """
import json, sys, numpy as np
sys.path.insert(0, {tests!r})
import test_thread_pool as t
from jitflow.codegen import thread_pool
from jitflow.runtime import blas, thread_budget
x, w, wt = t._data(0), t._data(1, (t.COLS, 300)), t._data(2, (t.COLS, t.ROWS))
out = t._run_all(t._kernels(), x, w, wt)
np.savez({path!r}, **out)
ours = blas.blas_source()[1]
numpy_copies = [p for p in blas.numpy_library_paths() if p != ours]
print("@@" + json.dumps({{"workers": thread_pool.workers(),
                         "ours": None if ours is None else thread_budget.openblas_threads(ours),
                         "numpy": [thread_budget.openblas_threads(p) for p in numpy_copies]}}))
"""


def _subprocess(code, env_extra):
    env = dict(os.environ, **env_extra)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("@@")]
    assert lines, proc.stderr[-3000:]
    return json.loads(lines[-1][2:])


@pytest.fixture(scope="module")
def single_threaded(tmp_path_factory):
    """The same kernels in a fresh process with JITFLOW_NUM_THREADS=1 (no pool at all)."""
    path = str(tmp_path_factory.mktemp("single") / "single.npz")
    info = _subprocess(SINGLE.format(tests=os.path.dirname(__file__), path=path), {"JITFLOW_NUM_THREADS": "1"})
    with np.load(path) as data:
        return {k: data[k] for k in data.files}, info


def test_parallel_results_equal_single_threaded(single_threaded):
    expected, _ = single_threaded
    x, w, wt = _data(0), _data(1, (COLS, 300)), _data(2, (COLS, ROWS))
    got = _run_all(_kernels(), x, w, wt)
    for name in ("elementwise", "row_sums", "row_max", "softmax"):   # each element computed the same way
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    for name in ("matmul", "matmul_ta"):      # GEMM split by rows: same K order, tolerance for BLAS edge kernels
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-4, err_msg=name)
    np.testing.assert_allclose(got["elementwise"], np.exp(x * 0.5) * 2.0 + x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["row_sums"], (x.astype(np.float64) ** 2).sum(1), rtol=1e-4)
    np.testing.assert_array_equal(got["row_max"], x.max(-1))
    np.testing.assert_allclose(got["matmul"], x.astype(np.float64) @ w, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(got["matmul_ta"], wt.T.astype(np.float64) @ w, rtol=1e-4, atol=1e-3)


def test_generated_code_calls_the_pool_not_pthread_create():
    f = tf.jit(lambda a: tf.exp(a) + 1.0)
    x = _data(3)
    f(x)
    text = f.inspect(x).llvm_ir
    assert f"@{thread_pool.RUN_SYMBOL}(" in text and "pthread_create" not in text
    if cpu.num_threads() > 1:
        assert thread_pool.workers() >= 1


@pytest.mark.parametrize("ta, tb, m, k, n", [(False, False, 512, 256, 384),    # split by rows of C
                                              (False, False, 40, 512, 2000),    # by columns (few rows)
                                              (False, True, 50, 300, 1777),
                                              (True, True, 333, 200, 900),
                                              (True, False, 700, 129, 301)])
def test_large_matmul_is_split_on_the_pool(ta, tb, m, k, n):
    f = tf.jit(lambda a, b: tf.matmul(a, b, transpose_a=ta, transpose_b=tb))
    a = _data(4, (k, m) if ta else (m, k))
    b = _data(5, (n, k) if tb else (k, n))
    expected = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b)
    np.testing.assert_allclose(f(a, b), expected, rtol=1e-4, atol=1e-3)
    text = f.inspect(a, b).llvm_ir
    assert "jf_cblas_sgemm" in text and (cpu.num_threads() == 1 or thread_pool.RUN_SYMBOL in text)


def test_many_consecutive_calls():
    f = tf.jit(lambda a, s: tf.reduce_sum(a * s, axis=1) + s)
    x = _data(6)
    row_sums = x.astype(np.float64).sum(1)
    for i in range(300):
        s = np.float32(i % 7 - 3)
        np.testing.assert_allclose(f(x, s), row_sums * s + s, rtol=1e-4, atol=1e-2)


def test_two_sessions_in_two_python_threads():
    results, errors = {}, []

    def worker(tag, seed):
        try:
            graph = tf.Graph()
            with graph.as_default():
                x = tf.placeholder(tf.float32, (None, COLS))
                y = tf.reduce_sum(tf.tanh(x) * 2.0, axis=1)
                z = tf.matmul(x, tf.constant(_data(seed + 100, (COLS, 128))))
                sess = tf.Session(graph=graph)
            data = _data(seed)
            ok = 0
            for _ in range(40):
                got_y, got_z = sess.run([y, z], {x: data})
                np.testing.assert_allclose(got_y, (np.tanh(data.astype(np.float64)) * 2).sum(1), rtol=1e-4, atol=1e-3)
                np.testing.assert_allclose(got_z, data.astype(np.float64) @ _data(seed + 100, (COLS, 128)),
                                           rtol=1e-4, atol=1e-3)
                ok += 1
            results[tag] = ok
        except Exception as exc:   # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(tag, seed)) for tag, seed in (("a", 10), ("b", 20))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert results == {"a": 40, "b": 40}


def test_num_threads_1_runs_without_a_pool_and_blas_on_one_thread(single_threaded):
    _, info = single_threaded
    assert info["workers"] is None          # JITFLOW_NUM_THREADS=1: no parallel loop, the pool never starts
    if info["ours"] is not None:
        assert info["ours"] == 1
    assert all(n is None or n <= 1 for n in info["numpy"])   # numpy's copy capped at the budget


def test_blas_runs_on_one_thread_beside_the_pool():
    f = tf.jit(lambda a, b: tf.matmul(a, b))
    f(_data(7, (64, 64)), _data(8, (64, 64)))
    source, path = blas.blas_source()
    if path is None:
        pytest.skip("no BLAS library in this environment")
    assert thread_budget.openblas_threads(path) == 1
    assert thread_budget.apply_blas_budget()[path] == 1


FAILING = """
import json, sys, numpy as np
from jitflow.codegen import thread_pool
started = thread_pool.start(workers=3, stack_bytes=1 << 60)    # no thread can get such a stack
import jitflow as tf
x = np.random.default_rng(0).standard_normal((2048, 512)).astype(np.float32)
got = tf.jit(lambda a: tf.reduce_sum(a * 2.0, axis=1))(x)
ok = bool(np.allclose(got, (x.astype(np.float64) * 2).sum(1), rtol=1e-4, atol=1e-3))
print("@@" + json.dumps({"started": started, "workers": thread_pool.workers(), "ok": ok}))
"""


def test_thread_creation_failure_runs_inline():
    info = _subprocess(FAILING, {"JITFLOW_NUM_THREADS": "4"})
    assert info == {"started": 0, "workers": 0, "ok": True}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_gets_its_own_workers():
    f = tf.jit(lambda a: tf.reduce_sum(a * 3.0, axis=1))
    x = _data(9)
    expected = (x.astype(np.float64) * 3).sum(1)
    for _ in range(3):
        np.testing.assert_allclose(f(x), expected, rtol=1e-4, atol=1e-3)
    from jitflow.runtime.tiered_build import wait_for_background_compiles
    assert wait_for_background_compiles(120)   # the child must not compile: the compile workers' pipes are shared
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child: the same executable, the pool restarted
        ok = all(np.allclose(f(x), expected, rtol=1e-4, atol=1e-3) for _ in range(20))
        os.write(write, b"1" if ok and thread_pool.workers() == max(0, cpu.num_threads() - 1) else b"0")
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1" and status == 0


def test_sgd_step_with_split_gemms_matches_numpy():
    """The weight update W -= lr * X^T @ C runs as a split GEMM that updates W in place (beta=1)."""
    x, c, w0 = _data(11, (256, 784)), _data(12, (256, 512)), _data(13, (784, 512))
    graph = tf.Graph()
    with graph.as_default():
        X, C = tf.placeholder(tf.float32, (None, 784)), tf.placeholder(tf.float32, (None, 512))
        W = tf.Variable(w0)
        loss = tf.reduce_sum(tf.matmul(X, W) * C)
        train = tf.train.GradientDescentOptimizer(0.01).minimize(loss)
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(3):
                sess.run(train, {X: x, C: c})
            got = sess.run(W)
    expected = w0.astype(np.float64) - 3 * 0.01 * (x.T.astype(np.float64) @ c)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_the_pools_object_code_goes_through_the_disk_cache(tmp_path):
    """The pool's IR is compiled once per machine, not once per process: a second process links the
    object the first one stored (runtime/thread_budget.py cache_pool_object)."""
    import json
    import os
    import subprocess
    import sys
    script = ("import numpy as np, jitflow as tf, json; from jitflow.codegen import thread_pool as p; "
              "x = tf.placeholder(tf.float32, [1 << 20]); s = tf.Session(); "
              "v = s.run(tf.tanh(x) * 2.0, {x: np.ones(1 << 20, np.float32)}); "
              "print(json.dumps([float(v[0]), p.workers()]))")
    env = dict(os.environ, JITFLOW_CACHE_DIR=str(tmp_path), JITFLOW_NUM_THREADS="2")
    env.pop("JITFLOW_CACHE", None)
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    metas = [json.loads(m.read_text()) for m in tmp_path.rglob("meta.json")]
    pool_entries = [m for m in metas if m.get("parts", {}).get("thread_pool")]
    assert len(pool_entries) == 1, metas
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert json.loads(first.stdout.splitlines()[-1]) == json.loads(second.stdout.splitlines()[-1])
    assert json.loads(second.stdout.splitlines()[-1])[1] == 1      # the cached pool started its worker
    assert len([m for m in tmp_path.rglob("meta.json")
                if json.loads(m.read_text()).get("parts", {}).get("thread_pool")]) == 1
