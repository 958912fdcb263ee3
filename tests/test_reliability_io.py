"""Issue 15, items 2, 5, 10 and the corrupt Keras config.json: arrays of any layout reach compiled
code as their values (Fortran order, transposed views, strided slices, byte-swapped, read-only and
misaligned arrays at every entry point: feeds, Variable.load, tf.assign, Saver.restore, Keras
set_weights / load_model / fit / predict, tf.data); Keras load_model verifies its weight files;
interrupted saves' temp files are cleaned by later saves; a damaged config.json names the file and
the field."""
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import jitflow as tf
from jitflow import keras
from jitflow.keras import saving
from jitflow.runtime.native_arrays import native_array, owned_native_array
from jitflow.train import temp_files

BASE = np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5 - 2.0     # the C-contiguous reference


def layouts(a: np.ndarray) -> dict:
    """Arrays equal to `a` in value but not C-contiguous, native-endian, aligned and writable."""
    rows, cols = a.shape
    strided = np.zeros((rows, 2 * cols), a.dtype)
    strided[:, ::2] = a
    readonly = a.copy()
    readonly.flags.writeable = False
    raw = b"\0" + a.astype("<f4").tobytes()
    misaligned = np.frombuffer(raw, dtype="<f4", offset=1, count=a.size).reshape(a.shape)
    out = {"fortran": np.asfortranarray(a), "transposed_view": np.ascontiguousarray(a.T).T,
           "strided_slice": strided[:, ::2], "byteswapped": a.astype(">f4"), "readonly": readonly,
           "misaligned": misaligned, "byteswapped_fortran": np.asfortranarray(a.astype(">f4"))}
    assert not out["fortran"].flags.c_contiguous and not out["strided_slice"].flags.c_contiguous
    assert not out["byteswapped"].dtype.isnative and not out["misaligned"].flags.aligned
    for value in out.values():
        np.testing.assert_array_equal(value, a)
    return out


LAYOUTS = list(layouts(BASE))


def weird(name, a=BASE):
    return layouts(a)[name]


# --------------------------------------------------------------------------- item 2: the helper

@pytest.mark.parametrize("name", LAYOUTS)
def test_item2_native_array_helper(name):
    x = weird(name)
    for convert in (native_array, owned_native_array):
        y = convert(x, np.float32)
        assert y.flags.c_contiguous and y.flags.aligned and y.dtype == np.float32 and y.dtype.isnative
        np.testing.assert_array_equal(y, BASE)
    owned = owned_native_array(x, np.float32)
    assert owned.flags.writeable and not np.shares_memory(owned, x)
    c = BASE.copy()
    assert native_array(c, np.float32) is c              # already native: no copy
    assert owned_native_array(c, np.float32) is not c


# --------------------------------------------------------------------------- item 2: Session feeds

@pytest.mark.parametrize("name", LAYOUTS)
def test_item2_session_feed_layouts(name):
    p = tf.placeholder(tf.float32, (3, 4))
    out = tf.reduce_sum(p * tf.constant([1.0, 10.0, 100.0, 1000.0]), axis=1)
    with tf.Session() as sess:
        want = sess.run(out, {p: BASE})
        got = sess.run(out, {p: weird(name)})
        np.testing.assert_allclose(want, (BASE * [1, 10, 100, 1000]).sum(axis=1), rtol=1e-6)
        np.testing.assert_array_equal(got, want)
        # fed to a float64 placeholder too (a converting feed)
        q = tf.placeholder(tf.float64, (3, 4))
        np.testing.assert_array_equal(sess.run(tf.transpose(q), {q: weird(name)}), BASE.T.astype(np.float64))


def test_item2_session_feed_readonly_input_not_written():
    x = weird("readonly")
    p = tf.placeholder(tf.float32, (3, 4))
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(p + 1.0, {p: x}), BASE + 1.0)
    np.testing.assert_array_equal(x, BASE)


# --------------------------------------------------------------------------- item 2: Variable.load / tf.assign

@pytest.mark.parametrize("name", LAYOUTS)
def test_item2_fortran_order_variable_load(name):
    v = tf.Variable(np.zeros((3, 4), np.float32))
    step = tf.assign_add(v, tf.ones((3, 4)))
    with tf.Session() as sess:
        sess.run(v.initializer)
        x = weird(name)
        v.load(x, sess)
        np.testing.assert_array_equal(sess.run(v), BASE)
        np.testing.assert_array_equal(sess.run(v * tf.constant([[1.0], [2.0], [3.0]])), BASE * [[1], [2], [3]])
        sess.run(step)                               # compiled code updates the value in place ...
        np.testing.assert_array_equal(sess.run(v), BASE + 1)
        np.testing.assert_array_equal(x, BASE)       # ... never the caller's array (read-only ones included)


def test_item2_transposed_weight_variable_load():
    """The issue's case: `torch_weight.numpy().T` (an F-ordered view) loaded into a kernel."""
    torch_weight = np.arange(6, dtype=np.float32).reshape(2, 3)     # (out, in)
    kernel = tf.Variable(np.zeros((3, 2), np.float32))
    x = tf.placeholder(tf.float32, (1, 3))
    y = tf.matmul(x, kernel)
    with tf.Session() as sess:
        kernel.load(torch_weight.T, sess)
        np.testing.assert_array_equal(sess.run(kernel), torch_weight.T)
        np.testing.assert_array_equal(sess.run(y, {x: [[1.0, 2.0, 3.0]]}), [[1.0, 2.0, 3.0]] @ torch_weight.T)


@pytest.mark.parametrize("name", LAYOUTS)
def test_item2_assign_and_constant_of_numpy_layouts(name):
    v = tf.Variable(np.zeros((3, 4), np.float32))
    assign = tf.assign(v, weird(name))
    const = tf.constant(weird(name))
    with tf.Session() as sess:
        sess.run(v.initializer)
        sess.run(assign)
        np.testing.assert_array_equal(sess.run(v), BASE)
        np.testing.assert_array_equal(sess.run(const * 2.0), BASE * 2)


# --------------------------------------------------------------------------- item 2: Saver.restore

@pytest.mark.parametrize("name", ["fortran", "byteswapped", "strided_slice", "misaligned"])
def test_item2_saver_roundtrip_of_loaded_layouts(tmp_path, name):
    v = tf.Variable(np.zeros((3, 4), np.float32), name="w")
    saver = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(v.initializer)
        v.load(weird(name), sess)
        path = saver.save(sess, str(tmp_path / "model.ckpt"))
    with tf.Session() as sess:
        saver.restore(sess, path)
        state = sess._variables[v.op.name]
        assert state.flags.c_contiguous and state.flags.writeable and state.dtype.isnative
        np.testing.assert_array_equal(sess.run(v), BASE)
        np.testing.assert_array_equal(sess.run(tf.transpose(v)), BASE.T)
        sess.run(tf.assign_add(v, tf.ones((3, 4))))
        np.testing.assert_array_equal(sess.run(v), BASE + 1)


# --------------------------------------------------------------------------- item 2: Keras

def _small_model(seed=3, optimizer="sgd"):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.layers.Dense(3, activation="tanh", input_shape=(4,), name="d1"),
                              keras.layers.Dense(2, name="d2")])
    model.compile(optimizer=optimizer, loss="mse")
    return model


@pytest.mark.parametrize("name", LAYOUTS)
def test_item2_keras_set_weights_layouts(name):
    model = _small_model()
    kernel = np.arange(12, dtype=np.float32).reshape(3, 4).T * 0.1      # (4, 3), F-ordered view
    weights = [np.asarray(w) for w in model.get_weights()]
    weights[0] = layouts(np.ascontiguousarray(kernel))[name]
    weights[2] = layouts(np.arange(6, dtype=np.float32).reshape(3, 2) * 0.3)[name]
    model.set_weights(weights)
    got = model.get_weights()
    np.testing.assert_array_equal(got[0], kernel)
    np.testing.assert_array_equal(got[2], np.arange(6, dtype=np.float32).reshape(3, 2) * 0.3)
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    want = np.tanh(x @ kernel + got[1]) @ got[2] + got[3]
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["fortran", "byteswapped", "strided_slice", "readonly"])
def test_item2_keras_fit_and_predict_inputs(name):
    rng = np.random.RandomState(0)
    x = rng.randn(6, 4).astype(np.float32)
    y = rng.randn(6, 2).astype(np.float32)
    model_c, model_w = _small_model(), _small_model()
    model_w.set_weights(model_c.get_weights())
    np.testing.assert_array_equal(model_w.predict(layouts(x)[name], verbose=0), model_c.predict(x, verbose=0))
    model_c.fit(x, y, epochs=2, batch_size=3, shuffle=False, verbose=0)
    model_w.fit(layouts(x)[name], layouts(y)[name], epochs=2, batch_size=3, shuffle=False, verbose=0)
    for a, b in zip(model_c.get_weights(), model_w.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_item2_keras_load_model_after_set_weights_fortran(tmp_path):
    model = _small_model()
    weights = [np.asfortranarray(w) if w.ndim == 2 else w.astype(">f4") for w in model.get_weights()]
    weights[0] = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(4, 3))
    model.set_weights(weights)
    model.save(str(tmp_path / "m"))
    loaded = keras.models.load_model(str(tmp_path / "m"))
    for a, b in zip(loaded.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- item 2: tf.data

@pytest.mark.parametrize("name", ["fortran", "byteswapped", "transposed_view", "misaligned"])
def test_item2_tf_data_layouts(name):
    data = layouts(np.arange(24, dtype=np.float32).reshape(4, 6) * 0.25)[name]
    elements = [layouts(BASE)[name], layouts(BASE + 1)[name]]

    def gen():
        yield from elements

    sliced = tf.data.Dataset.from_tensor_slices(data).batch(2).make_one_shot_iterator().get_next()
    generated = tf.data.Dataset.from_generator(gen, tf.float32, (3, 4)).make_one_shot_iterator().get_next()
    with tf.Session() as sess:
        first = sess.run(sliced * 1.0)
        np.testing.assert_array_equal(first, np.arange(24, dtype=np.float32).reshape(4, 6)[:2] * 0.25)
        np.testing.assert_array_equal(sess.run(tf.reduce_sum(generated, axis=1)), BASE.sum(axis=1))
        np.testing.assert_array_equal(sess.run(generated * 1.0), BASE + 1)


# --------------------------------------------------------------------------- item 5: load_model checks weights

@pytest.fixture
def saved_model(tmp_path):
    model = _small_model(optimizer="adam")
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    model.fit(x, np.ones((3, 2), np.float32), epochs=1, batch_size=3, verbose=0)     # optimizer state too
    path = str(tmp_path / "model")
    model.save(path)
    return model, path, x


def test_item5_load_model_roundtrip_verifies(saved_model):
    model, path, x = saved_model
    config = json.load(open(os.path.join(path, "config.json")))
    assert len(config["weights"]["sha256"]) == 64 and config["optimizer_weights"]["file"] == "optimizer.safetensors"
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_item5_missing_weights_file_raises(saved_model):
    _, path, _ = saved_model
    weights = os.path.join(path, "model.safetensors")
    os.remove(weights)
    with pytest.raises(OSError, match="model.safetensors") as info:
        keras.models.load_model(path)
    assert isinstance(info.value, (FileNotFoundError, ValueError)) and weights in str(info.value)


def test_item5_missing_weights_file_of_an_old_format_save_raises(saved_model):
    _, path, _ = saved_model
    config_path = os.path.join(path, "config.json")
    config = json.load(open(config_path))
    del config["weights"], config["optimizer_weights"]              # a save from before the checksums
    open(config_path, "w").write(json.dumps(config))
    keras.models.load_model(path)                                   # still loads ...
    os.remove(os.path.join(path, "model.safetensors"))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        keras.models.load_model(path)                               # ... but never without its weights


@pytest.mark.parametrize("target", ["model.safetensors", "optimizer.safetensors"])
def test_item5_bit_flipped_weights_raise(saved_model, target):
    _, path, _ = saved_model
    file_path = os.path.join(path, target)
    data = bytearray(open(file_path, "rb").read())
    data[-3] ^= 0x10                                                 # one bit of one weight
    open(file_path, "wb").write(bytes(data))
    with pytest.raises(saving.CorruptModelFileError, match="sha256") as info:
        keras.models.load_model(path)
    assert file_path in str(info.value)
    assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)
    assert isinstance(info.value, tf.errors.DataLossError)


def test_item5_truncated_weights_raise(saved_model):
    _, path, _ = saved_model
    file_path = os.path.join(path, "model.safetensors")
    data = open(file_path, "rb").read()
    open(file_path, "wb").write(data[:-8])
    with pytest.raises(saving.CorruptModelFileError, match="truncated"):
        keras.models.load_model(path)


def test_item5_load_weights_detects_bit_flip(tmp_path):
    model = _small_model()
    path = str(tmp_path / "w.safetensors")
    model.save_weights(path)
    other = _small_model(seed=11)
    other.load_weights(path)
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0x01
    open(path, "wb").write(bytes(data))
    before = other.get_weights()
    with pytest.raises(saving.CorruptModelFileError, match="w.safetensors"):
        other.load_weights(path)
    for a, b in zip(other.get_weights(), before):                   # nothing was loaded
        np.testing.assert_array_equal(a, b)
    with pytest.raises(FileNotFoundError, match="nothere"):
        other.load_weights(str(tmp_path / "nothere.safetensors"))


# --------------------------------------------------------------------------- corrupt config.json

CORRUPTIONS = {
    "model_missing": (lambda c: c.pop("model"), "'model'"),
    "model_not_object": (lambda c: c.__setitem__("model", [1, 2]), "'model'"),
    "class_name_missing": (lambda c: c["model"].pop("class_name"), "model.class_name"),
    "config_missing": (lambda c: c["model"].pop("config"), "model.config"),
    "layers_not_list": (lambda c: c["model"]["config"].__setitem__("layers", {"a": 1}), "model.config.layers"),
    "layer_not_object": (lambda c: c["model"]["config"]["layers"].__setitem__(1, "Dense"),
                         "model.config.layers[1]"),
    "layer_class_missing": (lambda c: c["model"]["config"]["layers"][0].pop("class_name"),
                            "model.config.layers[0].class_name"),
    "layer_class_unknown": (lambda c: c["model"]["config"]["layers"][1].__setitem__("class_name", "Dense9"),
                            "model.config.layers[1].class_name"),
    "layer_config_missing": (lambda c: c["model"]["config"]["layers"][1].pop("config"),
                             "model.config.layers[1].config"),
    "layer_bad_argument": (lambda c: c["model"]["config"]["layers"][1]["config"].__setitem__("bogus", 3),
                           "model.config.layers[1].config"),
    "build_shape_bad": (lambda c: c["model"]["config"].__setitem__("build_input_shape", ["x", 4]),
                        "build_input_shape"),
    "format_version_str": (lambda c: c.__setitem__("format_version", "one"), "format_version"),
    "compile_not_object": (lambda c: c.__setitem__("compile", 5), "'compile'"),
    "optimizer_missing": (lambda c: c["compile"].pop("optimizer"), "compile.optimizer"),
    "optimizer_unknown": (lambda c: c["compile"]["optimizer"].__setitem__("class_name", "Nope"),
                          "compile.optimizer"),
    "loss_bad": (lambda c: c["compile"].__setitem__("loss", {"config": {}}), "compile.loss"),
    "metrics_bad": (lambda c: c["compile"].__setitem__("metrics", [3]), "compile.metrics[0]"),
    "weights_record_bad": (lambda c: c.__setitem__("weights", {"file": "model.safetensors"}), "'weights'"),
    "top_level_list": (lambda c: c.clear() or c.__setitem__("__list__", True), "top level"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_keras_config_json_raises_value_error(saved_model, case):
    _, path, _ = saved_model
    config_path = os.path.join(path, "config.json")
    config = json.load(open(config_path))
    edit, field = CORRUPTIONS[case]
    edit(config)
    text = "[1, 2]" if "__list__" in config else json.dumps(config)
    open(config_path, "w").write(text)
    with pytest.raises(ValueError) as info:
        keras.models.load_model(path)
    assert not isinstance(info.value, (KeyError, AttributeError, TypeError))
    message = str(info.value)
    assert config_path in message and field in message, message


@pytest.mark.parametrize("text", ["{not json", "", "\xff\xfe", "null"])
def test_corrupt_keras_config_json_not_json(saved_model, text):
    _, path, _ = saved_model
    config_path = os.path.join(path, "config.json")
    with open(config_path, "w", encoding="latin-1") as f:
        f.write(text)
    with pytest.raises(ValueError, match="config.json"):
        keras.models.load_model(path)


# --------------------------------------------------------------------------- item 10: stale temp files

def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not temp_files.pid_alive(child.pid)
    return child.pid


@pytest.fixture
def live_pid():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child.pid
    child.kill()
    child.wait()


def _touch(path, age=0.0):
    with open(path, "wb") as f:
        f.write(b"partial")
    if age:
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
    return path


def test_item10_temp_names_carry_the_pid(tmp_path):
    fd, path = temp_files.make_temp(str(tmp_path / "model.ckpt.safetensors"))
    os.close(fd)
    name = os.path.basename(path)
    assert name.startswith(f".model.ckpt.safetensors.pid{os.getpid()}.") and name.endswith(".tmp")


def test_item10_saver_save_removes_crashed_writers_temps(tmp_path, live_pid):
    d = str(tmp_path)
    dead = _dead_pid()
    stale = [_touch(os.path.join(d, f".model.ckpt.safetensors.pid{dead}.abcd1234.tmp")),
             _touch(os.path.join(d, f".model.ckpt-10.index.json.pid{dead}.zz99_x1a.tmp")),
             _touch(os.path.join(d, f".model.ckpt-10.meta.pid{dead}.q1w2e3r4.tmp")),
             _touch(os.path.join(d, f".checkpoint.pid{dead}.q1w2e3r4.tmp")),
             _touch(os.path.join(d, f".model.ckpt-3.safetensors.pid{live_pid}.oldoldol.tmp"), age=7200),
             _touch(os.path.join(d, ".model.ckpt.safetensors.nopid123.tmp"), age=7200)]     # older jitflow
    kept = [_touch(os.path.join(d, f".model.ckpt.safetensors.pid{live_pid}.live1234.tmp")),  # a live writer
            _touch(os.path.join(d, f".model.ckpt-20.safetensors.pid{os.getpid()}.mine1234.tmp")),
            _touch(os.path.join(d, ".model.ckpt.index.json.recent12.tmp")),                # no pid, recent
            _touch(os.path.join(d, f".other.ckpt.safetensors.pid{dead}.abcd1234.tmp")),      # another prefix
            _touch(os.path.join(d, f".model.ckptx.safetensors.pid{dead}.abcd1234.tmp")),
            _touch(os.path.join(d, "notes.tmp"))]
    v = tf.Variable(np.ones((2, 2), np.float32), name="v")
    saver = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(v.initializer)
        saver.save(sess, os.path.join(d, "model.ckpt"), global_step=30)
    for path in stale:
        assert not os.path.exists(path), path
    for path in kept:
        assert os.path.exists(path), path
    leftovers = [n for n in os.listdir(d) if n.endswith(".tmp") and os.path.join(d, n) not in kept]
    assert leftovers == []


def test_item10_saver_restore_removes_crashed_writers_temps(tmp_path):
    v = tf.Variable(np.ones((2, 2), np.float32), name="v")
    saver = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(v.initializer)
        path = saver.save(sess, str(tmp_path / "model.ckpt"), global_step=1)
    stale = _touch(str(tmp_path / f".model.ckpt-2.safetensors.pid{_dead_pid()}.abcd1234.tmp"))
    with tf.Session() as sess:
        saver.restore(sess, path)
        np.testing.assert_array_equal(sess.run(v), np.ones((2, 2)))
    assert not os.path.exists(stale)


def test_item10_killed_saver_save_is_cleaned_by_the_next_save(tmp_path):
    """A real crash: a process killed in the middle of writing the data file."""
    prefix = str(tmp_path / "model.ckpt")
    script = textwrap.dedent(f"""
        import os, numpy as np, jitflow as tf
        from jitflow.train import safetensors_format
        real_write = safetensors_format.write
        def dying_write(f, tensors, metadata=None):
            f.write(b"half a header")
            os._exit(9)                       # as kill -9 would: no cleanup handlers run
        safetensors_format.write = dying_write
        v = tf.Variable(np.ones((4, 4), np.float32), name="v")
        with tf.Session() as sess:
            sess.run(v.initializer)
            tf.train.Saver().save(sess, {prefix!r})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == 9, result.stderr.decode()[-2000:]
    orphans = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(orphans) == 1 and orphans[0].startswith(".model.ckpt.safetensors.pid")
    v = tf.Variable(np.full((4, 4), 2.0, np.float32), name="v")
    with tf.Session() as sess:
        sess.run(v.initializer)
        tf.train.Saver().save(sess, prefix)
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []
    with tf.Session() as sess:
        tf.train.Saver().restore(sess, prefix)
        np.testing.assert_array_equal(sess.run(v), np.full((4, 4), 2.0))


def test_item10_keras_model_save_removes_crashed_writers_temps(tmp_path, live_pid):
    d = tmp_path / "m"
    d.mkdir()
    dead = _dead_pid()
    stale = [_touch(str(d / f".model.safetensors.pid{dead}.abcd1234.tmp")),
             _touch(str(d / f".config.json.pid{dead}.abcd1234.tmp")),
             _touch(str(d / f".optimizer.safetensors.pid{live_pid}.abcd1234.tmp"), age=7200),
             _touch(str(d / ".tmp-k2j3h4g5"), age=7200)]                  # an older jitflow's temp name
    kept = [_touch(str(d / f".model.safetensors.pid{live_pid}.live1234.tmp")),
            _touch(str(d / ".tmp-recent12")),
            _touch(str(d / f".notes.txt.pid{dead}.abcd1234.tmp"))]
    model = _small_model()
    model.save(str(d))
    for path in stale:
        assert not os.path.exists(path), path
    for path in kept:
        assert os.path.exists(path), path
    keras.models.load_model(str(d))
    weights = str(tmp_path / "w.safetensors")
    orphan = _touch(str(tmp_path / f".w.safetensors.pid{dead}.abcd1234.tmp"))
    model.save_weights(weights)
    assert not os.path.exists(orphan)
