"""Properties of the generated code: widest SIMD in fused loops, fusion decisions,
kernel counts for the workloads the benchmarks measure."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.codegen import cpu


def host_has_avx512():
    return "+avx512f" in cpu._initialize()["features"]


@pytest.mark.skipif(not host_has_avx512(), reason="host CPU has no AVX-512")
def test_fused_elementwise_loop_uses_512_bit_vectors():
    f = tf.jit(lambda x, y: x * x * y + y + 2)
    x = np.ones(1 << 12, np.float32)
    asm = f.inspect(x, x).asm()
    assert "zmm" in asm


@pytest.mark.skipif(not host_has_avx512(), reason="host CPU has no AVX-512")
def test_tanh_loop_is_inline_512_bit_vector_code():
    """tanh is inline polynomial code (codegen/vector_math.py), widened to <16 x float>: no libm call."""
    ir = tf.jit(tf.tanh).inspect(np.ones(1 << 12, np.float32)).optimized_llvm_ir
    assert "<16 x float>" in ir
    assert "@tanhf" not in ir and "@llvm.tanh" not in ir


def test_seed_graph_is_one_kernel():
    f = tf.jit(lambda x, y: x * x * y + y + 2)
    x = np.ones((64, 64), np.float32)
    assert f.inspect(x, x).schedule.count("\n") == 1   # one kernel line + the workspace line


def test_softmax_is_one_row_group_without_stored_exponentials():
    f = tf.jit(lambda a: tf.nn.softmax(a))
    info = f.inspect(np.ones((64, 128), np.float32))
    kernels = [line for line in info.schedule.splitlines() if line.startswith("k")]
    assert all("row group" in line for line in kernels)
    assert not any("exp" in line for line in kernels)        # exp(x - max) is recomputed, not stored


def test_sgd_step_updates_weights_inside_the_gemm():
    X = tf.placeholder(tf.float32, (None, 32))
    w = tf.Variable(np.ones((32, 16), np.float32))
    loss = tf.reduce_mean(tf.square(tf.matmul(X, w)))
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        schedule = sess.inspect([train, loss], {X: np.ones((8, 32))}).schedule
        assert "matmul -> var buffer" in schedule and "assign_sub" not in schedule
        x = np.random.default_rng(0).normal(size=(8, 32)).astype(np.float32)
        w0 = sess.run(w)
        sess.run(train, {X: x})
        expected = w0 - 0.1 * (2 * x.T @ (x @ w0) / (8 * 16))
        np.testing.assert_allclose(sess.run(w), expected, rtol=1e-5, atol=1e-6)


def test_transposed_gemm_operand_is_not_copied():
    f = tf.jit(lambda a: tf.matmul(tf.transpose(a), a))
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    info = f.inspect(x)
    assert "transpose" not in info.schedule
    np.testing.assert_allclose(f(x), x.T @ x)
