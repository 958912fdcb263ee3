"""Keras names added by the gap_keras pass: activation layers, 1-D pooling/cropping/upsampling/spatial
dropout, Lambda, the merge layers and functions (on graph tensors), keras.preprocessing.sequence.pad_sequences
and keras.preprocessing.text.Tokenizer. Values against numpy, gradients against finite differences."""
import numpy as np
import pytest

import jitflow as tf
from jitflow import keras
from jitflow.errors import UnsupportedError

L = keras.layers


def _grad_check(fn, shape, seed=0, eps=1e-6):
    """d sum(w * fn(x)) / dx from tf.gradients vs central differences of the compiled forward (float64)."""
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(shape)
    x0[np.abs(x0) < 0.05] += 0.2           # keep away from kinks at 0
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float64, shape)
        y = fn(x)
        w = rng.standard_normal(tuple(y.shape.as_list()))
        loss = tf.reduce_sum(y * w)
        (g,) = tf.gradients(loss, [x])
        with tf.Session() as sess:
            got = sess.run(g, {x: x0})
            num = np.zeros_like(x0)
            for i in np.ndindex(*shape):
                xp, xm = x0.copy(), x0.copy()
                xp[i] += eps
                xm[i] -= eps
                num[i] = (sess.run(loss, {x: xp}) - sess.run(loss, {x: xm})) / (2 * eps)
    np.testing.assert_allclose(got, num, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- activation layers
def test_activation_layers_values_and_save(tmp_path):
    x = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32) * 2
    cases = [
        (L.LeakyReLU(), np.where(x >= 0, x, 0.3 * x)),
        (L.LeakyReLU(alpha=0.05), np.where(x >= 0, x, 0.05 * x)),
        (L.ELU(), np.where(x > 0, x, np.expm1(x))),
        (L.ELU(alpha=0.5), np.where(x > 0, x, 0.5 * np.expm1(x))),
        (L.ReLU(), np.maximum(x, 0)),
        (L.ReLU(max_value=1.0), np.clip(x, 0, 1.0)),
        (L.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5),
         np.minimum(np.where(x >= 0.5, x, 0.1 * (x - 0.5)), 2.0)),
        (L.ReLU(negative_slope=0.5), np.where(x > 0, x, 0.5 * x)),
        (L.LeakyReLU(alpha=2.0), np.where(x > 0, x, 2.0 * x)),
        (L.ReLU(threshold=-0.5), np.where(x > -0.5, x, 0)),                   # TF: values in (-0.5, 0] kept
        (L.ReLU(max_value=1.0, threshold=-0.5), np.clip(np.where(x > -0.5, x, 0), 0, 1.0)),
        (L.ThresholdedReLU(), np.where(x > 1.0, x, 0)),
        (L.ThresholdedReLU(theta=0.3), np.where(x > 0.3, x, 0)),
        (L.Softmax(), np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
        (L.Softmax(axis=0), np.exp(x) / np.exp(x).sum(0, keepdims=True)),
    ]
    for layer, want in cases:
        model = keras.Sequential([layer], name=None)
        model.build((None, 6))
        np.testing.assert_allclose(model.predict(x, batch_size=4), want, rtol=1e-5, atol=1e-6,
                                   err_msg=type(layer).__name__)
    model = keras.Sequential([L.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5, input_shape=(6,)),
                              L.LeakyReLU(alpha=0.2), L.Softmax()])
    path = str(tmp_path / "act")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.layers[0].get_config()["max_value"] == 2.0 and loaded.layers[1].alpha == 0.2
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)


def test_activation_layer_errors():
    with pytest.raises(ValueError, match="max_value"):
        L.ReLU(max_value=-1)
    with pytest.raises(ValueError, match="negative_slope"):
        L.ReLU(negative_slope=-0.1)
    with pytest.raises(ValueError, match="threshold"):
        L.ReLU(threshold=None)
    with pytest.raises(UnsupportedError, match="alpha_constraint"):
        L.PReLU(alpha_constraint="non_neg")


def test_prelu_values_training_and_save(tmp_path):
    model = keras.Sequential([L.PReLU(alpha_initializer="ones", shared_axes=[1], input_shape=(5, 3))])
    (alpha,) = model.get_weights()
    assert alpha.shape == (1, 3)
    alpha = np.array([[0.1, 0.5, 2.0]], np.float32)
    model.set_weights([alpha])
    x = np.random.default_rng(2).standard_normal((2, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), np.where(x >= 0, x, alpha * x), rtol=1e-6)
    path = str(tmp_path / "prelu")
    model.save(path)
    np.testing.assert_allclose(keras.models.load_model(path).predict(x), model.predict(x))
    # alpha trains: loss mean(out) has d/dalpha = mean of the negative inputs (per channel)
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    model.fit(x, np.zeros_like(x), epochs=1, batch_size=2, verbose=0, shuffle=False)
    neg = np.where(x < 0, x, 0).astype(np.float64)
    grad = (2 * alpha * neg ** 2).sum(axis=(0, 1)) / x.size          # d mean(out**2) / d alpha
    np.testing.assert_allclose(model.get_weights()[0], alpha - grad, rtol=1e-5)


@pytest.mark.parametrize("layer", [lambda: L.LeakyReLU(), lambda: L.ELU(alpha=0.7),
                                   lambda: L.ReLU(max_value=1.0, negative_slope=0.2, threshold=0.1),
                                   lambda: L.ThresholdedReLU(theta=0.5), lambda: L.Softmax(axis=0)])
def test_activation_layer_gradients(layer):
    _grad_check(lambda x: layer().call(x), (3, 4))


# ---------------------------------------------------------------- 1-D layers
def _pool1d(x, k, s, padding, reduce):
    n, steps, c = x.shape
    if padding == "valid":
        out_len, start = (steps - k) // s + 1, 0
    else:
        out_len = -(-steps // s)
        total = max((out_len - 1) * s + k - steps, 0)
        start = -(total // 2)
    out = np.zeros((n, out_len, c), x.dtype)
    for t in range(out_len):
        lo = start + t * s
        window = x[:, max(lo, 0):min(lo + k, steps)]
        out[:, t] = reduce(window, axis=1)
    return out


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pooling1d_values(padding):
    x = np.random.default_rng(3).standard_normal((2, 7, 3)).astype(np.float32)
    for cls, reduce in ((L.MaxPooling1D, np.max), (L.AveragePooling1D, np.mean)):
        for k, s in ((2, None), (3, 2)):
            model = keras.Sequential([cls(pool_size=k, strides=s, padding=padding, input_shape=(7, 3))])
            want = _pool1d(x, k, s or k, padding, reduce)
            assert model.output_shape == (None,) + want.shape[1:]
            np.testing.assert_allclose(model.predict(x), want, rtol=1e-6, atol=1e-6)
    assert L.MaxPool1D is L.MaxPooling1D and L.AvgPool1D is L.AveragePooling1D


def test_global_pooling_crop_upsample_and_save(tmp_path):
    x = np.random.default_rng(4).standard_normal((3, 6, 4)).astype(np.float32)
    for layer, want in ((L.GlobalAveragePooling1D(), x.mean(1)), (L.GlobalMaxPooling1D(), x.max(1)),
                        (L.Cropping1D((1, 2)), x[:, 1:4]), (L.Cropping1D(2), x[:, 2:4]),
                        (L.Cropping1D((2, 0)), x[:, 2:]), (L.UpSampling1D(3), np.repeat(x, 3, axis=1))):
        model = keras.Sequential([layer])
        model.build((None, 6, 4))
        np.testing.assert_allclose(model.predict(x), want, rtol=1e-6, atol=1e-6, err_msg=type(layer).__name__)
    model = keras.Sequential([L.UpSampling1D(2, input_shape=(6, 4)), L.Cropping1D((1, 1)), L.MaxPooling1D(2),
                              L.GlobalMaxPooling1D()])
    path = str(tmp_path / "seq1d")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == ["UpSampling1D", "Cropping1D", "MaxPooling1D",
                                                                  "GlobalMaxPooling1D"]
    want = _pool1d(np.repeat(x, 2, axis=1)[:, 1:-1], 2, 2, "valid", np.max).max(1)
    np.testing.assert_allclose(loaded.predict(x), want, rtol=1e-6)


def test_1d_layer_errors():
    with pytest.raises(UnsupportedError, match="channels_first"):
        L.MaxPooling1D(data_format="channels_first")
    with pytest.raises(ValueError, match="padding"):
        L.AveragePooling1D(padding="full")
    with pytest.raises(ValueError, match="expected ndim=3"):
        keras.Sequential([L.GlobalAveragePooling1D(input_shape=(4, 4, 2))]).predict(np.zeros((1, 4, 4, 2)))
    with pytest.raises(ValueError, match="rate"):
        L.SpatialDropout1D(1.5)


def test_pooling_and_upsampling_gradients():
    _grad_check(lambda x: L.AveragePooling1D(3, 2, padding="same").call(x), (2, 5, 2))
    _grad_check(lambda x: L.MaxPooling1D(2).call(x), (2, 6, 2))
    _grad_check(lambda x: L.GlobalAveragePooling1D().call(x), (2, 4, 3))
    _grad_check(lambda x: L.UpSampling1D(2).call(x), (2, 3, 2))
    _grad_check(lambda x: L.Cropping1D((1, 1)).call(x), (2, 4, 2))


def test_spatial_dropout1d_drops_whole_channels():
    rate = 0.5
    x = np.random.default_rng(5).uniform(1, 2, (16, 5, 8)).astype(np.float32)
    layer = L.SpatialDropout1D(rate)
    with tf.Graph().as_default():
        inp = tf.placeholder(tf.float32, (None, 5, 8))
        train, infer = layer.call(inp, training=True), layer.call(inp, training=False)
        assert train.shape.as_list() == [None, 5, 8]
        with tf.Session() as sess:
            out, same = sess.run([train, infer], {inp: x})
    np.testing.assert_array_equal(same, x)
    kept = out != 0
    assert (kept == kept[:, :1, :]).all()                     # one decision per (sample, channel)
    np.testing.assert_allclose(out[kept], x[kept] / (1 - rate), rtol=1e-6)
    assert 0.25 < kept[:, 0, :].mean() < 0.75
    model = keras.Sequential([L.SpatialDropout1D(0.3, input_shape=(5, 8))])
    np.testing.assert_array_equal(model.predict(x), x)
    assert model.layers[0].get_config()["rate"] == 0.3


# ---------------------------------------------------------------- Lambda
def test_lambda_layer(tmp_path):
    x = np.random.default_rng(6).standard_normal((3, 4)).astype(np.float32)
    model = keras.Sequential([L.Dense(2, input_shape=(4,)),
                              L.Lambda(lambda t, k: tf.square(t) * k, arguments={"k": 3.0})])
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(model.predict(x), 3.0 * (x @ kernel + bias) ** 2, rtol=1e-5)
    assert model.output_shape == (None, 2)
    assert L.Lambda(lambda t: t, output_shape=(5,)).compute_output_shape((None, 4)) == (None, 5)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((3, 2), np.float32), epochs=1, verbose=0)       # differentiable through the Lambda
    with pytest.raises(UnsupportedError, match="Lambda"):
        model.save(str(tmp_path / "lam"))
    with pytest.raises(UnsupportedError, match="mask"):
        L.Lambda(lambda t: t, mask=lambda t, m: m)
    with pytest.raises(TypeError):
        L.Lambda(3)


# ---------------------------------------------------------------- merge layers
def test_merge_layers_and_functions_values_and_gradients():
    rng = np.random.default_rng(7)
    va, vb, vc = (rng.standard_normal((2, 3)) for _ in range(3))
    with tf.Graph().as_default():
        a, b, c = (tf.placeholder(tf.float64, (None, 3)) for _ in range(3))
        outs = {
            "Add": (L.Add()([a, b, c]), va + vb + vc), "add": (L.add([a, b]), va + vb),
            "Subtract": (L.Subtract()([a, b]), va - vb), "subtract": (L.subtract([a, c]), va - vc),
            "Multiply": (L.Multiply()([a, b, c]), va * vb * vc), "multiply": (L.multiply([a, b]), va * vb),
            "Average": (L.Average()([a, b, c]), (va + vb + vc) / 3), "average": (L.average([a, b]), (va + vb) / 2),
            "Maximum": (L.Maximum()([a, b, c]), np.maximum(np.maximum(va, vb), vc)),
            "maximum": (L.maximum([a, b]), np.maximum(va, vb)),
            "Minimum": (L.Minimum()([a, b, c]), np.minimum(np.minimum(va, vb), vc)),
            "minimum": (L.minimum([a, b]), np.minimum(va, vb)),
            "Concatenate": (L.Concatenate()([a, b, c]), np.concatenate([va, vb, vc], -1)),
            "concatenate0": (L.concatenate([a, b], axis=0), np.concatenate([va, vb], 0)),
        }
        assert outs["Concatenate"][0].shape.as_list() == [None, 9]
        feed = {a: va, b: vb, c: vc}
        grads = tf.gradients(tf.reduce_sum(outs["Average"][0] * outs["Multiply"][0]), [a, b, c])
        with tf.Session() as sess:
            got = sess.run({k: t for k, (t, _) in outs.items()}, feed)
            ga, gb, gc = sess.run(grads, feed)
    for key, (_, want) in outs.items():
        np.testing.assert_allclose(got[key], want, rtol=1e-12, err_msg=key)
    avg, prod = (va + vb + vc) / 3, va * vb * vc
    np.testing.assert_allclose(ga, prod / 3 + avg * vb * vc, rtol=1e-12)
    np.testing.assert_allclose(gb, prod / 3 + avg * va * vc, rtol=1e-12)
    np.testing.assert_allclose(gc, prod / 3 + avg * va * vb, rtol=1e-12)
    _grad_check(lambda x: L.maximum([x[0], x[1] * 0.5]), (2, 3))
    _grad_check(lambda x: L.concatenate([x, x * 2.0], axis=1), (2, 2))


def test_merge_layer_errors():
    with tf.Graph().as_default():
        a = tf.placeholder(tf.float32, (None, 3))
        b = tf.placeholder(tf.float32, (None, 4))
        with pytest.raises(ValueError, match="list of inputs"):
            L.Add()(a)
        with pytest.raises(ValueError, match="at least 2 inputs"):
            L.Add()([a])
        with pytest.raises(ValueError, match="exactly 2 inputs"):
            L.Subtract()([a, a, a])
        with pytest.raises(ValueError, match="broadcast"):
            L.Add()([a, b])
        with pytest.raises(ValueError, match="matching shapes"):
            L.Concatenate(axis=0)([a, b])
    with pytest.raises(UnsupportedError, match="functional"):
        L.add([keras.Input(shape=(3,)), keras.Input(shape=(3,))])
    model = keras.Sequential([L.Add(input_shape=(3,))])
    with pytest.raises(UnsupportedError, match="several inputs"):
        model.predict(np.zeros((1, 3), np.float32))


# ---------------------------------------------------------------- preprocessing
def test_pad_sequences():
    pad = keras.preprocessing.sequence.pad_sequences
    seqs = [[1, 2, 3], [4, 5], [6, 7, 8, 9], []]
    out = pad(seqs)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[0, 1, 2, 3], [0, 0, 4, 5], [6, 7, 8, 9], [0, 0, 0, 0]])
    np.testing.assert_array_equal(pad(seqs, maxlen=3, padding="post", truncating="post", value=-1),
                                  [[1, 2, 3], [4, 5, -1], [6, 7, 8], [-1, -1, -1]])
    np.testing.assert_array_equal(pad(seqs, maxlen=2), [[2, 3], [4, 5], [8, 9], [0, 0]])
    floats = pad([[0.5, 1.5], [2.5]], dtype="float32", value=0.25)
    assert floats.dtype == np.float32
    np.testing.assert_array_equal(floats, [[0.5, 1.5], [0.25, 2.5]])
    vectors = pad([[[1, 2]], [[3, 4], [5, 6]]])
    assert vectors.shape == (2, 2, 2)
    np.testing.assert_array_equal(vectors[0], [[0, 0], [1, 2]])
    strings = pad([["a", "b"], ["c"]], dtype=object, value="")
    assert strings.tolist() == [["a", "b"], ["", "c"]]
    with pytest.raises(ValueError, match="Padding type"):
        pad(seqs, padding="middle")
    with pytest.raises(ValueError, match="Truncating type"):
        pad(seqs, truncating="middle")
    with pytest.raises(ValueError, match="dtype"):
        pad([["a"]], value="x")
    with pytest.raises(ValueError, match="iterable"):
        pad(5)


def test_tokenizer():
    text = keras.preprocessing.text
    texts = ["The cat sat on the mat.", "The dog ate my homework!", "Cat and dog, cat."]
    tok = text.Tokenizer()
    tok.fit_on_texts(texts)
    assert tok.document_count == 3
    assert tok.word_counts["the"] == 3 and tok.word_counts["cat"] == 3 and tok.word_counts["dog"] == 2
    assert list(tok.word_counts)[:4] == ["the", "cat", "sat", "on"]           # first-seen order
    assert tok.word_index["the"] == 1 and tok.word_index["cat"] == 2 and tok.word_index["dog"] == 3
    assert tok.word_index["sat"] == 4 and len(tok.word_index) == 10
    assert tok.index_word[2] == "cat" and tok.word_docs["cat"] == 2
    seqs = tok.texts_to_sequences(["the cat ate a fish"])
    assert seqs == [[1, 2, 7]]
    assert tok.sequences_to_texts(seqs) == ["the cat ate"]
    docs = ["cat cat dog", "the"]
    sq = tok.texts_to_sequences(docs)
    binary, count = tok.texts_to_matrix(docs, "binary"), tok.texts_to_matrix(docs, "count")
    freq, tfidf = tok.texts_to_matrix(docs, "freq"), tok.texts_to_matrix(docs, mode="tfidf")
    assert binary.shape == (2, 11) and sq == [[2, 2, 3], [1]]
    want_count = np.zeros((2, 11))
    want_count[0, 2], want_count[0, 3], want_count[1, 1] = 2, 1, 1
    np.testing.assert_array_equal(count, want_count)
    np.testing.assert_array_equal(binary, want_count > 0)
    np.testing.assert_allclose(freq, want_count / np.array([[3], [1]]))
    idf = lambda j: np.log(1 + 3 / (1 + tok.index_docs[j]))   # noqa: E731
    assert tok.index_docs[2] == 2 and tok.index_docs[1] == 2 and tok.index_docs[3] == 2
    np.testing.assert_allclose(tfidf[0, 2], (1 + np.log(2)) * idf(2))
    np.testing.assert_allclose(tfidf[1, 1], idf(1))
    with pytest.raises(ValueError, match="vectorization mode"):
        tok.texts_to_matrix(docs, mode="onehot")


def test_tokenizer_options():
    text = keras.preprocessing.text
    texts = ["a a a b b c", "c d"]
    tok = text.Tokenizer(num_words=3, oov_token="<unk>")
    tok.fit_on_texts(texts)
    assert tok.word_index == {"<unk>": 1, "a": 2, "b": 3, "c": 4, "d": 5}
    assert tok.texts_to_sequences(["a b z c"]) == [[2, 1, 1, 1]]             # indices >= num_words -> oov
    assert tok.texts_to_matrix(["a b"], mode="count").shape == (1, 3)
    plain = text.Tokenizer(num_words=3)
    plain.fit_on_texts(texts)
    assert plain.texts_to_sequences(["a b z c"]) == [[1, 2]]
    chars = text.Tokenizer(char_level=True, lower=False, filters="")
    chars.fit_on_texts(["abA", "bb"])
    assert chars.word_index == {"b": 1, "a": 2, "A": 3}
    split = text.Tokenizer(split=",", filters="", lower=True)
    split.fit_on_texts(["X,y,,x"])
    assert split.word_index == {"x": 1, "y": 2}
    assert text.text_to_word_sequence("Hello, World!  hello") == ["hello", "world", "hello"]
    again = text.tokenizer_from_json(tok.to_json())
    assert again.word_index == tok.word_index and again.texts_to_sequences(["a b z"]) == [[2, 1, 1]]
    with pytest.raises(ValueError, match="fit on some text"):
        text.Tokenizer().texts_to_matrix(["a"])
    with pytest.raises(ValueError, match="tfidf"):
        text.Tokenizer(num_words=4).sequences_to_matrix([[1]], mode="tfidf")
    with pytest.raises(TypeError, match="Unrecognized"):
        text.Tokenizer(analyser=None)
