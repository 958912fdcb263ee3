"""File formats through their maintained libraries (issue 17 item 3), checked with the real readers:
checkpoint tensors through `safetensors` (read back with `safetensors.safe_open`), checkpoints
written by jitflow's former hand-written writer still restore, and TensorBoard event files
(CRC32C from `google-crc32c`) read by TensorBoard's own event-file loader."""
import shutil
from pathlib import Path

import numpy as np
import pytest

import jitflow as tf
from jitflow import crc32c as crc_module
from jitflow.train import safetensors_format
from jitflow.train.saver import read_checkpoint

safetensors = pytest.importorskip("safetensors")
from safetensors import safe_open  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def _variables():
    return {
        "dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
        "dense/bias": np.array([1.5, -2.0]),
        "counts": np.array([3, -4, 5], np.int64),
        "flags": np.array([True, False]),
        "empty": np.zeros((0, 2), np.float32),
        "step": np.int32(7),
    }


def test_safe_open_reads_jitflows_checkpoint(tmp_path):
    values = _variables()
    variables = {name: tf.Variable(v, name=name) for name, v in values.items()}
    names = tf.Variable(np.array([b"ab", b"\xffz"], dtype=object), name="names")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        path = tf.train.Saver().save(sess, str(tmp_path / "model"), global_step=3)
    with safe_open(path + ".safetensors", framework="numpy") as f:
        assert sorted(f.keys()) == sorted(values)                 # strings live in the metadata
        for name, want in values.items():
            got = f.get_tensor(name)
            assert got.dtype == want.dtype and got.shape == np.shape(want)
            np.testing.assert_array_equal(got, want)
        metadata = f.metadata()
    assert metadata["format"] == "jitflow-checkpoint" and metadata["global_step"] == "3"
    assert "jitflow.strings" in metadata
    # and the saver's own validated reader agrees
    arrays, index = read_checkpoint(path)
    assert arrays["names"].tolist() == [b"ab", b"\xffz"] and index["global_step"] == 3
    del variables, names


def test_checkpoint_from_the_former_handwritten_writer_restores(tmp_path):
    """tests/data/checkpoint_v1: written by jitflow's own safetensors writer before the package took
    over (it orders size-0 tensors differently): the package-based reader restores it."""
    for name in ("model-7.index.json", "model-7.safetensors"):
        shutil.copy(DATA / "checkpoint_v1" / name, tmp_path / name)
    values = _variables()
    variables = {name: tf.Variable(np.zeros_like(v), name=name) for name, v in values.items()}
    names = tf.Variable(np.array([b"", b""], dtype=object), name="names")
    with tf.Session() as sess:
        tf.train.Saver().restore(sess, str(tmp_path / "model-7"))
        got = sess.run({name: v for name, v in variables.items()})
        got_names = sess.run(names)
    for name, want in values.items():
        assert got[name].dtype == np.asarray(want).dtype
        np.testing.assert_array_equal(got[name], want)
    assert got_names.tolist() == [b"ab", b"\xffz"]


def test_a_damaged_file_is_a_clear_error():
    data = safetensors_format.serialize({"a": np.arange(4, dtype=np.float32)}, {"k": "v"})
    assert safetensors_format.deserialize(data)[1] == {"k": "v"}
    with pytest.raises(safetensors_format.SafetensorsError, match="not a valid safetensors file"):
        safetensors_format.deserialize(data[:-3])
    with pytest.raises(safetensors_format.SafetensorsError, match="no safetensors equivalent"):
        safetensors_format.serialize({"c": np.array([1 + 2j])})


def test_serialize_goes_through_the_package():
    tensors = {"x": np.arange(5, dtype=">f8"), "m": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3))}
    data = safetensors_format.serialize(tensors)
    loaded = safetensors.numpy.load(data)
    np.testing.assert_array_equal(loaded["x"], np.arange(5.0))
    np.testing.assert_array_equal(loaded["m"], np.arange(6).reshape(2, 3))
    assert data == safetensors.numpy.save({"x": np.arange(5.0), "m": np.arange(6, dtype=np.int32).reshape(2, 3)})


# ------------------------------------------------------------------------------------------ TensorBoard
def test_tfrecord_crc_comes_from_google_crc32c():
    google_crc32c = pytest.importorskip("google_crc32c")
    if google_crc32c.implementation != "c":
        pytest.skip("google-crc32c runs its pure-Python code here")
    assert crc_module._NATIVE
    data = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    assert crc_module.crc32c(data) == google_crc32c.value(data) == crc_module.crc32c_table(data)
    assert crc_module.crc32c(b"123456789") == 0xE3069283


def test_tensorboard_event_loader_reads_filewriter_output(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2

    x = tf.placeholder(tf.float32, (), name="x")
    summary = tf.summary.scalar("loss", x * 2.0)
    writer = tf.summary.FileWriter(str(tmp_path))
    with tf.Session() as sess:
        for step in range(3):
            writer.add_summary(sess.run(summary, {x: step + 0.25}), global_step=step)
    writer.close()
    files = list(tmp_path.glob("events.out.tfevents.*"))
    assert len(files) == 1
    records = list(RawEventFileLoader(str(files[0])).Load())      # checks each record's masked CRC32C
    events = [event_pb2.Event.FromString(r) for r in records]
    assert events[0].file_version == "brain.Event:2"
    scalars = [(e.step, v.tag, v.simple_value) for e in events for v in e.summary.value]
    assert scalars == [(0, "loss", 0.5), (1, "loss", 2.5), (2, "loss", 4.5)]
