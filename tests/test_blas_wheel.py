"""BLAS as a declared dependency (issue 17 item 1): the runtime loads the scipy-openblas64
wheel through its own helpers, compiled matmul (GEMM, GEMV, SYRK) equals numpy, and when no
library is found the generated loops run and a warning says so, once."""
import os
import warnings

import numpy as np
import pytest

import jitflow as tf
from jitflow.runtime import blas

scipy_openblas64 = pytest.importorskip("scipy_openblas64")


@pytest.fixture
def fresh_blas():
    """The loader's cache and its warning forgotten before and after the test."""
    blas.reset_for_tests()
    yield blas
    blas.reset_for_tests()


def test_loader_finds_the_wheels_library(fresh_blas):
    if os.environ.get("JITFLOW_BLAS", "1") == "0":
        pytest.skip("JITFLOW_BLAS=0 disables BLAS")
    wheel = os.path.join(scipy_openblas64.get_lib_dir(), scipy_openblas64.get_library(fullname=True))
    assert blas.wheel_library_paths() == [wheel]
    symbols = blas.blas_symbols()
    assert sorted(symbols) == sorted(f"jf_cblas_{p}{r}" for p in "sd" for r in ("gemm", "gemv", "syrk"))
    assert all(isinstance(a, int) and a for a in symbols.values())
    assert blas.blas_source() == ("scipy-openblas64", wheel)


def test_numpy_bundled_library_is_the_second_choice(fresh_blas, monkeypatch):
    monkeypatch.setattr(blas, "wheel_library_paths", lambda: [])
    if not blas.numpy_library_paths():
        pytest.skip("this numpy bundles no scipy-openblas64 library")
    assert blas.blas_symbols() and blas.blas_source()[0] == "numpy"


def _matmul_cases(rng):
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)   # noqa: E731
    f64 = lambda *s: rng.standard_normal(s)                      # noqa: E731
    return [  # (a, b, transpose_a, transpose_b)
        (f32(33, 17), f32(17, 9), False, False),                   # GEMM
        (f32(17, 33), f32(9, 17), True, True),                     # GEMM, both transposed
        (f64(40, 25), f64(25, 31), False, False),                  # DGEMM
        (f32(20, 12), f32(12, 1), False, False),                   # GEMV
    ]


def _run_cases(cases):
    graph_outputs = []
    for a, b, ta, tb in cases:
        graph_outputs.append(tf.matmul(tf.constant(a), tf.constant(b), transpose_a=ta, transpose_b=tb))
    x = tf.constant(cases[0][0])
    graph_outputs.append(tf.matmul(x, x, transpose_a=True))         # a.T @ a: SYRK
    with tf.Session() as sess:
        got = sess.run(graph_outputs)
    want = [(a.T if ta else a) @ (b.T if tb else b) for a, b, ta, tb in cases] + [cases[0][0].T @ cases[0][0]]
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5 if w.dtype == np.float32 else 1e-12, atol=1e-5)


def test_blas_matmul_equals_numpy(fresh_blas):
    if not blas.blas_symbols():
        pytest.skip("no BLAS library in this environment")
    with warnings.catch_warnings():
        warnings.simplefilter("error", blas.BlasFallbackWarning)
        _run_cases(_matmul_cases(np.random.default_rng(0)))


def test_fallback_warns_once_and_loops_are_correct(fresh_blas, monkeypatch):
    monkeypatch.setattr(blas, "wheel_library_paths", lambda: [])
    monkeypatch.setattr(blas, "numpy_library_paths", lambda: [])
    monkeypatch.setenv("JITFLOW_BLAS", "1")
    assert blas.blas_symbols() == {}
    rng = np.random.default_rng(1)
    with pytest.warns(blas.BlasFallbackWarning, match="no BLAS library.*scipy-openblas64"):
        _run_cases(_matmul_cases(rng))
    tf.reset_default_graph()
    with warnings.catch_warnings(record=True) as caught:          # once per process: no second warning
        warnings.simplefilter("always")
        a = rng.standard_normal((7, 5)).astype(np.float32)
        with tf.Session() as sess:
            got = sess.run(tf.matmul(tf.constant(a), tf.constant(a.T.copy())) * 2.0)
    np.testing.assert_allclose(got, 2 * a @ a.T, rtol=1e-5, atol=1e-5)
    assert not [w for w in caught if issubclass(w.category, blas.BlasFallbackWarning)]


def test_no_warning_when_blas_is_turned_off_on_purpose(fresh_blas, monkeypatch):
    monkeypatch.setenv("JITFLOW_BLAS", "0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        with tf.Session() as sess:
            got = sess.run(tf.matmul(tf.constant(a), tf.constant(a.T.copy())) + 1.0)
    np.testing.assert_allclose(got, a @ a.T + 1.0)
    assert not [w for w in caught if issubclass(w.category, blas.BlasFallbackWarning)]
