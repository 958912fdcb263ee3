"""tf.layers convolution and pooling layers (jitflow/api/conv_layers.py) against numpy references written
from TF's definitions, with TF 1.x's variable names, shapes, initializers and errors; batch normalization
and dropout on 4-D feature maps."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import UnsupportedError


# ---- numpy references (TF definitions: SAME pads total max((out-1)*s + k - in, 0), the smaller half first)
def _pads(size, kernel, stride, padding, dilation=1):
    kernel = (kernel - 1) * dilation + 1
    if padding == "VALID":
        return (size - kernel) // stride + 1, 0
    out = -(-size // stride)
    return out, max((out - 1) * stride + kernel - size, 0) // 2


def conv2d_ref(x, w, strides=(1, 1), padding="VALID", dilations=(1, 1)):
    n, h, wd, _ = x.shape
    kh, kw, _, co = w.shape
    oh, top = _pads(h, kh, strides[0], padding, dilations[0])
    ow, left = _pads(wd, kw, strides[1], padding, dilations[1])
    out = np.zeros((n, oh, ow, co))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    r = i * strides[0] - top + a * dilations[0]
                    c = j * strides[1] - left + b * dilations[1]
                    if 0 <= r < h and 0 <= c < wd:
                        out[:, i, j, :] += x[:, r, c, :] @ w[a, b]
    return out


def conv2d_transpose_ref(y, w, out_hw, strides, padding):
    """The gradient of conv2d (input out_hw, kernel [kh, kw, out_c, in_c]) with respect to its input."""
    n, yh, yw, _ = y.shape
    kh, kw, co, _ = w.shape
    _, top = _pads(out_hw[0], kh, strides[0], padding)
    _, left = _pads(out_hw[1], kw, strides[1], padding)
    out = np.zeros((n,) + tuple(out_hw) + (co,))
    for i in range(yh):
        for j in range(yw):
            for a in range(kh):
                for b in range(kw):
                    r, c = i * strides[0] - top + a, j * strides[1] - left + b
                    if 0 <= r < out_hw[0] and 0 <= c < out_hw[1]:
                        out[:, r, c, :] += y[:, i, j, :] @ w[a, b].T
    return out


def pool_ref(x, size, strides, padding, kind):
    n, h, wd, ch = x.shape
    oh, top = _pads(h, size[0], strides[0], padding)
    ow, left = _pads(wd, size[1], strides[1], padding)
    out = np.zeros((n, oh, ow, ch))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * strides[0] - top, j * strides[1] - left
            window = x[:, max(r0, 0):r0 + size[0], max(c0, 0):c0 + size[1], :]   # padded cells never count
            out[:, i, j, :] = window.max(axis=(1, 2)) if kind == "max" else window.mean(axis=(1, 2))
    return out


def _run(fetches, feed):
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        return sess.run(fetches, feed)


def _values(variables):
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        return sess.run(variables)


rng = np.random.RandomState(0)


# ---- conv2d
@pytest.mark.parametrize("padding,strides,dilation", [("same", 1, 1), ("VALID", 2, 1), ("Same", (2, 1), 1),
                                                      ("valid", 1, 2)])
def test_conv2d_matches_numpy(padding, strides, dilation):
    x_value = rng.rand(2, 7, 6, 3).astype(np.float32)
    x = tf.placeholder(tf.float32, (None, 7, 6, 3), name="x")
    y = tf.layers.conv2d(x, 4, (3, 2), strides=strides, padding=padding, dilation_rate=dilation,
                         activation=tf.nn.relu, bias_initializer=tf.constant_initializer(0.1))
    kernel, bias = tf.global_variables()
    out, k, b = _run([y, kernel, bias], {x: x_value})
    s = (strides, strides) if isinstance(strides, int) else strides
    want = np.maximum(conv2d_ref(x_value, k, s, padding.upper(), (dilation, dilation)) + b, 0)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    assert out.shape[1:] == tuple(y.shape.as_list()[1:])


def test_conv2d_variables_names_shapes_and_initializers():
    x = tf.placeholder(tf.float32, (None, 28, 28, 1), name="x")
    h = tf.layers.conv2d(x, 32, 5, padding="same", activation=tf.nn.relu)
    tf.layers.conv2d(h, 64, [5, 5], padding="same")
    names = [v.name for v in tf.global_variables()]
    assert names == ["conv2d/kernel:0", "conv2d/bias:0", "conv2d_1/kernel:0", "conv2d_1/bias:0"]
    assert [v.name for v in tf.trainable_variables()] == names
    assert [tuple(v.shape.as_list()) for v in tf.global_variables()] == [(5, 5, 1, 32), (32,), (5, 5, 32, 64),
                                                                          (64,)]
    assert h.name == "conv2d/Relu:0" and h.op.inputs[0].name == "conv2d/BiasAdd:0"
    k1, b1, k2, b2 = _values(tf.global_variables())
    assert not b1.any() and not b2.any()                             # zeros bias
    for k, fan_in, fan_out in ((k1, 25 * 1, 25 * 32), (k2, 25 * 32, 25 * 64)):    # glorot_uniform kernel
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        assert np.abs(k).max() <= limit and np.abs(k).max() > 0.9 * limit
        assert abs(k.std() - limit / np.sqrt(3)) < 0.1 * limit


def test_conv2d_scopes_reuse_and_class_form():
    x = tf.placeholder(tf.float32, (None, 6, 6, 2), name="x")
    with tf.variable_scope("net"):
        a = tf.layers.conv2d(x, 3, 3, name="conv")
        b = tf.layers.conv2d(x, 3, 3, name="conv", reuse=True)
    layer = tf.layers.Conv2D(3, 3, padding="same", use_bias=False, name="shared")
    c, d = layer(x), layer(x)
    assert [v.name for v in tf.global_variables()] == ["net/conv/kernel:0", "net/conv/bias:0", "shared/kernel:0"]
    assert layer.kernel.name == "shared/kernel:0" and layer.bias is None
    x_value = rng.rand(2, 6, 6, 2).astype(np.float32)
    a_v, b_v, c_v, d_v = _run([a, b, c, d], {x: x_value})
    np.testing.assert_array_equal(a_v, b_v)
    np.testing.assert_array_equal(c_v, d_v)
    assert tf.layers.Conv2D is tf.layers.Convolution2D
    with pytest.raises(ValueError, match="already exists"):
        with tf.variable_scope("net"):
            tf.layers.conv2d(x, 3, 3, name="conv")


def test_conv2d_argument_errors():
    x = tf.placeholder(tf.float32, (None, 6, 6, 2))
    with pytest.raises(UnsupportedError, match="channels_first"):
        tf.layers.conv2d(x, 3, 3, data_format="channels_first")
    with pytest.raises(UnsupportedError, match="channels_first"):
        tf.layers.max_pooling2d(x, 2, 2, data_format="channels_first")
    with pytest.raises(ValueError, match="padding"):
        tf.layers.conv2d(x, 3, 3, padding="full")
    with pytest.raises(ValueError, match="kernel_size"):
        tf.layers.conv2d(x, 3, (3, 3, 3))
    with pytest.raises(ValueError, match="ndim=4"):
        tf.layers.conv2d(tf.placeholder(tf.float32, (None, 6, 2)), 3, 3)
    with pytest.raises(ValueError, match="channel dimension"):
        tf.layers.conv2d(tf.placeholder(tf.float32, (None, 6, 6, None)), 3, 3)
    with pytest.raises(TypeError):
        tf.layers.Conv2D(3, 3, kernel_init=None)


def test_conv2d_trains_with_float64_gradient_check():
    x_value = rng.rand(2, 5, 5, 2)
    x = tf.placeholder(tf.float64, (None, 5, 5, 2))
    y = tf.layers.conv2d(x, 3, 3, strides=2, padding="same", activation=tf.nn.tanh)
    loss = tf.reduce_sum(tf.square(y))
    kernel = tf.global_variables()[0]
    grad = tf.gradients(loss, kernel)[0]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        k0, g = sess.run([kernel, grad], {x: x_value})
        numeric = np.zeros_like(k0)
        eps = 1e-6
        for index in [(0, 0, 0, 0), (1, 2, 1, 2), (2, 1, 0, 1), (1, 1, 1, 0)]:
            for sign in (1, -1):
                k = k0.copy()
                k[index] += sign * eps
                kernel.load(k, sess)
                numeric[index] += sign * sess.run(loss, {x: x_value}) / (2 * eps)
            np.testing.assert_allclose(g[index], numeric[index], rtol=1e-6, atol=1e-8)


# ---- conv2d_transpose
@pytest.mark.parametrize("padding,strides,want_hw", [("valid", 2, (11, 9)), ("same", 2, (10, 8)),
                                                     ("VALID", 1, (7, 6)), ("same", (1, 3), (5, 12))])
def test_conv2d_transpose_matches_numpy(padding, strides, want_hw):
    x_value = rng.rand(2, 5, 4, 3).astype(np.float32)
    x = tf.placeholder(tf.float32, (None, 5, 4, 3), name="x")
    y = tf.layers.conv2d_transpose(x, 2, 3, strides=strides, padding=padding,
                                   bias_initializer=tf.constant_initializer(0.5))
    assert tuple(y.shape.as_list()) == (None,) + want_hw + (2,)
    kernel, bias = tf.global_variables()
    assert kernel.name == "conv2d_transpose/kernel:0" and tuple(kernel.shape.as_list()) == (3, 3, 2, 3)
    out, k = _run([y, kernel], {x: x_value})
    s = (strides, strides) if isinstance(strides, int) else strides
    np.testing.assert_allclose(out, conv2d_transpose_ref(x_value, k, want_hw, s, padding.upper()) + 0.5,
                               rtol=1e-5, atol=1e-5)


def test_conv2d_transpose_with_unknown_spatial_size():
    x = tf.placeholder(tf.float32, (None, None, None, 2))
    y = tf.layers.Conv2DTranspose(3, 2, strides=2, padding="same")(x)
    for hw in ((3, 4), (2, 2)):
        value = rng.rand(1, hw[0], hw[1], 2).astype(np.float32)
        out, k, b = _run([y] + tf.global_variables(), {x: value})
        np.testing.assert_allclose(out, conv2d_transpose_ref(value, k, (2 * hw[0], 2 * hw[1]), (2, 2), "SAME") + b,
                                   rtol=1e-5, atol=1e-6)


# ---- pooling
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("size,strides,padding", [(2, 2, "valid"), (3, 2, "same"), ((2, 3), 1, "SAME"),
                                                  (3, 3, "same")])
def test_pooling_matches_numpy(kind, size, strides, padding):
    x_value = rng.randn(2, 7, 5, 3).astype(np.float32)
    x = tf.placeholder(tf.float32, (None, 7, 5, 3))
    fn = tf.layers.max_pooling2d if kind == "max" else tf.layers.average_pooling2d
    y = fn(x, size, strides, padding=padding)
    assert y.op.name == ("max_pooling2d/MaxPool" if kind == "max" else "average_pooling2d/AvgPool")
    pair = (lambda v: (v, v) if isinstance(v, int) else v)
    out = _run(y, {x: x_value})
    np.testing.assert_allclose(out, pool_ref(x_value, pair(size), pair(strides), padding.upper(), kind),
                               rtol=1e-6, atol=1e-6)
    assert out.shape[1:] == tuple(y.shape.as_list()[1:])
    assert tf.global_variables() == []


def test_pooling_class_forms_and_gradient():
    x_value = rng.randn(1, 4, 4, 1)
    x = tf.placeholder(tf.float64, (None, 4, 4, 1))
    y = tf.layers.MaxPooling2D(2, 2)(x)
    z = tf.layers.AveragePooling2D(pool_size=2, strides=2, padding="same")(x)
    gx_max, gx_avg = tf.gradients(tf.reduce_sum(y), x)[0], tf.gradients(tf.reduce_sum(z), x)[0]
    g_max, g_avg = _run([gx_max, gx_avg], {x: x_value})
    windows = x_value.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4)   # each 2x2 window a row
    expected = (windows == windows.max(1, keepdims=True)).astype(float)
    np.testing.assert_array_equal(g_max.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4), expected)
    np.testing.assert_allclose(g_avg, np.full_like(x_value, 0.25))


# ---- flatten, batch normalization and dropout on feature maps
def test_flatten_of_feature_maps():
    x_value = rng.rand(3, 4, 5, 2).astype(np.float32)
    x = tf.placeholder(tf.float32, (None, 4, 5, 2))
    y = tf.layers.flatten(tf.layers.max_pooling2d(x, 2, 2))
    assert y.shape.as_list() == [None, 2 * 2 * 2]
    np.testing.assert_allclose(_run(y, {x: x_value}), pool_ref(x_value, (2, 2), (2, 2), "VALID", "max").reshape(3, -1))


def test_batch_normalization_on_feature_maps_uses_channel_statistics():
    x_value = (rng.randn(4, 3, 3, 2) * [1.0, 5.0] + [2.0, -3.0]).astype(np.float32)
    x = tf.placeholder(tf.float32, (None, 3, 3, 2))
    training = tf.placeholder_with_default(False, ())
    y = tf.layers.batch_normalization(x, training=training, momentum=0.9)
    variables = {v.name: v for v in tf.global_variables()}
    assert sorted(variables) == ["batch_normalization/beta:0", "batch_normalization/gamma:0",
                                 "batch_normalization/moving_mean:0", "batch_normalization/moving_variance:0"]
    assert tuple(variables["batch_normalization/gamma:0"].shape.as_list()) == (2,)
    updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    assert len(updates) == 2
    mean, var = x_value.mean(axis=(0, 1, 2)), x_value.var(axis=(0, 1, 2))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out, _ = sess.run([y, updates], {x: x_value, training: True})
        np.testing.assert_allclose(out, (x_value - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-4)
        moving_mean, moving_var = sess.run([variables["batch_normalization/moving_mean:0"],
                                            variables["batch_normalization/moving_variance:0"]])
        np.testing.assert_allclose(moving_mean, 0.1 * mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(moving_var, 0.9 + 0.1 * var, rtol=1e-5)
        inference = sess.run(y, {x: x_value})
        np.testing.assert_allclose(inference, (x_value - moving_mean) / np.sqrt(moving_var + 1e-3), rtol=1e-4,
                                   atol=1e-4)


def test_dropout_on_feature_maps():
    x = tf.ones((8, 6, 6, 4))
    training = tf.placeholder_with_default(True, ())
    y = tf.layers.dropout(x, rate=0.25, training=training)
    with tf.Session() as sess:
        out = sess.run(y)
        np.testing.assert_array_equal(sess.run(y, {training: False}), np.ones((8, 6, 6, 4)))
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.15 < (out == 0).mean() < 0.35


def test_deep_mnist_layers_graph_trains():
    """The Deep MNIST layer stack in tf.layers form learns a separable toy task."""
    images = rng.rand(64, 12, 12, 1).astype(np.float32)
    labels = (images[:, :6].mean(axis=(1, 2, 3)) > images[:, 6:].mean(axis=(1, 2, 3))).astype(np.int32)
    x = tf.placeholder(tf.float32, (None, 12, 12, 1))
    y = tf.placeholder(tf.int32, (None,))
    h = tf.layers.max_pooling2d(tf.layers.conv2d(x, 4, 3, padding="same", activation=tf.nn.relu), 2, 2)
    h = tf.layers.max_pooling2d(tf.layers.conv2d(h, 8, 3, padding="same", activation=tf.nn.relu), 2, 2)
    h = tf.layers.dropout(tf.layers.dense(tf.layers.flatten(h), 16, activation=tf.nn.relu), 0.1, training=True)
    logits = tf.layers.dense(h, 2)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    train = tf.train.AdamOptimizer(0.01).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        first = sess.run(loss, {x: images, y: labels})
        for _ in range(60):
            sess.run(train, {x: images, y: labels})
        last = sess.run(loss, {x: images, y: labels})
    assert last < 0.5 * first


def test_odd_sizes_one_pixel_images_large_kernels_big_strides_and_empty_batches():
    x = tf.placeholder(tf.float32, (None, None, None, 2))
    conv = tf.layers.conv2d(x, 3, 3, padding="same", bias_initializer=tf.constant_initializer(0.25))
    pool = tf.layers.max_pooling2d(x, 1, 2, padding="valid")           # stride larger than the window
    avg = tf.layers.average_pooling2d(x, 3, 1, padding="same")          # window larger than the image
    kernel, bias = tf.global_variables()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        k = sess.run(kernel)
        for shape in ((2, 1, 1, 2), (0, 5, 4, 2), (1, 5, 3, 2)):
            value = rng.randn(*shape).astype(np.float32)
            c, p, a = sess.run([conv, pool, avg], {x: value})
            np.testing.assert_allclose(c, conv2d_ref(value, k, padding="SAME") + 0.25, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(p, pool_ref(value, (1, 1), (2, 2), "VALID", "max"))
            np.testing.assert_allclose(a, pool_ref(value, (3, 3), (1, 1), "SAME", "avg"), rtol=1e-6, atol=1e-6)
