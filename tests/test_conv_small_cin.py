"""conv2d_max_pool's kernel for inputs with few channels (codegen/conv_pool_small.py): the pool window,
bias and ReLU in registers. Checked against numpy (the conv2d / max_pool references) and against the
unfused path (the same layer whose convolution has a second reader, so the pass does not fuse it)."""
import numpy as np
import pytest
from test_conv_fast import _fused_graph

import jitflow as tf
from jitflow.codegen.conv_pool_small import small_plan
from jitflow.ops.conv import geometry

CASES = [   # (input, filter, conv strides, conv padding, dilations, pool ksize, pool padding)
    ((2, 28, 28, 1), (5, 5, 1, 32), (1, 1), "SAME", (1, 1), (2, 2), "SAME"),      # the W10 first layer
    ((1, 7, 9, 1), (5, 5, 1, 8), (1, 1), "SAME", (1, 1), (2, 2), "SAME"),         # odd map: partial windows
    ((3, 11, 10, 3), (3, 3, 3, 20), (1, 1), "VALID", (1, 1), (2, 2), "VALID"),    # C_in 3, 20 = 16 + 4 channels
    ((2, 13, 12, 3), (3, 2, 3, 16), (2, 1), "SAME", (2, 1), (3, 3), "SAME"),      # strides, row dilation, 3x3 pool
    ((1, 9, 9, 1), (3, 3, 1, 40), (1, 2), "VALID", (1, 1), (2, 2), "SAME"),       # column stride, 3 vectors
    ((0, 8, 8, 1), (3, 3, 1, 16), (1, 1), "SAME", (1, 1), (2, 2), "SAME"),        # batch 0
    ((1, 2, 2, 3), (5, 5, 3, 8), (1, 1), "SAME", (1, 1), (2, 2), "SAME"),         # filter larger than the image
]
EPILOGUES = ["bias+relu", "bias+relu", "", "relu", "bias", "bias+relu", "bias+relu"]


def _unfused(case, dtype, x, epilogue, rng_seed):
    """The same layer with the convolution also fetched: the pass leaves conv2d and max_pool apart."""
    xs, fs, strides, padding, dilations, ksize, pool_padding = case
    rng = np.random.default_rng(rng_seed)
    g = tf.Graph()
    with g.as_default():
        px, _, y, _ = _fused_graph(case, dtype, rng, epilogue)
        conv = [n for n in g.get_operations() if n.type == "Conv2D"][0].outputs[0]
        sess = tf.Session(graph=g)
        got, _ = sess.run([y, conv], {px: x})
        ir = sess.inspect([y, conv], {px: x}).ir
    assert "conv2d_max_pool" not in ir
    return got


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_input_channels_fused_layer_matches_numpy_and_the_unfused_path(dtype):
    for k, (case, epilogue) in enumerate(zip(CASES, EPILOGUES)):
        xs, fs, strides, padding, dilations, ksize, pool_padding = case
        attrs = {"strides": strides, "dilations": dilations, "padding": padding}
        (oh, ow), _ = geometry(xs[1:3], fs[:2], attrs)
        (_, pw), _ = geometry((oh, ow), ksize, {"strides": ksize, "dilations": (1, 1), "padding": pool_padding})
        assert small_plan(xs, fs, ow, ksize, pw, np.dtype(dtype).itemsize) is not None, case
        g = tf.Graph()
        with g.as_default():
            px, x, y, want = _fused_graph(case, dtype, np.random.default_rng(k), epilogue)
            sess = tf.Session(graph=g)
            got = sess.run(y, {px: x})
            ir = sess.inspect(y, {px: x}).ir
        assert "conv2d_max_pool" in ir, case
        assert got.shape == want.shape, case
        tol = 1e-4 if dtype == np.float32 else 1e-11
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=str(case))
        np.testing.assert_allclose(got, _unfused(case, dtype, x, epilogue, k), rtol=tol, atol=tol, err_msg=str(case))


def test_first_maximum_wins_and_nan_never_does():
    """Ties and NaN in the pool window: the same cells as the unfused max_pool kernel."""
    case = ((1, 6, 6, 1), (1, 1, 1, 16), (1, 1), "SAME", (1, 1), (2, 2), "SAME")
    rng = np.random.default_rng(3)
    g = tf.Graph()
    with g.as_default():
        px, x, y, _ = _fused_graph(case, np.float32, rng, "")
        sess = tf.Session(graph=g)
        x = np.zeros(case[0], np.float32)
        x[0, 0, 1, 0] = np.nan
        x[0, 2, 2, 0] = -np.inf
        x[0, 4:6, 4:6, 0] = [[1.0, 3.0], [3.0, np.nan]]
        got = sess.run(y, {px: x})
    np.testing.assert_array_equal(got, _unfused(case, np.float32, x, "", 3))


def test_wide_rows_fall_back_to_the_general_kernel():
    assert small_plan((1, 8, 100, 1), (3, 3, 1, 16), 100, (2, 2), 50, 4) is None
    assert small_plan((1, 8, 8, 1), (3, 3, 1, 64), 8, (4, 4), 2, 4) is None     # 16 pixels x 2 vectors
