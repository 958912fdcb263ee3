"""tf.logging, tf.gfile / tf.io.gfile, tf.strided_slice, tf.random_shuffle, tf.multinomial /
tf.random.categorical, tf.logical_xor, tf.tuple, tf.nn.xw_plus_b, tf.nn.zero_fraction,
tf.nn.weighted_cross_entropy_with_logits, tf.layers.max_pooling1d / average_pooling1d."""
import logging
import os

import numpy as np
import pytest

import jitflow as tf


@pytest.fixture(autouse=True)
def _graph():
    tf.reset_default_graph()
    yield


def _run(fetches, feed=None):
    with tf.Session() as sess:
        return sess.run(fetches, feed_dict=feed)


def _fd_grad(f_np, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f_np(xp) - f_np(xm)) / (2 * eps)
    return g


# ---- tf.logging ----------------------------------------------------------------------------------------------
def test_logging_levels_and_verbosity(caplog):
    assert (tf.logging.DEBUG, tf.logging.INFO, tf.logging.WARN, tf.logging.ERROR, tf.logging.FATAL) == \
        (10, 20, 30, 40, 50)
    old = tf.logging.get_verbosity()
    try:
        tf.logging.set_verbosity(tf.logging.INFO)
        assert tf.logging.get_verbosity() == tf.logging.INFO
        with caplog.at_level(logging.INFO, logger="tensorflow"):
            tf.logging.info("step %d", 3)
            tf.logging.debug("hidden")
            tf.logging.warn("w1")
            tf.logging.warning("w2")
            tf.logging.error("e")
            tf.logging.fatal("f")
            for _ in range(5):
                tf.logging.log_every_n(tf.logging.INFO, "every", 2)
        msgs = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "tensorflow"]
        assert msgs == [(20, "step 3"), (30, "w1"), (30, "w2"), (40, "e"), (50, "f"),
                        (20, "every"), (20, "every"), (20, "every")]
    finally:
        tf.logging.set_verbosity(old)
    with pytest.raises(AttributeError, match="does not implement tf.logging.nope"):
        tf.logging.nope


# ---- tf.gfile / tf.io.gfile ----------------------------------------------------------------------------------
def test_gfile_filesystem(tmp_path):
    g = tf.gfile
    d = str(tmp_path / "a" / "b")
    assert not g.Exists(d)
    g.MakeDirs(d)
    g.MakeDirs(d)                      # existing is fine
    assert g.Exists(d) and g.IsDirectory(d)
    with pytest.raises(tf.errors.AlreadyExistsError):
        g.MkDir(d)
    g.MkDir(os.path.join(d, "c"))
    with pytest.raises(tf.errors.NotFoundError):
        g.MkDir(str(tmp_path / "x" / "y"))
    f = os.path.join(d, "f.txt")
    with g.GFile(f, "w") as fh:
        fh.write("line1\nline2\n")
    assert not g.IsDirectory(f)
    assert g.Stat(f).length == 12 and not g.Stat(f).is_directory and g.Stat(d).is_directory
    with pytest.raises(tf.errors.NotFoundError):
        g.Stat(f + ".missing")
    assert sorted(g.ListDirectory(d)) == ["c", "f.txt"]
    assert g.Glob(os.path.join(d, "*.txt")) == [f]
    g.Copy(f, f + ".bak")
    with pytest.raises(tf.errors.AlreadyExistsError):
        g.Copy(f, f + ".bak")
    g.Copy(f, f + ".bak", overwrite=True)
    g.Rename(f + ".bak", f + ".2")
    assert g.Exists(f + ".2") and not g.Exists(f + ".bak")
    g.Remove(f + ".2")
    with pytest.raises(tf.errors.NotFoundError):
        g.Remove(f + ".2")
    with pytest.raises(tf.errors.NotFoundError):
        g.ListDirectory(str(tmp_path / "missing"))
    walked = list(g.Walk(str(tmp_path / "a")))
    assert walked[0][0] == str(tmp_path / "a") and walked[0][1] == ["b"]
    g.DeleteRecursively(str(tmp_path / "a"))
    assert not g.Exists(str(tmp_path / "a"))
    with pytest.raises(tf.errors.NotFoundError):
        g.DeleteRecursively(str(tmp_path / "a"))


def test_gfile_file_objects(tmp_path):
    f = str(tmp_path / "t.txt")
    with tf.gfile.Open(f, "w") as fh:
        fh.write("ab\ncd\n")
        fh.write(b"ef")
    with tf.gfile.GFile(f) as fh:
        assert fh.readline() == "ab\n"
        assert list(fh) == ["cd\n", "ef"]
    with tf.gfile.FastGFile(f, "rb") as fh:
        data = fh.read()
        assert isinstance(data, bytes) and data == b"ab\ncd\nef"
        assert fh.size() == 8
        fh.seek(3)
        assert fh.read(2) == b"cd" and fh.tell() == 5
    with tf.gfile.GFile(f, "a") as fh:
        fh.write("\ngh")
    assert tf.gfile.GFile(f).readlines() == ["ab\n", "cd\n", "ef\n", "gh"]
    with pytest.raises(tf.errors.NotFoundError):
        tf.gfile.GFile(str(tmp_path / "nope.txt"))
    with pytest.raises(ValueError):
        tf.gfile.GFile(f, "x")


def test_io_gfile(tmp_path):
    g = tf.io.gfile
    d = str(tmp_path / "p" / "q")
    g.makedirs(d)
    assert g.exists(d) and g.isdir(d)
    g.mkdir(os.path.join(d, "r"))
    with g.GFile(os.path.join(d, "x.bin"), "wb") as fh:
        fh.write(b"\x00\x01")
    assert sorted(g.listdir(d)) == ["r", "x.bin"]
    assert g.glob(os.path.join(d, "*.bin")) == [os.path.join(d, "x.bin")]
    g.copy(os.path.join(d, "x.bin"), os.path.join(d, "y.bin"))
    g.rename(os.path.join(d, "y.bin"), os.path.join(d, "z.bin"))
    assert g.GFile(os.path.join(d, "z.bin"), "rb").read() == b"\x00\x01"
    assert g.stat(os.path.join(d, "z.bin")).length == 2
    g.remove(os.path.join(d, "z.bin"))
    assert [w[0] for w in g.walk(str(tmp_path / "p"))] == [str(tmp_path / "p"), d, os.path.join(d, "r")]
    g.rmtree(str(tmp_path / "p"))
    assert not g.exists(str(tmp_path / "p"))
    with pytest.raises(AttributeError, match="tf.io.gfile.nope"):
        g.nope


# ---- tf.strided_slice ----------------------------------------------------------------------------------------
X = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)


@pytest.mark.parametrize("args,kwargs,index", [
    (([0, 1], [2, 3], [1, 1]), {}, (slice(0, 2), slice(1, 3))),
    (([1, 0, 0], [2, 3, 4], [1, 2, -1]), {}, (slice(1, 2), slice(0, 3, 2), slice(0, 4, -1))),
    (([0, 2, 3], [0, 0, 0], [1, -1, -2]), {"begin_mask": 1, "end_mask": 7}, (slice(None), slice(2, None, -1),
                                                                             slice(3, None, -2))),
    (([1, 0, 2], [2, 0, 3], [1, 1, 1]), {"shrink_axis_mask": 5, "ellipsis_mask": 2}, (1, Ellipsis, 2)),
    (([0, 0, -1], [0, 0, 0], [1, 1, 1]), {"new_axis_mask": 2, "begin_mask": 1, "end_mask": 1,
                                          "shrink_axis_mask": 4}, (slice(None), None, -1)),
    (([0, 0], [0, 10], [1, 1]), {"ellipsis_mask": 1}, (Ellipsis, slice(0, 10))),
    (([-3], [-1], [1]), {}, (slice(-3, -1),)),
])
def test_strided_slice(args, kwargs, index):
    x = tf.constant(X)
    out = tf.strided_slice(x, *args, **kwargs)
    expected = X[index]
    assert out.shape.as_list() == list(expected.shape)
    np.testing.assert_array_equal(_run(out), expected)


def test_strided_slice_dynamic_and_grad():
    p = tf.placeholder(tf.float32, [None, 4])
    b = tf.stack([tf.shape(p)[0] - 4, 1])           # a begin computed from shapes: known when specialized
    out = tf.strided_slice(p, b, [3, 4], [1, 2])
    val = np.arange(20, dtype=np.float32).reshape(5, 4)
    np.testing.assert_array_equal(_run(out, {p: val}), val[1:3, 1:4:2])
    fed = tf.placeholder(tf.int32, [2])             # begin values fed at run time: jitflow says it cannot
    with pytest.raises(tf.errors.InvalidArgumentError, match="computable from tensor shapes"):
        _run(tf.strided_slice(p, fed, [3, 4]), {p: val, fed: [1, 1]})
    x = tf.constant(np.arange(12.0).reshape(3, 4))
    loss = tf.reduce_sum(tf.square(tf.strided_slice(x, [2, 0], [0, 4], [-1, 3])))
    (g,) = _run(tf.gradients(loss, [x]))
    expect = np.zeros((3, 4))
    xs = np.arange(12.0).reshape(3, 4)
    expect[2:0:-1, 0:4:3] = 2 * xs[2:0:-1, 0:4:3]
    np.testing.assert_allclose(g, expect)


def test_strided_slice_constant_tensor_args_and_multinomial_tensor_count():
    x = tf.constant(np.arange(12).reshape(3, 4))
    s = tf.strided_slice(x, tf.constant([1, 0]), tf.constant([3, 4]), tf.constant([1, 2]))
    m = tf.multinomial(tf.constant([[0.0, -np.inf]]), tf.constant(4))
    sv, mv = _run([s, m])
    np.testing.assert_array_equal(sv, np.arange(12).reshape(3, 4)[1:3, 0:4:2])
    np.testing.assert_array_equal(mv, np.zeros((1, 4)))


def test_strided_slice_errors():
    x = tf.constant(X)
    with pytest.raises(ValueError):
        tf.strided_slice(x, [0, 0], [1], [1, 1])
    with pytest.raises(ValueError):
        tf.strided_slice(x, [0], [1], [0])
    with pytest.raises(ValueError, match="Multiple ellipses"):
        tf.strided_slice(x, [0, 0], [1, 1], [1, 1], ellipsis_mask=3)
    with pytest.raises(tf.errors.UnsupportedError, match="var"):
        tf.strided_slice(x, [0], [1], var=x)


# ---- random_shuffle / multinomial / categorical --------------------------------------------------------------
def test_random_shuffle_static_and_dynamic():
    tf.set_random_seed(3)
    x = tf.constant(np.arange(40, dtype=np.int32).reshape(20, 2))
    s = tf.random_shuffle(x, seed=7)
    p = tf.placeholder(tf.float32, [None, 3])
    sd = tf.random.shuffle(p)
    pv = np.arange(30, dtype=np.float32).reshape(10, 3)
    with tf.Session() as sess:
        a, b = sess.run(s), sess.run(s)
        c = sess.run(sd, {p: pv})
    for out in (a, b):
        assert out.shape == (20, 2)
        np.testing.assert_array_equal(out[:, 1], out[:, 0] + 1)          # rows stay whole
        assert sorted(out[:, 0].tolist()) == list(range(0, 40, 2))       # a permutation
    assert not np.array_equal(a, b) and not np.array_equal(a, np.arange(40).reshape(20, 2))
    assert sorted(c[:, 0].tolist()) == pv[:, 0].tolist()
    np.testing.assert_array_equal(c[:, 1:], c[:, :1] + [1, 2])
    tf.reset_default_graph()                                              # same seed, same graph: same values
    tf.set_random_seed(3)
    s2 = tf.random_shuffle(tf.constant(np.arange(40, dtype=np.int32).reshape(20, 2)), seed=7)
    np.testing.assert_array_equal(_run(s2), a)


def test_multinomial_frequencies():
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]])
    logits = tf.constant(np.log(probs + 1e-30).astype(np.float32))
    s = tf.multinomial(logits, 4000, seed=1)
    c = tf.random.categorical(logits, 5, dtype=tf.int32, seed=2)
    out, cat = _run([s, c])
    assert out.dtype == np.int64 and out.shape == (2, 4000)
    assert cat.dtype == np.int32 and cat.shape == (2, 5)
    for row in range(2):
        freq = np.bincount(out[row], minlength=3) / 4000.0
        np.testing.assert_allclose(freq, probs[row], atol=0.03)
    assert (out[1] != 2).all()
    p = tf.placeholder(tf.float32, [None, 2])
    d = tf.multinomial(p, 3)
    assert d.shape.as_list() == [None, 3]
    dv = _run(d, {p: np.array([[0.0, -np.inf]] * 4, np.float32)})
    np.testing.assert_array_equal(dv, np.zeros((4, 3)))
    with pytest.raises(ValueError):
        tf.multinomial(tf.constant([1.0, 2.0]), 2)
    with pytest.raises(TypeError):
        tf.multinomial(logits, 2, output_dtype=tf.float32)


# ---- logical_xor / tuple -------------------------------------------------------------------------------------
def test_logical_xor():
    a = np.array([[True, False], [True, False]])
    b = np.array([True, False])
    np.testing.assert_array_equal(_run(tf.logical_xor(tf.constant(a), tf.constant(b))), np.logical_xor(a, b))
    with pytest.raises(TypeError):
        tf.logical_xor(tf.constant([1]), tf.constant([0]))


def test_tuple_gates_on_all_inputs():
    v = tf.Variable(0.0)
    inc = tf.assign_add(v, 1.0)
    x = tf.constant(2.0)
    a, none, op = tf.tuple([x, None, inc.op])
    a2, = tf.tuple([x], control_inputs=[inc])
    assert none is None and isinstance(op, tf.Operation)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(a) == 2.0
        assert sess.run(v) == 1.0                  # fetching a ran the assign too
        sess.run(a2)
        assert sess.run(v) == 2.0
    with pytest.raises(ValueError):
        tf.tuple([None])


# ---- tf.nn ---------------------------------------------------------------------------------------------------
def test_xw_plus_b_and_grad():
    rng = np.random.RandomState(0)
    xv, wv, bv = rng.randn(3, 4), rng.randn(4, 2), rng.randn(2)
    x, w, b = tf.constant(xv), tf.constant(wv), tf.constant(bv)
    y = tf.nn.xw_plus_b(x, w, b)
    assert y.shape.as_list() == [3, 2]
    gw = tf.gradients(tf.reduce_sum(tf.square(y)), [w])[0]
    yv, gwv = _run([y, gw])
    np.testing.assert_allclose(yv, xv @ wv + bv, rtol=1e-10)
    np.testing.assert_allclose(gwv, _fd_grad(lambda w_: np.sum((xv @ w_ + bv) ** 2), wv), rtol=1e-5)


def test_zero_fraction():
    v = np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]], np.float32)
    z = tf.nn.zero_fraction(tf.constant(v))
    zi = tf.nn.zero_fraction(tf.constant([0, 0, 0, 5]))
    zv, ziv = _run([z, zi])
    assert z.dtype == tf.float32 and z.shape.as_list() == []
    assert zv == pytest.approx(0.5) and ziv == pytest.approx(0.75)


def test_weighted_cross_entropy_with_logits():
    rng = np.random.RandomState(1)
    xv = rng.randn(3, 4) * 5
    xv[0, 0] = 80.0                         # large |x| stays finite
    xv[0, 1] = -80.0
    zv = rng.rand(3, 4)

    def ref(x):
        sig = 1 / (1 + np.exp(-x))
        with np.errstate(divide="ignore"):
            return 2.5 * zv * -np.log(sig) + (1 - zv) * -np.log1p(-sig)

    x = tf.constant(xv)
    loss = tf.nn.weighted_cross_entropy_with_logits(labels=tf.constant(zv), logits=x, pos_weight=2.5)
    old = tf.nn.weighted_cross_entropy_with_logits(targets=zv, logits=x, pos_weight=2.5)
    g = tf.gradients(tf.reduce_sum(loss), [x])[0]
    lv, ov, gv = _run([loss, old, g])
    mask = np.abs(xv) < 30
    np.testing.assert_allclose(lv[mask], ref(xv)[mask], rtol=1e-8)
    np.testing.assert_allclose(lv[0, :2], [(1 - zv[0, 0]) * 80, 2.5 * zv[0, 1] * 80], rtol=1e-8)
    np.testing.assert_array_equal(ov, lv)
    small = np.where(mask, xv, 0.3)
    np.testing.assert_allclose(gv[mask], _fd_grad(lambda a: np.sum(ref(a)), small)[mask], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError):
        tf.nn.weighted_cross_entropy_with_logits(labels=zv, logits=x, pos_weight=1.0, targets=zv)
    with pytest.raises(ValueError):
        tf.nn.weighted_cross_entropy_with_logits(labels=np.zeros((2, 2)), logits=x, pos_weight=1.0)


# ---- tf.layers pooling 1-D -----------------------------------------------------------------------------------
def _pool1d_ref(x, size, stride, padding, fn):
    n = x.shape[1]
    if padding == "valid":
        out_n, pad = (n - size) // stride + 1, 0
    else:
        out_n = -(-n // stride)
        pad = max((out_n - 1) * stride + size - n, 0) // 2
    rows = []
    for i in range(out_n):
        lo = i * stride - pad
        rows.append(fn(x[:, max(lo, 0):min(lo + size, n), :], axis=1))
    return np.stack(rows, axis=1)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pooling1d(padding):
    rng = np.random.RandomState(2)
    xv = rng.randn(2, 7, 3).astype(np.float32)
    x = tf.constant(xv)
    mx = tf.layers.max_pooling1d(x, 3, 2, padding=padding)
    av = tf.layers.average_pooling1d(x, 2, 2, padding=padding)
    cls = tf.layers.MaxPooling1D(pool_size=2, strides=1, padding=padding)(x)
    acls = tf.layers.AveragePooling1D(3, 3, padding=padding)
    ac = acls(x)
    mv, avv, cv, acv = _run([mx, av, cls, ac])
    np.testing.assert_allclose(mv, _pool1d_ref(xv, 3, 2, padding, np.max), rtol=1e-6)
    np.testing.assert_allclose(avv, _pool1d_ref(xv, 2, 2, padding, np.mean), rtol=1e-6)
    np.testing.assert_allclose(cv, _pool1d_ref(xv, 2, 1, padding, np.max), rtol=1e-6)
    np.testing.assert_allclose(acv, _pool1d_ref(xv, 3, 3, padding, np.mean), rtol=1e-6)
    assert mx.shape.as_list() == list(mv.shape)


def test_pooling1d_grad_and_errors():
    xv = np.array([[[1.0], [3.0], [2.0], [5.0]]])
    x = tf.constant(xv)
    loss = tf.reduce_sum(tf.layers.average_pooling1d(x, 2, 2)) + tf.reduce_sum(tf.layers.max_pooling1d(x, 2, 2))
    g = _run(tf.gradients(loss, [x])[0])
    np.testing.assert_allclose(g[0, :, 0], [0.5, 1.5, 0.5, 1.5])
    with pytest.raises(ValueError):
        tf.layers.max_pooling1d(tf.constant(np.zeros((2, 3))), 2, 1)
    with pytest.raises(tf.errors.UnsupportedError, match="channels_first"):
        tf.layers.max_pooling1d(x, 2, 1, data_format="channels_first")
