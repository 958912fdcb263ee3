"""The GPU path.

Everywhere: every kind of kernel the GPU lowers (elementwise, reductions in all
their layouts, row groups, argmax, concat, scatter, random, matmul, inverse,
variable updates) and the issue's graphs (the seed graph, a softmax, a matmul, a
full MLP training step) give PTX that `ptxas -arch=sm_90` accepts (skipped only
without ptxas); placement without a GPU falls back to the CPU or raises.

With an NVIDIA GPU (`-m gpu`; skipped when `jitflow.devices()` has none): the
same graphs give the CPU's results to float32 tolerance, random uniforms are
bit-identical, variables stay on the device between runs and come back to the
host when read.
"""
import os
import warnings

import numpy as np
import pytest

import jitflow as tf
from jitflow import placement
from jitflow.codegen import ptx
from jitflow.framework.lowering import lower_run
from jitflow.runtime.build import key_parts
from jitflow.runtime.gpu_build import gpu_program

ARCH = "sm_90"
HAS_GPU = any(d.device_type == "GPU" for d in tf.devices())
needs_ptxas = pytest.mark.skipif(ptx.ptxas_path() is None, reason="ptxas is not on PATH")
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU (jitflow.devices() lists none)")
f32 = np.float32


def rng():
    return np.random.default_rng(7)


# ---- graphs: each builder makes its graph in the current default graph and returns (fetches, feeds) ----
def seed_graph(n=1000):
    x, y = tf.placeholder(tf.float32, (None,)), tf.placeholder(tf.float32, (None,))
    r = rng()
    return [x * x * y + y + 2], {x: r.random(n, f32), y: r.random(n, f32)}


def seed_graph_large():
    return seed_graph(1 << 20)


def broadcast_graph():
    a, b, c = (tf.placeholder(tf.float32, s) for s in ((64, 300), (300,), (64, 1)))
    r = rng()
    return [a + b * c, tf.transpose(a) * 2.0], {a: r.standard_normal((64, 300), f32), b: r.random(300, f32),
                                                c: r.random((64, 1), f32)}


def softmax_graph(shape=(128, 300)):
    a = tf.placeholder(tf.float32, shape)
    return [tf.nn.softmax(a), tf.nn.log_softmax(a)], {a: rng().standard_normal(shape, f32) * 3}


def softmax_long_rows_graph():
    return softmax_graph((16, 5000))


def reduce_graph():
    a = tf.placeholder(tf.float32, (128, 300))
    t = tf.placeholder(tf.float32, (8, 50, 20))
    r = rng()
    fetches = [tf.reduce_sum(a), tf.reduce_mean(a, 0), tf.reduce_max(a, 1), tf.reduce_min(a), tf.reduce_prod(a, 0),
               tf.reduce_sum(t, [0, 2]), tf.reduce_mean(t, [1]), tf.reduce_max(t, [0, 1], keepdims=True),
               tf.reduce_sum(tf.exp(a) * 2.0, 1)]
    return fetches, {a: (r.random((128, 300), f32) * 0.02 + 0.99), t: r.standard_normal((8, 50, 20), f32)}


def long_reduce_graph():
    a = tf.placeholder(tf.float32, (1 << 20,))
    b = tf.placeholder(tf.float32, (4096, 64))
    r = rng()
    return [tf.reduce_sum(a), tf.reduce_max(a), tf.reduce_mean(b, 0)], {a: r.random(1 << 20, f32),
                                                                         b: r.random((4096, 64), f32)}


def arg_graph():
    a = tf.placeholder(tf.float32, (128, 300))
    return [tf.argmax(a, 1), tf.argmin(a, 0), tf.argmax(a, 0, output_type=tf.int32)], \
        {a: rng().standard_normal((128, 300), f32)}


def math_graph():
    a = tf.placeholder(tf.float32, (64, 100))
    p = rng().random((64, 100), f32) * 4 + 0.25
    fetches = [tf.exp(a), tf.log(a), tf.tanh(a - 2), tf.sqrt(a), tf.abs(a - 2), tf.pow(a, 2.5), tf.sigmoid(a - 2),
               tf.floordiv(a, 0.75), tf.floormod(a - 2, 0.75), tf.sign(a - 2), tf.cast(a * 3, tf.int32),
               tf.where(a > 2, a, -a), tf.cast(a > 1, tf.float32), tf.rsqrt(a), tf.maximum(a, 2.0),
               tf.square(a) - tf.minimum(a, 1.5), tf.cast(tf.logical_and(a > 1, a < 3), tf.int32)]
    return fetches, {a: p}


def int_graph():
    i = tf.placeholder(tf.int32, (50,))
    values = rng().integers(-20, 20, 50).astype(np.int32)
    return [i // 3, i % 4, tf.pow(i, 2), i * i, tf.abs(i), tf.maximum(i, 2), tf.cast(i, tf.float64) * 2.0,
            tf.reduce_sum(i), tf.reduce_max(i), tf.cast(i, tf.int64) * 5], {i: values}


def float64_graph():
    d = tf.placeholder(tf.float64, (64, 64))
    return [tf.exp(d), tf.reduce_sum(d, 1), tf.matmul(d, d), tf.reduce_max(d), tf.nn.softmax(d)], \
        {d: rng().standard_normal((64, 64))}


def matmul_graph():
    r = rng()
    fetches, feeds = [], {}
    for m, k, n in ((1, 1, 1), (37, 53, 29), (256, 784, 512), (512, 64, 512), (10, 7, 4)):
        a, b = tf.placeholder(tf.float32, (m, k)), tf.placeholder(tf.float32, (k, n))
        at, bt = tf.placeholder(tf.float32, (k, m)), tf.placeholder(tf.float32, (n, k))
        feeds.update({a: r.standard_normal((m, k), f32), b: r.standard_normal((k, n), f32),
                      at: r.standard_normal((k, m), f32), bt: r.standard_normal((n, k), f32)})
        fetches += [tf.matmul(a, b), tf.matmul(at, b, transpose_a=True), tf.matmul(a, bt, transpose_b=True),
                    tf.matmul(at, bt, transpose_a=True, transpose_b=True), tf.matmul(tf.transpose(at), b)]
    return fetches, feeds


def concat_scatter_graph():
    a = tf.placeholder(tf.float32, (40, 30))
    grad = tf.gradients(tf.reduce_sum(a[:, 5:20] * 3.0) + tf.reduce_sum(a[3:9, ::2]), [a])[0]
    return [tf.concat([a, a * 2], 1), tf.concat([a, tf.exp(a)], 0), grad], {a: rng().standard_normal((40, 30), f32)}


def random_graph():
    return [tf.random_uniform((100, 7), seed=1), tf.random_normal((33,), seed=2),
            tf.truncated_normal((5, 5), seed=3), tf.random_uniform((3,), 2.0, 5.0, seed=4)], {}


def inverse_graph():
    m = tf.placeholder(tf.float32, (9, 9))
    value = rng().standard_normal((9, 9), f32) + 3 * np.eye(9, dtype=f32)
    return [tf.matrix_inverse(m), tf.matmul(tf.matrix_inverse(m), m)], {m: value}


def mlp_graph():
    """784-512-256-10, ReLU, sparse softmax cross-entropy, SGD: one training step (W4)."""
    X, Y = tf.placeholder(tf.float32, (None, 784)), tf.placeholder(tf.int32, (None,))
    h = tf.layers.dense(X, 512, activation=tf.nn.relu)
    h = tf.layers.dense(h, 256, activation=tf.nn.relu)
    logits = tf.layers.dense(h, 10)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=Y, logits=logits))
    train = tf.train.GradientDescentOptimizer(0.05).minimize(loss)
    r = rng()
    return [loss, train], {X: r.standard_normal((256, 784), f32), Y: r.integers(0, 10, 256).astype(np.int32)}


def variable_graph():
    v = tf.Variable(tf.zeros((10,)), name="counter")
    w = tf.Variable(np.arange(6, dtype=f32).reshape(2, 3), name="w")
    return [tf.assign_add(v, tf.ones((10,))), tf.assign(w, w * 2.0 + 1.0)], {}


def cond_graph():
    """Only the taken branch runs (a singular matrix in the other does not fail the run)."""
    p, m = tf.placeholder(tf.bool, ()), tf.placeholder(tf.float32, (6, 6))
    value = rng().standard_normal((6, 6), f32) + 3 * np.eye(6, dtype=f32)
    out = tf.cond(p, lambda: tf.matmul(m, m) + 1.0, lambda: tf.matrix_inverse(m * 0.0))
    return [out, tf.case([(tf.logical_not(p), lambda: tf.reduce_sum(m))], default=lambda: tf.reduce_max(m))], \
        {p: np.bool_(True), m: value}


def while_graph():
    """An unbounded loop (chunks repeated from the host), a bounded one (recorded trip by trip)
    with a cond inside, and the gradient through a bounded loop."""
    x = tf.placeholder(tf.float32, (300,))
    grow = tf.while_loop(lambda v: tf.reduce_sum(v) < 1e5, lambda v: v * 1.25 + 0.5, [x])
    _, bounded = tf.while_loop(lambda i, v: i < 30, lambda i, v: (i + 1, tf.cond(
        tf.reduce_max(v) > 4.0, lambda: v * 0.5, lambda: tf.tanh(v) + v)), [0, x], maximum_iterations=30)
    w = tf.placeholder(tf.float32, (8, 8))
    h0 = tf.placeholder(tf.float32, (4, 8))
    _, h = tf.while_loop(lambda i, h: i < 6, lambda i, h: (i + 1, tf.tanh(tf.matmul(h, w))), [0, h0],
                         maximum_iterations=6)
    dw, dh0 = tf.gradients(tf.reduce_sum(h * h), [w, h0])
    r = rng()
    return [grow, bounded, h, dw, dh0], {x: r.uniform(0.5, 1.5, 300).astype(f32),
                                         w: r.standard_normal((8, 8), f32) * 0.5, h0: r.standard_normal((4, 8), f32)}


GRAPHS = {"seed": seed_graph, "seed_large": seed_graph_large, "broadcast": broadcast_graph,
          "softmax": softmax_graph, "softmax_long_rows": softmax_long_rows_graph, "reduce": reduce_graph,
          "long_reduce": long_reduce_graph, "argmax": arg_graph, "math": math_graph, "int": int_graph,
          "float64": float64_graph, "matmul": matmul_graph, "concat_scatter": concat_scatter_graph,
          "random": random_graph, "inverse": inverse_graph, "mlp_training_step": mlp_graph,
          "variables": variable_graph, "cond": cond_graph, "while_loop": while_graph}


def program_for(builder):
    fetches, feeds = builder()
    targets = [f.value() if isinstance(f, tf.Variable) else f for f in fetches]
    lowered = lower_run(tf.get_default_graph(), targets, dict(feeds))
    return gpu_program(lowered.function, ARCH, verify=True)


# ---- PTX everywhere --------------------------------------------------------------------------------
@needs_ptxas
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_ptx_assembles_for_sm90(name):
    program = program_for(GRAPHS[name])
    assert program.ptx.startswith("//") and f".target {ARCH}" in program.ptx
    ok, log = ptx.check_ptx(program.ptx, ARCH)
    assert ok, f"ptxas rejected the PTX of {name}:\n{log}"
    assert all(f".entry {k}(" in program.ptx for k in program.plan.kernels)


def test_plan_covers_every_kernel_kind():
    kinds = {}
    for name, builder in GRAPHS.items():
        tf.reset_default_graph()
        for launch in program_for(builder).plan.launches:
            kinds.setdefault(launch.kernel.split("_", 1)[-1] if launch.kernel else "memset", name)
    # concat and scatter_slice are library kernels of the registry's kernel table (their records'
    # extra["kernel"]); tests/test_no_name_dispatch.py checks every key has a GPU emitter
    for kind in ("loop", "rows", "reduce", "reduce_combine", "library", "random", "random_bump", "memset"):
        assert kind in kinds, kind


def test_softmax_row_group_reads_each_input_element_once():
    """A warp per row of 1024: 8 float4 loads per lane, exp once per element (the sum's and the
    output's exp(x - max) are one value), max and sum broadcast in registers."""
    a = tf.placeholder(tf.float32, (64, 1024))
    lowered = lower_run(tf.get_default_graph(), [tf.nn.softmax(a)], {a: np.zeros((64, 1024), f32)})
    program = gpu_program(lowered.function, ARCH)
    assert [launch.kernel for launch in program.plan.launches] == ["k0_rows"]
    instructions = [line.split()[0] for line in program.ptx.splitlines() if line.startswith("\t") and line.split()]
    assert sum(op.startswith("ld.global") for op in instructions) == 8
    assert all(op.startswith("ld.global.nc.v4") for op in instructions if op.startswith("ld.global"))
    assert sum(op.startswith("ex2.approx") for op in instructions) == 32


def test_transcendentals_come_from_libdevice_and_are_linked():
    a = tf.placeholder(tf.float32, (100,))
    fetches = [tf.exp(a), tf.log(a), tf.tanh(a), tf.pow(a, a)]
    lowered = lower_run(tf.get_default_graph(), fetches, {a: np.ones(100, f32)})
    program = gpu_program(lowered.function, ARCH)
    for name in ("__nv_expf", "__nv_logf", "__nv_tanhf", "__nv_powf"):
        assert f"@{name}(" in program.llvm_ir
    assert "__nv_" not in program.ptx.split(".entry")[0] or ".func" in program.ptx   # linked, not external
    assert ".extern" not in program.ptx


def test_missing_libdevice_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(ptx, "_libdevice", {})
    monkeypatch.setattr(ptx, "libdevice_candidates", lambda: [])
    text = ("declare float @__nv_expf(float)\ndefine ptx_kernel void @k(ptr %p) {\nentry:\n"
            "  %v = load float, ptr %p\n  %e = call float @__nv_expf(float %v)\n  store float %e, ptr %p\n"
            "  ret void\n}\n")
    with pytest.raises(ptx.LibdeviceNotFoundError, match="libdevice"):
        ptx.compile_ptx(text, ["k"], ARCH)


def test_session_inspect_shows_the_ptx():
    x = tf.placeholder(tf.float32, (None,), name="x")
    y = tf.exp(x) * 2.0
    with tf.Session() as sess:
        info = sess.inspect(y, {x: np.ones(8, f32)}, device="/gpu:0")
    assert ".entry k0_loop(" in info.asm() and "ptx_kernel" in info.llvm_ir
    assert "exp" in info.ir


def test_cache_key_includes_the_gpu_arch():
    cpu, sm90, sm80 = key_parts("func"), key_parts("func", "sm_90"), key_parts("func", "sm_80")
    assert len({cpu["target"], sm90["target"], sm80["target"]}) == 3
    assert "sm_90" in sm90["target"] and "nvptx64" in sm90["target"]


def test_ptx_is_cached_on_disk(tmp_path, monkeypatch):
    from jitflow.runtime import counters
    monkeypatch.setenv("JITFLOW_CACHE_DIR", str(tmp_path))
    first = program_for(seed_graph)
    tf.reset_default_graph()
    hits = counters.stats()["disk_hits"]
    second = program_for(seed_graph)
    assert second.ptx == first.ptx and second.plan == first.plan
    assert any(tmp_path.rglob("meta.json"))
    assert counters.stats()["disk_hits"] == hits + 1


def test_parse_device_strings():
    assert placement.parse_device("/gpu:0") == ("gpu", 0)
    assert placement.parse_device("/device:GPU:1") == ("gpu", 1)
    assert placement.parse_device("/job:localhost/replica:0/task:0/device:CPU:0") == ("cpu", 0)
    assert placement.parse_device("gpu") == ("gpu", 0)
    assert placement.parse_device("") is None and placement.parse_device(None) is None
    with pytest.raises(ValueError):
        placement.parse_device("/tpu:0")


def test_devices_lists_the_cpu_first():
    found = tf.devices()
    assert found[0].name == "/cpu:0" and found[0].device_type == "CPU"
    assert all(d.device_type == "GPU" for d in found[1:])


@pytest.mark.skipif(HAS_GPU, reason="checks the behaviour without a GPU")
def test_without_gpu_device_scope_falls_back_to_cpu_once(monkeypatch):
    monkeypatch.setattr(placement, "_warned", set())
    with tf.device("/gpu:0"):
        x = tf.placeholder(tf.float32, (3,))
        y = x * 2.0
    with tf.Session() as sess:
        with pytest.warns(RuntimeWarning, match="soft placement"):
            np.testing.assert_allclose(sess.run(y, {x: [1, 2, 3]}), [2, 4, 6])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sess.run(y * 3.0, {x: [1, 2, 3]})   # a new signature: no second warning


@pytest.mark.skipif(HAS_GPU, reason="checks the behaviour without a GPU")
def test_without_gpu_hard_placement_raises():
    with tf.device("/device:GPU:0"):
        y = tf.constant([1.0]) * 2.0
    with tf.Session(config={"allow_soft_placement": False}) as sess:
        with pytest.raises(tf.errors.InvalidArgumentError, match="Could not satisfy explicit device"):
            sess.run(y)


@pytest.mark.skipif(HAS_GPU, reason="checks the behaviour without a GPU")
def test_without_gpu_jit_on_gpu_raises_a_clear_error():
    f = tf.jit(lambda a: a + 1.0, device="gpu")
    with pytest.raises(RuntimeError, match="no GPU can be used"):
        f(np.ones(3, f32))
    assert tf.jit(lambda a: a + 1.0, device="cpu")(np.ones(3, f32))[0] == 2.0


# ---- on a GPU: the same graphs give the CPU's results ----------------------------------------------
def run_on(builder, device, steps=1, extra=None):
    """Builds the graph under `device`, initializes its variables, runs its fetches `steps` times."""
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(1234)
        with tf.device(device):
            fetches, feeds = builder()
            init = tf.global_variables_initializer() if tf.global_variables() else None
        sess = tf.Session(graph=graph)
        if init is not None:
            sess.run(init)
        results = [sess.run(fetches, feeds) for _ in range(steps)]
        if extra is not None:
            results.append(extra(sess))
    return results, sess


def assert_same(gpu, cpu, rtol, atol, path="result"):
    if isinstance(gpu, (list, tuple)):
        assert len(gpu) == len(cpu)
        for i, (g, c) in enumerate(zip(gpu, cpu)):
            assert_same(g, c, rtol, atol, f"{path}[{i}]")
    elif gpu is None:
        assert cpu is None
    else:
        gpu, cpu = np.asarray(gpu), np.asarray(cpu)
        assert gpu.dtype == cpu.dtype and gpu.shape == cpu.shape, path
        if gpu.dtype.kind in "iub":
            np.testing.assert_array_equal(gpu, cpu, err_msg=path)
        else:
            np.testing.assert_allclose(gpu, cpu, rtol=rtol, atol=atol, err_msg=path)


TOLERANCES = {"matmul": (1e-4, 1e-4), "mlp_training_step": (1e-4, 1e-5), "reduce": (1e-4, 1e-5),
              "long_reduce": (1e-4, 1e-4), "inverse": (1e-4, 1e-5), "random": (2e-6, 1e-6)}


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_gpu_matches_cpu(name):
    steps = 3 if name in ("mlp_training_step", "variables", "random") else 1
    cpu, _ = run_on(GRAPHS[name], None, steps)
    gpu, sess = run_on(GRAPHS[name], "/gpu:0", steps)
    assert any(c.on_gpu for c in sess._compiled.values())
    rtol, atol = TOLERANCES.get(name, (2e-5, 1e-6))
    assert_same(gpu, cpu, rtol, atol)


@pytest.mark.gpu
@needs_gpu
def test_gpu_random_uniform_is_bit_identical_to_cpu():
    def build():
        return [tf.random_uniform((1000, 37), seed=5), tf.random_uniform((17,), seed=6, dtype=tf.float64)], {}
    cpu, _ = run_on(build, None, 3)
    gpu, _ = run_on(build, "/gpu:0", 3)
    for c_run, g_run in zip(cpu, gpu):
        for c, g in zip(c_run, g_run):
            assert np.array_equal(c.view(np.uint8), g.view(np.uint8))
    assert not np.array_equal(gpu[0][0], gpu[1][0])   # the run counter advances on the device


@pytest.mark.gpu
@needs_gpu
def test_gpu_training_keeps_variables_on_device_and_syncs_on_read(tmp_path):
    from jitflow.runtime import counters
    from jitflow.runtime.gpu_executable import SyncedVariables

    def weights(sess):
        return {v.op.name: sess.run(v) for v in sess.graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)}
    cpu, cpu_sess = run_on(mlp_graph, None, 5, weights)
    before = counters.stats()
    gpu, sess = run_on(mlp_graph, "/gpu:0", 5, weights)
    assert isinstance(sess._variables, SyncedVariables)
    assert_same(gpu[:5], cpu[:5], 1e-4, 1e-5)
    for name, value in cpu[5].items():
        np.testing.assert_allclose(gpu[5][name], value, rtol=1e-4, atol=1e-5)
        # the host copy is stale until read; reading it through the session store syncs it
        np.testing.assert_allclose(sess._variables[name], value, rtol=1e-4, atol=1e-5)
    uploads = counters.stats().get("gpu_state_uploads", 0) - before.get("gpu_state_uploads", 0)
    assert uploads <= 12   # the first upload of each state, not one per step
    with sess.graph.as_default():
        saver = tf.train.Saver()
        path = saver.save(sess, str(tmp_path / "model"))
    with cpu_sess.graph.as_default():
        tf.train.Saver().restore(cpu_sess, path)
    for name, value in cpu[5].items():
        np.testing.assert_allclose(cpu_sess._variables[name], value, rtol=1e-4, atol=1e-5)
    # a host write (restore) reaches the device: the next GPU step starts from the restored values
    with sess.graph.as_default():
        tf.train.Saver().restore(sess, path)
    loss_after_restore = sess.run(sess.graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)[0])
    np.testing.assert_allclose(loss_after_restore, list(cpu[5].values())[0], rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@needs_gpu
def test_gpu_variables_persist_across_runs():
    results, sess = run_on(variable_graph, "/gpu:0", 4)
    np.testing.assert_array_equal(results[-1][0], np.full(10, 4, f32))
    w = np.arange(6, dtype=f32).reshape(2, 3)
    for _ in range(4):
        w = w * 2 + 1
    np.testing.assert_array_equal(results[-1][1], w)


@pytest.mark.gpu
@needs_gpu
def test_gpu_sessions_sharing_an_executable_keep_their_own_variables():
    graph = tf.Graph()
    with graph.as_default(), tf.device("/gpu:0"):
        v = tf.Variable(tf.zeros((5,)))
        step = tf.assign_add(v, tf.ones((5,)))
        init = tf.global_variables_initializer()
    first, second = tf.Session(graph=graph), tf.Session(graph=graph)
    for sess in (first, second):
        sess.run(init)
    for _ in range(3):
        first.run(step)
    second.run(step)
    first.run(step)
    np.testing.assert_array_equal(first.run(v), np.full(5, 4, f32))
    np.testing.assert_array_equal(second.run(v), np.full(5, 1, f32))
    executables = {id(c.executable) for s in (first, second) for key, c in s._compiled.items()}
    assert len(executables) < len(first._compiled) + len(second._compiled)   # the same compiled step


@pytest.mark.gpu
@needs_gpu
def test_gpu_singular_inverse_raises():
    with tf.device("/gpu:0"):
        m = tf.placeholder(tf.float32, (3, 3))
        inv = tf.matrix_inverse(m)
    with tf.Session() as sess:
        with pytest.raises(tf.errors.InvalidArgumentError, match="not invertible"):
            sess.run(inv, {m: np.ones((3, 3), f32)})
        np.testing.assert_allclose(sess.run(inv, {m: 2 * np.eye(3, dtype=f32)}), 0.5 * np.eye(3), atol=1e-6)


@pytest.mark.gpu
@needs_gpu
def test_gpu_jit_matches_cpu():
    def f(x, y):
        return tf.nn.softmax(x * x * y + y + 2), tf.reduce_sum(tf.matmul(x, y, transpose_b=True))
    x, y = rng().standard_normal((64, 200), f32), rng().random((64, 200), f32)
    gpu_f, cpu_f = tf.jit(f, device="gpu"), tf.jit(f)
    assert_same(gpu_f(x, y), cpu_f(x, y), 1e-4, 1e-4)
    entry = next(iter(gpu_f._cache.values()))
    assert getattr(entry.executable, "device", "cpu") == "gpu"


@pytest.mark.gpu
@needs_gpu
def test_gpu_devices_and_placement():
    found = tf.devices()
    assert found[1].name == "/gpu:0" and found[1].device_type == "GPU"
    assert placement.run_device([]) == "cpu"
    if os.environ.get("JITFLOW_GPU_ARCH") is None:
        from jitflow.runtime import cuda
        assert cuda.require().arch.startswith("sm_")
