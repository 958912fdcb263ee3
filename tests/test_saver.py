"""tf.train.Saver: round trips of every dtype, name mapping, global_step / max_to_keep / the
`checkpoint` state file, restore in a fresh process, all-or-nothing restore with TF-named errors,
crash safety of save, and the safetensors file format (jitflow/train/saver.py)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import jitflow as tf
from jitflow.train import safetensors_format
from jitflow.train.saver import read_checkpoint

VALUES = {
    "f32": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
    "f64": np.array([np.pi, -1e300, 2.5e-310]),
    "i32": np.array(-7, dtype=np.int32),                    # scalar
    "i64": np.array([[2 ** 40, -3]], dtype=np.int64),
    "flags": np.array([True, False, True]),
    "flag": np.array(True),                                  # bool scalar
    "scope/f64s": np.array(0.125),                           # float64 scalar, scoped name
}


def build_vars():
    """The variables of VALUES, plus a size-0 one (jitflow cannot compute size-0 tensors, so it is
    set with `load` rather than its initializer)."""
    out = {}
    for name, value in VALUES.items():
        scope, _, short = name.rpartition("/")
        if scope:
            with tf.name_scope(scope):
                out[name] = tf.Variable(value, name=short)
        else:
            out[name] = tf.Variable(value, name=name)
    out["empty"] = tf.Variable(np.zeros((0, 3), np.float32), name="empty")
    return out


def init(sess, variables):
    sess.run(tf.variables_initializer([v for k, v in variables.items() if k != "empty"]))
    variables["empty"].load(np.zeros((0, 3), np.float32), sess)


def snapshot(sess, variables):
    return {k: np.array(sess.run(v)) for k, v in variables.items()}


def assert_same(actual, expected):
    assert actual.keys() == expected.keys()
    for k in expected:
        a, e = np.asarray(actual[k]), np.asarray(expected[k])
        assert a.dtype == e.dtype and a.shape == e.shape, (k, a.dtype, e.dtype, a.shape, e.shape)
        np.testing.assert_array_equal(a, e, err_msg=k)


def perturb(sess, variables):
    """Gives every variable a value different from VALUES; returns the new values."""
    for k, v in variables.items():
        if k != "empty":
            current = np.array(sess.run(v))
            v.load(~current if current.dtype == bool else current + 3, sess)
    return snapshot(sess, variables)


# --------------------------------------------------------------------------- round trips

def test_round_trip_every_dtype_scalars_and_size_zero(tmp_path):
    variables = build_vars()
    saver = tf.train.Saver()
    prefix = str(tmp_path / "model.ckpt")
    with tf.Session() as sess:
        init(sess, variables)
        saved = snapshot(sess, variables)
        assert saver.save(sess, prefix) == prefix
        perturb(sess, variables)
        saver.restore(sess, prefix)
        assert_same(snapshot(sess, variables), saved)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.ckpt.index.json", "model.ckpt.meta", "model.ckpt.safetensors"]
    # a fresh session restores without running any initializer: restore marks variables initialized
    with tf.Session() as sess:
        saver.restore(sess, prefix)
        assert_same(snapshot(sess, variables), saved)
        assert sess.run(variables["f32"] * 2).tolist() == (VALUES["f32"] * 2).tolist()
    arrays, index = read_checkpoint(prefix)
    assert_same(arrays, saved)                  # checkpoint names are the variables' op names
    assert index["variables"]["i32"] == {"dtype": "int32", "shape": []}
    assert index["variables"]["empty"] == {"dtype": "float32", "shape": [0, 3]}


def test_seed_pattern_save_every_100_epochs_and_restore_final(tmp_path):
    rng = np.random.RandomState(0)
    data = np.c_[np.ones((50, 1)), rng.randn(50, 2)]
    target = data @ np.array([[1.0], [2.0], [-3.0]]) + 0.01 * rng.randn(50, 1)
    X = tf.constant(data, dtype=tf.float32, name="X")
    y = tf.constant(target, dtype=tf.float32, name="y")
    theta = tf.Variable(tf.random_uniform([3, 1], -1.0, 1.0, seed=42), name="theta")
    mse = tf.reduce_mean(tf.square(tf.matmul(X, theta, name="predictions") - y), name="mse")
    training_op = tf.train.GradientDescentOptimizer(learning_rate=0.1).minimize(mse)
    init_op = tf.global_variables_initializer()
    saver = tf.train.Saver()
    paths = []
    with tf.Session() as sess:
        sess.run(init_op)
        for epoch in range(300):
            if epoch % 100 == 0:
                paths.append(saver.save(sess, str(tmp_path / "my_model.ckpt")))
            sess.run(training_op)
        best_theta = theta.eval()
        save_path = saver.save(sess, str(tmp_path / "my_model_final.ckpt"))
    assert paths == [str(tmp_path / "my_model.ckpt")] * 3 and save_path == str(tmp_path / "my_model_final.ckpt")
    assert tf.train.latest_checkpoint(str(tmp_path)) == save_path
    with tf.Session() as sess:
        saver.restore(sess, str(tmp_path / "my_model_final.ckpt"))
        np.testing.assert_array_equal(theta.eval(), best_theta)
        assert sess.run(mse) < 0.01
    assert not any(name.endswith((".tmp", ".old")) for name in os.listdir(tmp_path))


def test_dict_var_list_maps_names(tmp_path):
    w = tf.Variable([[1.0, 2.0]], name="w")
    b = tf.Variable(0.5, name="b")
    saver = tf.train.Saver({"weights": w, "layer/bias": b})
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        path = saver.save(sess, str(tmp_path / "m"))
    arrays, _ = safetensors_format.read(path + ".safetensors")
    assert sorted(arrays) == ["layer/bias", "weights"]

    tf.reset_default_graph()                    # a new graph with other variable names
    other = tf.Variable(np.zeros((1, 2), np.float32), name="other")
    bias = tf.Variable(0.0, name="bias")
    with tf.Session() as sess:
        tf.train.Saver({"weights": other, "layer/bias": bias}).restore(sess, path)
        assert sess.run(other).tolist() == [[1.0, 2.0]] and sess.run(bias) == 0.5

    tf.reset_default_graph()                    # a default Saver looks variables up by op name
    with tf.variable_scope("layer"):
        bias = tf.get_variable("bias", shape=(), dtype=tf.float32)
    weights = tf.Variable(np.zeros((1, 2), np.float32), name="weights")
    with tf.Session() as sess:
        tf.train.Saver().restore(sess, path)
        assert sess.run([weights, bias])[1] == 0.5

    tf.reset_default_graph()                    # a list saves only its variables, by op name
    a, b2 = tf.Variable(1, name="a"), tf.Variable(2, name="b2")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        path = tf.train.Saver([a]).save(sess, str(tmp_path / "list"), write_state=False)
    assert list(safetensors_format.read(path + ".safetensors")[0]) == ["a"]
    with pytest.raises(ValueError, match="same name: a"):
        tf.train.Saver([a, b2, _same_name_in_other_graph()])
    with pytest.raises(TypeError, match="not a Variable"):
        tf.train.Saver([a.value()])


def _same_name_in_other_graph():
    with tf.Graph().as_default():
        return tf.Variable(0, name="a")


def test_no_variables_and_uninitialized_variable(tmp_path):
    with pytest.raises(ValueError, match="No variables to save"):
        tf.train.Saver()
    assert tf.train.Saver(allow_empty=True).var_list == {}
    v = tf.Variable(1.0, name="v")
    saver = tf.train.Saver()
    with tf.Session() as sess, pytest.raises(tf.errors.FailedPreconditionError, match="uninitialized value v"):
        saver.save(sess, str(tmp_path / "never-written"))
    assert os.listdir(tmp_path) == []
    with tf.Session() as sess, pytest.raises(ValueError, match="Parent directory"):
        sess.run(v.initializer)
        saver.save(sess, "/nonexistent-dir-for-jitflow/x")
    with tf.Graph().as_default(), tf.Session() as other, pytest.raises(ValueError, match="session's graph"):
        saver.save(other, str(tmp_path / "x"))
    sess = tf.Session()
    sess.close()
    with pytest.raises(RuntimeError, match="closed Session"):
        saver.restore(sess, str(tmp_path / "x"))


# --------------------------------------------------------------------------- global_step, max_to_keep, `checkpoint`

def test_global_step_suffix_max_to_keep_and_checkpoint_file(tmp_path):
    w = tf.Variable(1.0, name="w")
    step = tf.Variable(0, name="global_step", trainable=False)
    increment = step.assign_add(1)
    saver = tf.train.Saver(max_to_keep=2)
    prefix = str(tmp_path / "model.ckpt")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert saver.save(sess, prefix, global_step=7) == prefix + "-7"
        assert saver.save(sess, prefix, global_step=np.int64(8)) == prefix + "-8"
        for _ in range(3):
            sess.run(increment)
        assert saver.save(sess, prefix, global_step=step) == prefix + "-3"            # a Variable
        assert saver.save(sess, prefix, global_step=step + 1) == prefix + "-4"        # a Tensor
    assert saver.last_checkpoints == [prefix + "-3", prefix + "-4"]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.ckpt-3.index.json", "model.ckpt-3.meta",
                                            "model.ckpt-3.safetensors", "model.ckpt-4.index.json",
                                            "model.ckpt-4.meta", "model.ckpt-4.safetensors"]
    assert (tmp_path / "checkpoint").read_text() == (
        f'model_checkpoint_path: "{prefix}-4"\n'
        f'all_model_checkpoint_paths: "{prefix}-3"\n'
        f'all_model_checkpoint_paths: "{prefix}-4"\n')
    assert tf.train.latest_checkpoint(str(tmp_path)) == prefix + "-4"
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert state.model_checkpoint_path == prefix + "-4"
    assert state.all_model_checkpoint_paths == [prefix + "-3", prefix + "-4"]
    assert tf.train.checkpoint_exists(prefix + "-3") and not tf.train.checkpoint_exists(prefix + "-7")
    assert json.loads((tmp_path / "model.ckpt-4.index.json").read_text())["global_step"] == 4
    assert safetensors_format.read(prefix + "-4.safetensors")[1]["global_step"] == "4"
    with tf.Session() as sess:
        saver.restore(sess, tf.train.latest_checkpoint(str(tmp_path)))
        assert sess.run(step) == 3


def test_state_file_relative_paths_resave_and_keep_all(tmp_path):
    v = tf.Variable(1.0, name="v")
    relative = tf.train.Saver(save_relative_paths=True, pad_step_number=True)
    keep_all = tf.train.Saver(max_to_keep=None)
    with tf.Session() as sess:
        sess.run(v.initializer)
        relative.save(sess, str(tmp_path / "a"), global_step=1)
        relative.save(sess, str(tmp_path / "a"), global_step=2)
        relative.save(sess, str(tmp_path / "a"), global_step=1)     # saving a path again moves it last
        assert (tmp_path / "checkpoint").read_text() == (
            'model_checkpoint_path: "a-00000001"\n'
            'all_model_checkpoint_paths: "a-00000002"\n'
            'all_model_checkpoint_paths: "a-00000001"\n')
        assert tf.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "a-00000001")
        for i in range(7):
            keep_all.save(sess, str(tmp_path / "b"), global_step=i, latest_filename="b_state")
    assert all(tf.train.checkpoint_exists(str(tmp_path / f"b-{i}")) for i in range(7))
    # max_to_keep=None keeps every file, and only the newest in the state file (as TF)
    assert tf.train.get_checkpoint_state(str(tmp_path), "b_state").all_model_checkpoint_paths == [
        str(tmp_path / "b-6")]


def test_latest_checkpoint_missing_or_unparsable_state(tmp_path):
    assert tf.train.latest_checkpoint(str(tmp_path)) is None
    assert tf.train.get_checkpoint_state(str(tmp_path)) is None
    (tmp_path / "checkpoint").write_text("this is not a checkpoint state\n")
    assert tf.train.get_checkpoint_state(str(tmp_path)) is None
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "gone"\nall_model_checkpoint_timestamps: 1.5\n')
    assert tf.train.get_checkpoint_state(str(tmp_path)).model_checkpoint_path == str(tmp_path / "gone")
    assert tf.train.latest_checkpoint(str(tmp_path)) is None        # the files do not exist
    odd = str(tmp_path / 'we"ird\\näme')
    from jitflow.train.saver import update_checkpoint_state
    update_checkpoint_state(str(tmp_path), odd)
    assert tf.train.get_checkpoint_state(str(tmp_path)).model_checkpoint_path == odd


# --------------------------------------------------------------------------- another process

SUBPROCESS_SCRIPT = """
import sys, numpy as np
import jitflow as tf
prefix, expected = sys.argv[1], np.load(sys.argv[2])
with tf.variable_scope("net"):
    w = tf.get_variable("w", shape=(2, 3), dtype=tf.float64)
    b = tf.get_variable("b", shape=(), dtype=tf.int32, initializer=tf.zeros_initializer())
saver = tf.train.Saver()
with tf.Session() as sess:
    saver.restore(sess, prefix)
    w_val, b_val = sess.run([w, b])
assert w_val.dtype == np.float64 and np.array_equal(w_val, expected["w"]), w_val
assert b_val == expected["b"], b_val
print("restored", w_val.sum(), b_val)
"""


def test_restore_in_fresh_process(tmp_path):
    with tf.variable_scope("net"):
        w = tf.get_variable("w", initializer=np.arange(6.0).reshape(2, 3) / 3, dtype=tf.float64)
        b = tf.Variable(np.int32(41), name="b")
    saver = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(b.assign_add(1))
        path = saver.save(sess, str(tmp_path / "model.ckpt"), global_step=5)
        np.savez(tmp_path / "expected.npz", w=sess.run(w), b=sess.run(b))
    script = tmp_path / "restore.py"
    script.write_text(SUBPROCESS_SCRIPT)
    result = subprocess.run([sys.executable, str(script), path, str(tmp_path / "expected.npz")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["restored", str(np.arange(6.0).sum() / 3), "42"]


# --------------------------------------------------------------------------- failed restores change nothing

@pytest.fixture
def saved(tmp_path):
    """A checkpoint of build_vars() at VALUES, and a session whose values differ from it."""
    variables = build_vars()
    saver = tf.train.Saver()
    sess = tf.Session()
    init(sess, variables)
    prefix = saver.save(sess, str(tmp_path / "model.ckpt"))
    before = perturb(sess, variables)
    yield saver, sess, variables, prefix, before
    sess.close()


def test_missing_checkpoint_files(saved, tmp_path):
    saver, sess, variables, prefix, before = saved
    with pytest.raises(tf.errors.NotFoundError, match="nothing-here.index.json") as info:
        saver.restore(sess, str(tmp_path / "nothing-here"))
    assert isinstance(info.value, ValueError)              # newer TF 1.x raises ValueError here
    os.remove(prefix + ".safetensors")
    with pytest.raises(tf.errors.NotFoundError, match=r"model\.ckpt\.safetensors"):
        saver.restore(sess, prefix)
    with pytest.raises(ValueError, match="None"):
        saver.restore(sess, None)
    assert_same(snapshot(sess, variables), before)


def test_truncated_data_file(saved):
    saver, sess, variables, prefix, before = saved
    data = open(prefix + ".safetensors", "rb").read()
    with open(prefix + ".safetensors", "wb") as f:
        f.write(data[:-5])
    with pytest.raises(tf.errors.DataLossError, match=r"model\.ckpt\.safetensors is truncated"):
        saver.restore(sess, prefix)
    assert_same(snapshot(sess, variables), before)


@pytest.mark.parametrize("where", ["header_length", "header", "data", "last"])
def test_corrupted_byte(saved, where):
    saver, sess, variables, prefix, before = saved
    data = bytearray(open(prefix + ".safetensors", "rb").read())
    header_len = int.from_bytes(data[:8], "little")
    position = {"header_length": 0, "header": 8 + header_len // 2, "data": 8 + header_len + 3,
                "last": len(data) - 1}[where]
    data[position] ^= 0x01
    open(prefix + ".safetensors", "wb").write(bytes(data))
    with pytest.raises(tf.errors.DataLossError, match=r"model\.ckpt\.safetensors is corrupted"):
        saver.restore(sess, prefix)
    assert_same(snapshot(sess, variables), before)


def test_corrupted_index(saved):
    saver, sess, variables, prefix, before = saved
    with open(prefix + ".index.json", "r+b") as f:
        f.truncate(20)
    with pytest.raises(tf.errors.DataLossError, match=r"model\.ckpt\.index\.json"):
        saver.restore(sess, prefix)
    assert_same(snapshot(sess, variables), before)


def _new_graph_like_saved(**replace):
    """A new graph with the variables of build_vars(), some replaced (name -> factory) or added;
    a session whose values differ from the checkpoint's; its values."""
    tf.reset_default_graph()
    variables = build_vars()
    for name, make in replace.items():
        variables[name] = make()
    sess = tf.Session()
    init(sess, variables)
    return sess, variables, perturb(sess, variables)


def test_missing_variable(saved):
    prefix = saved[3]
    sess, variables, before = _new_graph_like_saved(extra=lambda: tf.Variable(1.0, name="extra"))
    with pytest.raises(tf.errors.NotFoundError, match=r"Key extra not found in checkpoint .*model\.ckpt"):
        tf.train.Saver().restore(sess, prefix)
    assert_same(snapshot(sess, variables), before)      # no variable restored, not even the valid ones
    sess.close()


def test_shape_mismatch(saved):
    prefix = saved[3]
    sess, variables, before = _new_graph_like_saved(
        f32=lambda: tf.Variable(np.ones((3, 2), np.float32), name="f32_new"))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"f32_new:0 .*\[3,2\].*\[2,3\]"):
        tf.train.Saver(dict(variables)).restore(sess, prefix)      # checkpoint name "f32" -> f32_new
    assert_same(snapshot(sess, variables), before)
    sess.close()


def test_dtype_mismatch(saved):
    prefix = saved[3]
    sess, variables, before = _new_graph_like_saved(
        i64=lambda: tf.Variable(np.array([[1, 2]], np.int32), name="i64_new"))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"i64_new:0 .*int32.*int64"):
        tf.train.Saver(dict(variables)).restore(sess, prefix)
    assert_same(snapshot(sess, variables), before)
    sess.close()


# --------------------------------------------------------------------------- crash safety

def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    v = tf.Variable(np.array([1.0, 2.0]), name="v")
    saver = tf.train.Saver()
    prefix = str(tmp_path / "model.ckpt")
    real_replace = os.replace
    with tf.Session() as sess:
        sess.run(v.initializer)
        saver.save(sess, prefix)
        v.load([5.0, 6.0], sess)

        def crash_on(suffix):
            def replace(src, dst):
                if str(dst).endswith(suffix):
                    raise OSError("simulated crash")
                return real_replace(src, dst)
            return replace

        # the data file cannot be moved into place: nothing of the previous checkpoint changes
        monkeypatch.setattr(os, "replace", crash_on(".safetensors"))
        with pytest.raises(OSError, match="simulated crash"):
            saver.save(sess, prefix)
        monkeypatch.setattr(os, "replace", real_replace)
        assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.ckpt.index.json", "model.ckpt.meta", "model.ckpt.safetensors"]
        saver.restore(sess, prefix)
        assert sess.run(v).tolist() == [1.0, 2.0]

        # the crash comes after the new data file replaced the old one, before the index did
        v.load([7.0, 8.0], sess)
        monkeypatch.setattr(os, "replace", crash_on(".index.json"))
        with pytest.raises(OSError, match="simulated crash"):
            saver.save(sess, prefix)
        monkeypatch.setattr(os, "replace", real_replace)
        saver.restore(sess, prefix)                             # the old index, the old data (kept)
        assert sess.run(v).tolist() == [1.0, 2.0]

        # an interrupted save followed by another interrupted save still keeps the old data
        monkeypatch.setattr(os, "replace", crash_on(".index.json"))
        with pytest.raises(OSError, match="simulated crash"):
            saver.save(sess, prefix)
        monkeypatch.setattr(os, "replace", real_replace)
        saver.restore(sess, prefix)
        assert sess.run(v).tolist() == [1.0, 2.0]

        v.load([9.0, 10.0], sess)                               # a complete save cleans up
        saver.save(sess, prefix)
        v.load([0.0, 0.0], sess)
        saver.restore(sess, prefix)
        assert sess.run(v).tolist() == [9.0, 10.0]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.ckpt.index.json", "model.ckpt.meta", "model.ckpt.safetensors"]


# --------------------------------------------------------------------------- the file format

def test_format_readable_by_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    variables = build_vars()
    saver = tf.train.Saver()
    with tf.Session() as sess:
        init(sess, variables)
        expected = snapshot(sess, variables)
        path = saver.save(sess, str(tmp_path / "m"), global_step=3)
    loaded = st.load_file(path + ".safetensors")
    assert_same(loaded, expected)
    from safetensors import safe_open
    with safe_open(path + ".safetensors", framework="numpy") as f:
        assert f.metadata()["global_step"] == "3" and f.metadata()["format"] == "jitflow-checkpoint"
    # and our reader reads the package's files
    st.save_file({"a": np.arange(5, dtype=np.int64), "b": np.array(True), "c": np.zeros((0, 2), np.float32)},
                 str(tmp_path / "theirs.safetensors"), metadata={"k": "v"})
    arrays, metadata = safetensors_format.read(tmp_path / "theirs.safetensors")
    assert metadata == {"k": "v"} and arrays["a"].tolist() == list(range(5)) and arrays["b"] == np.array(True)
    assert arrays["c"].shape == (0, 2)


def test_format_layout_and_validation():
    tensors = {"b": np.array([True, False]), "a": np.arange(3, dtype=">i4"), "s": np.array(2.5)}
    data = safetensors_format.serialize(tensors, {"k": "v"})
    size = int.from_bytes(data[:8], "little")
    assert (8 + size) % 8 == 0                                       # header padded: aligned tensors
    header = json.loads(data[8:8 + size])
    assert header["__metadata__"] == {"k": "v"}
    assert header["s"] == {"dtype": "F64", "shape": [], "data_offsets": [0, 8]}
    assert header["a"] == {"dtype": "I32", "shape": [3], "data_offsets": [8, 20]}
    assert header["b"] == {"dtype": "BOOL", "shape": [2], "data_offsets": [20, 22]}
    assert data[8 + size + 8:8 + size + 20] == np.arange(3, dtype="<i4").tobytes()   # little-endian
    arrays, metadata = safetensors_format.deserialize(data)
    assert arrays["a"].dtype == np.int32 and arrays["a"].tolist() == [0, 1, 2] and arrays["s"].shape == ()

    def bad(edit):
        h = dict(header)
        edit(h)
        text = json.dumps(h).encode()
        return len(text).to_bytes(8, "little") + text + data[8 + size:]

    cases = [
        lambda h: h.update(a={**h["a"], "data_offsets": [6, 18]}),       # overlap
        lambda h: h.update(a={**h["a"], "dtype": "F64"}),                 # wrong byte count
        lambda h: h.update(a={**h["a"], "shape": [-3]}),
        lambda h: h.update(a={**h["a"], "dtype": "X9"}),
        lambda h: h.pop("b"),                                            # trailing bytes
        lambda h: h.update(__metadata__={"k": 1}),
    ]
    for edit in cases:
        with pytest.raises(safetensors_format.SafetensorsError):
            safetensors_format.deserialize(bad(edit))
    for blob in (b"", b"\xff" * 8 + b"{}", (2).to_bytes(8, "little") + b"[]", (2).to_bytes(8, "little") + b"{"):
        with pytest.raises(safetensors_format.SafetensorsError):
            safetensors_format.deserialize(blob)
    with pytest.raises(safetensors_format.SafetensorsError):
        safetensors_format.serialize({"x": np.array(["text"])})
