"""The small dtypes tf.float16 (tf.half), tf.int8, tf.int16 and tf.uint8: placeholders, constants,
casts, feeds and fetches of the right numpy dtype; integer arithmetic wraps like numpy/TF; uint8
compares, divides and widens as unsigned; float16 computes per op in float32 and rounds back
(as numpy does); ops that cannot take them reject them at graph building with a TypeError.
A registry sweep compares every elementwise op that accepts a small dtype with its numpy reference."""
import warnings

import numpy as np
import pytest

import jitflow as tf
from jitflow.codegen import ptx
from jitflow.framework.lowering import lower_run
from jitflow.ir.types import SMALL_DTYPES, TensorType, bool_
from jitflow.ops import get_op
from jitflow.ops.elementwise import ELEMENTWISE_BINARY, ELEMENTWISE_UNARY


def run(fetches, feeds=None):
    with tf.Session() as sess:
        return sess.run(fetches, feeds)


def test_dtype_objects():
    assert tf.half is tf.float16 and tf.dtypes.half is tf.float16
    for d, np_type in ((tf.float16, np.float16), (tf.int8, np.int8), (tf.int16, np.int16), (tf.uint8, np.uint8)):
        assert d.as_numpy_dtype is np_type and tf.as_dtype(np_type) is d and tf.as_dtype(d.name) is d
        assert d.base_dtype is d and d.max == (np.finfo(np_type).max if d.is_floating else np.iinfo(np_type).max)
    assert tf.as_dtype("half") is tf.float16
    assert tf.uint8.is_unsigned and not tf.int8.is_unsigned and tf.uint8.is_integer
    assert tf.float16.is_floating and tf.float16.itemsize == 2


def test_placeholder_constant_and_cast_round_trip():
    tf.reset_default_graph()
    h = tf.placeholder(tf.float16, (None, 3))
    u = tf.constant([[0, 128, 255]], tf.uint8)
    f = tf.placeholder(tf.float64, (3,))
    v = np.array([[1.5, -2.25, 65504.0], [1e-3, 0.1, -7.0]], np.float16)
    fv = np.array([0.1, 70000.0, -1e-8])
    got = run([h, u, tf.cast(h, tf.float32), tf.cast(u, tf.float32), tf.cast(f, tf.float16),
               tf.cast(tf.cast(f, tf.float32), tf.half), tf.cast(h, tf.int32), tf.cast(u, tf.float16)],
              {h: v, f: fv})
    assert got[0].dtype == np.float16 and np.array_equal(got[0], v)
    assert got[1].dtype == np.uint8 and np.array_equal(got[1], [[0, 128, 255]])
    np.testing.assert_array_equal(got[2], v.astype(np.float32))
    np.testing.assert_array_equal(got[3], [[0.0, 128.0, 255.0]])               # unsigned: 128 stays 128
    assert got[4].dtype == np.float16
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(got[4], fv.astype(np.float16))
        np.testing.assert_array_equal(got[5], fv.astype(np.float32).astype(np.float16))
    np.testing.assert_array_equal(got[6], v.astype(np.int32))
    np.testing.assert_array_equal(got[7], [[0, 128, 255]])
    assert got[7].dtype == np.float16


def test_float64_to_float16_rounds_once():
    """Just above a float16 tie: rounding through float32 first would land on the tie and round to
    even; numpy (and jitflow) round the double directly."""
    tf.reset_default_graph()
    v = np.array([1 + 2.0 ** -11 + 2.0 ** -40, -(1 + 2.0 ** -11 + 2.0 ** -40), 1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11,
                  65519.99, 65520.0, 1e-9, -0.0, np.inf, np.nan, 2.0 ** -24 * 1.5, 2.0 ** -25])
    got = run(tf.cast(tf.constant(v), tf.float16))
    with np.errstate(over="ignore"):
        want = v.astype(np.float16)
        assert got[0] != v.astype(np.float32).astype(np.float16)[0]
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got[7])


def test_feeds_are_converted_to_the_placeholder_dtype():
    tf.reset_default_graph()
    h = tf.placeholder(tf.float16, ())
    u = tf.placeholder(tf.uint8, (2,))
    a, b = run([h * 2, u + 1], {h: 1.5, u: [7, 254]})
    assert a.dtype == np.float16 and a == 3.0
    assert b.dtype == np.uint8 and np.array_equal(b, [8, 255])


def test_integer_arithmetic_wraps_like_numpy():
    tf.reset_default_graph()
    u = tf.constant(np.array([200, 255, 3], np.uint8))
    i8 = tf.constant(np.array([100, -128, 127], np.int8))
    i16 = tf.constant(np.array([30000, -32768, 300], np.int16))
    got = run([u + tf.constant(100, tf.uint8), u * 2, -u, i8 + i8, -i8, tf.abs(i8), i16 * 3, i16 - 5000])
    uv = np.array([200, 255, 3], np.uint8)
    iv = np.array([100, -128, 127], np.int8)
    jv = np.array([30000, -32768, 300], np.int16)
    with np.errstate(over="ignore"):
        wants = [uv + np.uint8(100), uv * np.uint8(2), -uv, iv + iv, -iv, np.abs(iv), jv * np.int16(3),
                 jv - np.int16(5000)]
    for value, want in zip(got, wants):
        assert value.dtype == want.dtype
        np.testing.assert_array_equal(value, want)


def test_uint8_is_unsigned_in_compares_division_and_casts():
    tf.reset_default_graph()
    a = tf.placeholder(tf.uint8, (4,))
    b = tf.placeholder(tf.uint8, (4,))
    av = np.array([200, 3, 0, 255], np.uint8)
    bv = np.array([100, 7, 5, 9], np.uint8)     # a zero divisor raises (tests/test_reliability_checks.py)
    got = run([a > b, a < b, tf.maximum(a, b), tf.minimum(a, b), a // b, a % b, tf.cast(a, tf.int32),
               tf.cast(a, tf.int8), tf.cast(tf.constant([-1.0, 300.0, 7.9, np.nan]), tf.uint8),
               tf.cast(tf.constant(np.array([-1, 127], np.int8)), tf.uint8), tf.sign(a), tf.nn.relu(a)],
              {a: av, b: bv})
    with np.errstate(divide="ignore"):
        wants = [av > bv, av < bv, np.maximum(av, bv), np.minimum(av, bv), np.floor_divide(av, bv),
                 np.remainder(av, bv), av.astype(np.int32), av.astype(np.int8), np.array([0, 255, 7, 0], np.uint8),
                 np.array([255, 127], np.uint8), np.sign(av), av]
    for k, (value, want) in enumerate(zip(got, wants)):
        assert value.dtype == want.dtype, k
        np.testing.assert_array_equal(value, want, err_msg=str(k))


def test_float16_arithmetic_rounds_per_op_like_numpy():
    tf.reset_default_graph()
    rng = np.random.default_rng(0)
    xv = rng.uniform(-4, 4, 50).astype(np.float16)
    yv = rng.uniform(0.5, 4, 50).astype(np.float16)
    x, y = tf.placeholder(tf.float16, (50,)), tf.placeholder(tf.float16, (50,))
    got = run([x + y, x * y, x / y, tf.exp(x), tf.sigmoid(x), tf.sin(x), tf.round(x), x > y,
               tf.where(x > 0, x, y), tf.nn.softplus(x)], {x: xv, y: yv})
    with np.errstate(all="ignore"):
        wants = [xv + yv, xv * yv, xv / yv, np.exp(xv), (1 / (1 + np.exp(-xv))).astype(np.float16), np.sin(xv),
                 np.round(xv), xv > yv, np.where(xv > 0, xv, yv),
                 (np.maximum(xv, 0) + np.log1p(np.exp(-np.abs(xv)))).astype(np.float16)]
    for k, (value, want) in enumerate(zip(got, wants)):
        assert value.dtype == want.dtype, k
        np.testing.assert_allclose(value.astype(np.float64), want.astype(np.float64), rtol=2e-3, atol=1e-3,
                                   err_msg=str(k))
    np.testing.assert_array_equal(got[0], wants[0])     # one IEEE op: exactly numpy's float16 result
    np.testing.assert_array_equal(got[1], wants[1])


def test_mnist_style_uint8_images():
    tf.reset_default_graph()
    images = np.random.default_rng(1).integers(0, 256, (8, 784)).astype(np.uint8)
    x = tf.placeholder(tf.uint8, (None, 784))
    scaled = tf.cast(x, tf.float32) / 255.0
    mean = tf.reduce_mean(scaled, axis=1)
    np.testing.assert_allclose(run(mean, {x: images}), (images / 255.0).mean(1), rtol=1e-5)


def test_unsupported_ops_reject_small_dtypes_when_building():
    tf.reset_default_graph()
    u = tf.placeholder(tf.uint8, (2, 2))
    h = tf.placeholder(tf.float16, (2, 2))
    with pytest.raises(TypeError, match="reduce_sum.*uint8|uint8.*reduce_sum"):
        tf.reduce_sum(u)
    with pytest.raises(TypeError, match="matmul.*float16|float16.*matmul"):
        tf.matmul(h, h)
    with pytest.raises(TypeError, match="exp.*int8|int8.*exp"):
        tf.exp(tf.placeholder(tf.int8, (2,)))


# ---- registry sweep: every elementwise op that accepts a small dtype vs its numpy reference ----
def _accepts(name, dtype, arity):
    try:
        get_op(name).infer([TensorType(dtype, ())] * arity, {}, name)
    except TypeError:
        return False
    return True


SWEEP = [pytest.param(name, dtype, arity, id=f"{name}-{dtype.name}")
         for arity, names in ((1, ELEMENTWISE_UNARY), (2, ELEMENTWISE_BINARY))
         for name in names for dtype in SMALL_DTYPES if _accepts(name, dtype, arity)]


def _draw(rng, dtype, shape, name, role):
    if dtype.is_integer:
        lo, hi = (1, 6) if name in ("floordiv", "floormod", "pow") and role == 1 else (-120, 120)
        values = rng.integers(lo, hi + 1, size=shape)
        if dtype.is_unsigned:
            values = np.abs(values) * 2
        return values.astype(dtype.np)
    lo, hi = get_op(name).test_domain
    return rng.uniform(lo, hi, size=shape).astype(dtype.np)


@pytest.mark.parametrize("name,dtype,arity", SWEEP)
def test_small_dtype_sweep(name, dtype, arity):
    tf.reset_default_graph()
    rng = np.random.default_rng(len(name) * 31 + dtype.bits)
    shapes = [(3, 4), (4,)] if arity == 2 else [(3, 5)]
    values = [_draw(rng, dtype, s, name, k) for k, s in enumerate(shapes)]
    phs = [tf.placeholder(dtype, s) for s in shapes]
    out = tf.get_default_graph().create_op(name, phs).outputs[0]
    got = run(out, dict(zip(phs, values)))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.asarray(get_op(name).reference(*values))
    assert got.dtype == out.dtype.np and got.dtype == want.dtype
    if dtype.is_floating:
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=2e-3, atol=2e-3)
    else:
        np.testing.assert_array_equal(got, want)


def test_sweep_covers_each_small_dtype():
    for dtype in SMALL_DTYPES:
        assert sum(1 for p in SWEEP if p.values[1] == dtype) >= 8, dtype
    assert any(p.values[0] == "equal" for p in SWEEP) and bool_ not in SMALL_DTYPES


@pytest.mark.skipif(ptx.ptxas_path() is None, reason="ptxas is not on PATH")
def test_small_dtype_kernels_assemble_as_ptx():
    from jitflow.runtime.gpu_build import gpu_program
    tf.reset_default_graph()
    h = tf.placeholder(tf.float16, (64,))
    u = tf.placeholder(tf.uint8, (64,))
    i = tf.placeholder(tf.int8, (64,))
    fetches = [h * h + 1, tf.exp(h), tf.cast(u, tf.float32) / 255.0, u // tf.constant(3, tf.uint8), u > 100,
               tf.cast(h, tf.uint8), i * i, tf.cast(i, tf.float16), tf.maximum(u, 7)]
    feeds = {h: np.ones(64, np.float16), u: np.arange(64, dtype=np.uint8), i: np.arange(64, dtype=np.int8)}
    program = gpu_program(lower_run(tf.get_default_graph(), fetches, feeds).function, "sm_90", verify=True)
    ok, log = ptx.check_ptx(program.ptx, "sm_90")
    assert ok, log
