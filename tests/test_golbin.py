"""Patterns from golbin/TensorFlow-Tutorials ("골빈해커의 3분 딥러닝", TF 1.x) that jitflow once missed, and a few
of the course's programs end to end in compressed form (tiny synthetic data, a few steps).

- 10 - RNN/03 - Seq2Seq.py: `tf.layers.dense` on dynamic_rnn outputs of shape (?, ?, n_hidden)
- 10 - RNN/ChatBot, 12 - DQN: `tf.app.flags.DEFINE_*`, `tf.app.flags.FLAGS`, `tf.app.run()`
- 05 - TensorBoard, Saver: `saver.save(sess, './model/dnn.ckpt', global_step=...)` writes the `checkpoint`
  file with paths relative to a relative save directory, as TF does
"""
import os
import sys

import numpy as np
import pytest

import jitflow as tf
from jitflow import flags as jf_flags


# ---------------------------------------------------------------- tf.layers.dense on (?, ?, features)

def test_dense_on_two_unknown_leading_dims_values_shape_and_gradient():
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [None, None, 4])
        y = tf.layers.dense(x, 3, activation=tf.nn.relu, kernel_initializer=tf.constant_initializer(
            np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5), bias_initializer=tf.constant_initializer(0.1))
        assert y.shape.as_list() == [None, None, 3]          # TF keeps the rank and the units
        kernel, bias = tf.trainable_variables()
        assert kernel.op.name == "dense/kernel" and bias.op.name == "dense/bias"
        loss = tf.reduce_sum(tf.square(y))
        gk, gb = tf.gradients(loss, [kernel, bias])
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            rng = np.random.RandomState(0)
            for shape in [(2, 5, 4), (3, 1, 4)]:            # a new batch and time length each run
                xv = rng.randn(*shape).astype(np.float32)
                kv, bv = sess.run([kernel, bias])
                out, gkv, gbv = sess.run([y, gk, gb], {x: xv})
                pre = xv @ kv + bv
                want = np.maximum(pre, 0)
                np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
                d = 2 * want * (pre > 0)
                np.testing.assert_allclose(gkv, xv.reshape(-1, 4).T @ d.reshape(-1, 3), rtol=1e-4, atol=1e-5)
                np.testing.assert_allclose(gbv, d.reshape(-1, 3).sum(0), rtol=1e-4, atol=1e-5)


def test_dense_unknown_leading_dims_finite_difference():
    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float64, [None, None, 2])
        y = tf.layers.dense(x, 2, activation=tf.tanh)
        loss = tf.reduce_sum(y * y)
        gx = tf.gradients(loss, x)[0]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            xv = np.random.RandomState(1).randn(2, 3, 2)
            grad = sess.run(gx, {x: xv})
            eps = 1e-6
            for idx in [(0, 0, 0), (1, 2, 1), (0, 1, 1)]:
                up, dn = xv.copy(), xv.copy()
                up[idx] += eps
                dn[idx] -= eps
                fd = (sess.run(loss, {x: up}) - sess.run(loss, {x: dn})) / (2 * eps)
                assert abs(fd - grad[idx]) < 1e-5


# ---------------------------------------------------------------- tf.app.flags / tf.app.run

def test_app_flags_define_parse_and_defaults():
    assert tf.app.flags is tf.flags
    fv = jf_flags.FlagValues()
    tf.app.flags.DEFINE_string("train_dir", "./model", "where", flag_values=fv)
    tf.app.flags.DEFINE_boolean("train", False, "train?", flag_values=fv)
    tf.app.flags.DEFINE_boolean("test", True, "test?", flag_values=fv)
    tf.app.flags.DEFINE_bool("voc_build", False, "voc", flag_values=fv)
    tf.app.flags.DEFINE_integer("batch_size", 100, "batch", flag_values=fv)
    tf.app.flags.DEFINE_float("lr", 0.5, "rate", flag_values=fv)
    tf.app.flags.DEFINE_list("layers", "1,2", "sizes", flag_values=fv)
    rest = fv(["prog", "--train", "--notest", "--batch_size", "32", "--lr=0.25", "extra", "--voc_build=false",
               "--train_dir=/tmp/x", "--layers=3,4,5", "--unknown=1"], known_only=True)
    assert rest == ["prog", "extra", "--unknown=1"]
    assert fv.train is True and fv.test is False and fv.voc_build is False
    assert fv.batch_size == 32 and isinstance(fv.batch_size, int)
    assert fv.lr == 0.25 and fv.train_dir == "/tmp/x" and fv.layers == ["3", "4", "5"]
    fv.batch_size = 7                                          # FLAGS values can be assigned
    assert fv.flag_values_dict()["batch_size"] == 7
    with pytest.raises(AttributeError):
        fv.nope


def test_app_flags_errors():
    fv = jf_flags.FlagValues()
    tf.flags.DEFINE_integer("epoch", 1000, "epochs", flag_values=fv)
    with pytest.raises(jf_flags.DuplicateFlagError):
        tf.flags.DEFINE_integer("epoch", 1, "again", flag_values=fv)
    with pytest.raises(jf_flags.IllegalFlagValueError):
        fv(["prog", "--epoch=ten"])
    with pytest.raises(jf_flags.UnrecognizedFlagError):
        fv(["prog", "--what=1"])
    with pytest.raises(jf_flags.IllegalFlagValueError):
        tf.flags.DEFINE_integer("small", 5, "bounded", upper_bound=3, flag_values=fv)
    with pytest.raises(tf.errors.UnsupportedError, match="short_name"):
        tf.flags.DEFINE_string("s", "a", "h", flag_values=fv, short_name="x")


def test_app_flags_first_read_parses_sys_argv_and_app_run(monkeypatch):
    # a fresh global registry, so this test does not depend on (or leave) flags in tf.app.flags.FLAGS
    fv = jf_flags.FlagValues()
    monkeypatch.setattr(jf_flags, "FLAGS", fv)
    jf_flags.DEFINE_integer("golbin_steps", 3, "steps")
    jf_flags.DEFINE_boolean("golbin_train", False, "train")
    monkeypatch.setattr(sys, "argv", ["agent.py", "--golbin_train", "left"])
    assert jf_flags.FLAGS.golbin_train is True                # TF 1.x: the first read parses sys.argv
    assert jf_flags.FLAGS.golbin_steps == 3

    seen = []

    def main(argv):
        seen.append((argv, fv.golbin_steps))
        return 0

    with pytest.raises(SystemExit) as exc:
        tf.app.run(main=main, argv=["agent.py", "--golbin_steps=9", "pos"])
    assert exc.value.code == 0
    assert seen == [(["agent.py", "pos"], 9)]


# ---------------------------------------------------------------- checkpoint file paths (05 - Saver)

def test_saver_relative_dir_writes_relative_checkpoint_state(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkdir("model")
    g = tf.Graph()
    with g.as_default():
        w = tf.Variable([1.0, 2.0], name="W")
        step = tf.Variable(0, trainable=False, name="global_step")
        inc = tf.assign_add(step, 100)
        saver = tf.train.Saver(tf.global_variables())
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(inc)
            path = saver.save(sess, "./model/dnn.ckpt", global_step=step)
            assert path == "./model/dnn.ckpt-100"
    text = open("model/checkpoint").read()
    assert 'model_checkpoint_path: "dnn.ckpt-100"' in text
    ckpt = tf.train.get_checkpoint_state("./model")
    assert ckpt.model_checkpoint_path == "./model/dnn.ckpt-100"
    assert tf.train.latest_checkpoint("./model") == "./model/dnn.ckpt-100"
    with tf.Graph().as_default():
        w2 = tf.Variable([0.0, 0.0], name="W")
        step2 = tf.Variable(0, trainable=False, name="global_step")
        with tf.Session() as sess:
            tf.train.Saver(tf.global_variables()).restore(sess, ckpt.model_checkpoint_path)
            np.testing.assert_array_equal(sess.run(w2), [1.0, 2.0])
            assert sess.run(step2) == 100


# ---------------------------------------------------------------- programs end to end (compressed)

def test_program_04_deep_nn_with_tensorboard_and_saver(tmp_path):
    """04 - Neural Network Basic/02 - Deep NN.py + 05 - TensorBoard2 (scopes, histograms, Saver, global_step)."""
    x_data = np.array([[0, 0], [1, 0], [1, 1], [0, 0], [0, 0], [0, 1]])
    y_data = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [1, 0, 0], [0, 0, 1]])

    def build():
        global_step = tf.Variable(0, trainable=False, name="global_step")
        X = tf.placeholder(tf.float32)
        Y = tf.placeholder(tf.float32)
        with tf.name_scope("layer1"):
            W1 = tf.Variable(tf.random_uniform([2, 10], -1., 1.), name="W1")
            L1 = tf.nn.relu(tf.matmul(X, W1))
            tf.summary.histogram("Weights", W1)
        with tf.name_scope("output"):
            W2 = tf.Variable(tf.random_uniform([10, 3], -1., 1.), name="W2")
            model = tf.matmul(L1, W2)
        with tf.name_scope("optimizer"):
            cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=Y, logits=model))
            train_op = tf.train.AdamOptimizer(learning_rate=0.01).minimize(cost, global_step=global_step)
            tf.summary.scalar("cost", cost)
        return X, Y, model, cost, train_op, global_step

    model_dir, log_dir = str(tmp_path / "model"), str(tmp_path / "logs")
    os.mkdir(model_dir)
    costs = []
    for run in range(2):                   # the second run restores and continues global_step
        with tf.Graph().as_default():
            tf.set_random_seed(1)
            X, Y, model, cost, train_op, global_step = build()
            sess = tf.Session()
            saver = tf.train.Saver(tf.global_variables())
            ckpt = tf.train.get_checkpoint_state(model_dir)
            if ckpt and tf.train.checkpoint_exists(ckpt.model_checkpoint_path):
                saver.restore(sess, ckpt.model_checkpoint_path)
            else:
                sess.run(tf.global_variables_initializer())
            merged = tf.summary.merge_all()
            writer = tf.summary.FileWriter(log_dir, sess.graph)
            for _ in range(50):
                sess.run(train_op, feed_dict={X: x_data, Y: y_data})
                writer.add_summary(sess.run(merged, feed_dict={X: x_data, Y: y_data}),
                                   global_step=sess.run(global_step))
            costs.append(sess.run(cost, feed_dict={X: x_data, Y: y_data}))
            saver.save(sess, model_dir + "/dnn.ckpt", global_step=global_step)
            assert sess.run(global_step) == 50 * (run + 1)
            prediction = sess.run(tf.argmax(model, 1), feed_dict={X: x_data})
            writer.close()
            sess.close()
    assert costs[1] < costs[0]
    np.testing.assert_array_equal(prediction, y_data.argmax(1))
    assert any(f.startswith("events.out.tfevents.") for f in os.listdir(log_dir))


def test_program_10_seq2seq_translation():
    """10 - RNN/03 - Seq2Seq.py: BasicRNNCell + DropoutWrapper encoder/decoder, dense on (?, ?, 128)."""
    char_arr = [c for c in "SEPabcdefghijklmnopqrstuvwxyz단어나무놀이소녀키스사랑"]
    num_dic = {n: i for i, n in enumerate(char_arr)}
    dic_len = len(num_dic)
    seq_data = [["word", "단어"], ["wood", "나무"], ["game", "놀이"], ["girl", "소녀"]]

    def make_batch(seq_data):
        eye = np.eye(dic_len)
        return ([eye[[num_dic[n] for n in s[0]]] for s in seq_data],
                [eye[[num_dic[n] for n in "S" + s[1]]] for s in seq_data],
                [[num_dic[n] for n in s[1] + "E"] for s in seq_data])

    with tf.Graph().as_default():
        tf.set_random_seed(0)
        enc_input = tf.placeholder(tf.float32, [None, None, dic_len])
        dec_input = tf.placeholder(tf.float32, [None, None, dic_len])
        targets = tf.placeholder(tf.int64, [None, None])
        with tf.variable_scope("encode"):
            enc_cell = tf.nn.rnn_cell.DropoutWrapper(tf.nn.rnn_cell.BasicRNNCell(32), output_keep_prob=0.5)
            _, enc_states = tf.nn.dynamic_rnn(enc_cell, enc_input, dtype=tf.float32)
        with tf.variable_scope("decode"):
            dec_cell = tf.nn.rnn_cell.DropoutWrapper(tf.nn.rnn_cell.BasicRNNCell(32), output_keep_prob=0.5)
            outputs, _ = tf.nn.dynamic_rnn(dec_cell, dec_input, initial_state=enc_states, dtype=tf.float32)
        model = tf.layers.dense(outputs, dic_len, activation=None)
        cost = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(logits=model, labels=targets))
        optimizer = tf.train.AdamOptimizer(0.01).minimize(cost)
        sess = tf.Session()
        sess.run(tf.global_variables_initializer())
        inputs, outs, tgts = make_batch(seq_data)
        first = None
        for _ in range(60):
            _, loss = sess.run([optimizer, cost], feed_dict={enc_input: inputs, dec_input: outs, targets: tgts})
            first = loss if first is None else first
        assert loss < first / 4

        def translate(word):                       # the course's inference: decoder fed with 'P' padding
            i, o, t = make_batch([[word, "PP"]])
            result = sess.run(tf.argmax(model, 2), feed_dict={enc_input: i, dec_input: o, targets: t})
            decoded = [char_arr[k] for k in result[0]]
            return "".join(decoded[:decoded.index("E")] if "E" in decoded else decoded)

        # dropout stays on at inference in this program, so only ask for most of the words
        assert sum(translate(w) == k for w, k in seq_data) >= 3


def test_program_07_cnn_tf_layers():
    """07 - CNN/02 - tf.layers.py: conv2d / max_pooling2d / dropout(training=placeholder) / flatten / dense."""
    rng = np.random.RandomState(0)
    n = 60
    labels = rng.randint(0, 10, n)
    images = rng.rand(n, 28, 28, 1).astype(np.float32) * 0.2
    for i, k in enumerate(labels):                     # class k: a bright 6x6 patch at a class-specific place
        r, c = 2 + 8 * (k // 4), 2 + 6 * (k % 4)
        images[i, r:r + 6, c:c + 6, 0] += 0.8
    onehot = np.eye(10)[labels]
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        X = tf.placeholder(tf.float32, [None, 28, 28, 1])
        Y = tf.placeholder(tf.float32, [None, 10])
        is_training = tf.placeholder(tf.bool)
        L1 = tf.layers.conv2d(X, 8, [3, 3], activation=tf.nn.relu)
        L1 = tf.layers.max_pooling2d(L1, [2, 2], [2, 2])
        L1 = tf.layers.dropout(L1, 0.2, is_training)
        assert L1.shape.as_list() == [None, 13, 13, 8]
        L3 = tf.contrib.layers.flatten(L1)
        L3 = tf.layers.dense(L3, 32, activation=tf.nn.relu)
        L3 = tf.layers.dropout(L3, 0.2, is_training)
        model = tf.layers.dense(L3, 10, activation=None)
        cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(logits=model, labels=Y))
        optimizer = tf.train.AdamOptimizer(0.005).minimize(cost)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(model, 1), tf.argmax(Y, 1)), tf.float32))
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(40):
                sess.run(optimizer, feed_dict={X: images, Y: onehot, is_training: True})
            acc = sess.run(accuracy, feed_dict={X: images, Y: onehot, is_training: False})
            # evaluation with is_training False is deterministic (dropout off)
            a1 = sess.run(model, feed_dict={X: images[:5], is_training: False})
            a2 = sess.run(model, feed_dict={X: images[:5], is_training: False})
    assert acc >= 0.9
    np.testing.assert_array_equal(a1, a2)


def test_program_09_gan_separate_var_lists():
    """09 - GAN/01 - GAN.py: two optimizers with var_list, each moving only its own network."""
    rng = np.random.RandomState(0)
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        X = tf.placeholder(tf.float32, [None, 16])
        Z = tf.placeholder(tf.float32, [None, 4])
        G_W1 = tf.Variable(tf.random_normal([4, 8], stddev=0.01))
        G_W2 = tf.Variable(tf.random_normal([8, 16], stddev=0.01))
        D_W1 = tf.Variable(tf.random_normal([16, 8], stddev=0.01))
        D_W2 = tf.Variable(tf.random_normal([8, 1], stddev=0.01))

        def generator(z):
            return tf.nn.sigmoid(tf.matmul(tf.nn.relu(tf.matmul(z, G_W1)), G_W2))

        def discriminator(x):
            return tf.nn.sigmoid(tf.matmul(tf.nn.relu(tf.matmul(x, D_W1)), D_W2))

        G = generator(Z)
        D_gene, D_real = discriminator(G), discriminator(X)
        loss_D = tf.reduce_mean(tf.log(D_real) + tf.log(1 - D_gene))
        loss_G = tf.reduce_mean(tf.log(D_gene))
        train_D = tf.train.AdamOptimizer(0.01).minimize(-loss_D, var_list=[D_W1, D_W2])
        train_G = tf.train.AdamOptimizer(0.01).minimize(-loss_G, var_list=[G_W1, G_W2])
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            g0, d0 = sess.run([[G_W1, G_W2], [D_W1, D_W2]])
            xs = (rng.rand(8, 16) > 0.5).astype(np.float32)
            zs = rng.uniform(-1., 1., size=(8, 4))
            ld0 = sess.run(loss_D, {X: xs, Z: zs})
            sess.run(train_D, {X: xs, Z: zs})
            g1, d1 = sess.run([[G_W1, G_W2], [D_W1, D_W2]])
            for a, b in zip(g0, g1):
                np.testing.assert_array_equal(a, b)             # D's optimizer leaves G alone
            assert any(not np.array_equal(a, b) for a, b in zip(d0, d1))
            sess.run(train_G, {Z: zs})
            g2, d2 = sess.run([[G_W1, G_W2], [D_W1, D_W2]])
            for a, b in zip(d1, d2):
                np.testing.assert_array_equal(a, b)
            assert any(not np.array_equal(a, b) for a, b in zip(g1, g2))
            for _ in range(20):
                sess.run(train_D, {X: xs, Z: zs})
            assert sess.run(loss_D, {X: xs, Z: zs}) > ld0      # D maximises log D(x) + log(1 - D(G(z)))
            # the loss value matches a numpy forward pass on the current weights
            w = sess.run([G_W1, G_W2, D_W1, D_W2])
            sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
            g = sig(np.maximum(zs @ w[0], 0) @ w[1])
            d = lambda x: sig(np.maximum(x @ w[2], 0) @ w[3])  # noqa: E731
            want = np.mean(np.log(d(xs)) + np.log(1 - d(g)))
            np.testing.assert_allclose(sess.run(loss_D, {X: xs, Z: zs}), want, rtol=1e-4)
