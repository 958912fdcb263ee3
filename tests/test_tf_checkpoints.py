"""Reading checkpoints written by TensorFlow itself (TensorBundle V2): the fixture in
tests/data/tf_checkpoint_v2 was written by tf.compat.v1.train.Saver (TF 2.21, see generate.py there);
every value below is recomputed here, so TensorFlow is not needed."""
import os
import shutil

import numpy as np
import pytest

import jitflow as tf
from jitflow import errors
from jitflow.crc32c import masked_crc32c
from jitflow.train import tf_bundle, tf_bundle_writer, tf_slices, tf_sstable

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "tf_checkpoint_v2")
PREFIX = os.path.join(FIXTURE, "model.ckpt-1234")


def fixture_values():
    """The values generate.py gave the variables (its own fixture_values, imported without TensorFlow),
    with the global step and the partitioned variable it adds."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("tf_checkpoint_generate", os.path.join(FIXTURE, "generate.py"))
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    return dict(generate.fixture_values(), global_step=np.int64(1234),
                **{"part/w": np.arange(8, dtype=np.float32).reshape(4, 2)})   # saved as two partitions of 2 rows


# what TF 2.21's tf.train.list_variables printed for the fixture
TF_LIST = [("Variable", [2, 3]), ("dense/bias", [2]), ("dense/kernel", [3, 2]), ("empty", [0, 3]),
           ("flags", [3]), ("global_step", []), ("half", [4]), ("ints/i16", [3]), ("ints/i32", [2, 2]),
           ("ints/i64", [2]), ("ints/i8", [4]), ("ints/u8", [3]), ("names", [3]), ("part/w", [4, 2]),
           ("special", [5])]


def assert_bit_exact(actual, expected, name=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, name
    assert actual.shape == expected.shape, name
    if expected.dtype == object:
        assert list(actual.reshape(-1)) == list(expected.reshape(-1)), name
    else:
        assert actual.tobytes() == expected.tobytes(), name


def copy_fixture(tmp_path):
    for name in os.listdir(FIXTURE):
        if not name.endswith(".py"):
            shutil.copy(os.path.join(FIXTURE, name), tmp_path / name)
    return str(tmp_path / "model.ckpt-1234")


# --------------------------------------------------------------------------- the reader

def test_reader_reproduces_every_value_bit_exactly():
    reader = tf.train.NewCheckpointReader(PREFIX)
    for name, value in fixture_values().items():
        assert reader.has_tensor(name)
        assert_bit_exact(reader.get_tensor(name), value, name)
    assert not reader.has_tensor("missing")
    assert isinstance(reader.get_tensor("global_step"), np.int64)      # a numpy scalar, as TF returns


def test_shape_and_dtype_maps_and_list_variables_match_tensorflow():
    reader = tf.train.load_checkpoint(PREFIX)
    assert sorted(reader.get_variable_to_shape_map().items()) == TF_LIST
    dtypes = reader.get_variable_to_dtype_map()
    assert dtypes["dense/kernel"] == tf.float32 and dtypes["Variable"] == tf.float64
    assert dtypes["global_step"] == tf.int64 and dtypes["half"] == tf.float16 and dtypes["flags"] == tf.bool
    assert dtypes["ints/u8"] == tf.uint8 and dtypes["ints/i8"] == tf.int8 and dtypes["names"] == tf.string
    assert tf.train.list_variables(FIXTURE) == TF_LIST            # a directory: its newest checkpoint
    assert tf.train.list_variables(PREFIX) == TF_LIST
    np.testing.assert_array_equal(tf.train.load_variable(FIXTURE, "dense/bias:0"), [0.5, -1.25])
    assert tf.train.load_variable(PREFIX, "global_step") == 1234


def test_checkpoint_state_of_a_tensorflow_directory():
    assert tf.train.latest_checkpoint(FIXTURE) == PREFIX           # "model.ckpt-1234", relative to the dir
    state = tf.train.get_checkpoint_state(FIXTURE)
    assert state.model_checkpoint_path == PREFIX and state.all_model_checkpoint_paths == [PREFIX]
    assert tf.train.checkpoint_exists(PREFIX)
    assert not tf.train.checkpoint_exists(os.path.join(FIXTURE, "model.ckpt-99"))


def test_reader_errors(tmp_path):
    with pytest.raises(errors.NotFoundError, match="Failed to find any matching files"):
        tf.train.NewCheckpointReader(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="Couldn't find 'checkpoint' file"):
        tf.train.load_checkpoint(str(tmp_path))
    reader = tf.train.NewCheckpointReader(PREFIX)
    with pytest.raises(errors.NotFoundError, match="Key missing not found in checkpoint"):
        reader.get_tensor("missing")


def test_partitioned_variable_reads_whole_and_restores_into_one_variable():
    reader = tf_bundle.BundleReader(PREFIX)
    assert sorted(reader._parts) == [("part/w", ((0, 2), (0, 2))), ("part/w", ((2, 2), (0, 2)))]
    with tf.Graph().as_default():
        part = tf.Variable(np.zeros((4, 2), np.float32), name="part/w")
        doubled = part * 2.0
        with tf.Session() as sess:
            tf.train.Saver([part]).restore(sess, PREFIX)
            assert_bit_exact(sess.run(doubled), np.arange(8, dtype=np.float32).reshape(4, 2) * 2)


def test_slice_key_numbers_decode_as_tensorflows_ordered_code():
    # SignedNumIncreasing: 0 -> 80, 2 -> 82, -1 -> 7f, 100 -> c0 64, -100 -> 3f 9c, 8574 -> e0 21 7e
    key = b"\x00" + b"v\x00\xffw\x00\x01" + b"\x01\x03" + bytes.fromhex("8082" "7fc064" "3f9ce0217e")
    assert tf_slices.decode_slice_key(key) == ("v\x00w", ((0, 2), (-1, 100), (-100, 8574)))
    assert tf_slices.normalized(((0, 2), (0, -1)), (4, 3)) == ((0, 2), (0, 3))


def test_reader_also_reads_jitflow_checkpoints(tmp_path):
    with tf.Graph().as_default():
        w = tf.Variable(np.arange(4, dtype=np.float32).reshape(2, 2), name="w")
        step = tf.Variable(np.int64(7), name="step")
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            path = tf.train.Saver([w, step]).save(sess, str(tmp_path / "own"))
    assert tf.train.list_variables(str(tmp_path)) == [("step", []), ("w", [2, 2])]
    reader = tf.train.NewCheckpointReader(path)
    assert reader.get_variable_to_dtype_map() == {"w": tf.float32, "step": tf.int64}
    assert_bit_exact(reader.get_tensor("w"), np.arange(4, dtype=np.float32).reshape(2, 2))
    assert reader.get_tensor("step") == 7


# --------------------------------------------------------------------------- Saver.restore

def build_graph(kernel_shape=(3, 2), bias_dtype=tf.float32, extra=False):
    """The fixture's variables, by the same names, with other initial values."""
    gs = tf.train.get_or_create_global_step()
    with tf.variable_scope("dense"):
        kernel = tf.get_variable("kernel", shape=list(kernel_shape), initializer=tf.zeros_initializer())
        bias = tf.get_variable("bias", shape=[2], dtype=bias_dtype, initializer=tf.zeros_initializer())
    variables = {"global_step": gs, "dense/kernel": kernel, "dense/bias": bias,
                 "Variable": tf.Variable(np.zeros((2, 3)))}
    with tf.variable_scope("ints"):
        for leaf, dtype, n in (("i8", np.int8, 4), ("i16", np.int16, 3), ("u8", np.uint8, 3)):
            variables["ints/" + leaf] = tf.Variable(np.zeros(n, dtype), name=leaf)
    for name, init in (("half", np.zeros(4, np.float16)), ("special", np.zeros(5, np.float32)),
                       ("flags", np.zeros(3, bool)), ("names", np.array([b"", b"", b""], dtype=object))):
        variables[name] = tf.Variable(init, name=name)
    if extra:
        variables["extra"] = tf.Variable(1.0, name="extra")
    return variables


def test_saver_restores_a_tensorflow_checkpoint_into_a_jitflow_graph():
    expected = fixture_values()
    with tf.Graph().as_default():
        variables = build_graph()
        x = tf.placeholder(tf.float32, [None, 3])
        y = tf.matmul(x, variables["dense/kernel"]) + variables["dense/bias"]
        saver = tf.train.Saver()
        with tf.Session() as sess:                      # no initializer: restore initializes
            saver.restore(sess, tf.train.latest_checkpoint(FIXTURE))
            for name, var in variables.items():
                assert_bit_exact(sess.run(var), expected[name], name)
            xs = np.array([[1, 2, 3], [-1, 0, 0.5]], np.float32)
            np.testing.assert_allclose(sess.run(y, {x: xs}), xs @ expected["dense/kernel"] + expected["dense/bias"],
                                       rtol=1e-6)
            assert sess.run(tf.train.get_global_step()) == 1234


def test_saver_var_list_dict_maps_checkpoint_names():
    with tf.Graph().as_default():
        w = tf.Variable(np.zeros((3, 2), np.float32), name="my_weights")
        with tf.Session() as sess:
            tf.train.Saver({"dense/kernel": w}).restore(sess, PREFIX)
            assert_bit_exact(sess.run(w), fixture_values()["dense/kernel"])


def test_restore_errors_match_tensorflow_and_leave_values_untouched():
    with tf.Graph().as_default():
        variables = build_graph(extra=True)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            with pytest.raises(errors.NotFoundError, match="Key extra not found in checkpoint"):
                tf.train.Saver().restore(sess, PREFIX)
            assert sess.run(variables["global_step"]) == 0          # all or nothing
    with tf.Graph().as_default():
        build_graph(kernel_shape=(2, 3))
        with tf.Session() as sess:
            with pytest.raises(errors.InvalidArgumentError, match=r"dense/kernel.*shapes do not match"):
                tf.train.Saver().restore(sess, PREFIX)
    with tf.Graph().as_default():
        build_graph(bias_dtype=tf.float64)
        with tf.Session() as sess:
            with pytest.raises(errors.InvalidArgumentError, match=r"dense/bias.*dtype"):
                tf.train.Saver().restore(sess, PREFIX)


# --------------------------------------------------------------------------- damaged files

def tensor_range(prefix, name):
    entry = tf_bundle.BundleReader(prefix).entries[name]
    return entry.offset, entry.offset + entry.size


def flip_byte(path, position):
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)
        f.seek(position)
        f.write(bytes([byte[0] ^ 0x10]))


def test_corrupted_tensor_byte_is_data_loss_naming_the_tensor(tmp_path):
    prefix = copy_fixture(tmp_path)
    begin, _ = tensor_range(prefix, "dense/kernel")
    flip_byte(prefix + ".data-00000-of-00001", begin + 2)
    reader = tf.train.NewCheckpointReader(prefix)
    assert_bit_exact(reader.get_tensor("dense/bias"), fixture_values()["dense/bias"])    # others still read
    with pytest.raises(errors.DataLossError, match="dense/kernel"):
        reader.get_tensor("dense/kernel")
    with tf.Graph().as_default():
        build_graph()
        with tf.Session() as sess:
            with pytest.raises(errors.DataLossError, match="dense/kernel"):
                tf.train.Saver().restore(sess, prefix)
    part = tf_bundle.BundleReader(prefix)._parts[("part/w", ((2, 2), (0, 2)))]
    flip_byte(prefix + ".data-00000-of-00001", part.offset)
    with pytest.raises(errors.DataLossError, match=r"part/w \(part \[\(2, 2\), \(0, 2\)\]\)"):
        tf.train.NewCheckpointReader(prefix).get_tensor("part/w")


def test_corrupted_string_tensor_and_truncated_or_missing_data(tmp_path):
    prefix = copy_fixture(tmp_path)
    data = prefix + ".data-00000-of-00001"
    _, end = tensor_range(prefix, "names")
    flip_byte(data, end - 1)
    with pytest.raises(errors.DataLossError, match="names"):
        tf.train.NewCheckpointReader(prefix).get_tensor("names")
    begin, _ = tensor_range(prefix, "special")
    with open(data, "r+b") as f:
        f.truncate(begin + 3)
    with pytest.raises(errors.DataLossError, match="truncated"):
        tf.train.NewCheckpointReader(prefix).get_tensor("special")
    os.remove(data)
    with pytest.raises(errors.NotFoundError, match="data-00000-of-00001 not found"):
        tf.train.NewCheckpointReader(prefix).get_tensor("dense/bias")


def test_corrupted_or_compressed_index(tmp_path):
    prefix = copy_fixture(tmp_path)
    index = prefix + ".index"
    with open(index, "rb") as f:
        pristine = f.read()
    flip_byte(index, 20)                                       # inside the data block: crc mismatch
    with pytest.raises(errors.DataLossError, match="corrupted"):
        tf.train.NewCheckpointReader(prefix)
    with open(index, "wb") as f:
        f.write(pristine[:-1] + b"\x00")                       # bad magic number
    with pytest.raises(errors.DataLossError, match="magic"):
        tf.train.NewCheckpointReader(prefix)
    # the first data block marked snappy-compressed, its trailer crc made valid again
    handle, pos = tf_sstable._handle(pristine[-48:], 0)
    index_handle, _ = tf_sstable._handle(pristine[-48:], pos)
    block = tf_sstable._block(pristine, index_handle, "index")
    (_, first), = list(tf_sstable._block_entries(block, "index"))[:1]
    (offset, size), _ = tf_sstable._handle(first, 0)
    damaged = bytearray(pristine)
    damaged[offset + size] = 1
    damaged[offset + size + 1:offset + size + 5] = masked_crc32c(bytes(damaged[offset:offset + size + 1])).to_bytes(
        4, "little")
    with open(index, "wb") as f:
        f.write(bytes(damaged))
    with pytest.raises(errors.UnsupportedError, match="snappy"):
        tf.train.NewCheckpointReader(prefix)


def test_jitflow_format_wins_when_both_exist(tmp_path):
    """A prefix with jitflow's .index.json is read as jitflow's checkpoint, even next to a TF .index."""
    with tf.Graph().as_default():
        w = tf.Variable(np.float32(3.5), name="w")
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            path = tf.train.Saver([w]).save(sess, str(tmp_path / "model.ckpt-1234"), write_meta_graph=False)
    shutil.copy(PREFIX + ".index", path + ".index")
    assert tf.train.list_variables(path) == [("w", [])]


# --------------------------------------------------------------------------- writing TF's format

def test_sstable_writer_rebuilds_tensorflows_index_byte_for_byte():
    with open(PREFIX + ".index", "rb") as f:
        written_by_tf = f.read()
    entries = tf_sstable.read_table(written_by_tf, "fixture")
    assert entries[0][0] == b"" and any(key[:1] == b"\x00" for key, _ in entries)    # header, part/w slices
    assert tf_bundle_writer.build_table(entries) == written_by_tf


def test_tensor_bytes_and_checksums_match_tensorflows():
    reader = tf_bundle.BundleReader(PREFIX)
    with open(PREFIX + ".data-00000-of-00001", "rb") as f:
        data = f.read()
    for name, value in fixture_values().items():
        if name == "part/w":
            continue                                  # stored as parts
        entry = reader.entries[name]
        enum, raw, crc = tf_bundle_writer._tensor_bytes(name, np.asarray(value))
        assert (enum, crc) == (entry.dtype_enum, entry.crc32c), name
        assert raw == data[entry.offset:entry.offset + entry.size], name


def test_multi_block_tables_round_trip():
    entries = [(b"", b"header")] + sorted((f"scope_{i // 7}/var_{i:04d}".encode(), bytes([i % 251]) * (i % 13))
                                          for i in range(500))
    table = tf_bundle_writer.build_table(entries, block_size=256)
    footer = table[-48:]
    _, pos = tf_sstable._handle(footer, 0)
    index_handle, _ = tf_sstable._handle(footer, pos)
    blocks = list(tf_sstable._block_entries(tf_sstable._block(table, index_handle, "index"), "index"))
    assert len(blocks) > 10
    assert tf_sstable.read_table(table, "t") == entries


def test_saver_writes_tensorflows_format_and_reads_it_back(tmp_path):
    expected = fixture_values()
    with tf.Graph().as_default():
        variables = build_graph()
        saver = tf.train.Saver(write_version=tf.train.SaverDef.V2, max_to_keep=1)
        with tf.Session() as sess:
            tf.train.Saver().restore(sess, PREFIX)
            first = saver.save(sess, str(tmp_path / "model.ckpt"), global_step=1, write_meta_graph=False)
            path = saver.save(sess, str(tmp_path / "model.ckpt"), global_step=variables["global_step"],
                              write_meta_graph=False)
    assert path == str(tmp_path / "model.ckpt-1234")
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.ckpt-1234.data-00000-of-00001",
                                            "model.ckpt-1234.index"]             # max_to_keep=1 removed -1
    assert not os.path.exists(first + ".index")
    assert tf.train.latest_checkpoint(str(tmp_path)) == path
    reader = tf.train.NewCheckpointReader(path)
    for name in variables:
        assert_bit_exact(reader.get_tensor(name), expected[name], name)
    with tf.Graph().as_default():
        variables = build_graph()
        with tf.Session() as sess:
            tf.train.Saver().restore(sess, path)
            for name, var in variables.items():
                assert_bit_exact(sess.run(var), expected[name], name)
    with pytest.raises(errors.UnsupportedError, match="write_version"):
        with tf.Graph().as_default():
            tf.Variable(1.0)
            tf.train.Saver(write_version=tf.train.SaverDef.V1)
