"""Issue 15, the @jit side: static arguments in every cache key (item 1), arrays of any layout and
byte order (items 2 and 3), and the bounded per-function executable cache (item 7)."""
import gc
import warnings
import weakref
from functools import partial

import numpy as np
import pytest

import jitflow as tf
from jitflow.envvars import ConfigWarning
from jitflow.jit import RetracingWarning
from jitflow.runtime import build


def _layouts(c):
    """Views and copies of the C-contiguous float array `c` (2-D) that hold the same values."""
    big = np.zeros((c.shape[0] * 2, c.shape[1] * 3), c.dtype)
    big[::2, ::3] = c
    readonly = c.copy()
    readonly.setflags(write=False)
    raw = np.zeros(c.nbytes + 1, np.uint8)
    misaligned = raw[1:].view(c.dtype).reshape(c.shape)
    misaligned[...] = c
    swapped = c.astype(c.dtype.newbyteorder(">" if c.dtype.byteorder in "=<" else "<"))
    return {
        "fortran": np.asfortranarray(c),
        "transposed_view": np.ascontiguousarray(c.T).T,
        "strided_slice": big[::2, ::3],
        "negative_strides": c[::-1, ::-1].copy()[::-1, ::-1],
        "readonly": readonly,
        "misaligned": misaligned,
        "byteswapped": swapped,
        "byteswapped_fortran": np.asfortranarray(swapped),
        "broadcast": None,
    }


# ---------------------------------------------------------------------------------------- item 1

def test_item1_static_argnames_positional_after_true():
    @partial(tf.jit, static_argnames="training")
    def f(x, training):
        return x * 2.0 if training else x - 1.0

    x = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(f(x, True), x * 2.0)
    np.testing.assert_array_equal(f(x, False), x - 1.0)        # was the True result
    np.testing.assert_array_equal(f(x, True), x * 2.0)
    # by keyword, and mixing both styles in any order
    np.testing.assert_array_equal(f(x, training=False), x - 1.0)
    np.testing.assert_array_equal(f(x, training=True), x * 2.0)
    np.testing.assert_array_equal(f(x, False), x - 1.0)
    np.testing.assert_array_equal(f(x=x, training=False), x - 1.0)
    np.testing.assert_array_equal(f(x=x, training=True), x * 2.0)
    np.testing.assert_array_equal(f(x, True), x * 2.0)
    # repeated steady-state calls keep answering per value
    for flag in (True, False, False, True, False):
        np.testing.assert_array_equal(f(x, flag), x * 2.0 if flag else x - 1.0)


def test_item1_static_argnums_positional_and_keyword():
    @tf.jit(static_argnums=1)
    def power(x, n):
        out = x
        for _ in range(n - 1):
            out = out * x
        return out

    x = np.array([2.0, 3.0], np.float32)
    np.testing.assert_array_equal(power(x, 3), x ** 3)
    np.testing.assert_array_equal(power(x, 2), x ** 2)
    np.testing.assert_array_equal(power(x, n=4), x ** 4)      # static by number, passed by name
    np.testing.assert_array_equal(power(x, 3), x ** 3)
    np.testing.assert_array_equal(power(x, n=2), x ** 2)

    @tf.jit(static_argnums=-1)
    def scale(x, k=2):
        return x * float(k)
    np.testing.assert_array_equal(scale(x), x * 2.0)          # default, x is not static
    np.testing.assert_array_equal(scale(x, 5), x * 5.0)
    np.testing.assert_array_equal(scale(x, 3), x * 3.0)


def test_item1_static_value_type_is_part_of_key():
    @partial(tf.jit, static_argnames="mode")
    def f(x, mode):
        return x + 1.0 if mode is True else x - 1.0   # True == 1, but only True adds

    x = np.zeros(3, np.float32)
    np.testing.assert_array_equal(f(x, True), x + 1.0)
    np.testing.assert_array_equal(f(x, 1), x - 1.0)
    np.testing.assert_array_equal(f(x, mode=1), x - 1.0)
    np.testing.assert_array_equal(f(x, mode=True), x + 1.0)


def test_item1_static_arguments_with_pytrees_and_methods():
    @partial(tf.jit, static_argnames=("act", "scale"))
    def g(params, x, act, scale=1.0):
        y = tf.matmul(x, params["w"]) * scale
        return tf.nn.relu(y) if act == "relu" else y

    params = {"w": np.array([[1.0, -1.0]], np.float32)}
    x = np.array([[2.0]], np.float32)
    np.testing.assert_array_equal(g(params, x, "relu"), [[2.0, 0.0]])
    np.testing.assert_array_equal(g(params, x, "linear"), [[2.0, -2.0]])
    np.testing.assert_array_equal(g(params, x, "linear", 3.0), [[6.0, -6.0]])
    np.testing.assert_array_equal(g(params, x, "linear", scale=0.5), [[1.0, -1.0]])
    np.testing.assert_array_equal(g(params, x, act="relu", scale=0.5), [[1.0, 0.0]])

    class Model:
        @partial(tf.jit, static_argnums=0, static_argnames="training")
        def __call__(self, x, training=False):
            return x * 10.0 if training else x

    m, v = Model(), np.ones(2, np.float32)
    np.testing.assert_array_equal(m(v, True), v * 10.0)
    np.testing.assert_array_equal(m(v, False), v)
    np.testing.assert_array_equal(m(v), v)
    np.testing.assert_array_equal(m(v, training=True), v * 10.0)


def test_item1_unhashable_static_argument_raises():
    @partial(tf.jit, static_argnames="cfg")
    def f(x, cfg):
        return x
    with pytest.raises(TypeError, match="hashable"):
        f(np.ones(2, np.float32), [1, 2])
    with pytest.raises(TypeError, match="hashable"):
        f(np.ones(2, np.float32), cfg={"a": 1})


# ---------------------------------------------------------------------------------------- item 3

def test_item3_big_endian_after_little_endian():
    @tf.jit
    def f(x, y):
        return x * 2.0 + y

    little = np.arange(6, dtype="<f4").reshape(2, 3)
    big = little.astype(">f4")
    y = np.float32(1.0)
    expected = little * 2.0 + 1.0
    np.testing.assert_array_equal(f(little, y), expected)
    for _ in range(3):                                   # was zeros (the fast path took it as native)
        out = f(big, y)
        np.testing.assert_array_equal(out, expected)
        assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(f(little, y), expected)
    assert f.trace_count == 1                            # byte order is converted, not retraced
    # big-endian first, other dtypes, 0-d and as a scalar-position argument
    g = tf.jit(lambda a, b: a * b + a)
    ints = np.arange(5, dtype=">i8")
    np.testing.assert_array_equal(g(ints, np.array(3, ">i8")), np.arange(5) * 4)
    np.testing.assert_array_equal(g(ints.astype("<i8"), np.array(3, "<i8")), np.arange(5) * 4)
    np.testing.assert_array_equal(g(ints, np.array(3, ">i8")), np.arange(5) * 4)
    d = np.linspace(-1, 1, 7).astype(">f8")
    np.testing.assert_allclose(tf.jit(tf.tanh)(d), np.tanh(d.astype(np.float64)), rtol=1e-12)
    # the caller's array is left alone
    assert big.dtype.byteorder == ">"
    np.testing.assert_array_equal(big, little)


def test_item3_big_endian_in_nested_and_keyword_arguments():
    @tf.jit
    def f(params, x=None):
        return tf.matmul(x, params["w"]) + params["b"]
    w = np.arange(6, dtype=np.float64).reshape(3, 2)
    b = np.array([1.0, -1.0])
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    expected = x @ w + b
    np.testing.assert_allclose(f({"w": w, "b": b}, x=x), expected)
    np.testing.assert_allclose(f({"w": w.astype(">f8"), "b": b.astype(">f8")}, x=x.astype(">f8")), expected)
    np.testing.assert_allclose(f({"w": w, "b": b}, x=x), expected)


# ---------------------------------------------------------------------------------------- item 2

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_item2_jit_layouts_match_c_contiguous_copies(dtype):
    @tf.jit
    def f(a, b):
        return tf.matmul(a, b) + tf.reduce_sum(a, axis=1, keepdims=True) * 0.5

    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3)).astype(dtype)
    b = rng.normal(size=(3, 5)).astype(dtype)
    expected = a.astype(np.float64) @ b + a.sum(axis=1, keepdims=True) * 0.5
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(f(a, b), expected, rtol=tol, atol=tol)      # the fast path is now set up
    layouts_a, layouts_b = _layouts(a), _layouts(b)
    layouts_a["broadcast"] = np.broadcast_to(a[:1], a.shape)
    layouts_b["broadcast"] = np.broadcast_to(b[:, :1], b.shape)
    for name in layouts_a:
        va, vb = layouts_a[name], layouts_b[name]
        for args in ((va, b), (a, vb), (va, vb)):
            ca, cb = (np.ascontiguousarray(x, dtype=dtype) for x in args)
            want = ca.astype(np.float64) @ cb + ca.sum(axis=1, keepdims=True) * 0.5
            np.testing.assert_allclose(f(*args), want, rtol=tol, atol=tol, err_msg=name)
            np.testing.assert_allclose(f(*args), f(ca, cb), rtol=0, atol=0, err_msg=name)
    assert f.trace_count == 1


def test_item2_jit_layout_on_first_call_and_inputs_unchanged():
    @tf.jit
    def f(x):
        return tf.cumsum(x, axis=1) * 2.0 - tf.matmul(x[::-1][::-1], tf.transpose(x))[:, :1]

    c = np.arange(12, dtype=np.float32).reshape(3, 4) / 7.0
    for name, view in _layouts(c).items():
        if view is None:
            continue
        before = np.array(view, copy=True)
        g = tf.jit(f.fn)                        # a fresh function: the odd layout is the first call
        native = np.ascontiguousarray(view, dtype=np.float32)
        want = np.cumsum(native, axis=1) * 2.0 - (native @ native.T)[:, :1]
        np.testing.assert_allclose(g(view), want, rtol=1e-5, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(g(view), f(native), rtol=0, atol=0, err_msg=name)
        np.testing.assert_allclose(g(view), g(native), rtol=0, atol=0, err_msg=name)
        np.testing.assert_array_equal(view, before, err_msg=name)


def test_item2_jit_integer_and_bool_layouts():
    @tf.jit
    def f(x, m):
        return tf.reduce_sum(tf.where(m, x, tf.zeros_like(x)), axis=0)
    x = np.arange(20, dtype=np.int32).reshape(4, 5)
    m = (x % 3 == 0)
    expected = np.where(m, x, 0).sum(axis=0)
    np.testing.assert_array_equal(f(x, m), expected)
    np.testing.assert_array_equal(f(np.asfortranarray(x), np.asfortranarray(m)), expected)
    np.testing.assert_array_equal(f(x.astype(">i4"), m.T.copy().T), expected)
    xt = np.ascontiguousarray(x.T)
    np.testing.assert_array_equal(f(xt.T, m), expected)


# ---------------------------------------------------------------------------------------- item 7

def _shapes_fn(cache_size=None, factor=3.0):
    def shapes(x):
        return tf.reduce_sum(x * factor)
    return tf.jit(shapes, cache_size=cache_size)


def test_item7_jit_cache_is_bounded_lru():
    f = _shapes_fn(cache_size=3)
    hot = np.ones(2, np.float32)
    for n in range(3, 10):
        assert f(np.ones(n, np.float32)) == 3.0 * n
        assert f(hot) == 6.0                              # used after every new shape: never evicted
        assert len(f._cache) <= 3 and len(f.signatures()) <= 3
        assert set(map(id, f._fast.values())) <= set(map(id, f._cache.values()))
    assert f.evictions == 7 + 1 - 3
    traces = f.trace_count
    assert f(hot) == 6.0 and f.trace_count == traces     # the hot signature stayed cached
    assert f(np.ones(3, np.float32)) == 9.0               # an evicted one is traced again, still right
    assert f.trace_count == traces + 1
    assert "3 compiled signature(s)" in repr(f)


def test_item7_jit_cache_size_from_env_and_validation(monkeypatch):
    monkeypatch.setenv("JITFLOW_JIT_CACHE_SIZE", "2")
    f = _shapes_fn(factor=5.0)
    assert f.cache_size == 2
    for n in range(1, 5):
        assert f(np.ones(n, np.float32)) == 5.0 * n
    assert len(f._cache) == 2
    assert _shapes_fn(cache_size=7).cache_size == 7        # the argument wins over the variable
    for bad in ("lots", "0", "-3"):     # jitflow.envvars: warn naming the variable, use the default
        monkeypatch.setenv("JITFLOW_JIT_CACHE_SIZE", bad)
        with pytest.warns(ConfigWarning, match="JITFLOW_JIT_CACHE_SIZE"):
            assert _shapes_fn().cache_size == 64
    monkeypatch.delenv("JITFLOW_JIT_CACHE_SIZE")
    assert _shapes_fn().cache_size == 64
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="cache_size"):
            _shapes_fn(cache_size=bad)


def test_item7_jit_warns_once_on_excessive_retracing(monkeypatch):
    monkeypatch.setenv("JITFLOW_JIT_RETRACE_WARNING", "3")

    @tf.jit
    def retraced_function(x):
        return x + 1.0

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 4):
            retraced_function(np.zeros(n, np.float32))
        assert not caught
        for n in range(4, 9):
            np.testing.assert_array_equal(retraced_function(np.zeros(n, np.float32)), np.ones(n))
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert "retraced_function" in messages[0] and "JITFLOW_JIT_CACHE_SIZE" in messages[0]
    assert caught[0].filename == __file__                 # points at the caller's line
    assert issubclass(caught[0].category, RetracingWarning)


def test_item7_evicted_executables_are_freed():
    f = tf.jit(lambda x: tf.reduce_sum(tf.exp(x) * 7.25), cache_size=2)
    first = np.zeros(11, np.float32)
    assert f(first) == pytest.approx(7.25 * 11)
    f(first)                                              # registered on the fast path too
    entry = next(iter(f._cache.values()))
    entry_ref, exe_ref = weakref.ref(entry), weakref.ref(entry.executable)
    del entry
    for n in (12, 13, 14):
        assert f(np.zeros(n, np.float32)) == pytest.approx(7.25 * n)
    assert len(f._cache) == 2
    build.clear_memory_cache()                            # the runtime's own recently-used list
    gc.collect()
    assert entry_ref() is None, gc.get_referrers(entry_ref())
    assert exe_ref() is None
    assert f(first) == pytest.approx(7.25 * 11)           # and it comes back on demand
    f.clear_cache()
    assert not f._cache and not f._fast


def test_item7_bounded_cache_under_threads():
    from concurrent.futures import ThreadPoolExecutor
    f = tf.jit(lambda x, k: x * 2.0 + k, cache_size=2)
    inputs = [(np.arange(n, dtype=np.float32), float(n)) for n in (1, 2, 3, 4)]
    for x, k in inputs:                                   # compile (and evict) outside the race first
        np.testing.assert_array_equal(f(x, k), x * 2.0 + k)

    def work(i):
        x, k = inputs[i % 4]
        return np.array_equal(f(x, k), x * 2.0 + k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RetracingWarning)    # thrashing a cache of 2 is the point here
        with ThreadPoolExecutor(4) as pool:
            assert all(pool.map(work, range(48)))
    assert len(f._cache) <= 2
    assert set(map(id, f._fast.values())) <= set(map(id, f._cache.values()))
