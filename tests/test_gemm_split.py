"""Threaded GEMM splits (codegen/parallel_gemm.py): row and column blocks of C, the per-shape rule
`split_by_columns`, the run-time direction of shape-polymorphic GEMMs, transposes and beta = 1 (a
fused `var -= c * a @ b`) against numpy, and threaded results against a one-thread subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import jitflow as tf
from jitflow.codegen import parallel_gemm as pg
from jitflow.runtime.build import clear_memory_cache

SIDES = (1, 7, 33, 257)


@pytest.fixture(autouse=True)
def _fresh_compiles(monkeypatch):
    """A monkeypatched split must be compiled, not loaded from the disk or in-memory cache."""
    monkeypatch.setenv("JITFLOW_CACHE", "0")
    clear_memory_cache()
    yield
    clear_memory_cache()


def _k_for(m, n):
    """A depth that makes the product big enough to be split (pg.MIN_WORK), capped for speed."""
    return int(min(1500, max(16, pg.MIN_WORK // (m * n) + 3)))


def _operands(m, n, k, ta, tb, dtype, seed=0):
    r = np.random.default_rng(seed)
    a = r.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = r.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


def _expected(a, b, ta, tb):
    return (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)


def _tol(dtype):
    return dict(rtol=2e-4, atol=2e-3) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-9)


def _spy(monkeypatch):
    """Records the RangeInfo extent of every split matmul kernel emitted."""
    extents = []
    original = pg.emit

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        if result is not None:
            extents.append(result[2].extent)
        return result
    monkeypatch.setattr(pg, "emit", spy)
    return extents


@pytest.mark.parametrize("direction", ["rows", "columns"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forced_split_matches_numpy(monkeypatch, direction, dtype):
    monkeypatch.setattr(pg, "split_by_columns", lambda m, n: direction == "columns")
    extents = _spy(monkeypatch)
    flags = [(False, False), (True, False), (False, True), (True, True)]
    for i, (m, n) in enumerate((m, n) for m in SIDES for n in SIDES):
        k = _k_for(m, n)
        ta, tb = flags[i % 4]
        a, b = _operands(m, n, k, ta, tb, dtype, seed=i)
        f = tf.jit(lambda p, q: tf.matmul(p, q, transpose_a=ta, transpose_b=tb))
        got = f(a, b)
        assert got.shape == (m, n) and got.dtype == dtype
        np.testing.assert_allclose(got, _expected(a, b, ta, tb), **_tol(dtype), err_msg=f"{m}x{n}x{k} {ta} {tb}")
    split = [(m, n) for m in SIDES for n in SIDES if min(m, n) >= 2 and m * n * _k_for(m, n) >= pg.MIN_WORK]
    assert len(extents) == len(split)
    want = [n if direction == "columns" else m for m, n in split]
    assert sorted(extents) == sorted(want)


@pytest.mark.parametrize("ta,tb", [(False, False), (True, True)])
def test_default_rule_per_shape(monkeypatch, ta, tb):
    """W10's dense layer (wide C) splits by columns, a tall C by rows, both right."""
    extents = _spy(monkeypatch)
    for m, k, n in ((256, 640, 1024), (3136, 96, 257), (300, 200, 300)):
        a, b = _operands(m, n, k, ta, tb, np.float32)
        got = tf.jit(lambda p, q: tf.matmul(p, q, transpose_a=ta, transpose_b=tb))(a, b)
        np.testing.assert_allclose(got, _expected(a, b, ta, tb), **_tol(np.float32))
    assert extents == [1024, 3136, 300]
    assert pg.split_by_columns(256, 1024) and pg.split_by_columns(300, 300)
    assert not pg.split_by_columns(3136, 1024) and not pg.split_by_columns(20640, 9)


@pytest.mark.parametrize("direction", ["rows", "columns"])
def test_beta_one_update_split(monkeypatch, direction):
    """`w -= 0.5 * a @ b` fuses into one GEMM with beta = 1 into the variable: each block adds once."""
    monkeypatch.setattr(pg, "split_by_columns", lambda m, n: direction == "columns")
    m, k, n = 33, 300, 257
    a, b = _operands(m, n, k, False, True, np.float32, seed=3)
    w0 = np.random.default_rng(4).standard_normal((m, n)).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        w = tf.Variable(w0)
        step = tf.assign_sub(w, 0.5 * tf.matmul(tf.constant(a), tf.constant(b), transpose_b=True))
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(step)
            got = sess.run(step)
    np.testing.assert_allclose(got, w0 - 2 * 0.5 * _expected(a, b, False, True), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("direction", ["run-time", "rows", "columns"])
def test_symbolic_batch_split(monkeypatch, direction):
    """A shape-polymorphic GEMM (batch None): the direction is chosen per run from m and n."""
    if direction != "run-time":
        monkeypatch.setattr(pg, "_columns_at_run_time", lambda fb, m, n: "true" if direction == "columns" else "false")
    calls = []
    original = pg.emit_symbolic
    monkeypatch.setattr(pg, "emit_symbolic", lambda *a, **kw: calls.append(1) or original(*a, **kw))
    r = np.random.default_rng(5)
    wv = r.standard_normal((200, 257)).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, (None, 200))
        y = tf.matmul(x, tf.constant(wv))
        yt = tf.matmul(tf.constant(wv), x, transpose_a=True, transpose_b=True)    # [257, batch]
        with tf.Session() as sess:
            for batch in (7, 33, 1, 257, 1000, 2, 9):
                xv = r.standard_normal((batch, 200)).astype(np.float32)
                got, got_t = sess.run([y, yt], {x: xv})
                np.testing.assert_allclose(got, _expected(xv, wv, False, False), **_tol(np.float32))
                np.testing.assert_allclose(got_t, _expected(wv, xv, True, True), **_tol(np.float32))
    assert calls, "no symbolic GEMM was split"


_CHILD = r"""
import json, sys
import numpy as np
import jitflow as tf
from jitflow.codegen import cpu
out = {"threads": cpu.num_threads()}
for m, n, k, ta, tb, dt in json.loads(sys.argv[1]):
    r = np.random.default_rng(m * 7 + n)
    a = r.standard_normal((k, m) if ta else (m, k)).astype(dt)
    b = r.standard_normal((n, k) if tb else (k, n)).astype(dt)
    f = tf.jit(lambda p, q: tf.matmul(p, q, transpose_a=ta, transpose_b=tb))
    out[f"{m},{n},{k},{ta},{tb},{dt}"] = f(a, b).tolist()
print(json.dumps(out))
"""


def test_threaded_matches_one_thread_subprocess():
    cases = [(257, 33, 200, False, True, "float32"), (33, 257, 300, True, False, "float64"),
             (256, 1024, 64, False, False, "float32"), (7, 257, 160, True, True, "float32")]
    results = {}
    for threads in (None, "1"):
        env = dict(os.environ, JITFLOW_CACHE="0")
        env.pop("JITFLOW_NUM_THREADS", None)
        if threads:
            env["JITFLOW_NUM_THREADS"] = threads
        proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cases)], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results[threads] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results["1"].pop("threads") == 1
    results[None].pop("threads")
    for m, n, k, ta, tb, dt in cases:
        key = f"{m},{n},{k},{ta},{tb},{dt}"
        threaded, single = np.array(results[None][key]), np.array(results["1"][key])
        r = np.random.default_rng(m * 7 + n)
        a = r.standard_normal((k, m) if ta else (m, k)).astype(dt)
        b = r.standard_normal((n, k) if tb else (k, n)).astype(dt)
        tol = _tol(np.dtype(dt).type)
        np.testing.assert_allclose(threaded, single, **tol)
        np.testing.assert_allclose(threaded, _expected(a, b, ta, tb), **tol)
