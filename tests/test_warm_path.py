"""The warm-start path (issue 16, W8): large constants' values are kept out of the kernel-cache
key (jitflow/ir/array_digest.py, runtime/build.py) and hashed only when two executables of the
same structure meet in the memory cache. Results must stay exact whatever is reused."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import jitflow as tf
from jitflow.ir import array_digest
from jitflow.ir.array_digest import LargeArrays, values_digest
from jitflow.ir.core import Node
from jitflow.ir.printer import format_node
from jitflow.ir.types import TensorType, float32
from jitflow.runtime import build, counters
from jitflow.runtime.kernel_cache import disk_cache


def _graph(constant):
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [64, constant.shape[0]])
        y = tf.matmul(x, tf.constant(constant)) + 1.0
    return g, x, y


def _run(constant, feed):
    g, x, y = _graph(constant)
    sess = tf.Session(graph=g)
    out = sess.run(y, {x: feed})
    executable = next(iter(sess._compiled.values())).executable
    return sess, out, executable


def _data(seed=0, n=64):
    """A constant and a feed; each test uses its own `n` (its own structure: runtime/build.py
    hashes the values of every later executable of a structure once two have met)."""
    r = np.random.default_rng(seed)
    return r.standard_normal((n, 64)).astype(np.float32), r.standard_normal((64, n)).astype(np.float32)


def test_values_are_set_aside_only_for_constants():
    big = np.arange(100, dtype=np.float32)
    namer = lambda v: "%0"      # noqa: E731
    const = Node("const", [], {"value": big, "dtype": float32}, [TensorType(float32, (100,))])
    arrays = LargeArrays()
    assert "array<f32[100]: #0>" in format_node(const, namer, canonical=arrays)
    assert len(arrays) == 1 and arrays[0] is big
    # an array attribute of any other op may steer codegen: it is still hashed into the text
    other = Node("reshape", [], {"table": big}, [TensorType(float32, (100,))])
    text = format_node(other, namer, canonical=arrays)
    assert "sha256<f32[100]: " + array_digest.sha256_of(big, np.dtype("<f4")) + ">" in text
    assert len(arrays) == 1
    assert bool(LargeArrays()) is True      # stands for canonical=True: no locations are printed


def test_one_element_changes_the_values_digest_not_the_structure():
    a, _ = _data()
    b = a.copy()
    b[17, 3] = np.nextafter(b[17, 3], np.float32(np.inf))
    assert values_digest([a]) != values_digest([b])
    assert values_digest([a]) == values_digest([a.copy()])
    # the full canonical print (canonical=True) still differs too
    from jitflow.ir.printer import format_array
    assert format_array(a, canonical=True) != format_array(b, canonical=True)


def test_same_structure_other_values_gives_exact_results_and_shares_the_disk_entry():
    a, feed = _data(1, 40)
    b = a.copy()
    b[5, 7] += 1.0              # one element differs
    build.clear_memory_cache()
    s1, out1, e1 = _run(a, feed)
    np.testing.assert_allclose(out1, feed @ a + 1.0, rtol=1e-5, atol=1e-4)
    s2, out2, e2 = _run(b, feed)        # e1 still in memory: must not be reused for other values
    np.testing.assert_allclose(out2, feed @ b + 1.0, rtol=1e-5, atol=1e-4)
    assert e1 is not e2
    assert e1.cache_key == e2.cache_key                 # one disk entry: the code is the same
    assert e1.memory_key != e2.memory_key
    assert e1.memory_key.startswith(e1.cache_key + "/") and not e1.memory_key.endswith("/unhashed")
    s1.close()
    s2.close()


def test_same_values_hit_the_memory_cache():
    a, feed = _data(2, 41)
    build.clear_memory_cache()
    s1, out1, e1 = _run(a, feed)
    assert e1.memory_key.endswith("/unhashed")          # alone in memory: its values were never hashed
    before = counters.stats()["memory_cache_hits"]
    s2, out2, e2 = _run(a.copy(), feed)                 # equal values in another array
    assert e2 is e1 and counters.stats()["memory_cache_hits"] == before + 1
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_allclose(out2, feed @ a + 1.0, rtol=1e-5, atol=1e-4)
    s1.close()
    s2.close()


def test_disk_hit_with_other_values_runs_the_new_constants():
    if disk_cache() is None:
        pytest.skip("disk cache disabled")
    a, feed = _data(3, 42)
    s1, out1, e1 = _run(a, feed)
    key = e1.cache_key
    s1.close()
    del s1, e1
    build.clear_memory_cache()
    gc.collect()
    b = (a * 2.0 - 0.5).astype(np.float32)
    hits = counters.stats()["disk_hits"]
    s2, out2, e2 = _run(b, feed)
    assert e2.cache_key == key and counters.stats()["disk_hits"] == hits + 1     # the stored code
    np.testing.assert_allclose(out2, feed @ b + 1.0, rtol=1e-5, atol=1e-4)      # with b's values
    s2.close()


def test_warm_build_does_not_hash_large_constants(monkeypatch):
    calls = []
    real = array_digest.sha256_of
    monkeypatch.setattr(array_digest, "sha256_of", lambda *args: calls.append(1) or real(*args))
    a, feed = _data(4, 43)
    build.clear_memory_cache()
    gc.collect()
    s1, out1, _ = _run(a + 3.0, feed)
    assert calls == []              # the first of its structure: the key needs no hash of its values
    np.testing.assert_allclose(out1, feed @ (a + 3.0) + 1.0, rtol=1e-5, atol=1e-4)
    s2, out2, _ = _run(a + 4.0, feed)
    assert len(calls) == 2          # the second: both are hashed, once each
    np.testing.assert_allclose(out2, feed @ (a + 4.0) + 1.0, rtol=1e-5, atol=1e-4)
    s1.close()
    s2.close()
