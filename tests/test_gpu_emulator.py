"""The CPU-emulated CUDA driver (tests/gpu_emulator.py) under the real GpuExecutable: Session runs
placed on '/gpu:0' compile PTX, load it through the fake driver and run the kernels on the host."""
import ctypes
import os

import numpy as np
import pytest

import gpu_emulator
import jitflow as tf
from jitflow import placement
from jitflow.codegen import ptx
from jitflow.runtime import counters, cuda, gpu_executable
from jitflow.runtime.gpu_executable import GpuExecutable, SyncedVariables


@pytest.fixture
def emulated_gpu(monkeypatch):
    with gpu_emulator.emulated_gpu(monkeypatch) as driver:
        yield driver


@pytest.fixture
def gpu_calls(monkeypatch):
    """Counts GpuExecutable calls (proof that a run went through the GPU executable)."""
    calls = []
    real = GpuExecutable.__call__

    def counted(self, feeds, states):
        calls.append(self)
        return real(self, feeds, states)
    monkeypatch.setattr(GpuExecutable, "__call__", counted)
    return calls


def test_elementwise_reduce_and_gather_run_on_the_emulated_gpu(emulated_gpu, gpu_calls):
    assert cuda.driver() is emulated_gpu and cuda.require() is emulated_gpu
    assert placement.gpu_missing_reason() is None
    assert [d.name for d in placement.devices()] == ["/cpu:0", "/gpu:0"]
    rng = np.random.default_rng(1)
    X = rng.standard_normal(1000).astype(np.float32)
    I = np.array([3, 1, 999, 0, 5, 3], np.int32)
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [1000])
        i = tf.placeholder(tf.int32, [6])
        with tf.device("/gpu:0"):
            y = x * 2 + 1
            s = tf.reduce_sum(x)
            g = tf.gather(x, i)
        with tf.Session() as sess:
            got_y, got_s, got_g = sess.run([y, s, g], {x: X, i: I})
            assert isinstance(sess._variables, SyncedVariables)
    np.testing.assert_allclose(got_y, X * 2 + 1, rtol=1e-6)
    np.testing.assert_allclose(got_s, X.sum(dtype=np.float64), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got_g, X[I])
    assert len(gpu_calls) == 1 and gpu_calls[0].device == "gpu" and gpu_calls[0].driver is emulated_gpu
    assert emulated_gpu.modules_loaded == 1
    assert emulated_gpu.launches == len(emulated_gpu.kernel_names) >= 3
    names = emulated_gpu.kernel_names
    assert any("loop" in n for n in names) and any("reduce" in n for n in names)


def test_reductions_softmax_and_matmul_use_threads_shuffles_and_shared_memory(emulated_gpu):
    """Kernels that synchronize (warp shuffles, block barriers, shared memory) run with a host thread per
    GPU thread of a block."""
    rng = np.random.default_rng(2)
    A = rng.standard_normal((20, 37)).astype(np.float32)
    B = rng.standard_normal((3, 3000)).astype(np.float32)
    M = rng.standard_normal((33, 17)).astype(np.float32)
    with tf.Graph().as_default():
        a, b, m = (tf.placeholder(tf.float32, v.shape) for v in (A, B, M))
        with tf.device("/gpu:0"):
            fetches = [tf.reduce_max(a, axis=1), tf.reduce_mean(a, axis=0), tf.nn.softmax(a),
                       tf.reduce_sum(b, axis=1), tf.matmul(m, m, transpose_b=True), tf.argmax(a, axis=1)]
        with tf.Session() as sess:
            mx, mean, soft, rows, mm, am = sess.run(fetches, {a: A, b: B, m: M})
    np.testing.assert_allclose(mx, A.max(1))
    np.testing.assert_allclose(mean, A.mean(0), rtol=1e-5, atol=1e-6)
    e = np.exp(A - A.max(1, keepdims=True))
    np.testing.assert_allclose(soft, e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(rows, B.sum(1, dtype=np.float64), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mm, M @ M.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(am, A.argmax(1))


def test_gradient_on_the_emulated_gpu_matches_finite_differences(emulated_gpu):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 5))
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float64, X.shape)
        with tf.device("/gpu:0"):
            loss = tf.reduce_sum(tf.tanh(x) * x)
            grad, = tf.gradients(loss, [x])
        with tf.Session() as sess:
            got = sess.run(grad, {x: X})
            eps, numeric = 1e-6, np.zeros_like(X)
            for k in range(X.size):
                d = np.zeros(X.size)
                d[k] = eps
                d = d.reshape(X.shape)
                numeric.flat[k] = (sess.run(loss, {x: X + d}) - sess.run(loss, {x: X - d})) / (2 * eps)
    np.testing.assert_allclose(got, np.tanh(X) + X / np.cosh(X) ** 2, rtol=1e-10)
    np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-7)


def test_variable_updated_on_the_gpu_keeps_its_value_and_reads_back_on_the_host(emulated_gpu):
    start = np.arange(6, dtype=np.float32).reshape(2, 3)
    step = np.full((2, 3), 0.5, np.float32)
    with tf.Graph().as_default():
        with tf.device("/gpu:0"):
            v = tf.Variable(start, name="v")
            inc = tf.placeholder(tf.float32, [2, 3])
            update = tf.assign_add(v, inc)
            total = tf.reduce_sum(v)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(3):
                sess.run(update, {inc: step})
            assert sess.run(total) == pytest.approx(float((start + 3 * step).sum()))
            before = counters.stats()
            # the host store (what Saver and CPU runs read) syncs from the device when asked
            host = sess._variables[v.op.name]
            np.testing.assert_array_equal(host, start + 3 * step)
            after = counters.stats()
            assert after.get("gpu_state_downloads", 0) == before.get("gpu_state_downloads", 0) + 1
            # ... and hands the array out writable: the next GPU run uploads it again
            np.testing.assert_array_equal(sess.run(update, {inc: step}), start + 4 * step)
            assert counters.stats().get("gpu_state_uploads", 0) == after.get("gpu_state_uploads", 0) + 1
            np.testing.assert_array_equal(v.eval(session=sess), start + 4 * step)


def _train_like_runs(sessions: int = 2) -> tuple[list, "gpu_emulator.EmulatedDriver"]:
    driver = cuda.require()
    results = []
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [64])
        with tf.device("/gpu:0"):
            v = tf.Variable(np.linspace(-1, 1, 64).astype(np.float32))
            loss = tf.reduce_sum(tf.square(v - x))
            train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
        for _ in range(sessions):     # a second Session: its variables live elsewhere (graph recorded again)
            with tf.Session() as sess:
                sess.run(tf.global_variables_initializer())
                for k in range(3):
                    results.append(sess.run([loss, train], {x: np.full(64, k, np.float32)})[0])
                results.append(sess.run(v))
    return results, driver


def test_cuda_graphs_on_and_off_give_the_same_results(monkeypatch):
    with gpu_emulator.emulated_gpu(monkeypatch):
        graphs, with_graphs = _train_like_runs()
    monkeypatch.setenv("JITFLOW_CUDA_GRAPHS", "0")
    with gpu_emulator.emulated_gpu(monkeypatch):
        plain, without = _train_like_runs()
    assert with_graphs.graph_launches > 0 and with_graphs.captures >= 2
    assert without.graph_launches == 0 and without.captures == 0
    assert with_graphs.launches == without.launches > 0
    for a, b in zip(graphs, plain):
        np.testing.assert_array_equal(a, b)
    # and against numpy: v <- v - 0.1 * 2 (v - x), three steps with x = 0, 1, 2
    v = np.linspace(-1, 1, 64).astype(np.float32)
    for k in range(3):
        assert graphs[k] == pytest.approx(float(np.sum((v - k) ** 2)), rel=1e-5)
        v = v - np.float32(0.2) * (v - k)
    np.testing.assert_allclose(graphs[3], v, rtol=1e-6)


def test_the_fixture_leaves_no_fake_driver_behind():
    before = dict(cuda._state)
    mirrors = dict(gpu_executable._mirrors)
    compile_ptx, cache = ptx.compile_ptx, os.environ.get("JITFLOW_CACHE")
    with pytest.MonkeyPatch.context() as mp:
        with gpu_emulator.emulated_gpu(mp) as driver:
            assert cuda.driver() is driver and gpu_executable.mirror().driver is driver
            assert ptx.compile_ptx is not compile_ptx and os.environ["JITFLOW_CACHE"] == "0"
    assert dict(cuda._state) == before and dict(gpu_executable._mirrors) == mirrors
    assert ptx.compile_ptx is compile_ptx and os.environ.get("JITFLOW_CACHE") == cache
    assert cuda._state.get("driver") is not driver


def test_device_memory_is_aligned_garbage_filled_and_range_checked(emulated_gpu):
    d = emulated_gpu
    free0, total = d.memory_info()
    p = d.alloc(10)
    assert p % 256 == 0 and d.memory_info()[0] == free0 - 256
    assert ctypes.string_at(p, 256) == bytes([0xA5]) * 256
    src = np.arange(8, dtype=np.int32)
    d.to_device(p, src.ctypes.data, src.nbytes)
    q = d.alloc(32)
    d.copy(q, p, 32)
    out = np.zeros(8, np.int32)
    d.to_host(out.ctypes.data, q, 32)
    np.testing.assert_array_equal(out, src)
    d.memset(q, 16)
    d.to_host(out.ctypes.data, q, 32)
    np.testing.assert_array_equal(out, [0, 0, 0, 0, 4, 5, 6, 7])
    with pytest.raises(cuda.CudaError, match="cuMemcpyHtoD"):
        d.to_device(p + 200, src.ctypes.data, 64)
    with pytest.raises(cuda.CudaOutOfMemoryError):
        d.alloc(total)
    d.free(p)
    d.free(q)
    assert d.memory_info() == (free0, total)
    start, stop = d.event(), d.event()
    d.record(start)
    d.record(stop)
    assert d.elapsed_ms(start, stop) >= 0 and d.peak_bandwidth() > 0


def test_load_module_names_a_kernel_it_cannot_emulate(emulated_gpu):
    ir = ("declare i32 @llvm.nvvm.read.ptx.sreg.laneid()\n"
          "define ptx_kernel void @k0_odd(ptr %b0) {\nentry:\n"
          "  %l = call i32 @llvm.nvvm.read.ptx.sreg.laneid()\n  store i32 %l, ptr %b0\n  ret void\n}\n")
    emulated_gpu.ir_by_ptx["fake ptx"] = ir
    with pytest.raises(gpu_emulator.EmulationError, match=r"k0_odd.*laneid"):
        emulated_gpu.load_module("fake ptx")
    with pytest.raises(gpu_emulator.EmulationError, match="no LLVM IR"):
        emulated_gpu.load_module("unknown ptx")


def test_seeded_random_ops_on_the_emulated_gpu_match_the_cpu_run(emulated_gpu):
    """The GPU random kernels (philox, with the run counter kept on the device) draw the CPU's numbers."""
    def draws(device):
        with tf.Graph().as_default():
            with tf.device(device):
                u = tf.random_uniform([1000], seed=7)
                n = tf.random_normal([3, 5], seed=8)
            with tf.Session() as sess:
                return [sess.run([u, n]) for _ in range(2)]
    gpu = draws("/gpu:0")
    assert "k0_random" in emulated_gpu.kernel_names
    cpu = draws("/cpu:0")
    for (gu, gn), (cu, cn) in zip(gpu, cpu):
        np.testing.assert_allclose(gu, cu, rtol=1e-6)
        np.testing.assert_allclose(gn, cn, rtol=1e-5, atol=1e-6)
        assert 0 <= gu.min() and gu.max() < 1 and abs(gu.mean() - 0.5) < 0.05
    assert not np.array_equal(gpu[0][0], gpu[1][0])     # the counter advanced between runs
