"""tf.image (TF 1.x): resizing, flips, crops/pads, dtype conversion, color, standardization."""
import numpy as np
import pytest

import jitflow as tf
from jitflow.errors import UnsupportedError

RNG = np.random.default_rng(0)


def run(t, feed=None):
    with tf.Session() as sess:
        return sess.run(t, feed_dict=feed)


@pytest.fixture(autouse=True)
def _graph():
    tf.reset_default_graph()
    yield


# ---- numpy references for TF's kernels --------------------------------------------------------------
def _scale(i, o, ac):
    return np.float32(i - 1) / np.float32(o - 1) if ac and o > 1 else np.float32(i) / np.float32(o)


def ref_bilinear(x, oh, ow, ac=False, hp=False):
    n, h, w, c = x.shape
    out = np.zeros((n, oh, ow, c), np.float32)
    sh, sw = _scale(h, oh, ac), _scale(w, ow, ac)
    for i in range(oh):
        fy = np.float32((i + 0.5) * sh - 0.5) if hp else np.float32(i * sh)
        y0, y1, ly = max(int(np.floor(fy)), 0), min(int(np.ceil(fy)), h - 1), fy - np.floor(fy)
        for j in range(ow):
            fx = np.float32((j + 0.5) * sw - 0.5) if hp else np.float32(j * sw)
            x0, x1, lx = max(int(np.floor(fx)), 0), min(int(np.ceil(fx)), w - 1), fx - np.floor(fx)
            top = x[:, y0, x0] + (x[:, y0, x1] - x[:, y0, x0]) * lx
            bot = x[:, y1, x0] + (x[:, y1, x1] - x[:, y1, x0]) * lx
            out[:, i, j] = top + (bot - top) * ly
    return out


def ref_nearest(x, oh, ow, ac=False):
    n, h, w, c = x.shape
    sh, sw = _scale(h, oh, ac), _scale(w, ow, ac)
    rnd = (lambda v: int(np.floor(v + 0.5))) if ac else (lambda v: int(np.floor(v)))
    rows = [min(rnd(np.float32(i * sh)), h - 1) for i in range(oh)]
    cols = [min(rnd(np.float32(j * sw)), w - 1) for j in range(ow)]
    return x[:, rows][:, :, cols]


# ---- resize ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ac", [False, True])
@pytest.mark.parametrize("size", [(7, 5), (2, 3)])
def test_resize_bilinear_matches_tf_legacy_mapping(ac, size):
    x = RNG.standard_normal((2, 4, 6, 3)).astype(np.float32)
    y = tf.image.resize_bilinear(tf.constant(x), size, align_corners=ac)
    assert y.dtype == tf.float32 and y.shape.as_list() == [2, *size, 3]
    np.testing.assert_allclose(run(y), ref_bilinear(x, *size, ac), rtol=1e-5, atol=1e-5)


def test_resize_bilinear_known_values_and_half_pixel():
    # TF 1.x legacy: [[0, 1]] to width 4 -> src = dst * 0.5 -> 0, .5, 1, 1
    x = np.array([0.0, 1.0], np.float32).reshape(1, 1, 2, 1)
    np.testing.assert_allclose(run(tf.image.resize_bilinear(x, [1, 4])).reshape(-1), [0, .5, 1, 1])
    np.testing.assert_allclose(run(tf.image.resize_bilinear(x, [1, 4], align_corners=True)).reshape(-1),
                               [0, 1 / 3, 2 / 3, 1], rtol=1e-6)
    x = RNG.standard_normal((1, 3, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(run(tf.image.resize_bilinear(x, [6, 4], half_pixel_centers=True)),
                               ref_bilinear(x, 6, 4, hp=True), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        tf.image.resize_bilinear(x, [6, 4], align_corners=True, half_pixel_centers=True)


def test_resize_bilinear_int_input_and_unknown_batch():
    x = RNG.integers(0, 255, (3, 4, 4, 1)).astype(np.uint8)
    p = tf.placeholder(tf.uint8, [None, 4, 4, 1])
    y = tf.image.resize_bilinear(p, [6, 3])
    assert y.dtype == tf.float32
    np.testing.assert_allclose(run(y, {p: x}), ref_bilinear(x.astype(np.float32), 6, 3), rtol=1e-5)


def test_resize_bilinear_gradient_vs_finite_differences():
    x = RNG.standard_normal((1, 3, 4, 2))
    w = RNG.standard_normal((1, 5, 7, 2))
    p = tf.placeholder(tf.float64, [1, 3, 4, 2])
    y = tf.image.resize_bilinear(p, [5, 7])
    loss = tf.reduce_sum(tf.cast(y, tf.float64) * w)
    g = run(tf.gradients(loss, p)[0], {p: x})

    def f(v):
        return float(np.sum(ref_bilinear(v.astype(np.float32), 5, 7).astype(np.float64) * w))
    fd = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = 1e-2
        fd[idx] = (f(x + e) - f(x - e)) / 2e-2
    np.testing.assert_allclose(g, fd, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("ac", [False, True])
def test_resize_nearest_neighbor(ac):
    x = RNG.integers(0, 100, (2, 5, 3, 2)).astype(np.int32)
    y = tf.image.resize_nearest_neighbor(x, [3, 7], align_corners=ac)
    assert y.dtype == tf.int32
    np.testing.assert_array_equal(run(y), ref_nearest(x, 3, 7, ac))


def test_resize_images_methods_ranks_and_errors():
    x = RNG.standard_normal((4, 6, 3)).astype(np.float32)
    y = tf.image.resize_images(x, [8, 3])
    assert y.shape.as_list() == [8, 3, 3]
    np.testing.assert_allclose(run(y), ref_bilinear(x[None], 8, 3)[0], rtol=1e-5, atol=1e-5)
    y = tf.image.resize_images(x[None], [8, 3], method=tf.image.ResizeMethod.NEAREST_NEIGHBOR, align_corners=True)
    np.testing.assert_array_equal(run(y), ref_nearest(x[None], 8, 3, True))
    same = tf.image.resize_images(tf.constant(x), [4, 6])
    np.testing.assert_array_equal(run(same), x)
    kept = tf.image.resize_images(x, [8, 8], preserve_aspect_ratio=True)    # factor min(2, 4/3)
    assert kept.shape.as_list() == [5, 8, 3]
    with pytest.raises(UnsupportedError, match="method"):
        tf.image.resize_images(x, [8, 3], method=tf.image.ResizeMethod.BICUBIC)
    with pytest.raises(ValueError):
        tf.image.resize_images(np.zeros((2, 2), np.float32), [3, 3])
    with pytest.raises(UnsupportedError, match="size"):
        tf.image.resize_images(x, tf.placeholder(tf.int32, [2]))
    assert (tf.image.ResizeMethod.BILINEAR, tf.image.ResizeMethod.NEAREST_NEIGHBOR) == (0, 1)


# ---- flips, transpose, rot90 -------------------------------------------------------------------------
def test_flips_transpose_rot90():
    x = RNG.standard_normal((3, 4, 2)).astype(np.float32)
    b = RNG.standard_normal((2, 3, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(run(tf.image.flip_left_right(x)), x[:, ::-1])
    np.testing.assert_array_equal(run(tf.image.flip_up_down(x)), x[::-1])
    np.testing.assert_array_equal(run(tf.image.flip_left_right(b)), b[:, :, ::-1])
    np.testing.assert_array_equal(run(tf.image.flip_up_down(b)), b[:, ::-1])
    np.testing.assert_array_equal(run(tf.image.transpose_image(x)), x.transpose(1, 0, 2))
    np.testing.assert_array_equal(run(tf.image.transpose_image(b)), b.transpose(0, 2, 1, 3))
    for k in range(-1, 5):
        np.testing.assert_array_equal(run(tf.image.rot90(x, k)), np.rot90(x, k, axes=(0, 1)))
        np.testing.assert_array_equal(run(tf.image.rot90(b, k)), np.rot90(b, k, axes=(1, 2)))
    with pytest.raises(ValueError):
        tf.image.flip_left_right(np.zeros((2, 2), np.float32))


def test_random_flips_seeded():
    x = RNG.standard_normal((3, 4, 1)).astype(np.float32)
    b = RNG.standard_normal((16, 3, 4, 1)).astype(np.float32)
    tf.set_random_seed(3)
    y = tf.image.random_flip_left_right(x, seed=1)
    yb = tf.image.random_flip_up_down(b, seed=2)
    seen = set()
    with tf.Session() as sess:
        for _ in range(12):
            v = sess.run(y)
            seen.add(bool(np.array_equal(v, x[:, ::-1])) if not np.array_equal(v, x) else False)
            assert np.array_equal(v, x) or np.array_equal(v, x[:, ::-1])
        vb = sess.run(yb)
    assert seen == {True, False}
    flipped = [np.array_equal(vb[i], b[i, ::-1]) for i in range(16)]
    kept = [np.array_equal(vb[i], b[i]) for i in range(16)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)
    tf.reset_default_graph()
    tf.set_random_seed(3)
    y2 = tf.image.random_flip_left_right(x, seed=1)
    with tf.Session() as s1, tf.Session() as s2:
        assert np.array_equal(s1.run(y2), s2.run(y2))


# ---- crops and pads ----------------------------------------------------------------------------------
def test_crop_pad_bounding_boxes():
    x = RNG.standard_normal((5, 6, 2)).astype(np.float32)
    b = RNG.standard_normal((2, 5, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(run(tf.image.crop_to_bounding_box(x, 1, 2, 3, 4)), x[1:4, 2:6])
    np.testing.assert_array_equal(run(tf.image.crop_to_bounding_box(b, 1, 2, 3, 4)), b[:, 1:4, 2:6])
    np.testing.assert_array_equal(run(tf.image.pad_to_bounding_box(x, 1, 2, 7, 9)),
                                  np.pad(x, [[1, 1], [2, 1], [0, 0]]))
    np.testing.assert_array_equal(run(tf.image.pad_to_bounding_box(b, 0, 3, 5, 9)),
                                  np.pad(b, [[0, 0], [0, 0], [3, 0], [0, 0]]))
    with pytest.raises(ValueError, match="width must be >= target"):
        tf.image.crop_to_bounding_box(x, 0, 3, 2, 4)
    with pytest.raises(ValueError, match="height must be <= target"):
        tf.image.pad_to_bounding_box(x, 1, 0, 5, 6)


def test_resize_image_with_crop_or_pad_and_central_crop():
    x = RNG.standard_normal((5, 6, 1)).astype(np.float32)
    # height 5 -> 8: pad 1 top (3 // 2) and 2 bottom; width 6 -> 3: crop offset 3 // 2 = 1
    y = run(tf.image.resize_image_with_crop_or_pad(x, 8, 3))
    np.testing.assert_array_equal(y, np.pad(x[:, 1:4], [[1, 2], [0, 0], [0, 0]]))
    y = run(tf.image.resize_image_with_crop_or_pad(x[None], 2, 9))
    np.testing.assert_array_equal(y, np.pad(x[None, 1:3], [[0, 0], [0, 0], [1, 2], [0, 0]]))
    img = RNG.standard_normal((10, 7, 3)).astype(np.float32)
    # TF: top = int((10 - 5) / 2) = 2, left = int((7 - 3.5) / 2) = 1
    np.testing.assert_array_equal(run(tf.image.central_crop(img, 0.5)), img[2:8, 1:6])
    np.testing.assert_array_equal(run(tf.image.central_crop(img[None], 0.5)), img[None, 2:8, 1:6])
    with pytest.raises(ValueError):
        tf.image.central_crop(img, 0.0)


def test_random_crop_seeded_windows():
    x = np.arange(6 * 7 * 2, dtype=np.float32).reshape(6, 7, 2)
    tf.set_random_seed(5)
    y = tf.image.random_crop(x, [3, 4, 2], seed=7)
    assert y.shape.as_list() == [3, 4, 2]
    offsets = set()
    with tf.Session() as sess:
        for _ in range(10):
            v = sess.run(y)
            r, c = divmod(int(v[0, 0, 0]) // 2, 7)
            np.testing.assert_array_equal(v, x[r:r + 3, c:c + 4])
            offsets.add((r, c))
    assert len(offsets) > 1
    with pytest.raises(ValueError):
        tf.image.random_crop(x, [7, 4, 2])


# ---- dtypes and color --------------------------------------------------------------------------------
def test_convert_image_dtype_rules():
    u8 = np.array([0, 1, 128, 255], np.uint8)
    np.testing.assert_allclose(run(tf.image.convert_image_dtype(u8, tf.float32)), u8 / np.float32(255), rtol=1e-6)
    f = np.array([0.0, 0.5, 1.0, 1.5, -0.2], np.float32)
    np.testing.assert_array_equal(run(tf.image.convert_image_dtype(f, tf.uint8, saturate=True)),
                                  [0, 127, 255, 255, 0])      # 0.5 * 255.5 = 127.75 truncates
    np.testing.assert_array_equal(run(tf.image.convert_image_dtype(f[:3], tf.uint8)), [0, 127, 255])
    np.testing.assert_array_equal(run(tf.image.convert_image_dtype(u8, tf.int32)),
                                  u8.astype(np.int64) * ((2 ** 31) // 256))
    i32 = np.array([0, 2 ** 24, 2 ** 31 - 1], np.int32)
    np.testing.assert_array_equal(run(tf.image.convert_image_dtype(i32, tf.uint8)), [0, 2, 255])   # floordiv by 2**23
    out = tf.image.convert_image_dtype(f, tf.float64)
    assert out.dtype == tf.float64
    np.testing.assert_allclose(run(out), f.astype(np.float64))


def test_grayscale_conversions():
    rgb = RNG.random((2, 3, 3)).astype(np.float32)
    gray = run(tf.image.rgb_to_grayscale(rgb))
    np.testing.assert_allclose(gray, (rgb @ np.array([0.2989, 0.5870, 0.1140], np.float32))[..., None], rtol=1e-5)
    u8 = RNG.integers(0, 256, (1, 2, 2, 3)).astype(np.uint8)
    g8 = run(tf.image.rgb_to_grayscale(u8))
    expect = (u8 / 255.0 @ np.array([0.2989, 0.5870, 0.1140])) * 255.5
    assert g8.dtype == np.uint8 and g8.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(g8[..., 0], np.floor(expect), atol=1)
    np.testing.assert_array_equal(run(tf.image.grayscale_to_rgb(gray)), np.repeat(gray, 3, axis=-1))
    with pytest.raises(ValueError):
        tf.image.grayscale_to_rgb(rgb)


def test_brightness_and_contrast():
    x = RNG.random((4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(run(tf.image.adjust_brightness(x, 0.25)), x + 0.25, rtol=1e-6)
    u8 = np.array([[[10], [250]]], np.uint8)
    np.testing.assert_array_equal(run(tf.image.adjust_brightness(u8, 0.1)), [[[35], [255]]])
    mean = x.mean(axis=(0, 1), keepdims=True)
    np.testing.assert_allclose(run(tf.image.adjust_contrast(x, 1.7)), (x - mean) * 1.7 + mean, rtol=1e-5, atol=1e-6)
    b = x[None].repeat(2, 0)
    np.testing.assert_allclose(run(tf.image.adjust_contrast(b, 0.5)), (b - mean) * 0.5 + mean, rtol=1e-5, atol=1e-6)
    tf.set_random_seed(1)
    rb = tf.image.random_brightness(x, 0.2, seed=3)
    rc = tf.image.random_contrast(x, 0.5, 1.5, seed=4)
    vb, vc = run([rb, rc])
    d = vb - x
    assert np.allclose(d, d.flat[0], atol=1e-6) and abs(d.flat[0]) <= 0.2
    k = np.argmax(np.abs(x - mean))
    factor = (vc - mean).flat[k] / (x - mean).flat[k]
    assert 0.5 <= factor <= 1.5
    np.testing.assert_allclose(vc, (x - mean) * factor + mean, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        tf.image.random_contrast(x, 1.0, 0.5)
    with pytest.raises(ValueError):
        tf.image.random_brightness(x, -1.0)


def test_per_image_standardization():
    x = RNG.random((2, 4, 5, 3)).astype(np.float32) * 255
    y = run(tf.image.per_image_standardization(x))
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = np.maximum(x.std(axis=(1, 2, 3), keepdims=True), 1 / np.sqrt(60))
    np.testing.assert_allclose(y, (x - mean) / std, rtol=1e-4, atol=1e-4)
    const = np.full((2, 2, 1), 7, np.uint8)             # stddev 0 -> divides by 1/sqrt(4)
    out = run(tf.image.per_image_standardization(const))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 0.0)


# ---- crop_and_resize ---------------------------------------------------------------------------------
def ref_crop_and_resize(img, boxes, ind, ch, cw, method="bilinear", extrap=0.0):
    _, h, w, c = img.shape
    out = np.zeros((len(boxes), ch, cw, c), np.float32)
    for b, (y1, x1, y2, x2) in enumerate(boxes.astype(np.float32)):
        hs = np.float32((y2 - y1) * (h - 1) / (ch - 1)) if ch > 1 else 0
        ws = np.float32((x2 - x1) * (w - 1) / (cw - 1)) if cw > 1 else 0
        for i in range(ch):
            iy = np.float32(y1 * (h - 1) + i * hs) if ch > 1 else np.float32(0.5 * (y1 + y2) * (h - 1))
            for j in range(cw):
                ix = np.float32(x1 * (w - 1) + j * ws) if cw > 1 else np.float32(0.5 * (x1 + x2) * (w - 1))
                if not (0 <= iy <= h - 1 and 0 <= ix <= w - 1):
                    out[b, i, j] = extrap
                    continue
                im = img[ind[b]]
                if method == "nearest":
                    out[b, i, j] = im[int(np.floor(iy + 0.5)), int(np.floor(ix + 0.5))]
                    continue
                t, bo, le, r = int(np.floor(iy)), int(np.ceil(iy)), int(np.floor(ix)), int(np.ceil(ix))
                ly, lx = iy - np.floor(iy), ix - np.floor(ix)
                top = im[t, le] + (im[t, r] - im[t, le]) * lx
                bot = im[bo, le] + (im[bo, r] - im[bo, le]) * lx
                out[b, i, j] = top + (bot - top) * ly
    return out


@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_crop_and_resize(method):
    img = RNG.standard_normal((2, 5, 6, 3)).astype(np.float32)
    boxes = np.array([[0.1, 0.2, 0.8, 0.9], [0.0, 0.0, 1.0, 1.0], [-0.2, 0.3, 0.5, 1.3], [0.4, 0.4, 0.6, 0.5]],
                     np.float32)
    ind = np.array([1, 0, 0, 1], np.int32)
    pb = tf.placeholder(tf.float32, [None, 4])
    pi = tf.placeholder(tf.int32, [None])
    y = tf.image.crop_and_resize(img, pb, pi, [4, 3], method=method, extrapolation_value=-7.0)
    assert y.dtype == tf.float32
    np.testing.assert_allclose(run(y, {pb: boxes, pi: ind}),
                               ref_crop_and_resize(img, boxes, ind, 4, 3, method, -7.0), rtol=1e-5, atol=1e-5)
    one = tf.image.crop_and_resize(img, boxes, ind, [1, 1], method=method)
    np.testing.assert_allclose(run(one), ref_crop_and_resize(img, boxes, ind, 1, 1, method), rtol=1e-5, atol=1e-5)


def test_crop_and_resize_gradient_wrt_image():
    img = RNG.standard_normal((1, 4, 4, 1))
    boxes = np.array([[0.1, 0.2, 0.7, 0.9]], np.float32)
    w = RNG.standard_normal((1, 3, 3, 1))
    p = tf.placeholder(tf.float32, [1, 4, 4, 1])
    loss = tf.reduce_sum(tf.image.crop_and_resize(p, boxes, [0], [3, 3]) * w.astype(np.float32))
    g = run(tf.gradients(loss, p)[0], {p: img})
    base = np.zeros((1, 4, 4, 1), np.float32)
    fd = np.zeros_like(base)
    for idx in np.ndindex(base.shape):          # linear in the image: the gradient is the response to a unit pixel
        e = base.copy()
        e[idx] = 1
        fd[idx] = np.sum(ref_crop_and_resize(e, boxes, [0], 3, 3) * w)
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-5)


def test_random_flip_unknown_batch_and_static_args():
    b = RNG.standard_normal((8, 2, 3, 1)).astype(np.float32)
    p = tf.placeholder(tf.float32, [None, 2, 3, 1])
    y = tf.image.random_flip_left_right(p, seed=4)
    v = run(y, {p: b})
    assert all(np.array_equal(v[i], b[i]) or np.array_equal(v[i], b[i, :, ::-1]) for i in range(8))
    with pytest.raises(UnsupportedError, match="k"):
        tf.image.rot90(b, tf.placeholder(tf.int32, []))
    with pytest.raises(UnsupportedError, match="offset_height"):
        tf.image.crop_to_bounding_box(b, tf.placeholder(tf.int32, []), 0, 1, 1)
    assert tf.random_crop is tf.image.random_crop
    np.testing.assert_array_equal(run(tf.image.transpose(b)), b.transpose(0, 2, 1, 3))
    with pytest.raises(AttributeError, match="tf.image.decode_jpeg"):
        tf.image.decode_jpeg
