"""Meta graphs: Saver.save writes <ckpt>.meta, tf.train.import_meta_graph rebuilds the graph (Geron's
"restore and keep training" and "reuse pretrained layers" workflows), collections, import_scope,
imports into non-empty graphs, name uniqueness after import, and corrupt-file errors."""
import json
import os

import numpy as np
import pytest

import jitflow as tf
from jitflow import errors
from jitflow.framework.graph_serialization import (GraphSerializationError, decode_value, encode_value)
from jitflow.train.meta_graph import MetaGraphFormatError

N_IN = 6


@pytest.fixture(autouse=True)
def _fresh_graph(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()


def _data(seed=0, n=48):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, N_IN).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int32)
    return x, y


def _build_classifier(n_hidden=(8, 8), lr=0.2):
    tf.set_random_seed(42)
    X = tf.placeholder(tf.float32, shape=(None, N_IN), name="X")
    y = tf.placeholder(tf.int32, shape=(None,), name="y")
    with tf.name_scope("dnn"):
        h = X
        for i, units in enumerate(n_hidden, 1):
            h = tf.layers.dense(h, units, activation=tf.nn.relu, name=f"hidden{i}")
        logits = tf.layers.dense(h, 2, name="outputs")
    with tf.name_scope("loss"):
        xentropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        loss = tf.reduce_mean(xentropy, name="loss")
    optimizer = tf.train.GradientDescentOptimizer(lr)
    training_op = optimizer.minimize(loss)
    with tf.name_scope("eval"):
        correct = tf.equal(tf.cast(tf.argmax(logits, 1), tf.int32), y)
        accuracy = tf.reduce_mean(tf.cast(correct, tf.float32), name="accuracy")
    return X, y, loss, accuracy, training_op


def _var_values(sess):
    return {v.op.name: sess.run(v) for v in tf.global_variables()}


def test_save_writes_meta_and_import_restores_and_keeps_training():
    xd, yd = _data()
    X, y, loss, accuracy, training_op = _build_classifier()
    assert training_op.name == "GradientDescent"
    init = tf.global_variables_initializer()
    saver = tf.train.Saver()
    with tf.Session() as sess:
        init.run()
        for _ in range(4):
            sess.run(training_op, feed_dict={X: xd, y: yd})
        path = saver.save(sess, "./my_model_final.ckpt")
        saved_values = _var_values(sess)
        saved_acc, saved_loss = sess.run([accuracy, loss], feed_dict={X: xd, y: yd})
        for _ in range(3):                      # what continuing in the original graph gives
            sess.run(training_op, feed_dict={X: xd, y: yd})
        continued_loss = loss.eval(feed_dict={X: xd, y: yd})
        continued_values = _var_values(sess)
    assert os.path.exists("my_model_final.ckpt.meta")

    tf.reset_default_graph()
    saver = tf.train.import_meta_graph("./my_model_final.ckpt.meta")
    graph = tf.get_default_graph()
    X = graph.get_tensor_by_name("X:0")
    y = graph.get_tensor_by_name("y:0")
    accuracy = graph.get_tensor_by_name("eval/accuracy:0")
    loss = graph.get_tensor_by_name("loss/loss:0")
    training_op = graph.get_operation_by_name("GradientDescent")
    assert isinstance(saver, tf.train.Saver)
    assert sorted(v.op.name for v in tf.trainable_variables()) == sorted(saved_values)
    assert all(isinstance(v, tf.Variable) for v in tf.global_variables())
    with tf.Session() as sess:
        saver.restore(sess, path)
        for name, value in _var_values(sess).items():
            np.testing.assert_array_equal(value, saved_values[name])
        acc, lss = sess.run([accuracy, loss], feed_dict={X: xd, y: yd})
        assert acc == saved_acc and lss == pytest.approx(saved_loss, rel=1e-6)
        for _ in range(3):
            sess.run(training_op, feed_dict={X: xd, y: yd})
        assert loss.eval(feed_dict={X: xd, y: yd}) == pytest.approx(continued_loss, rel=1e-5)
        for name, value in _var_values(sess).items():
            np.testing.assert_allclose(value, continued_values[name], rtol=1e-5, atol=1e-6)


def test_important_ops_collection_survives_a_further_save_and_import():
    xd, yd = _data()
    X, y, loss, accuracy, training_op = _build_classifier()
    with tf.Session() as sess:
        tf.global_variables_initializer().run()
        tf.train.Saver().save(sess, "./first.ckpt")
    tf.reset_default_graph()
    saver = tf.train.import_meta_graph("./first.ckpt.meta")
    graph = tf.get_default_graph()
    X = graph.get_tensor_by_name("X:0")
    y = graph.get_tensor_by_name("y:0")
    accuracy = graph.get_tensor_by_name("eval/accuracy:0")
    training_op = graph.get_operation_by_name("GradientDescent")
    for op in (X, y, accuracy, training_op):
        tf.add_to_collection("my_important_ops", op)
    with tf.Session() as sess:
        saver.restore(sess, "./first.ckpt")
        sess.run(training_op, feed_dict={X: xd, y: yd})
        acc = accuracy.eval(feed_dict={X: xd, y: yd})
        saver.save(sess, "./second.ckpt")
    tf.reset_default_graph()
    saver = tf.train.import_meta_graph("./second.ckpt.meta")
    X, y, accuracy, training_op = tf.get_collection("my_important_ops")
    assert isinstance(X, tf.Tensor) and X.name == "X:0" and y.name == "y:0"
    assert accuracy.name == "eval/accuracy:0"
    assert isinstance(training_op, tf.Operation) and training_op.name == "GradientDescent"
    with tf.Session() as sess:
        saver.restore(sess, "./second.ckpt")
        assert accuracy.eval(feed_dict={X: xd, y: yd}) == acc
        sess.run(training_op, feed_dict={X: xd, y: yd})


def test_reuse_pretrained_lower_layers_with_partial_restore_saver():
    xd, yd = _data()
    X, y, loss, accuracy, training_op = _build_classifier(n_hidden=(8, 8, 8, 8))
    with tf.Session() as sess:
        tf.global_variables_initializer().run()
        for _ in range(3):
            sess.run(training_op, feed_dict={X: xd, y: yd})
        pretrained = _var_values(sess)
        tf.train.Saver().save(sess, "./pretrained.ckpt")

    tf.reset_default_graph()
    tf.train.import_meta_graph("./pretrained.ckpt.meta")
    graph = tf.get_default_graph()
    X = graph.get_tensor_by_name("X:0")
    y = graph.get_tensor_by_name("y:0")
    hidden4 = graph.get_tensor_by_name("dnn/hidden4/Relu:0")
    new_hidden = tf.layers.dense(hidden4, 5, activation=tf.nn.relu, name="new_hidden4")
    new_logits = tf.layers.dense(new_hidden, 2, name="new_outputs")
    with tf.name_scope("new_loss"):
        xentropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=new_logits)
        new_loss = tf.reduce_mean(xentropy, name="loss")
    train_vars = tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope="new_")
    assert sorted(v.op.name for v in train_vars) == ["new_hidden4/bias", "new_hidden4/kernel",
                                                     "new_outputs/bias", "new_outputs/kernel"]
    train_new = tf.train.GradientDescentOptimizer(0.2, name="NewGD").minimize(new_loss, var_list=train_vars)
    reuse_vars = tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope="hidden[123]")
    assert len(reuse_vars) == 6
    restore_saver = tf.train.Saver({var.op.name: var for var in reuse_vars})
    init = tf.global_variables_initializer()
    with tf.Session() as sess:
        init.run()
        restore_saver.restore(sess, "./pretrained.ckpt")
        hidden4_kernel = [v for v in tf.global_variables() if v.op.name == "hidden4/kernel"][0]
        assert not np.array_equal(sess.run(hidden4_kernel), pretrained["hidden4/kernel"])   # re-initialized
        before = _var_values(sess)
        losses = [sess.run([train_new, new_loss], feed_dict={X: xd, y: yd})[1] for _ in range(5)]
        after = _var_values(sess)
    assert losses[-1] < losses[0]
    for var in reuse_vars:                      # frozen, and equal to the pretrained values
        np.testing.assert_array_equal(after[var.op.name], pretrained[var.op.name])
    assert not np.array_equal(after["new_outputs/kernel"], before["new_outputs/kernel"])
    np.testing.assert_array_equal(after["hidden4/kernel"], before["hidden4/kernel"])


def test_write_meta_graph_false_writes_no_meta_and_old_meta_files_are_pruned():
    v = tf.Variable([1.0, 2.0], name="v")
    saver = tf.train.Saver(max_to_keep=1)
    with tf.Session() as sess:
        v.initializer.run()
        saver.save(sess, "./model", write_meta_graph=False)
        assert not os.path.exists("model.meta") and os.path.exists("model.index.json")
        saver.save(sess, "./model", global_step=1)
        assert os.path.exists("model-1.meta")
        saver.save(sess, "./model", global_step=2, meta_graph_suffix="graph")
        assert os.path.exists("model-2.graph")
        assert not os.path.exists("model-1.meta")             # deleted with its checkpoint (max_to_keep=1)


def test_import_scope_prefixes_names_and_restores_unscoped_checkpoint():
    xd, yd = _data()
    X, y, loss, accuracy, training_op = _build_classifier()
    with tf.Session() as sess:
        tf.global_variables_initializer().run()
        want = accuracy.eval(feed_dict={X: xd, y: yd})
        tf.train.Saver().save(sess, "./m.ckpt")
    tf.reset_default_graph()
    saver = tf.train.import_meta_graph("./m.ckpt.meta", import_scope="net")
    saver2 = tf.train.import_meta_graph("./m.ckpt.meta", import_scope="net")
    graph = tf.get_default_graph()
    acc1 = graph.get_tensor_by_name("net/eval/accuracy:0")
    acc2 = graph.get_tensor_by_name("net_1/eval/accuracy:0")
    assert {v.op.name for v in tf.global_variables(scope="net/")} == \
        {"net/hidden1/kernel", "net/hidden1/bias", "net/hidden2/kernel", "net/hidden2/bias",
         "net/outputs/kernel", "net/outputs/bias"}
    assert graph.get_operation_by_name("net/GradientDescent").type == "NoOp"
    with tf.Session() as sess:
        saver.restore(sess, "./m.ckpt")
        saver2.restore(sess, "./m.ckpt")
        feed = {graph.get_tensor_by_name("net/X:0"): xd, graph.get_tensor_by_name("net/y:0"): yd,
                graph.get_tensor_by_name("net_1/X:0"): xd, graph.get_tensor_by_name("net_1/y:0"): yd}
        assert sess.run([acc1, acc2], feed_dict=feed) == [want, want]


def test_import_into_non_empty_graph_renames_clashes():
    a = tf.placeholder(tf.float32, shape=(None, 2), name="X")
    w = tf.Variable([[1.0], [2.0]], name="w")
    out = tf.matmul(a, w, name="out")
    tf.train.export_meta_graph("g.meta")
    assert tf.train.export_meta_graph("g.meta").saver_def is None
    tf.train.import_meta_graph("g.meta")        # same names again: they become unique
    graph = tf.get_default_graph()
    names = [op.name for op in graph.get_operations()]
    assert len(names) == len(set(names))
    out2 = graph.get_tensor_by_name("out_1:0")
    x2 = graph.get_tensor_by_name("X_1:0")
    assert out2.op.inputs[0] is x2
    assert len(tf.global_variables()) == 2
    w2 = [v for v in tf.global_variables() if v is not w][0]
    assert w2.op.name == "w_1"
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(w2.assign([[3.0], [4.0]]))
        r1, r2 = sess.run([out, out2], feed_dict={a: [[1.0, 1.0]], x2: [[1.0, 1.0]]})
    np.testing.assert_array_equal(r1, [[3.0]])
    np.testing.assert_array_equal(r2, [[7.0]])
    assert tf.placeholder(tf.float32, name="X").name == "X_2:0"


def test_names_seed_locations_and_variable_store_after_import():
    tf.set_random_seed(7)
    x = tf.placeholder(tf.float32, shape=(None, 3), name="x")
    h = tf.layers.dense(x, 2)
    with tf.variable_scope("relu"):
        threshold = tf.get_variable("threshold", shape=(), initializer=tf.constant_initializer(0.5))
    r = tf.random_uniform([3], name="noise")
    loc = h.op.loc
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        noise = sess.run(r)
    tf.train.export_meta_graph("n.meta", as_text=True)
    with open("n.meta") as f:
        assert json.load(f)["format"] == "jitflow-meta-graph"
    tf.reset_default_graph()
    tf.train.import_meta_graph("n.meta")
    graph = tf.get_default_graph()
    assert graph.seed == 7
    assert graph.get_tensor_by_name(h.name).op.loc == loc
    x = graph.get_tensor_by_name("x:0")
    assert tf.layers.dense(x, 2).name.startswith("dense_1/")          # unique after import, like TF
    with tf.variable_scope("relu", reuse=True):
        again = tf.get_variable("threshold")
    assert again.op.name == "relu/threshold" and again in tf.global_variables()
    with pytest.raises(ValueError, match="already exists"):
        with tf.variable_scope("relu"):
            tf.get_variable("threshold", shape=())
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(again) == pytest.approx(0.5)
        np.testing.assert_array_equal(sess.run(graph.get_tensor_by_name(r.name)), noise)


def test_collections_round_trip_values_summaries_and_predicate():
    x = tf.placeholder(tf.float32, shape=(), name="x")
    v = tf.Variable(2.0, name="v", trainable=False)
    y = tf.multiply(x, v, name="y")
    summary = tf.summary.scalar("y_summary", y)
    tf.add_to_collection("notes", "a note")
    tf.add_to_collection("notes", 3)
    tf.add_to_collection("notes", 2.5)
    tf.add_to_collection("notes", b"raw")
    tf.add_to_collection("ops", y.op)
    tf.add_to_collection("skipped", y)

    class Opaque:
        pass
    tf.add_to_collection("opaque", Opaque())
    with pytest.warns(UserWarning, match="opaque"):
        meta = tf.train.export_meta_graph()
    assert "opaque" not in meta.collection_keys
    tf.reset_default_graph()
    tf.train.import_meta_graph(meta, restore_collections_predicate=lambda key: key != "skipped")
    assert tf.get_collection("notes") == ["a note", 3, 2.5, b"raw"]
    assert tf.get_collection("ops")[0].name == "y"
    assert tf.get_collection("skipped") == []
    assert [var.op.name for var in tf.global_variables()] == ["v"] and tf.trainable_variables() == []
    (s,) = tf.get_collection(tf.GraphKeys.SUMMARIES)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        value = sess.run(s, feed_dict={tf.get_default_graph().get_tensor_by_name("x:0"): 3.0})
    assert isinstance(value, bytes)
    parsed = tf.summary.Summary.FromString(value) if hasattr(tf.summary.Summary, "FromString") else None
    if parsed is not None:
        assert parsed.value[0].simple_value == pytest.approx(6.0)
    assert summary.tags == s.tags


def test_saver_settings_and_explicit_exports():
    a = tf.Variable(1.0, name="a")
    b = tf.Variable(2.0, name="b")
    saver = tf.train.Saver({"weights": a}, max_to_keep=2)
    meta = saver.export_meta_graph("s.meta")
    assert meta.saver_def["var_names"] == {"weights": "a"} and meta.saver_def["max_to_keep"] == 2
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        saver.save(sess, "./s.ckpt", write_meta_graph=False)
    tf.reset_default_graph()
    restored = tf.train.import_meta_graph("s.meta")
    assert list(restored.var_list) == ["weights"] and restored._max_to_keep == 2
    rebuilt = tf.train.Saver(saver_def=restored.as_saver_def())
    assert rebuilt.var_list["weights"] is restored.var_list["weights"]
    with tf.Session() as sess:
        restored.restore(sess, "./s.ckpt")
        assert sess.run(restored.var_list["weights"]) == 1.0
    # no saver def and no variables: None
    tf.reset_default_graph()
    tf.constant(1.0, name="c")
    tf.train.export_meta_graph("c.meta")
    tf.reset_default_graph()
    assert tf.train.import_meta_graph("c.meta") is None
    # clear_devices and input_map
    tf.reset_default_graph()
    with tf.device("/cpu:0"):
        x = tf.placeholder(tf.float32, shape=(2,), name="x")
        z = tf.multiply(x, 2.0, name="z")
    meta = tf.train.export_meta_graph()
    tf.reset_default_graph()
    tf.train.import_meta_graph(meta)
    assert tf.get_default_graph().get_tensor_by_name("z:0").device == "/cpu:0"
    tf.reset_default_graph()
    feed = tf.constant([1.0, 5.0], name="feed")
    tf.train.import_meta_graph(meta, clear_devices=True, import_scope="m", input_map={"x:0": feed})
    z2 = tf.get_default_graph().get_tensor_by_name("m/z:0")
    assert z2.device == "" and z2.op.inputs[0] is feed
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(z2), [2.0, 10.0])


def test_unsupported_arguments_raise():
    tf.Variable(1.0, name="v")
    with pytest.raises(errors.UnsupportedError, match="export_scope"):
        tf.train.export_meta_graph(export_scope="v")
    with pytest.raises(errors.UnsupportedError, match="save_debug_info"):
        tf.train.export_meta_graph(save_debug_info=True)
    with pytest.raises(TypeError, match="bogus"):
        tf.train.import_meta_graph(tf.train.export_meta_graph(), bogus=1)


def _write(path, data):
    with open(path, "w") as f:
        f.write(data if isinstance(data, str) else json.dumps(data))


def test_corrupt_unknown_and_missing_files_raise_clear_errors():
    x = tf.placeholder(tf.float32, shape=(2,), name="x")
    tf.Variable(1.0, name="v")
    tf.add(x, 1.0, name="y")
    good = tf.train.export_meta_graph("good.meta").data
    tf.reset_default_graph()
    with pytest.raises(errors.NotFoundError, match="does not exist"):
        tf.train.import_meta_graph("missing.meta")
    with pytest.raises(IOError):
        tf.train.import_meta_graph("missing.meta")
    with open("good.meta", "rb") as f:
        text = f.read()
    with open("truncated.meta", "wb") as f:
        f.write(text[: len(text) // 2])
    with pytest.raises(MetaGraphFormatError, match="not a valid jitflow meta graph"):
        tf.train.import_meta_graph("truncated.meta")
    with open("binary.meta", "wb") as f:
        f.write(b"\x0a\x8f\x01\x12\x04protobuf")
    with pytest.raises(errors.DataLossError, match="protobuf"):
        tf.train.import_meta_graph("binary.meta")
    _write("newer.meta", dict(good, version=99))
    with pytest.raises(MetaGraphFormatError, match="version 99.*newer"):
        tf.train.import_meta_graph("newer.meta")
    _write("other.meta", dict(good, format="something-else"))
    with pytest.raises(MetaGraphFormatError, match="not a jitflow meta graph"):
        tf.train.import_meta_graph("other.meta")
    _write("nograph.meta", {k: v for k, v in good.items() if k != "graph"})
    with pytest.raises(MetaGraphFormatError, match="'graph'"):
        tf.train.import_meta_graph("nograph.meta")
    bad_ref = json.loads(json.dumps(good))
    bad_ref["graph"]["ops"][-1]["inputs"] = ["nowhere:0"]
    _write("badref.meta", bad_ref)
    with pytest.raises(MetaGraphFormatError, match="nowhere:0"):
        tf.train.import_meta_graph("badref.meta")
    unknown_op = json.loads(json.dumps(good))
    unknown_op["graph"]["ops"][0]["op"] = "frobnicate"
    _write("unknown.meta", unknown_op)
    with pytest.raises(MetaGraphFormatError, match="frobnicate"):
        tf.train.import_meta_graph("unknown.meta")
    bad_attr = json.loads(json.dumps(good))
    bad_attr["graph"]["ops"][0]["attrs"]["dtype"] = {"$what": 1}
    _write("badattr.meta", bad_attr)
    with pytest.raises(MetaGraphFormatError, match="unknown tag"):
        tf.train.import_meta_graph("badattr.meta")
    bad_var = json.loads(json.dumps(good))
    bad_var["variables"][0]["initializer"] = "gone"
    _write("badvar.meta", bad_var)
    with pytest.raises(MetaGraphFormatError, match="gone"):
        tf.train.import_meta_graph("badvar.meta")
    # the failures before op creation left the graph empty
    tf.reset_default_graph()
    for name in ("truncated", "newer", "badref", "unknown", "badattr"):
        with pytest.raises(MetaGraphFormatError):
            tf.train.import_meta_graph(f"{name}.meta")
    assert tf.get_default_graph().get_operations() == []


def test_attribute_encoding_round_trip_and_unserializable_attr():
    values = [None, True, 3, -2.5, float("nan"), float("inf"), "s", b"\x00\x01", (1, None, 3), [1, (2,)],
              {"k": (1.0,)}, tf.int64, np.arange(6, dtype=np.int64).reshape(2, 3),
              np.array([[1.5, -2.0]], np.float32), np.array(True), np.float32(1.25), np.int32(-4)]
    for value in values:
        data = json.loads(json.dumps(encode_value(value), allow_nan=False))
        back = decode_value(data)
        if isinstance(value, np.ndarray):
            assert back.dtype == value.dtype and back.shape == value.shape
            np.testing.assert_array_equal(back, value)
        elif isinstance(value, np.generic):
            assert type(back) is type(value) and back == value
        elif isinstance(value, float) and np.isnan(value):
            assert np.isnan(back)
        else:
            assert back == value and type(back) is type(value)
    x = tf.placeholder(tf.float32, shape=(2,), name="x")
    tf.get_default_graph().create_op("identity", [x], {"weird": object()}, name="odd")
    with pytest.raises(GraphSerializationError, match="'weird' of op 'odd'"):
        tf.train.export_meta_graph()
    v = tf.Variable(1.0, name="v")
    with tf.Session() as sess:
        v.initializer.run()
        with pytest.raises(GraphSerializationError):
            tf.train.Saver().save(sess, "./odd.ckpt")
    assert not os.path.exists("odd.ckpt.index.json")          # nothing written when the graph cannot export
