"""Whether a fused loop is split across threads weighs what one element costs (codegen/loops.py
element_cost), not only how many elements there are: a long chain with tanh on a [32, 64] tensor is
split, a single add on it is not; both compute the same numbers threaded or not."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.codegen import cpu, loops
from jitflow.framework.lowering import lower_run
from jitflow.passes import run_pipeline
from jitflow.passes.fusion import schedule_function


def _kernels(fetch, feeds):
    lowered = lower_run(tf.get_default_graph(), [fetch], feeds)
    schedule = schedule_function(run_pipeline(lowered.function))
    return schedule, [k for k in schedule.kernels if k.kind == "loop"]


def _chain(y, n):
    for _ in range(n // 4):
        y = tf.tanh(y * y * 0.5 + y)
    return y


@pytest.fixture(autouse=True)
def _graph():
    with tf.Graph().as_default():
        yield


def test_heavy_chain_kernels_are_split_and_a_single_add_is_not(monkeypatch):
    monkeypatch.setattr(cpu, "num_threads", lambda: 2)
    value = np.random.default_rng(0).uniform(-0.5, 0.5, (32, 64)).astype(np.float32)
    x = tf.placeholder(tf.float32, (32, 64))
    schedule, kernels = _kernels(_chain(x, 200), {x: value})
    costs = [loops.element_cost(loops.prepare_loop_kernel(schedule, k)[0]) for k in kernels]
    infos = [loops.emit_loop_kernel(f"k{i}", schedule, k, set())[2] for i, k in enumerate(kernels)]
    heavy = [info for info, cost in zip(infos, costs) if cost >= 128]    # 2048 elements x 128 = PARALLEL_MIN_WORK
    assert len(heavy) >= 3 and all(cpu._threads_for(info) == 2 for info in heavy)
    schedule, kernels = _kernels(x + 1.0, {x: value})
    info = loops.emit_loop_kernel("k", schedule, kernels[0], set())[2]
    assert loops.element_cost(loops.prepare_loop_kernel(schedule, kernels[0])[0]) == 1
    assert cpu._threads_for(info) == 1


def test_threaded_chain_matches_numpy():
    value = np.random.default_rng(1).uniform(-0.5, 0.5, (32, 64)).astype(np.float32)
    x = tf.placeholder(tf.float32, (32, 64))
    y = _chain(x, 400)
    with tf.Session() as sess:
        got = sess.run(y, {x: value})
    want = value.astype(np.float64)
    for _ in range(100):
        want = np.tanh(want * want * 0.5 + want)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
