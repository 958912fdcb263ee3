"""Minimal regression tests for the bugs the differential fuzzer (jitflow/fuzz.py) found.
Each names the fuzz case that found it and what was wrong; docs/RELIABILITY.md lists them."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.ops import get_op


def _run(fetches, feed=None, init=True):
    with tf.Session() as sess:
        if init:
            sess.run(tf.global_variables_initializer())
        return sess.run(fetches, feed)


# ---- 1. a 1-element constant read by a library kernel had no buffer (compile error) ---------------
def test_matmul_and_inverse_of_one_element_constants():
    """case 2:161: `tf.matmul(x, tf.constant([[2.0]]), transpose_a=True)` raised
    "RuntimeError: matmul operand const has no buffer": 1-element constants are inlined into
    loops as literals, but the GEMM reads its operands from memory. Fixed in passes/fusion.py
    (assign_sources gives such constants a buffer)."""
    x = tf.placeholder(tf.float32, [1, 3])
    y = tf.matmul(x, tf.constant([[2.0]]), transpose_a=True)
    z = tf.matmul(tf.constant([[3.0]]), tf.constant([[2.0]]))
    w = tf.matrix_inverse(tf.constant([[4.0]]))
    got = _run([y, z, w], {x: [[1.0, 2.0, 3.0]]}, init=False)
    np.testing.assert_array_equal(got[0], [[2.0], [4.0], [6.0]])
    assert got[1] == [[6.0]] and got[2] == [[0.25]]


# ---- 2. the cast reference mapped +-inf to 0 ---------------------------------------------------------
@pytest.mark.parametrize("src", [np.float32, np.float64])
@pytest.mark.parametrize("dst", [tf.int32, tf.int64])
def test_cast_of_infinities_saturates_like_the_compiled_code(src, dst):
    """case 2:175: `tf.cast(x, tf.int32)` of inf: compiled 2147483647 (saturating fptosi, the
    documented semantics), numpy reference 0 (it sent every non-finite value to 0). Fixed in
    ops/elementwise.py (_np_cast saturates; only NaN gives 0; int64 bounds compared as powers
    of two, since float(2**63 - 1) rounds up)."""
    values = np.array([np.inf, -np.inf, np.nan, 2.5, -2.5, 1e30, -1e30], src)
    x = tf.placeholder(tf.as_dtype(src), [7])
    got = _run(tf.cast(x, dst), {x: values}, init=False)
    info = np.iinfo(dst.np)
    np.testing.assert_array_equal(got, [info.max, info.min, 0, 2, -2, info.max, info.min])
    np.testing.assert_array_equal(get_op("cast").reference(values, dtype=dst), got)


# ---- 3. the integer reduce_mean reference did not wrap like the compiled code (and TF) ---------------
def test_integer_mean_wraps_in_its_dtype():
    """case 2:550: `tf.reduce_mean` of int32 values whose sum overflows: compiled (as TF, and as
    jitflow's reduce_sum) sums in int32 and wraps; the reference summed in int64 and divided in
    float64 (also inexact for large int64 sums). Fixed in ops/reduce.py (sum in the dtype, divide
    rounding toward zero in integers)."""
    values = np.array([[796340796, 1850665823, -229138420], [1572119374, -585041632, -431104353]], np.int32)
    x = tf.placeholder(tf.int32, [2, 3])
    got = _run(tf.reduce_mean(x, axis=0), {x: values}, init=False)
    wrapped = values.sum(axis=0, dtype=np.int32).astype(np.int64)
    np.testing.assert_array_equal(got, np.trunc(wrapped / 2).astype(np.int32))
    np.testing.assert_array_equal(get_op("reduce_mean").reference(values, axes=(0,)), got)
    big = np.array([2 ** 62 + 1, 2 ** 62 - 1, 3], np.int64)          # exact integer division
    y = tf.placeholder(tf.int64, [3])
    assert _run(tf.reduce_mean(y), {y: big}, init=False) == get_op("reduce_mean").reference(big)


# ---- 4. effect order: kernels of fetched values skipped the read-after-assignment check --------------
def test_fetched_expression_of_an_earlier_read_does_not_see_a_later_assignment():
    """case 21:61: `r = v.value(); a = v.assign_add(x); sess.run(a / r)` gave 1.0 (r read after
    the assignment) instead of (0.5 + 6.43) / 0.5. Kernels computing fetched values are created
    after the hazard pass ran. Fixed in passes/fusion.py (the hazard pass runs again after
    the outputs are assigned)."""
    v = tf.Variable(np.float64([0.5]))
    r = v.value()                          # the variable's read op: created before the assignment
    a = v.assign_add(tf.constant([6.5], tf.float64))
    ratio, magnitude = _run([a / r, tf.abs(r)])
    np.testing.assert_array_equal(ratio, [14.0])
    np.testing.assert_array_equal(magnitude, [0.5])


# ---- 5. GEMM-fused update moved a write before a fetched read ----------------------------------------
def test_fresh_read_between_matmul_and_fused_update_sees_the_old_value():
    """case 21:157: `mm = tf.matmul(a, b); r = v.read_value(); u = v.assign_sub(-2.0 * mm);
    sess.run([u, r])` returned the updated value for r: the update runs as one GEMM into the
    variable at the matmul's position, and the check for readers in between missed a kernel
    that copies a read of the variable. Fixed in passes/fusion.py (_reads_buffer)."""
    v = tf.Variable(np.ones((2, 3), np.float32))
    a = tf.constant(np.ones((2, 4), np.float32))
    b = tf.placeholder(tf.float32, [4, 3])
    mm = tf.matmul(a, b)
    r = v.read_value()
    u = v.assign_sub(tf.constant(-2.0) * mm)
    updated, read = _run([u, r], {b: np.ones((4, 3), np.float32)})
    np.testing.assert_array_equal(read, np.ones((2, 3)))
    np.testing.assert_array_equal(updated, np.full((2, 3), 9.0))


def test_fused_gemm_update_whose_scaled_product_is_fetched():
    """case 21:878: `s = mm * -2.0; u = v.assign_sub(s); sess.run([u, s])` raised "value of
    matmul has no buffer and cannot be fused": fusion removed the product's buffer although
    the fetched s still needs it. Fixed in passes/fusion.py (no fusion when c * (a @ b) is
    fetched)."""
    v = tf.Variable(np.zeros((3, 2), np.float32))
    x = tf.placeholder(tf.float32, [3, 1])
    y = tf.placeholder(tf.float32, [1, 2])
    s = tf.matmul(x, y) * tf.constant(-2.0)
    u = v.assign_sub(s)
    updated, scaled = _run([u, s], {x: [[1.0], [2.0], [3.0]], y: [[1.0, 0.5]]})
    np.testing.assert_array_equal(scaled, [[-2.0, -1.0], [-4.0, -2.0], [-6.0, -3.0]])
    np.testing.assert_array_equal(updated, -scaled)


# ---- 6. the value an assignment leaves was copied before the assignment ran ---------------------------
def test_assignment_result_used_after_a_later_assignment():
    """case 23:2870: `a1 = v.assign_sub(x); a2 = v.assign_sub(x); sess.run(tf.add_n([a1, a1]))`
    with v = -6, x = -2 gave -12 (a1 read before the first assignment) instead of -8. The hazard
    copy of an assign op's result was placed before the assignment. Fixed in passes/fusion.py
    (copy_read copies assignment results after their kernel)."""
    v = tf.Variable(np.int32(-6))
    x = tf.placeholder(tf.int32, [])
    a1 = v.assign_sub(x)
    a2 = v.assign_sub(x)
    total, second = _run([tf.add_n([a1, a1]), a2], {x: -2})
    assert (total, second) == (-8, -2)
    w = tf.Variable(np.float32(1.8))
    b1 = w.assign_add(tf.constant(np.float32(-2.0)))
    w.assign_sub(tf.constant(np.float32(-1.5)))
    later = tf.get_default_graph().get_operations()[-1].outputs[0]
    relu, _ = _run([tf.nn.relu(b1), later])
    assert relu == 0.0                                     # relu(1.8 - 2.0), not relu(1.8)


# ---- known and left open ----------------------------------------------------------------------------
# case 3:3107: expand_dims (and stack) of a tensor with an unknown dim reshaped to a target with -1,
# which cannot be inferred for an empty input; the reshape now carries which dims it copies from the
# input (attr copy_dims) and resolves them once the fed shape is known.
def test_expand_dims_of_an_empty_tensor_with_an_unknown_dim():
    x = tf.placeholder(tf.float32, [0, None])
    y = tf.expand_dims(x, 1)
    assert _run(y, {x: np.zeros((0, 5), np.float32)}, init=False).shape == (0, 1, 5)


def test_stack_and_gradient_of_empty_tensors_with_unknown_dims():
    x = tf.placeholder(tf.float32, [None, None])
    stacked = tf.stack([x, 2 * x], axis=1)
    grad = tf.gradients(tf.reduce_sum(tf.expand_dims(x, 0) * 3.0), x)[0]
    with tf.Session() as sess:
        for shape in ((0, 5), (3, 0), (2, 4)):
            value = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
            s, g = sess.run([stacked, grad], {x: value})
            np.testing.assert_array_equal(s, np.stack([value, 2 * value], axis=1))
            np.testing.assert_array_equal(g, np.full(shape, 3.0, np.float32))


def test_reshape_copy_dims_round_trips_through_the_ir_text():
    from jitflow.ir.parser import parse_function
    from jitflow.ir.printer import print_function
    x = tf.placeholder(tf.float32, [None, 3])
    y = tf.expand_dims(x, 1)
    with tf.Session() as sess:
        text = sess.inspect(y, {x: np.zeros((0, 3), np.float32)}).ir_before_passes
    assert "copy_dims" in text
    assert print_function(parse_function(text)) == text
