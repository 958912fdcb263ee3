"""conv2d, depthwise_conv2d, conv2d_transpose and the conv backprop ops: compiled
results vs the numpy references of their registry records (odd sizes included:
1x1 images, kernels larger than the input with SAME, strides larger than the
kernel, batch 0, dilations, explicit padding), gradients vs finite differences
in float64, a second derivative, and the argument errors TF raises."""
import numpy as np
import pytest
from test_gradients import check_grads

import jitflow as tf
from jitflow.errors import UnsupportedError
from jitflow.ops import get_op

REF = {name: get_op(name).reference for name in (
    "conv2d", "conv2d_backprop_input", "conv2d_backprop_filter", "depthwise_conv2d_native",
    "depthwise_conv2d_native_backprop_input", "depthwise_conv2d_native_backprop_filter")}

# (input shape, filter shape, strides, padding, dilations)
CASES = [
    ((2, 7, 7, 3), (3, 3, 3, 5), (1, 1), "SAME", (1, 1)),
    ((2, 7, 8, 3), (3, 2, 3, 17), (2, 2), "SAME", (1, 1)),
    ((2, 7, 8, 3), (3, 2, 3, 33), (2, 3), "VALID", (1, 1)),
    ((1, 5, 5, 4), (3, 3, 4, 16), (1, 1), "SAME", (2, 2)),                      # dilations
    ((2, 6, 6, 2), (2, 2, 2, 4), (1, 1), ((1, 2), (0, 1)), (1, 1)),             # explicit padding
    ((3, 1, 1, 2), (1, 1, 2, 3), (1, 1), "SAME", (1, 1)),                       # 1x1 image, 1x1 kernel
    ((2, 1, 1, 3), (3, 3, 3, 4), (1, 1), "SAME", (1, 1)),                       # kernel larger than the input
    ((1, 3, 2, 2), (5, 4, 2, 3), (2, 1), "SAME", (1, 1)),
    ((2, 9, 9, 2), (2, 2, 2, 3), (4, 3), "VALID", (1, 1)),                      # stride larger than the kernel
    ((0, 5, 5, 2), (3, 3, 2, 4), (1, 1), "SAME", (1, 1)),                       # batch 0
    ((2, 14, 14, 32), (5, 5, 32, 64), (1, 1), "SAME", (1, 1)),                  # the MNIST layer shape
    ((2, 5, 5, 8), (1, 1, 8, 16), (1, 1), "SAME", (1, 1)),                      # 1x1: one GEMM
    ((2, 4, 3, 3), (1, 1, 3, 5), (1, 1), "VALID", (1, 1)),
    ((2, 5, 5, 8), (1, 1, 8, 16), (2, 2), "SAME", (1, 1)),                      # 1x1 strided: direct
    ((1, 6, 5, 128), (3, 3, 128, 256), (1, 2), "SAME", (1, 1)),                 # large filter: im2col + GEMM
]


def _explicit(padding):
    return padding if isinstance(padding, str) else [[0, 0], list(padding[0]), list(padding[1]), [0, 0]]


def _feeds(rng, xs, fs, dtype):
    return rng.standard_normal(xs).astype(dtype), rng.standard_normal(fs).astype(dtype)


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_and_its_backprops_match_the_references(dtype):
    rng = np.random.default_rng(0)
    for xs, fs, strides, padding, dilations in CASES:
        tf.reset_default_graph()
        attrs = dict(strides=strides, dilations=dilations, padding=padding)
        x = tf.placeholder(dtype, xs)
        f = tf.placeholder(dtype, fs)
        y = tf.nn.conv2d(x, f, strides=[1, *strides, 1], padding=_explicit(padding), dilations=[1, *dilations, 1])
        X, F = _feeds(rng, xs, fs, dtype)
        want = REF["conv2d"](X, F, **attrs)
        assert tuple(y.shape.as_list()) == want.shape
        dy = tf.placeholder(dtype, want.shape)
        bi = tf.nn.conv2d_backprop_input(xs, f, dy, [1, *strides, 1], _explicit(padding), dilations=dilations)
        bf = tf.nn.conv2d_backprop_filter(x, fs, dy, strides, _explicit(padding), dilations=dilations)
        DY = rng.standard_normal(want.shape).astype(dtype)
        with tf.Session() as sess:
            got, gi, gf = sess.run([y, bi, bf], {x: X, f: F, dy: DY})
        label = f"{xs} * {fs} strides {strides} {padding} dilations {dilations}"
        np.testing.assert_allclose(got, want, **_tol(dtype), err_msg=label)
        np.testing.assert_allclose(gi, REF["conv2d_backprop_input"](F, DY, input_shape=xs, **attrs), **_tol(dtype),
                                   err_msg=label)
        np.testing.assert_allclose(gf, REF["conv2d_backprop_filter"](X, DY, filter_shape=fs, **attrs),
                                   **_tol(dtype), err_msg=label)
        assert got.dtype == gi.dtype == gf.dtype == dtype


def test_same_padding_puts_the_odd_cell_at_the_bottom_right():
    """TF: 4x4 input, 2x2 kernel, stride 1, SAME: pad 0 above / left and 1 below / right."""
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    y = tf.nn.conv2d(tf.constant(x), tf.ones([2, 2, 1, 1]), strides=1, padding="SAME")
    with tf.Session() as sess:
        out = sess.run(y)[0, :, :, 0]
    assert out[0, 0] == 0 + 1 + 4 + 5            # the window starts at the top-left cell
    assert out[3, 3] == 15                        # bottom-right: only the real cell
    assert out[0, 3] == 3 + 7


def test_depthwise_conv2d_and_its_backprops_match_the_references():
    rng = np.random.default_rng(1)
    for xs, fs, s, padding, rate in [((2, 7, 7, 3), (3, 3, 3, 2), 1, "SAME", 1),
                                     ((2, 7, 8, 4), (3, 2, 4, 1), 2, "VALID", 1),
                                     ((1, 6, 6, 2), (3, 3, 2, 3), 1, "SAME", 2),
                                     ((2, 1, 1, 2), (3, 3, 2, 2), 1, "SAME", 1),
                                     ((0, 4, 4, 2), (2, 2, 2, 1), 1, "SAME", 1)]:
        tf.reset_default_graph()
        attrs = dict(strides=(s, s), dilations=(rate, rate), padding=padding)
        x, f = tf.placeholder(tf.float64, xs), tf.placeholder(tf.float64, fs)
        y = tf.nn.depthwise_conv2d(x, f, [1, s, s, 1], padding, rate=[rate, rate])
        X, F = _feeds(rng, xs, fs, np.float64)
        want = REF["depthwise_conv2d_native"](X, F, **attrs)
        dy = tf.placeholder(tf.float64, want.shape)
        gx, gf = tf.gradients(y, [x, f], grad_ys=dy)
        DY = rng.standard_normal(want.shape)
        with tf.Session() as sess:
            got, gi, gfv = sess.run([y, gx, gf], {x: X, f: F, dy: DY})
        np.testing.assert_allclose(got, want, **_tol(np.float64))
        np.testing.assert_allclose(gi, REF["depthwise_conv2d_native_backprop_input"](F, DY, input_shape=xs, **attrs),
                                   **_tol(np.float64))
        np.testing.assert_allclose(gfv, REF["depthwise_conv2d_native_backprop_filter"](X, DY, filter_shape=fs,
                                                                                       **attrs), **_tol(np.float64))


def test_conv2d_transpose_with_an_output_shape_tensor_and_unknown_batch():
    rng = np.random.default_rng(2)
    value = tf.placeholder(tf.float32, (None, 4, 4, 6))
    f = tf.constant(rng.standard_normal((3, 3, 2, 6)).astype(np.float32))
    out_shape = tf.stack([tf.shape(value)[0], 8, 8, 2])
    y = tf.nn.conv2d_transpose(value, f, out_shape, strides=[1, 2, 2, 1], padding="SAME")
    assert y.shape.as_list() == [None, 8, 8, 2]
    V = rng.standard_normal((3, 4, 4, 6)).astype(np.float32)
    with tf.Session() as sess:
        got = sess.run(y, {value: V})
    want = REF["conv2d_backprop_input"](f.op.attrs["value"], V, input_shape=(3, 8, 8, 2), strides=(2, 2),
                                        dilations=(1, 1), padding="SAME")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("xs,fs,strides,padding,dilations", [
    ((2, 5, 4, 2), (3, 2, 2, 3), (1, 1), "SAME", (1, 1)),
    ((1, 6, 5, 2), (2, 3, 2, 2), (2, 2), "VALID", (1, 1)),
    ((1, 5, 5, 1), (2, 2, 1, 2), (1, 1), ((1, 0), (2, 1)), (2, 1)),
])
def test_conv2d_gradient_matches_finite_differences(xs, fs, strides, padding, dilations):
    rng = np.random.default_rng(3)
    check_grads(lambda x, f: tf.nn.conv2d(x, f, strides, _explicit(padding), dilations=dilations),
                [rng.standard_normal(xs), rng.standard_normal(fs)])


def test_conv2d_gradient_with_unknown_batch_and_second_derivative():
    rng = np.random.default_rng(4)
    # an unknown batch: the backprop ops get their sizes from shape tensors resolved at specialization
    check_grads(lambda x, f: tf.nn.conv2d(x, f, 1, "SAME"), [rng.standard_normal((2, 4, 4, 2)),
                                                             rng.standard_normal((3, 3, 2, 2))],
                shapes=[(None, 4, 4, 2), (3, 3, 2, 2)])
    # conv(x, f)^2 has a nonzero Hessian: Hessian-vector products go through the backprop ops' gradients
    check_grads(lambda x, f: tf.square(tf.nn.conv2d(x, f, [1, 2, 1, 1], "SAME")),
                [rng.standard_normal((1, 5, 4, 2)), rng.standard_normal((2, 3, 2, 2))], order=2)


def test_backprop_ops_and_depthwise_gradients_match_finite_differences():
    rng = np.random.default_rng(5)
    check_grads(lambda f, dy: tf.nn.conv2d_backprop_input([2, 5, 5, 2], f, dy, [1, 2, 2, 1], "SAME"),
                [rng.standard_normal((3, 3, 2, 3)), rng.standard_normal((2, 3, 3, 3))])
    check_grads(lambda x, dy: tf.nn.conv2d_backprop_filter(x, [2, 3, 2, 3], dy, [1, 1, 1, 1], "VALID"),
                [rng.standard_normal((2, 4, 5, 2)), rng.standard_normal((2, 3, 3, 3))])
    check_grads(lambda x, f: tf.nn.depthwise_conv2d(x, f, [1, 1, 1, 1], "SAME"),
                [rng.standard_normal((2, 4, 4, 2)), rng.standard_normal((3, 3, 2, 2))], order=2)


def test_argument_errors():
    x = tf.placeholder(tf.float32, (1, 4, 4, 3))
    f = tf.zeros([2, 2, 3, 4])
    with pytest.raises(UnsupportedError, match="NCHW"):
        tf.nn.conv2d(x, f, 1, "SAME", data_format="NCHW")
    with pytest.raises(UnsupportedError, match="NCHW"):
        tf.nn.max_pool(x, 2, 2, "SAME", data_format="NCHW")
    with pytest.raises(ValueError, match="in_channels|depth"):
        tf.nn.conv2d(x, tf.zeros([2, 2, 2, 4]), 1, "SAME")
    with pytest.raises(ValueError, match="padding"):
        tf.nn.conv2d(x, f, 1, "FULL")
    with pytest.raises(ValueError, match="negative"):
        tf.nn.conv2d(x, tf.zeros([5, 5, 3, 4]), 1, "VALID")
    with pytest.raises(UnsupportedError, match="strides"):
        tf.nn.conv2d(x, f, [2, 1, 1, 1], "SAME")


def test_bias_add_data_formats_and_pad_on_4d():
    v = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    b = np.array([10, 20, 30], np.float32)
    nchw = tf.nn.bias_add(tf.constant(v), tf.constant(b), data_format="NCHW")
    nhwc = tf.nn.bias_add(tf.constant(v.transpose(0, 2, 3, 1)), tf.constant(b), data_format="NHWC")
    padded = tf.pad(tf.constant(v), [[0, 0], [1, 2], [0, 1], [0, 0]])
    with tf.Session() as sess:
        a, c, p = sess.run([nchw, nhwc, padded])
    np.testing.assert_array_equal(a, v + b[None, :, None, None])
    np.testing.assert_array_equal(c, v.transpose(0, 2, 3, 1) + b)
    np.testing.assert_array_equal(p, np.pad(v, [[0, 0], [1, 2], [0, 1], [0, 0]]))


def emulate_gpu(fetches, feeds):
    """Runs a graph's GPU kernels on the CPU: the NVPTX module rewritten for the host by
    tests/gpu_emulator.py (`host_ir`: the thread-index registers become parameters; every thread of
    every block of a launch runs in turn, or together where a kernel synchronizes). Checks the GPU
    element code here, where no GPU is; on a GPU machine the kernels run for real."""
    from gpu_emulator import EmulatedModule

    from jitflow.codegen import gpu
    from jitflow.framework.lowering import lower_run
    from jitflow.passes import run_pipeline
    from jitflow.passes.fusion import schedule_function
    lowered = lower_run(tf.get_default_graph(), fetches, feeds)
    schedule = schedule_function(run_pipeline(lowered.function))
    text, plan = gpu.generate_llvm_ir(schedule)
    module = EmulatedModule(text)
    arrays = {}
    feed_values = [np.ascontiguousarray(feeds[t]) for t in lowered.feed_tensors]
    for buf in schedule.buffers:
        if buf.kind == "param":
            arrays[buf.id] = feed_values[buf.ref]
        elif buf.kind == "const":
            arrays[buf.id] = np.array(buf.ref, dtype=buf.dtype.np)
        else:
            arrays[buf.id] = np.zeros(buf.shape, buf.dtype.np)
    for launch in plan.launches:
        if launch.op == "memset":
            arrays[launch.args[0][1]][...] = 0
            continue
        assert all(kind == "buf" for kind, _ in launch.args), launch
        module.function(launch.kernel).launch(launch.grid, launch.block,
                                              [arrays[ref].ctypes.data for _, ref in launch.args])
    outputs = {buf.ref: arrays[buf.id] for buf in schedule.buffers if buf.kind == "output"}
    return [outputs[i] for i in range(len(outputs))]


def test_gpu_kernels_of_the_family_compute_the_references():
    """Each op of the family alone (forward, gradient and second-derivative ops) through its GPU kernel
    (codegen/ptx_conv.py), emulated on the CPU, against the numpy references."""
    rng = np.random.default_rng(6)
    conv = dict(strides=(2, 1), dilations=(1, 2), padding="SAME")
    X, F, FD = rng.integers(-2, 3, (2, 7, 6, 3)).astype(np.float64), rng.standard_normal((3, 2, 3, 4)), \
        rng.standard_normal((2, 3, 3, 2))
    x, f, fd = tf.placeholder(tf.float64, X.shape), tf.placeholder(tf.float64, F.shape), \
        tf.placeholder(tf.float64, FD.shape)
    y = tf.nn.conv2d(x, f, [1, 2, 1, 1], "SAME", dilations=[1, 1, 2, 1])
    DY = rng.standard_normal(y.shape.as_list())
    dy = tf.placeholder(tf.float64, DY.shape)
    z = tf.nn.depthwise_conv2d(x, fd, [1, 1, 1, 1], "VALID")
    DZ = rng.standard_normal(z.shape.as_list())
    dz = tf.placeholder(tf.float64, DZ.shape)
    dw = dict(strides=(1, 1), dilations=(1, 1), padding="VALID")
    pool = dict(ksize=(3, 2), strides=(2, 1), padding="SAME")
    mp, ap = tf.nn.max_pool(x, [3, 2], [2, 1], "SAME"), tf.nn.avg_pool(x, [3, 2], [2, 1], "SAME")
    DP = rng.standard_normal(mp.shape.as_list())
    dp, gin = tf.placeholder(tf.float64, DP.shape), tf.placeholder(tf.float64, X.shape)
    mpg, = tf.gradients(mp, [x], grad_ys=dp)
    cases = [
        (y, {x: X, f: F}, REF["conv2d"](X, F, **conv)),
        (tf.nn.conv2d_backprop_input(X.shape, f, dy, [2, 1], "SAME", dilations=[1, 2]), {f: F, dy: DY},
         REF["conv2d_backprop_input"](F, DY, input_shape=X.shape, **conv)),
        (tf.nn.conv2d_backprop_filter(x, F.shape, dy, [2, 1], "SAME", dilations=[1, 2]), {x: X, dy: DY},
         REF["conv2d_backprop_filter"](X, DY, filter_shape=F.shape, **conv)),
        (z, {x: X, fd: FD}, REF["depthwise_conv2d_native"](X, FD, **dw)),
        (tf.gradients(z, [x], grad_ys=dz)[0], {x: X, fd: FD, dz: DZ},
         REF["depthwise_conv2d_native_backprop_input"](FD, DZ, input_shape=X.shape, **dw)),
        (tf.gradients(z, [fd], grad_ys=dz)[0], {x: X, fd: FD, dz: DZ},
         REF["depthwise_conv2d_native_backprop_filter"](X, DZ, filter_shape=FD.shape, **dw)),
        (mp, {x: X}, get_op("max_pool").reference(X, **pool)),
        (ap, {x: X}, get_op("avg_pool").reference(X, **pool)),
        (mpg, {x: X, dp: DP}, get_op("max_pool_grad").reference(X, DP, **pool)),
        (tf.gradients(ap, [x], grad_ys=dp)[0], {x: X, dp: DP}, get_op("avg_pool_grad").reference(DP, X.shape, **pool)),
        (tf.gradients(mpg, [dp], grad_ys=gin)[0], {x: X, gin: X * 0.5 + 1},
         get_op("max_pool_grad_grad").reference(X, X * 0.5 + 1, **pool)),
    ]
    for fetch, feeds, want in cases:
        got, = emulate_gpu([fetch], feeds)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10, err_msg=fetch.op.type)


def test_gpu_ptx_of_the_family_assembles():
    from jitflow.codegen import ptx
    from jitflow.framework.lowering import lower_run
    from jitflow.runtime.gpu_build import gpu_program
    if ptx.ptxas_path() is None:
        pytest.skip("ptxas is not installed")
    for dtype in (tf.float32, tf.float64):
        tf.reset_default_graph()
        x = tf.placeholder(dtype, (2, 7, 7, 3))
        f = tf.placeholder(dtype, (3, 3, 3, 4))
        y = tf.nn.avg_pool(tf.nn.max_pool(tf.nn.conv2d(x, f, 1, "SAME"), 2, 2, "SAME"), 2, 1, "VALID")
        grads = tf.gradients(tf.reduce_sum(y * y), [x, f])
        grads += tf.gradients(tf.nn.depthwise_conv2d(x, f[:, :, :, :2], [1, 1, 1, 1], "SAME"), [x, f])
        feeds = {x: np.zeros((2, 7, 7, 3), dtype.np), f: np.zeros((3, 3, 3, 4), dtype.np)}
        program = gpu_program(lower_run(tf.get_default_graph(), [y] + grads, feeds).function, "sm_90", verify=True)
        ok, log = ptx.check_ptx(program.ptx, "sm_90")
        assert ok, log


def test_a_small_deep_mnist_style_cnn_trains():
    """conv 5x5 -> relu -> max_pool -> conv 5x5 -> relu -> max_pool -> dense -> softmax, Adam: the loss falls."""
    rng = np.random.default_rng(7)
    images = rng.random((16, 12, 12, 1)).astype(np.float32)
    labels = np.eye(4, dtype=np.float32)[(images[:, :6].sum(axis=(1, 2, 3)) > images[:, 6:].sum(axis=(1, 2, 3)))
                                          * 1 + 2 * (images[:, :, :6].sum(axis=(1, 2, 3)) > 18)]
    x = tf.placeholder(tf.float32, [None, 12, 12, 1])
    y = tf.placeholder(tf.float32, [None, 4])
    w1 = tf.Variable(tf.truncated_normal([5, 5, 1, 8], stddev=0.1, seed=1))
    w2 = tf.Variable(tf.truncated_normal([5, 5, 8, 16], stddev=0.1, seed=2))
    w3 = tf.Variable(tf.truncated_normal([3 * 3 * 16, 4], stddev=0.1, seed=3))
    h = tf.nn.max_pool(tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w1, 1, "SAME"), tf.Variable(tf.fill([8], 0.1)))),
                       [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
    h = tf.nn.max_pool(tf.nn.relu(tf.nn.conv2d(h, w2, [1, 1, 1, 1], "SAME")), 2, 2, "SAME")
    logits = tf.matmul(tf.reshape(h, [-1, 3 * 3 * 16]), w3)
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    train = tf.train.AdamOptimizer(1e-2).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        first = sess.run(loss, {x: images, y: labels})
        for _ in range(30):
            sess.run(train, {x: images, y: labels})
        last = sess.run(loss, {x: images, y: labels})
    assert np.isfinite(last) and last < 0.5 * first, (first, last)
