"""tf.string tensors as host values (jitflow/host_values.py): constants, placeholders, variables,
identity, assignment, mixed string + numeric fetches, Saver round trips, and no string math."""
import os

import numpy as np
import pytest

import jitflow as tf
from jitflow.ir.types import ALL_DTYPES


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def _object_bytes(array, expected):
    assert isinstance(array, np.ndarray) and array.dtype == object
    assert array.tolist() == expected


def test_hello_tensorflow():
    hello = tf.constant("Hello, TensorFlow!")
    assert hello.dtype is tf.string and hello.dtype.name == "string"
    assert str(hello) == 'Tensor("Const:0", shape=(), dtype=string)'
    with tf.Session() as sess:
        out = sess.run(hello)
    assert out == b"Hello, TensorFlow!" and type(out) is bytes


def test_constant_lists_unicode_and_dtypes():
    ab = tf.constant([b"a", b"b"])
    grid = tf.constant([["x", "yz"], ["", "\u00e9"]], name="grid")
    assert ab.shape.as_list() == [2] and grid.shape.as_list() == [2, 2]
    assert str(grid) == 'Tensor("grid:0", shape=(2, 2), dtype=string)'
    with tf.Session() as sess:
        a, g = sess.run([ab, grid])
        _object_bytes(a, [b"a", b"b"])
        _object_bytes(g, [[b"x", b"yz"], [b"", "\u00e9".encode("utf-8")]])
        a[0] = b"changed"                               # a fetched array is the caller's copy
        _object_bytes(sess.run(ab), [b"a", b"b"])
        assert ab.eval().tolist() == [b"a", b"b"]
    assert tf.as_dtype(np.object_) is tf.string and tf.as_dtype("string") is tf.string
    assert tf.as_dtype(np.bytes_) is tf.string and tf.dtypes.string is tf.string
    assert tf.string not in ALL_DTYPES


def test_placeholder_feed_and_errors():
    p = tf.placeholder(tf.string)
    q = tf.placeholder(tf.string, shape=[2], name="q")
    echo = tf.identity(tf.identity(p))
    with tf.Session() as sess:
        assert sess.run(echo, {p: "fed"}) == b"fed"
        assert sess.run(p, {p: b"raw"}) == b"raw"
        _object_bytes(sess.run(echo, {p: [["a", "b"]]}), [[b"a", b"b"]])
        _object_bytes(sess.run(q, {q: np.array(["u", "v"])}), [b"u", b"v"])
        with pytest.raises(ValueError, match="Cannot feed value of shape"):
            sess.run(q, {q: ["only one", "two", "three"]})
        with pytest.raises(tf.errors.InvalidArgumentError, match="must feed a value for placeholder tensor 'q' "
                                                                 "with dtype string and shape \\[2\\]"):
            sess.run(q)
        with pytest.raises(TypeError, match="dtype string"):
            sess.run(p, {p: 3.5})


def test_any_string_tensor_can_be_fed():
    c = tf.constant("const")
    i = tf.identity(c)
    j = tf.identity(i)
    with tf.Session() as sess:
        assert sess.run(j) == b"const"
        assert sess.run(j, {i: "cut"}) == b"cut"
        assert sess.run([c, j], {c: "fed const"}) == [b"fed const", b"fed const"]


def test_string_variables_initialize_assign_and_read():
    v = tf.Variable("text", name="v")
    vl = tf.Variable(["a", "b"], name="vl")
    n = tf.Variable(2.0, name="n")
    new = tf.placeholder(tf.string, [])
    assign = v.assign(new)
    copy = tf.identity(v)
    assert str(v.value()).endswith("dtype=string)") and v.dtype is tf.string
    with tf.Session() as sess:
        with pytest.raises(tf.errors.FailedPreconditionError, match="uninitialized value v"):
            sess.run(copy)
        sess.run(tf.global_variables_initializer())
        assert sess.run(v) == b"text" and sess.run(copy) == b"text"
        _object_bytes(sess.run(vl), [b"a", b"b"])
        assert sess.run(n) == 2.0
        assert sess.run(assign, {new: "updated"}) == b"updated"
        assert sess.run(v) == b"updated" and v.eval() == b"updated"
        assert sess.run(tf.assign(vl, ["c", "d"])).tolist() == [b"c", b"d"]
        _object_bytes(sess.run(vl), [b"c", b"d"])
        some = tf.placeholder_with_default(tf.constant(["x", "y", "z"]), [None])
        _object_bytes(sess.run(some), [b"x", b"y", b"z"])
        assert sess.run(some, {some: ["w"]}).tolist() == [b"w"]
        with pytest.raises(tf.errors.InvalidArgumentError, match="shapes"):
            sess.run(tf.assign(vl, some))
    with tf.Session() as other:                         # each Session has its own values
        other.run(v.initializer)
        assert other.run(v) == b"text"


def test_mixed_string_and_numeric_fetch_runs_numeric_compiled():
    x = tf.placeholder(tf.float32, [None, 3])
    w = tf.Variable(np.arange(6, dtype=np.float32).reshape(3, 2))
    label = tf.Variable("model-a")
    y = tf.matmul(x, w) + 1.0
    loss = tf.reduce_mean(tf.square(y))
    train = tf.train.GradientDescentOptimizer(0.01).minimize(loss)
    data = np.random.RandomState(0).randn(4, 3).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = sess.run({"name": label, "y": y, "both": [label, loss]}, {x: data})
        w0 = np.arange(6, dtype=np.float32).reshape(3, 2)
        np.testing.assert_allclose(got["y"], data @ w0 + 1.0, rtol=1e-5)
        assert got["name"] == b"model-a" and got["both"][0] == b"model-a"
        np.testing.assert_allclose(got["both"][1], np.mean((data @ w0 + 1.0) ** 2), rtol=1e-5)
        assert sess.run([train, label], {x: data})[1] == b"model-a"    # the training op runs
        grad = 2.0 * data.T @ (data @ w0 + 1.0) / (data.shape[0] * 2)
        np.testing.assert_allclose(sess.run(w), w0 - 0.01 * grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("build, op", [
    (lambda s: s + s, "Add"),
    (lambda s: tf.cast(s, tf.float32), "Cast"),
    (lambda s: tf.reduce_sum(s), "Sum"),
    (lambda s: tf.reshape(s, [2, 1]), "Reshape"),
    (lambda s: tf.matmul(s, s), "MatMul"),
    (lambda s: tf.equal(s, s), "Equal"),
    (lambda s: tf.concat([s, s], 0), "ConcatV2"),
])
def test_no_string_math(build, op):
    s = tf.constant(["x", "y"])
    with pytest.raises(TypeError, match=f"^{op} .*does not take tf.string tensors"):
        build(s)


def test_string_variable_cannot_take_numbers_or_add():
    v = tf.Variable("a")
    with pytest.raises(TypeError, match="AssignAdd .*does not take tf.string"):
        v.assign_add("b")
    with pytest.raises(TypeError, match="Expected string"):
        v.assign(3)


def test_numeric_graph_is_not_marked():
    x = tf.constant(1.0) + 2.0
    assert not tf.get_default_graph().__dict__.get("_string_ops")
    with tf.Session() as sess:
        assert sess.run(x) == 3.0


def test_control_dependency_of_numeric_op_on_string_op_is_unsupported():
    v = tf.Variable("a")
    with tf.control_dependencies([v.assign("b")]):
        y = tf.constant(1.0) * 2.0
    with tf.Session() as sess:
        sess.run(v.initializer)
        with pytest.raises(tf.errors.UnsupportedError, match="control dependency"):
            sess.run(y)
        # a group is fine: string and numeric members each run where they belong
        sess.run(tf.group(v.assign("c"), tf.constant(1.0) + 1.0))
        assert sess.run(v) == b"c"


def test_saver_round_trip_with_strings(tmp_path):
    v = tf.Variable("text", name="words")
    vl = tf.Variable([["a", "b"], ["c", "\u00fc"]], name="table")
    n = tf.Variable([1.5, -2.0], name="numbers")
    saver = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(v.assign("saved"))
        path = saver.save(sess, str(tmp_path / "model"))
    index = (tmp_path / "model.index.json").read_text()
    assert '"words": {"dtype": "string", "shape": []}' in index

    tf.reset_default_graph()
    v2 = tf.Variable("other", name="words")
    vl2 = tf.Variable([["", ""], ["", ""]], name="table")
    n2 = tf.Variable([0.0, 0.0], name="numbers")
    with tf.Session() as sess:
        tf.train.Saver().restore(sess, path)
        assert sess.run(v2) == b"saved"
        _object_bytes(sess.run(vl2), [[b"a", b"b"], [b"c", "\u00fc".encode("utf-8")]])
        np.testing.assert_array_equal(sess.run(n2), [1.5, -2.0])


def test_checkpoint_without_strings_is_unchanged_and_corruption_detected(tmp_path):
    from jitflow.train import checkpoint_files as cf
    cf._write_checkpoint(str(tmp_path / "plain"), {"x": np.ones(2, np.float32)}, None)
    assert cf.STRINGS_KEY.encode() not in (tmp_path / "plain.safetensors").read_bytes()
    strings = np.empty(2, object)
    strings[:] = [b"p", b"q"]
    cf._write_checkpoint(str(tmp_path / "s"), {"x": np.ones(2, np.float32), "s": strings}, 3)
    arrays, index = cf.read_checkpoint(str(tmp_path / "s"))
    assert arrays["s"].tolist() == [b"p", b"q"] and index["variables"]["s"]["dtype"] == "string"
    data = bytearray((tmp_path / "s.safetensors").read_bytes())
    data[data.index(b"cA==")] = ord("d")                 # base64 of b"p" -> another value
    (tmp_path / "s.safetensors").write_bytes(bytes(data))
    with pytest.raises(tf.errors.DataLossError):
        cf.read_checkpoint(str(tmp_path / "s"))


def test_meta_graph_encoding_of_string_constants():
    from jitflow.framework.graph_serialization import decode_value, encode_value
    array = np.empty((2, 1), object)
    array[:, 0] = [b"\x00bin", "t\u00e9xt".encode()]
    back = decode_value(encode_value(array))
    assert back.dtype == object and back.shape == (2, 1) and back.tolist() == array.tolist()
