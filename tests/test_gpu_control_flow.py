"""cond / while on the GPU path (codegen/ptx_control_flow.py): the launch plans, the PTX through
ptxas, and the runs through the real GpuExecutable on the CPU-emulated driver (tests/gpu_emulator.py)
against the CPU runs of the same graphs."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.codegen import gpu, ptx
from jitflow.codegen.ptx_control_flow import CHUNK_TRIPS, UNROLL_LAUNCHES
from jitflow.errors import InvalidArgumentError, UnsupportedError
from jitflow.framework.lowering import lower_run
from jitflow.passes import run_pipeline
from jitflow.passes.fusion import schedule_function


def plan_of(fetches, feeds):
    lowered = lower_run(tf.get_default_graph(), fetches, feeds)
    text, plan = gpu.generate_llvm_ir(schedule_function(run_pipeline(lowered.function)))
    return text, plan


def counted_loop(x, limit, trips=None):
    n = limit if trips is None else trips
    return tf.while_loop(lambda i, v: i < n, lambda i, v: (i + 1, v * 0.5 + 1.0), [0, x],
                         maximum_iterations=limit)[1]


def test_a_bounded_loop_is_recorded_trip_by_trip_and_its_kernels_compiled_once():
    x = tf.placeholder(tf.float32, [4])
    feeds = {x: np.ones(4, np.float32)}
    _, one = plan_of([counted_loop(x, 1)], feeds)
    tf.reset_default_graph()
    x = tf.placeholder(tf.float32, [4])
    _, many = plan_of([counted_loop(x, 40)], {x: np.ones(4, np.float32)})
    assert many.kernels == one.kernels            # the body is compiled once whatever the trip count
    per_trip = (len(many.launches) - len(one.launches)) // 39
    assert per_trip > 0 and len(many.launches) == len(one.launches) + 39 * per_trip
    assert all(step.op != "repeat" for step in many.launches)      # one CUDA graph, no host round trip


def test_an_unbounded_or_long_loop_repeats_a_chunk_from_the_host():
    x = tf.placeholder(tf.float32, [4])
    unbounded = tf.while_loop(lambda v: v[0] < 100.0, lambda v: v * 2.0, [x])
    long = counted_loop(x, 100000)
    _, plan = plan_of([unbounded, long], {x: np.ones(4, np.float32)})
    repeats = [(i, step) for i, step in enumerate(plan.launches) if step.op == "repeat"]
    assert len(repeats) == 2
    for i, step in repeats:
        chunk = plan.launches[i + 1:i + 1 + step.nbytes]
        assert len(chunk) == step.nbytes and all(s.op == "launch" for s in chunk)
        assert step.nbytes <= UNROLL_LAUNCHES
    assert repeats[0][1].nbytes % CHUNK_TRIPS == 0


def test_the_modules_pass_ptxas():
    if ptx.ptxas_path() is None:
        pytest.skip("ptxas is not on PATH")
    x = tf.placeholder(tf.float32, [5])
    p = tf.placeholder(tf.bool, [])
    y = tf.cond(p, lambda: tf.sin(x), lambda: counted_loop(x, 3))
    z = tf.while_loop(lambda v: tf.reduce_sum(v) < 50.0, lambda v: tf.cond(v[0] > 2.0, lambda: v * 2.0,
                                                                          lambda: v + 1.0), [x])
    g, = tf.gradients(tf.reduce_sum(counted_loop(x, 4) * y), [x])
    text, plan = plan_of([y, z, g], {x: np.ones(5, np.float32), p: np.bool_(True)})
    compiled = ptx.compile_ptx(text, plan.kernels, "sm_80")
    ok, messages = ptx.check_ptx(compiled.ptx, "sm_80")
    assert ok, messages


def test_a_nested_loop_without_a_bound_names_the_op():
    x = tf.placeholder(tf.float32, [3])
    y = tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, tf.while_loop(
        lambda w: w[0] < 10.0, lambda w: w * 2.0, [v], name="inner")), [0, x], maximum_iterations=3)[1]
    with pytest.raises(UnsupportedError, match="inner.*maximum_iterations"):
        plan_of([y], {x: np.ones(3, np.float32)})


# ---- runs through the real GpuExecutable on the emulated driver ---------------------------------
@pytest.fixture
def device(monkeypatch):
    from gpu_emulator import emulated_gpu
    with emulated_gpu(monkeypatch) as driver:
        yield driver


def both(build, feeds_of, runs=1):
    """The graph's fetches run on the CPU and under /gpu:0 (emulated): (cpu results, gpu results)."""
    out = []
    for spec in (None, "/gpu:0"):
        graph = tf.Graph()
        with graph.as_default(), tf.device(spec):
            fetches, placeholders = build()
            with tf.Session() as sess:
                out.append([sess.run(fetches, feeds_of(placeholders)) for _ in range(runs)])
    return out


def test_cond_runs_only_the_taken_branch_on_the_gpu(device):
    def build():
        p, e, k = tf.placeholder(tf.bool, []), tf.placeholder(tf.float32, [4, 2]), tf.placeholder(tf.int32, [])
        bad = lambda: tf.gather(e, k) * 2.0      # noqa: E731 - k = 9 is out of range
        return [tf.cond(p, lambda: e[0] + 1.0, bad), tf.cond(p, bad, lambda: e[1] - 1.0)], (p, e, k)
    e = np.arange(8, dtype=np.float32).reshape(4, 2)
    for taken in (True, False):
        with tf.Graph().as_default(), tf.device("/gpu:0"):
            fetches, (p, pe, k) = build()
            with tf.Session() as sess:
                got = sess.run(fetches[0 if taken else 1], {p: taken, pe: e, k: 9})
                np.testing.assert_allclose(got, e[0] + 1.0 if taken else e[1] - 1.0)
                with pytest.raises(InvalidArgumentError, match="9"):
                    sess.run(fetches[1 if taken else 0], {p: taken, pe: e, k: 9})
    assert device.launches > 0


def test_unbounded_and_bounded_loops_match_the_cpu(device):
    from jitflow.runtime import counters

    def build():
        x = tf.placeholder(tf.float32, [6])
        grow = tf.while_loop(lambda v: v[0] < 1e5, lambda v: v * 1.5 + 0.25, [x])          # 27 trips: 2 chunks
        none = tf.while_loop(lambda v: v[0] < 0.0, lambda v: v * 2.0, [x])                 # no trip
        zero = counted_loop(x, 0)
        bounded = counted_loop(x, 7, trips=5)
        nested = tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, counted_loop(v, 4) + tf.cond(
            v[1] > 3.0, lambda: v, lambda: -v)), [0, x], maximum_iterations=3)[1]
        return [grow, none, zero, bounded, nested], x
    values = np.linspace(0.5, 3.0, 6).astype(np.float32)
    before = counters.stats().get("gpu_loop_chunks", 0)
    cpu, gpu_runs = both(build, lambda x: {x: values}, runs=2)
    chunks = counters.stats().get("gpu_loop_chunks", 0) - before
    assert chunks == 2 * (2 + 1)     # per run: grow's 2 chunks of 16 trips, none's 1; the bounded ones none
    for c, g in zip(cpu, gpu_runs):
        for a, b in zip(c, g):
            np.testing.assert_allclose(b, a, rtol=1e-6)
    np.testing.assert_array_equal(gpu_runs[0][1], values)
    np.testing.assert_array_equal(gpu_runs[0][2], values)
    assert device.graph_launches > 0


def test_gradients_through_a_loop_match_the_cpu(device):
    def build():
        w, h0 = tf.placeholder(tf.float32, [5, 5]), tf.placeholder(tf.float32, [3, 5])
        _, h = tf.while_loop(lambda i, h: i < 4, lambda i, h: (i + 1, tf.tanh(h * 0.5 + tf.reduce_sum(w, 0))),
                             [0, h0], maximum_iterations=4)
        return tf.gradients(tf.square(h), [w, h0]) + [h], (w, h0)
    r = np.random.default_rng(3)
    wv, hv = r.standard_normal((5, 5)).astype(np.float32), r.standard_normal((3, 5)).astype(np.float32)
    (cpu,), (gpu_run,) = both(build, lambda ph: {ph[0]: wv, ph[1]: hv})
    for a, b in zip(cpu, gpu_run):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_without_cuda_graphs_the_plan_runs_step_by_step(device, monkeypatch):
    monkeypatch.setenv("JITFLOW_CUDA_GRAPHS", "0")

    def build():
        x = tf.placeholder(tf.float32, [3])
        return [tf.while_loop(lambda v: v[0] < 50.0, lambda v: v + 1.0, [x])], x
    cpu, gpu_runs = both(build, lambda x: {x: np.array([1, 2, 3], np.float32)})
    np.testing.assert_array_equal(gpu_runs[0][0], cpu[0][0])
    assert device.graph_launches == 0


@pytest.mark.parametrize("name", ["cond", "while_loop"])
def test_the_ptx_suites_control_flow_graphs_match_the_cpu(device, name):
    """tests/test_ptx.py's GPU-vs-CPU comparison (a real GPU there) of the control-flow graphs, emulated."""
    from test_ptx import GRAPHS, assert_same, run_on
    cpu, _ = run_on(GRAPHS[name], None)
    gpu_runs, sess = run_on(GRAPHS[name], "/gpu:0")
    assert any(c.on_gpu for c in sess._compiled.values())
    assert_same(gpu_runs, cpu, 2e-5, 1e-5)
