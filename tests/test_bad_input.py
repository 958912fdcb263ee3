"""Bad input: each case raises a clear error and loses nothing. Every test here ends by checking
that the session's variables, a checkpoint saved before and the kernel cache are intact, and that
the session still runs (`world.check()`).

Covered elsewhere (referenced, not repeated):
* checkpoints missing / truncated / corrupted / with other shapes or dtypes, all-or-nothing
  restore, crash mid-save: tests/test_saver.py (`saved` fixture, test_missing_checkpoint_files,
  test_truncated_data_file, test_corrupted_byte, test_corrupted_index, test_missing_variable,
  test_shape_mismatch, test_dtype_mismatch, test_crash_mid_save_keeps_previous_checkpoint);
* kernel cache entries truncated or corrupted, an unwritable cache directory, processes filling
  one directory at once, across real processes: tests/test_kernel_cache.py;
* malformed IR text (IRParseError with line and column, random edits of small texts):
  tests/test_ir_text.py (test_parse_errors, test_mutated_text_fails_cleanly);
* unfed placeholders, uninitialized variables, a fetch from another graph, shape errors naming
  the node: tests/test_errors.py.
"""
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import jitflow as tf
from jitflow.ir import IRParseError, TensorType, parse_function
from jitflow.runtime import build
from jitflow.runtime.kernel_cache import CacheWarning, disk_cache
from jitflow.session import FeedError, FeedTypeError


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


class World:
    """A session with variables of three dtypes, a checkpoint of them and a warm kernel cache."""

    def __init__(self, tmp_path):
        self.w = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="w")
        self.b = tf.Variable(np.float64(0.5), name="b")
        self.steps = tf.Variable(np.int64(7), name="steps")
        self.x = tf.placeholder(tf.float32, [None, 2], name="x")
        self.y = tf.matmul(self.x, self.w)
        self.train = tf.group(tf.assign_add(self.w, tf.reduce_mean(self.y) * tf.ones([2, 3])),
                              tf.assign_add(self.steps, tf.constant(1, tf.int64)))
        self.sess = tf.Session()
        self.sess.run(tf.global_variables_initializer())
        self.saver = tf.train.Saver()
        (tmp_path / "ckpt").mkdir()
        self.prefix = self.saver.save(self.sess, str(tmp_path / "ckpt" / "model"))
        self.checkpoint = {f: _digest(tmp_path / "ckpt" / f) for f in os.listdir(tmp_path / "ckpt")}
        self.ckpt_dir = tmp_path / "ckpt"
        self.feed = {self.x: np.float32([[1, 2], [3, 4]])}
        self.expected_y = self.sess.run(self.y, self.feed)
        self.values = self.sess.run([self.w, self.b, self.steps])
        cache = disk_cache()
        self.cache_entries = {e.name for e in cache.entries()} if cache is not None else set()

    def check(self):
        """Variables, checkpoint and kernel cache intact; the session still works."""
        for got, want in zip(self.sess.run([self.w, self.b, self.steps]), self.values):
            np.testing.assert_array_equal(got, want)
        assert {f: _digest(self.ckpt_dir / f) for f in os.listdir(self.ckpt_dir)} == self.checkpoint
        cache = disk_cache()
        if cache is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("error", CacheWarning)    # a corrupt entry would warn and vanish
                for key in self.cache_entries:
                    assert cache.load(key) is not None, f"kernel cache entry {key} lost"
        np.testing.assert_array_equal(self.sess.run(self.y, self.feed), self.expected_y)


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.sess.close()


# ---- feeds ------------------------------------------------------------------------------------
BAD_VALUES = {
    "None": None, "dict": {"a": 1}, "set": {1.0}, "generator": (v for v in range(4)), "string": "abc",
    "bytes": b"abcdefgh", "ragged list": [[1, 2], [3]], "strings": [["a", "b"], ["c", "d"]],
    "objects": np.array([object()] * 4).reshape(2, 2), "complex": np.ones((2, 2), complex),
    "datetimes": np.array(["2020-01-01"] * 4, "datetime64[D]").reshape(2, 2),
}


@pytest.mark.parametrize("name", list(BAD_VALUES))
def test_feed_of_wrong_python_type_or_dtype(world, name):
    with pytest.raises(FeedTypeError, match=r"(?s)Cannot feed value .* to Tensor 'x:0' of dtype float32") as info:
        world.sess.run(world.train, {world.x: BAD_VALUES[name]})
    assert isinstance(info.value, tf.errors.InvalidArgumentError) and isinstance(info.value, TypeError)
    world.check()


@pytest.mark.parametrize("value", [np.ones(4), np.ones((2, 3)), np.ones((2, 2, 1)), 1.0, [[1.0, 2.0, 3.0]]])
def test_feed_of_wrong_shape(world, value):
    with pytest.raises(FeedError, match=r"Cannot feed value of shape .* for Tensor 'x:0', which has shape") as info:
        world.sess.run(world.train, {world.x: value})
    assert isinstance(info.value, ValueError)
    world.check()


def test_feed_of_a_tensor_or_variable(world):
    for value in (world.y, world.w):
        with pytest.raises(TypeError, match="cannot be a tf.Tensor"):
            world.sess.run(world.y, {world.x: value})
    world.check()


@pytest.mark.parametrize("dtype,value,bad", [
    (tf.int32, [2 ** 40, 1], "1099511627776"), (tf.int32, np.array([2 ** 31], np.int64), "2147483648"),
    (tf.int32, [np.nan, 1.0], "nan"), (tf.int64, [np.inf, 0.0], "inf"), (tf.int64, [2.0 ** 63, 0.0], "9.22"),
    (tf.float32, [1e300, 0.0], "1e+300"),
])
def test_feed_out_of_range_for_the_dtype(world, dtype, value, bad):
    """Values the conversion would silently change (wrap, NaN -> INT_MIN, overflow to inf) raise."""
    p = tf.placeholder(dtype, [2], name="p")
    with pytest.raises(FeedTypeError, match=rf"Tensor 'p:0' of dtype {dtype.name}: {re.escape(bad)}.* is out of range"):
        world.sess.run(p * 1, {p: value})
    world.check()


def test_feeds_that_convert_fine(world):
    """Lossless or TF-compatible conversions keep working: truncation of fractions, big-endian,
    non-contiguous and read-only arrays, the extremes of the dtype, inf into floats."""
    i = tf.placeholder(tf.int32, [2])
    i64 = tf.placeholder(tf.int64, [2])
    f = tf.placeholder(tf.float32, [2, 2])
    np.testing.assert_array_equal(world.sess.run(i * 1, {i: [1.7, -2.7]}), [1, -2])
    np.testing.assert_array_equal(world.sess.run(i64 * 1, {i64: [-2.0 ** 63, 2 ** 62]}), [-2 ** 63, 2 ** 62])
    np.testing.assert_array_equal(world.sess.run(i * 1, {i: np.array([2 ** 31 - 1, -2 ** 31])}),
                                  [2 ** 31 - 1, -2 ** 31])
    frozen = np.ones((2, 2), np.float32)
    frozen.setflags(write=False)
    for value in (np.ones((2, 2), ">f4"), np.ones((2, 4), np.float32)[:, ::2], frozen, [[np.inf, 1], [1, 1]]):
        np.testing.assert_array_equal(world.sess.run(f * 1, {f: value}), np.asarray(value, np.float32))
    world.check()


def test_feed_keys_that_are_not_tensors_of_this_graph(world):
    other = tf.Graph()
    with other.as_default():
        foreign = tf.placeholder(tf.float32, [None, 2])
    with pytest.raises(ValueError, match="not an element of this graph"):
        world.sess.run(world.y, {foreign: np.ones((2, 2))})
    with pytest.raises(TypeError, match="Cannot interpret feed_dict key as Tensor: 3"):
        world.sess.run(world.y, {3: 1.0})
    with pytest.raises(TypeError, match="Cannot interpret feed_dict key as Tensor: .*nope"):
        world.sess.run(world.y, {"nope:0": 1.0})
    with pytest.raises(TypeError, match="Cannot interpret feed_dict key as Tensor"):
        world.sess.run(world.y, {world.y.op: 1.0})
    world.check()


def test_fetches_of_another_graph(world):
    other = tf.Graph()
    with other.as_default():
        c = tf.constant(1.0)
        v = tf.Variable(2.0, name="v_other")
    for fetch in (c, v, c.op, [world.y, c]):
        with pytest.raises(ValueError, match="not an element of this graph"):
            world.sess.run(fetch, world.feed)
    with pytest.raises(TypeError, match="must be a string or Tensor"):
        world.sess.run(3)
    world.check()


# ---- a closed session ---------------------------------------------------------------------------
def test_closed_session_refuses_everything_and_leaves_the_checkpoint(world):
    sess = world.sess
    sess.close()
    for action in (lambda: sess.run(world.y, world.feed), lambda: world.w.eval(session=sess),
                   lambda: world.w.load(np.zeros((2, 3), np.float32), sess),
                   lambda: sess.make_callable(world.y, [world.x])(np.ones((1, 2), np.float32)),
                   lambda: world.saver.save(sess, world.prefix), lambda: world.saver.restore(sess, world.prefix)):
        with pytest.raises(RuntimeError, match="closed Session"):
            action()
    world.sess = tf.Session()       # a new session restores everything from the untouched checkpoint
    world.saver.restore(world.sess, world.prefix)
    world.check()


# ---- NaN / Inf: tf.debugging.check_numerics -----------------------------------------------------
def test_check_numerics_names_the_tensor_and_rolls_the_run_back(world):
    logits = tf.log(world.y, name="log_y")                  # NaN for negative products
    checked = tf.debugging.check_numerics(logits, "log of the scores")
    step = tf.group(tf.assign_add(world.w, tf.reduce_mean(checked) * tf.ones([2, 3])),
                    tf.assign_add(world.steps, tf.constant(1, tf.int64)))
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        world.sess.run(step, {world.x: np.float32([[-1, 0], [0, 1]])})
    message = str(info.value)
    assert "log of the scores : Tensor had NaN" in message and "log_y:0" in message
    assert os.path.basename(__file__) in message                      # where the check was created
    world.check()                                                       # neither w nor steps moved
    np.testing.assert_allclose(world.sess.run(checked, world.feed), np.log(world.expected_y))


def test_check_numerics_inf_and_aliases():
    assert tf.check_numerics is tf.debugging.check_numerics
    assert tf.add_check_numerics_ops is tf.debugging.add_check_numerics_ops
    x = tf.placeholder(tf.float64, [3])
    y = tf.check_numerics(tf.exp(x), "exp overflowed")
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(y, {x: [0.0, 1.0, 2.0]}), np.exp([0.0, 1.0, 2.0]))
        with pytest.raises(tf.errors.InvalidArgumentError, match="exp overflowed : Tensor had Inf values"):
            sess.run(y, {x: [0.0, 1000.0, 2.0]})
        with pytest.raises(tf.errors.InvalidArgumentError, match="had NaN and Inf values"):
            sess.run(tf.check_numerics(x * np.array([np.inf, 0, 1]), "both"), {x: [1.0, np.inf, 0.0]})
    with pytest.raises(TypeError, match="float tensor"):
        tf.check_numerics(tf.constant([1, 2]), "ints")


def test_add_check_numerics_ops_checks_every_float_tensor(world):
    z = tf.exp(tf.reduce_sum(world.y, name="total"), name="grow") * 2.0
    checks = tf.add_check_numerics_ops()
    float_tensors = [t for op in tf.get_default_graph().get_operations() if op.type != "CheckNumerics"
                     and op._op not in ("assign_var", "assign_add_var", "assign_sub_var")
                     for t in op.outputs if isinstance(t._type, TensorType) and t.dtype in (tf.float32, tf.float64)]
    checked = {c.inputs[0].name for c in checks.control_inputs}
    assert {t.name for t in float_tensors if t.op.type not in ("VariableV2",)} <= checked
    out, _ = world.sess.run([z, checks], {world.x: np.float32([[0.01, 0], [0, 0.01]])})
    assert np.isfinite(out)
    with pytest.raises(tf.errors.InvalidArgumentError, match="grow:0 : Tensor had Inf values"):
        world.sess.run([z, checks], {world.x: np.float32([[100, 100], [100, 100]])})
    with pytest.raises(tf.errors.InvalidArgumentError, match="x:0 : Tensor had NaN values"):
        world.sess.run(checks, {world.x: np.float32([[np.nan, 0], [0, 0]])})    # a fed value is checked too
    world.check()


def test_check_numerics_gradient_and_jit():
    x = tf.placeholder(tf.float64, [2])
    y = tf.reduce_sum(tf.check_numerics(x * x, "square"))
    (g,) = tf.gradients(y, [x])
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(g, {x: [1.0, -3.0]}), [2.0, -6.0])

    @tf.jit
    def f(a):               # no Session under @jit: the op is the identity
        return tf.check_numerics(tf.log(a), "log")
    assert np.isnan(f(np.array([-1.0]))[0])


def test_graphs_without_checks_pay_nothing(world):
    assert "_numeric_checks" not in world.sess.graph.__dict__


# ---- huge shapes ---------------------------------------------------------------------------------
def test_huge_output_fails_fast_before_allocating(world):
    start = time.perf_counter()
    huge = tf.zeros([1 << 20, 1 << 20])
    with pytest.raises(tf.errors.ResourceExhaustedError, match=r"OOM when allocating tensor with shape "
                                                                r"\[1048576,1048576\] and type float32") as info:
        world.sess.run(huge)
    assert isinstance(info.value, MemoryError)
    assert "4.0 TiB" in str(info.value) and "zeros" in str(info.value)
    assert time.perf_counter() - start < 5
    world.check()


def test_huge_variable_intermediate_and_jit(world):
    big = tf.Variable(tf.zeros([1 << 18, 1 << 18]), name="big")
    with pytest.raises(tf.errors.ResourceExhaustedError, match="variables 256.0 GiB"):
        world.sess.run(big.initializer)
    a = tf.ones([1 << 17, 8])
    with pytest.raises(MemoryError, match="workspace"):       # a (2^17 x 2^17) GEMM temp, reduced to a scalar
        world.sess.run(tf.reduce_sum(tf.matmul(a, a, transpose_b=True)))

    @tf.jit
    def blow_up(v):
        return tf.broadcast_to(v, [1 << 16, 1 << 16, 64])
    with pytest.raises(tf.errors.ResourceExhaustedError):
        blow_up(np.float32(1.0))
    world.check()


def test_memory_limit_override(world, monkeypatch):
    monkeypatch.setenv("JITFLOW_MEMORY_LIMIT_BYTES", str(1 << 20))
    with pytest.raises(tf.errors.ResourceExhaustedError, match=r"needs 4.0 MiB .* has 1.0 MiB"):
        world.sess.run(tf.ones([1024, 1024]) * 2.0)
    assert world.sess.run(tf.ones([4, 4]) * 2.0).sum() == 32.0
    monkeypatch.delenv("JITFLOW_MEMORY_LIMIT_BYTES")
    world.check()


# ---- malformed IR --------------------------------------------------------------------------------
def test_mutated_real_ir_fails_cleanly(world):
    """Random edits of the (larger) IR texts of fuzz programs either parse or raise IRParseError."""
    from jitflow import fuzz
    texts = []
    for index in range(12):
        program = fuzz.case_program(9, index)
        if program.kind == "forward":
            graph, _, fetches, feed = fuzz.build_graph(program)
            with tf.Session(graph=graph) as sess:
                texts.append(sess.inspect(fetches, feed).ir_before_passes)
    rng = random.Random(7)
    alphabet = '%@!#"\\\n :,=[]{}<>()-?0123456789aefinx.+/_ü\x00'
    for _ in range(400):
        chars = list(rng.choice(texts))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(chars))
            roll = rng.random()
            if roll < 0.4:
                del chars[i]
            elif roll < 0.7:
                chars[i] = rng.choice(alphabet)
            else:
                chars.insert(i, rng.choice(alphabet))
        try:
            parse_function("".join(chars))
        except IRParseError:
            pass
    for not_text in (b"func @f() -> () {}", None, 3):
        with pytest.raises(TypeError, match="IR text must be a str"):
            parse_function(not_text)
    world.check()


# ---- checkpoints and caches ------------------------------------------------------------------------
def test_failed_restore_from_a_damaged_copy_leaves_everything(world, tmp_path):
    """(The full matrix of damaged checkpoints is in tests/test_saver.py.)"""
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in os.listdir(world.ckpt_dir):
        data = (world.ckpt_dir / name).read_bytes()
        (damaged / name).write_bytes(data[: len(data) // 2] if name.endswith(".safetensors") else data)
    with pytest.raises(tf.errors.DataLossError, match="truncated"):
        world.saver.restore(world.sess, str(damaged / "model"))
    world.check()


def test_corrupt_cache_entry_in_process_and_unwritable_directory(world, tmp_path, monkeypatch):
    """In-process variants of tests/test_kernel_cache.py: a corrupted entry of a dropped executable
    is detected, reported and rebuilt; an unwritable directory only disables the disk cache."""
    import gc
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [7])
        y = tf.tanh(x) * 3.0 + 0.123
    with tf.Session(graph=g) as sess:
        first = sess.run(y, {x: np.arange(7, dtype=np.float32)})
        key = next(iter(sess._compiled.values())).executable.cache_key
    build.clear_memory_cache()
    gc.collect()
    assert key not in build._memory_cache                   # the executable is gone with its session
    cache = disk_cache()
    entry = cache._entry(key)
    data = (entry / "kernel.o").read_bytes()
    (entry / "kernel.o").write_bytes(data[:100])
    with pytest.warns(CacheWarning, match="corrupt or truncated"):
        with tf.Session(graph=g) as sess:
            np.testing.assert_array_equal(sess.run(y, {x: np.arange(7, dtype=np.float32)}), first)
    assert cache.load(key) is not None                      # rewritten, valid
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    monkeypatch.setenv("JITFLOW_CACHE_DIR", str(blocker / "cache"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tf.Session() as sess:
            assert sess.run(tf.constant(np.float32([1, 2])) * 5.0).tolist() == [5.0, 10.0]
    assert any("not writable" in str(w.message) for w in caught)
    monkeypatch.undo()
    world.check()


SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import jitflow as tf
    from jitflow import runtime
    variant = int(sys.argv[1])
    x = tf.placeholder(tf.float32, (None, 3))
    outs = [tf.reduce_sum(tf.exp(x) * 2.0), tf.reduce_max(x * x, 1)]
    outs.append(tf.reduce_mean(tf.sigmoid(x)) if variant == 0 else tf.reduce_min(x - float(variant)))
    with tf.Session() as sess:
        values = [np.asarray(sess.run(o, {x: np.ones((4, 3))})).tolist() for o in outs]
    print(json.dumps({"values": values, "stats": runtime.stats()}))
""")


def test_processes_filling_one_cache_with_overlapping_programs(tmp_path):
    """Three processes with shared and distinct kernels fill one directory at once; every entry
    is valid afterwards, nothing is left half-written, and a fourth process compiles nothing."""
    env = dict(os.environ, JITFLOW_CACHE_DIR=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(v)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for v in (0, 1, 2)]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs]
    from jitflow.runtime.kernel_cache import DiskCache
    cache = DiskCache(tmp_path)
    entries = cache.entries()
    assert len(entries) == 5 and not list(tmp_path.glob("v1/??/.tmp-*"))     # 2 shared + 3 distinct
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert all(cache.load(e.name) is not None for e in entries)
    again = subprocess.run([sys.executable, "-c", SCRIPT, "1"], env=env, capture_output=True, text=True,
                           timeout=120)
    result = json.loads(again.stdout.strip().splitlines()[-1])
    assert result["stats"]["compiles"] == 0 and result["stats"]["disk_hits"] == 3
    assert result["values"] == json.loads(outputs[1][0].strip().splitlines()[-1])["values"]
