"""The W10 speed paths of the conv2d family (issue 18 item 3), against numpy:
- the direct forward kernel runs by output rows with no work on padding (codegen/conv_rows.py), or per block of output pixels, only the filter rows that read inside
  the input for some pixel of the block (codegen/conv_kernels.py `row_tap_range`): odd shapes where
  blocks straddle images, rows of padding, kernels larger than the input, strides, dilations;
- max_pool moved before the bias / ReLU it commutes with (jitflow/passes/pool_commute.py): same
  values as the unmoved graph and numpy, applied only where the activation feeds nothing else;
- conv2d followed by a max_pool of non-overlapping windows as one op (conv2d_max_pool, made by
  jitflow/passes/conv_pool_fusion.py): CPU kernel (codegen/conv_pool_kernels.py), its GPU kernel
  emulated on the CPU and its PTX through ptxas;
- the GEMM strategies over the thread pool (1x1 convolutions split by rows; im2col chunks, each thread
  in its own workspace slot) and the fused layers: same results as numpy and as one thread;
- float64 gradients through these paths still match finite differences."""
import numpy as np
import pytest
from test_gradients import check_grads

import jitflow as tf
from jitflow.ops import get_op

CONV = get_op("conv2d").reference
POOL = get_op("max_pool").reference

# (input shape, filter shape, strides, padding, dilations): channels >= 8 (the direct kernel, not the
# folded one) and small filters (not im2col)
DIRECT_CASES = [
    ((3, 5, 5, 8), (5, 5, 8, 16), (1, 1), "SAME", (1, 1)),          # blocks straddle rows and images
    ((2, 1, 1, 8), (5, 5, 8, 16), (1, 1), "SAME", (1, 1)),          # 1x1 images: one filter row valid
    ((2, 3, 2, 8), (5, 4, 8, 17), (1, 1), "SAME", (1, 1)),          # kernel larger than the input
    ((2, 9, 9, 8), (2, 2, 8, 16), (3, 3), "VALID", (1, 1)),         # stride larger than the kernel
    ((1, 9, 7, 8), (3, 3, 8, 32), (2, 1), "SAME", (2, 2)),          # dilation and stride
    ((2, 6, 6, 8), (3, 3, 8, 16), (1, 1), ((2, 3), (0, 1)), (1, 1)),  # explicit padding past the window
    ((0, 5, 5, 8), (3, 3, 8, 16), (1, 1), "SAME", (1, 1)),          # batch 0
    ((4, 14, 14, 32), (5, 5, 32, 64), (1, 1), "SAME", (1, 1)),      # the W10 layer
    ((3, 4, 37, 8), (3, 3, 8, 20), (1, 1), "SAME", (1, 1)),         # rows past 32 pixels: blocks of any pixels
]


def _explicit(padding):
    return padding if isinstance(padding, str) else [[0, 0], list(padding[0]), list(padding[1]), [0, 0]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_conv_with_row_ranges_matches_the_reference(dtype):
    rng = np.random.default_rng(0)
    g = tf.Graph()
    with g.as_default():
        feeds, outs, refs = {}, [], []
        for xs, fs, strides, padding, dilations in DIRECT_CASES:
            x = rng.standard_normal(xs).astype(dtype)
            f = rng.standard_normal(fs).astype(dtype)
            px = tf.placeholder(tf.as_dtype(dtype), xs)
            feeds[px] = x
            outs.append(tf.nn.conv2d(px, tf.constant(f), [1, *strides, 1], _explicit(padding),
                                     dilations=[1, *dilations, 1]))
            refs.append(CONV(x, f, strides=strides, dilations=dilations, padding=padding))
        got = tf.Session(graph=g).run(outs, feeds)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for case, a, b in zip(DIRECT_CASES, got, refs):
        assert a.shape == b.shape, case
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=str(case))


def test_direct_conv_gradients_in_float64_match_finite_differences():
    rng = np.random.default_rng(1)
    check_grads(lambda x, f: tf.nn.conv2d(x, f, [1, 1, 1, 1], "SAME"),
                [rng.standard_normal((2, 3, 3, 8)), rng.standard_normal((5, 5, 8, 3)) * 0.3])


def _cnn_block(x, f, b, pool_k, pool_s, pool_padding, conv_padding="SAME"):
    h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, f, [1, 1, 1, 1], conv_padding), b))
    return h, tf.nn.max_pool(h, [1, *pool_k, 1], [1, *pool_s, 1], pool_padding)


def _np_block(x, f, b, pool_k, pool_s, pool_padding, conv_padding="SAME"):
    h = np.maximum(CONV(x, f, strides=(1, 1), dilations=(1, 1), padding=conv_padding) + b, 0)
    return POOL(h, ksize=pool_k, strides=pool_s, padding=pool_padding)


POOL_CASES = [((2, 2), (2, 2), "SAME", (2, 7, 7, 8)),     # odd map: the last window has padded cells
              ((3, 3), (2, 2), "VALID", (1, 9, 8, 1)),    # overlapping windows, one input channel
              ((2, 2), (3, 3), "SAME", (2, 5, 5, 8)),     # stride larger than the window
              ((2, 2), (2, 2), "SAME", (1, 1, 1, 8)),     # 1x1 map
              ((2, 2), (2, 2), "VALID", (0, 4, 4, 8))]    # batch 0


def _rewritten(sess, fetch, feeds):
    """Whether the run's IR pools before its ReLU (the pass moved the pool; the fusion pass may then
    have taken the bias and ReLU into conv2d_max_pool)."""
    ir = sess.inspect(fetch, feeds).ir
    return "= relu " not in ir or ir.index("max_pool") < ir.index("= relu ")


@pytest.mark.parametrize("pool_k,pool_s,pool_padding,xs", POOL_CASES)
def test_pool_moved_before_bias_and_relu_gives_the_same_values(pool_k, pool_s, pool_padding, xs):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(xs).astype(np.float32)
    f = rng.standard_normal((3, 3, xs[3], 16)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)       # negative biases too: ReLU zeros whole windows
    g = tf.Graph()
    with g.as_default():
        px = tf.placeholder(tf.float32, (None,) + xs[1:])
        h, y = _cnn_block(px, tf.constant(f), tf.Variable(b), pool_k, pool_s, pool_padding)
        sess = tf.Session(graph=g)
        sess.run(tf.global_variables_initializer())
    want = _np_block(x, f, b, pool_k, pool_s, pool_padding)
    np.testing.assert_allclose(sess.run(y, {px: x}), want, rtol=1e-5, atol=1e-5)
    if xs[0]:
        assert _rewritten(sess, y, {px: x})
    # the activation fetched as well: it feeds more than the pool, nothing moves, same values
    got_h, got_y = sess.run([h, y], {px: x})
    np.testing.assert_allclose(got_y, want, rtol=1e-5, atol=1e-5)
    assert not _rewritten(sess, [h, y], {px: x})


def test_pool_is_not_moved_past_steps_that_do_not_commute():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    d = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        px, pd = tf.placeholder(tf.float32, x.shape), tf.placeholder(tf.float32, d.shape)
        pool = lambda t: tf.nn.max_pool(t, [1, 2, 2, 1], [1, 2, 2, 1], "VALID")   # noqa: E731
        cases = [pool(px + pd),                        # the other operand varies inside a window
                 pool(-px),                            # decreasing
                 pool(px * 2.0),                       # mul: no trait (a negative factor would flip the max)
                 pool(px + tf.constant(np.arange(6, dtype=np.float32).reshape(1, 6, 1, 1)))]   # varies along rows
        sess = tf.Session(graph=g)
        got = sess.run(cases, {px: x, pd: d})
    np_pool = lambda t: POOL(t, ksize=(2, 2), strides=(2, 2), padding="VALID")   # noqa: E731
    want = [np_pool(x + d), np_pool(-x), np_pool(x * 2), np_pool(x + np.arange(6, dtype=np.float32).reshape(1, 6, 1, 1))]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    ir = sess.inspect(cases, {px: x, pd: d}).ir
    assert ir.count("= max_pool ") == 4 and "max_pool %Placeholder" not in ir     # each pool reads its step


def test_training_graph_keeps_the_activation_and_its_gradients_are_exact():
    """The gradient reads relu's result, so nothing moves; the float64 gradient of the whole block
    matches finite differences."""
    rng = np.random.default_rng(4)
    b0 = rng.standard_normal(3) * 0.5
    check_grads(lambda x, f: _cnn_block(x, f, tf.constant(b0), (2, 2), (2, 2), "SAME")[1],
                [rng.standard_normal((2, 5, 5, 2)), rng.standard_normal((3, 3, 2, 3)) * 0.5])


def test_the_w10_forward_shapes_match_numpy():
    """conv 5x5x1->32, pool, conv 5x5x32->64, pool at batch 3: both convolution paths, both pools moved."""
    rng = np.random.default_rng(5)
    x = rng.random((3, 28, 28, 1)).astype(np.float32)
    w1 = (rng.standard_normal((5, 5, 1, 32)) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((5, 5, 32, 64)) * 0.1).astype(np.float32)
    b1, b2 = np.full(32, 0.1, np.float32), np.full(64, -0.05, np.float32)
    g = tf.Graph()
    with g.as_default():
        px = tf.placeholder(tf.float32, (None, 28, 28, 1))
        _, h = _cnn_block(px, tf.constant(w1), tf.constant(b1), (2, 2), (2, 2), "SAME")
        _, h = _cnn_block(h, tf.constant(w2), tf.constant(b2), (2, 2), (2, 2), "SAME")
        sess = tf.Session(graph=g)
        got = sess.run(h, {px: x})
    want = _np_block(_np_block(x, w1, b1, (2, 2), (2, 2), "SAME"), w2, b2, (2, 2), (2, 2), "SAME")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    ir = sess.inspect(h, {px: x}).ir
    assert ir.count("= conv2d_max_pool ") == 2 and "= relu " not in ir and "= add " not in ir   # one op a layer


# ---- conv2d_max_pool: the fused op the pass makes --------------------------------------------------
FUSED_CASES = [   # (input, filter, conv strides, conv padding, dilations, pool ksize, pool padding)
    ((3, 7, 7, 1), (5, 5, 1, 8), (1, 1), "SAME", (1, 1), (2, 2), "SAME"),      # folded input, odd map
    ((2, 6, 5, 9), (3, 3, 9, 20), (1, 1), "SAME", (1, 1), (2, 2), "VALID"),    # direct, a dropped column
    ((2, 9, 8, 8), (3, 2, 8, 16), (2, 1), "VALID", (1, 2), (3, 3), "SAME"),    # strides, dilation, 3x3 pool
    ((2, 1, 1, 8), (5, 5, 8, 16), (1, 1), "SAME", (1, 1), (2, 2), "SAME"),     # 1x1 image, kernel larger
    ((0, 6, 6, 8), (3, 3, 8, 16), (1, 1), "SAME", (1, 1), (2, 2), "SAME"),     # batch 0
    ((2, 14, 14, 32), (5, 5, 32, 64), (1, 1), "SAME", (1, 1), (2, 2), "SAME"),  # the W10 layer
    ((2, 5, 35, 8), (3, 3, 8, 16), (1, 1), "SAME", (1, 1), (2, 2), "SAME"),     # rows past 32 pixels
]


def _fused_graph(case, dtype, rng, epilogue=""):
    """max_pool(conv2d) (epilogue "": the pool alone; "bias", "relu", "bias+relu": TF's layer order, the
    bias and ReLU before the pool) with its numpy value, checked against the op record's reference."""
    xs, fs, strides, padding, dilations, ksize, pool_padding = case
    x = rng.standard_normal(xs).astype(dtype)
    f = rng.standard_normal(fs).astype(dtype)
    b = rng.standard_normal(fs[3]).astype(dtype)
    px = tf.placeholder(tf.as_dtype(dtype), xs)
    h = tf.nn.conv2d(px, tf.constant(f), [1, *strides, 1], padding, dilations=[1, *dilations, 1])
    want = CONV(x, f, strides=strides, dilations=dilations, padding=padding)
    if "bias" in epilogue:
        h, want = tf.nn.bias_add(h, tf.constant(b)), want + b
    if "relu" in epilogue:
        h, want = tf.nn.relu(h), np.maximum(want, 0)
    y = tf.nn.max_pool(h, [1, *ksize, 1], [1, *ksize, 1], pool_padding)
    want = POOL(want, ksize=ksize, strides=ksize, padding=pool_padding)
    ref = get_op("conv2d_max_pool").reference(x, f, *([b] if "bias" in epilogue else []), strides=strides,
                                              dilations=dilations, padding=padding, pool_ksize=ksize,
                                              pool_strides=ksize, pool_padding=pool_padding,
                                              activation="relu" if "relu" in epilogue else None)
    np.testing.assert_allclose(ref, want, rtol=1e-12, atol=1e-12)
    return px, x, y, want


EPILOGUES = ["", "bias", "relu", "bias+relu", "bias+relu", "bias", "relu"]     # one per FUSED_CASES entry


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_conv_max_pool_matches_numpy(dtype):
    rng = np.random.default_rng(6)
    g = tf.Graph()
    with g.as_default():
        built = [_fused_graph(case, dtype, rng, e) for case, e in zip(FUSED_CASES, EPILOGUES)]
        sess = tf.Session(graph=g)
        feeds = {px: x for px, x, _, _ in built}
        got = sess.run([y for _, _, y, _ in built], feeds)
        ir = sess.inspect([y for _, _, y, _ in built], feeds).ir
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for case, a, (_, _, _, want) in zip(FUSED_CASES, got, built):
        assert a.shape == want.shape, case
        np.testing.assert_allclose(a, want, rtol=tol, atol=tol, err_msg=str(case))
    assert ir.count("conv2d_max_pool") == len(FUSED_CASES) and " conv2d " not in ir
    assert "= relu " not in ir and "= add " not in ir     # the bias and ReLU went into the fused ops


def test_overlapping_pools_and_shared_convolutions_are_not_fused():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 7, 7, 8)).astype(np.float32)
    f = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        px = tf.placeholder(tf.float32, x.shape)
        conv = tf.nn.conv2d(px, tf.constant(f), [1, 1, 1, 1], "SAME")
        overlapping = tf.nn.max_pool(tf.nn.conv2d(px, tf.constant(f * 2), [1, 1, 1, 1], "SAME"),
                                     [1, 3, 3, 1], [1, 2, 2, 1], "SAME")
        shared = tf.nn.max_pool(conv, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
        sess = tf.Session(graph=g)
        fetches = [overlapping, shared, conv]
        got = sess.run(fetches, {px: x})
        ir = sess.inspect(fetches, {px: x}).ir
    c = CONV(x, f, strides=(1, 1), dilations=(1, 1), padding="SAME")
    np.testing.assert_allclose(got[0], POOL(2 * c, ksize=(3, 3), strides=(2, 2), padding="SAME"), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[1], POOL(c, ksize=(2, 2), strides=(2, 2), padding="SAME"), rtol=1e-4, atol=1e-4)
    assert "conv2d_max_pool" not in ir


def test_fused_conv_max_pool_gpu_kernel_computes_the_reference():
    """The GPU kernel (codegen/ptx_conv_pool.py) emulated on the CPU (tests/test_conv_ops.py `emulate_gpu`)."""
    from test_conv_ops import emulate_gpu
    rng = np.random.default_rng(8)
    for case, epilogue in zip(FUSED_CASES[:4], EPILOGUES[:4]):
        tf.reset_default_graph()
        px, x, y, want = _fused_graph(case, np.float64, rng, epilogue)
        got, = emulate_gpu([y], {px: x})
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10, err_msg=str(case))


def test_fused_conv_max_pool_ptx_assembles():
    from jitflow.codegen import ptx
    from jitflow.framework.lowering import lower_run
    from jitflow.runtime.gpu_build import gpu_program
    if ptx.ptxas_path() is None:
        pytest.skip("ptxas is not installed")
    for dtype in (np.float32, np.float64):
        tf.reset_default_graph()
        rng = np.random.default_rng(9)
        px, x, y, _ = _fused_graph(FUSED_CASES[0], dtype, rng, "bias+relu")
        program = gpu_program(lower_run(tf.get_default_graph(), [y], {px: x}).function, "sm_90", verify=True)
        assert [k.root.node.op for k in program.schedule.kernels] == ["conv2d_max_pool"]
        ok, log = ptx.check_ptx(program.ptx, "sm_90")
        assert ok, log


# ---- the GEMM strategies over the thread pool ----------------------------------------------------
_GEMM_SCRIPT = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
import jitflow as tf
from test_conv_fast import gemm_case
np.save({out!r}, np.concatenate([a.ravel() for a in gemm_case()]))
"""


def im2col_case():
    """A 3x3x128->256 convolution (a filter past 1 MB: im2col chunks of 113 patch rows, 5 of them)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 16, 16, 128)).astype(np.float32)
    f = (rng.standard_normal((3, 3, 128, 256)) * 0.1).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        px = tf.placeholder(tf.float32, x.shape)
        y = tf.nn.conv2d(px, tf.constant(f), [1, 1, 1, 1], "SAME")
        return x, f, tf.Session(graph=g).run(y, {px: x})


def gemm_case():
    """conv2d 1x1 forward, input and filter gradients (each a GEMM of 2^20+ multiply-adds), the im2col
    convolution's result and the fused W10 layers' (what the thread-count comparison checks)."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 16, 16, 64)).astype(np.float32)
    f = rng.standard_normal((1, 1, 64, 48)).astype(np.float32)
    dy = rng.standard_normal((4, 16, 16, 48)).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        px, pf, pdy = tf.placeholder(tf.float32, x.shape), tf.placeholder(tf.float32, f.shape), \
            tf.placeholder(tf.float32, dy.shape)
        y = tf.nn.conv2d(px, pf, [1, 1, 1, 1], "VALID")
        dx, df = tf.gradients(y, [px, pf], grad_ys=pdy)
        return tf.Session(graph=g).run([y, dx, df], {px: x, pf: f, pdy: dy}) + [im2col_case()[2], w10_case()]


def w10_case():
    """The W10 CNN's two fused layers (conv2d_max_pool with bias and ReLU, folded and by rows), batch 16."""
    rng = np.random.default_rng(12)
    x = rng.random((16, 28, 28, 1)).astype(np.float32)
    w1, w2 = rng.standard_normal((5, 5, 1, 32)).astype(np.float32), rng.standard_normal((5, 5, 32, 64)).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        px = tf.placeholder(tf.float32, x.shape)
        _, h = _cnn_block(px, tf.constant(w1 * 0.1), tf.constant(np.full(32, 0.1, np.float32)), (2, 2), (2, 2), "SAME")
        _, h = _cnn_block(h, tf.constant(w2 * 0.1), tf.constant(np.full(64, -0.1, np.float32)), (2, 2), (2, 2), "SAME")
        return tf.Session(graph=g).run(h, {px: x})


def test_conv_kernels_on_the_pool_match_numpy_and_one_thread(tmp_path):
    import os
    import subprocess
    import sys
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 16, 16, 64)).astype(np.float32)
    f = rng.standard_normal((1, 1, 64, 48)).astype(np.float32)
    dy = rng.standard_normal((4, 16, 16, 48)).astype(np.float32)
    y, dx, df, y_im2col, y_w10 = gemm_case()
    xi, fi, _ = im2col_case()
    np.testing.assert_allclose(y_im2col, CONV(xi, fi, strides=(1, 1), dilations=(1, 1), padding="SAME"),
                               rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(y, (x.reshape(-1, 64) @ f.reshape(64, 48)).reshape(y.shape), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, (dy.reshape(-1, 48) @ f.reshape(64, 48).T).reshape(x.shape), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(df, (x.reshape(-1, 64).T @ dy.reshape(-1, 48)).reshape(f.shape), rtol=1e-3, atol=1e-3)
    out = tmp_path / "one.npy"
    env = dict(os.environ, JITFLOW_NUM_THREADS="1", JITFLOW_CACHE="0")
    script = _GEMM_SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)), out=str(out))
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=300)
    one = np.load(out)
    np.testing.assert_allclose(np.concatenate([a.ravel() for a in (y, dx, df, y_im2col, y_w10)]), one, rtol=1e-5,
                               atol=1e-4)


@pytest.mark.parametrize("kind,xs,fs,extent", [
    ("gemm", (4, 16, 16, 64), (1, 1, 64, 48), 4 * 16 * 16),      # rows of the product
    ("im2col", (2, 16, 16, 128), (3, 3, 128, 256), 5),          # chunks of 113 patch rows
])
def test_conv_gemm_kernels_are_ranged_over_the_pool(kind, xs, fs, extent):
    from jitflow.codegen.conv_gemm import emit
    from jitflow.framework.lowering import lower_run
    from jitflow.ops.conv import strategy
    from jitflow.passes import run_pipeline
    from jitflow.passes.fusion import schedule_function
    g = tf.Graph()
    with g.as_default():
        px = tf.placeholder(tf.float32, xs)
        y = tf.nn.conv2d(px, tf.constant(np.ones(fs, np.float32)), [1, 1, 1, 1], "SAME")
        fn = lower_run(g, [y], {px: np.zeros(xs, np.float32)}).function
    schedule = schedule_function(run_pipeline(fn))
    kernel = next(k for k in schedule.kernels if k.kind == "library")
    assert strategy("conv2d", xs, fs, kernel.root.node.attrs, 4) == kind
    _, _, _, info = emit(kind, "conv2d", "k", schedule, kernel, set())
    assert info.splittable and info.extent == extent
