"""tf.summary, FileWriter event files and tf.graph_to_dot.

Event files are checked with a decoder written here (TFRecord framing with a
bitwise CRC32C, protobuf wire format) and, when installed, with TensorBoard's
own EventAccumulator.
"""
import re
import shutil
import struct
import subprocess

import numpy as np
import pytest

import jitflow as tf
from jitflow import errors
from jitflow.tensorboard_proto import crc32c, masked_crc32c

F32 = tf.float32


# ------------------------------------------------------------------------------------------
# an independent decoder: TFRecords (bitwise CRC32C) and the protobuf wire format
# ------------------------------------------------------------------------------------------
def _crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    crc = _crc32c_bitwise(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path):
    data = path.read_bytes()
    pos, records = 0, []
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        assert header_crc == _masked(header), "bad length CRC"
        body = data[pos + 12:pos + 12 + length]
        assert len(body) == length, "truncated record"
        (body_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        assert body_crc == _masked(body), "bad data CRC"
        records.append(body)
        pos += 16 + length
    return records


def _read_varint(buf, pos):
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def decode(buf) -> dict:
    """{field number: [raw values]}: ints for varints, bytes for the other wire types."""
    fields, pos = {}, 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        fields.setdefault(number, []).append(value)
    assert pos == len(buf)
    return fields


def _double(raw):
    return struct.unpack("<d", raw)[0]


def _int64(raw):
    return raw - (1 << 64) if raw >= 1 << 63 else raw


def decode_histogram(buf):
    f = decode(buf)
    out = {name: _double(f[n][0]) if n in f else 0.0
           for n, name in ((1, "min"), (2, "max"), (3, "num"), (4, "sum"), (5, "sum_squares"))}
    for n, name in ((6, "bucket_limit"), (7, "bucket")):
        raw = b"".join(f.get(n, []))
        out[name] = list(struct.unpack(f"<{len(raw) // 8}d", raw))
    return out


def decode_summary(buf):
    """[(tag, ('scalar', value) | ('histo', dict))]"""
    values = []
    for raw in decode(buf).get(1, []):
        f = decode(raw)
        tag = f[1][0].decode()
        if 2 in f:
            values.append((tag, ("scalar", struct.unpack("<f", f[2][0])[0])))
        else:
            values.append((tag, ("histo", decode_histogram(f[5][0]))))
    return values


def decode_event(buf):
    f = decode(buf)
    event = {"wall_time": _double(f[1][0]) if 1 in f else 0.0, "step": _int64(f[2][0]) if 2 in f else 0}
    if 3 in f:
        event["file_version"] = f[3][0].decode()
    if 4 in f:
        event["graph_def"] = f[4][0]
    if 5 in f:
        event["summary"] = decode_summary(f[5][0])
    return event


def decode_graph_def(buf):
    """{node name: (op type, [inputs])}"""
    nodes = {}
    for raw in decode(buf).get(1, []):
        f = decode(raw)
        nodes[f[1][0].decode()] = (f[2][0].decode(), [x.decode() for x in f.get(3, [])])
    return nodes


def read_events(logdir):
    files = sorted(logdir.glob("events.out.tfevents.*"))
    assert files, f"no event file in {logdir}"
    events = [decode_event(r) for path in files for r in read_records(path)]
    return files, events


def scalar_series(events, tag):
    return [(e["step"], v[1]) for e in events for t, v in e.get("summary", []) if t == tag and v[0] == "scalar"]


# ------------------------------------------------------------------------------------------
# CRC32C and framing
# ------------------------------------------------------------------------------------------
def test_crc32c_known_answers():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA          # RFC 3720 B.4: 32 bytes of zeros
    assert crc32c(bytes([0xFF] * 32)) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    data = np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes()
    assert crc32c(data) == _crc32c_bitwise(data)
    assert masked_crc32c(data) == _masked(data)


def test_masked_crc_matches_tensorboard():
    pytest.importorskip("tensorboard")
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as tb_masked
    for data in (b"", b"123456789", bytes(range(256)) * 3):
        assert masked_crc32c(data) == tb_masked(data)


# ------------------------------------------------------------------------------------------
# summaries in a Session
# ------------------------------------------------------------------------------------------
def test_scalar_summary_runs_on_host_and_is_summary_bytes():
    x = tf.placeholder(F32, (), name="x")
    with tf.name_scope("loss"):
        s = tf.summary.scalar("value", x * 2.0)
    assert s.op.type == "ScalarSummary" and s.op.name == "loss/value" and s.tags == ("loss/value",)
    assert tf.get_collection(tf.GraphKeys.SUMMARIES) == [s]
    with tf.Session() as sess:
        out = sess.run(s, {x: 1.5})
        assert isinstance(out, bytes)
        assert decode_summary(out) == [("loss/value", ("scalar", 3.0))]
        # fetch structures are kept; summaries mix with ordinary tensors
        both = sess.run({"s": s, "y": [x * 3.0, s]}, {x: 2.0})
        assert decode_summary(both["s"]) == [("loss/value", ("scalar", 4.0))]
        assert both["y"][0] == pytest.approx(6.0) and both["y"][1] == both["s"]
        assert sess.run(s.op, {x: 1.0}) is None              # the op itself: nothing to compute
        assert s.eval({x: 0.0}) == b"\n\x11\n\nloss/value\x15\x00\x00\x00\x00"  # 0.0 is written (a oneof)


def test_summary_errors(tmp_path):
    v = tf.placeholder(F32, (3,), name="v")
    with pytest.raises(ValueError, match="scalar"):
        tf.summary.scalar("bad", v)
    assert tf.summary.scalar("bad", v[0]).tags == ("bad",)     # the failed call reserved no name
    assert tf.summary.histogram("w", v, family="weights").tags == ("weights/weights/w",)   # as TF's family
    with pytest.raises(TypeError):
        tf.summary.scalar("flag", tf.constant(True))
    u = tf.placeholder(F32, None, name="u_in")         # unknown rank: checked when run
    s = tf.summary.scalar("u", u)
    h = tf.summary.histogram("h", u)
    assert tf.summary.merge([s]).tags == ("u",)
    with pytest.raises(TypeError):
        tf.summary.merge([u])
    with pytest.raises(ValueError, match="Duplicate tag"):
        tf.summary.merge([s, s])
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match="not the same shape"):
            sess.run(s, {u: [1.0, 2.0]})
        with pytest.raises(errors.InvalidArgumentError, match="Nan in summary histogram for: h"):
            sess.run(h, {u: [1.0, np.nan]})
    with tf.summary.FileWriter(tmp_path) as writer, pytest.raises(TypeError, match="evaluated summary"):
        writer.add_summary(s)


def test_merge_all_none_when_empty():
    tf.constant(1.0)
    assert tf.summary.merge_all() is None


def _tf_default_limits():
    positive, v = [], 1.0e-12
    while v < 1.0e20:
        positive.append(v)
        v *= 1.1
    positive.append(np.finfo(np.float64).max)
    return [-x for x in reversed(positive)] + [0.0] + positive


def test_histogram_matches_tf_encoding():
    values = np.array([-2.5, -0.001, 0.0, 0.0, 1.0, 1.0, 1.05, 3.0, 1e6], np.float64)
    x = tf.placeholder(tf.float64, (None,), name="x")
    h = tf.summary.histogram("weights", x)
    with tf.Session() as sess:
        [(tag, (kind, histo))] = decode_summary(sess.run(h, {x: values}))
    assert (tag, kind) == ("weights", "histo")
    assert histo["min"] == -2.5 and histo["max"] == 1e6 and histo["num"] == len(values)
    assert histo["sum"] == pytest.approx(values.sum()) and histo["sum_squares"] == pytest.approx((values ** 2).sum())
    assert sum(histo["bucket"]) == len(values)
    # the limits are a subsequence of TF's default buckets, ending with DBL_MAX
    limits = _tf_default_limits()
    index = {v: i for i, v in enumerate(limits)}
    assert all(b in index for b in histo["bucket_limit"]) and histo["bucket_limit"][-1] == limits[-1]
    # each value lands in the bucket [limit[i-1], limit[i]) (TF's upper_bound rule), empty runs collapsed
    expected = {}
    for v in values:
        i = next(i for i, lim in enumerate(limits) if v < lim)
        expected[limits[i]] = expected.get(limits[i], 0) + 1
    got = {lim: c for lim, c in zip(histo["bucket_limit"], histo["bucket"]) if c}
    assert got == expected
    counts = histo["bucket"]
    assert all(counts[i] or counts[i + 1] for i in range(len(counts) - 1)), "adjacent empty buckets"


def test_merge_all_and_file_writer(tmp_path):
    x = tf.placeholder(F32, (None,), name="x")
    with tf.name_scope("stats"):
        mean = tf.reduce_mean(x, name="mean")
        tf.summary.scalar("avg", mean)
        tf.summary.scalar("top", tf.reduce_max(x))
    tf.summary.histogram("x_values", x)
    tf.summary.scalar("extra", mean, collections=["other"])      # not in SUMMARIES
    merged = tf.summary.merge_all()
    assert merged.tags == ("stats/avg", "stats/top", "x_values")
    assert merged.op.type == "MergeSummary"
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=50).astype(np.float32) for _ in range(4)]
    with tf.Session() as sess, tf.summary.FileWriter(tmp_path) as writer:
        for step, batch in enumerate(batches):
            writer.add_summary(sess.run(merged, {x: batch}), global_step=step * 10)
        writer.flush()
        _, mid = read_events(tmp_path)                   # readable before close
        assert len(mid) == 1 + len(batches)
    files, events = read_events(tmp_path)
    assert len(files) == 1 and re.fullmatch(r"events\.out\.tfevents\.\d{10}\..+", files[0].name)
    assert events[0]["file_version"] == "brain.Event:2" and events[0]["wall_time"] > 1e9
    assert [e["step"] for e in events[1:]] == [0, 10, 20, 30]
    for event, batch in zip(events[1:], batches):
        tags = [t for t, _ in event["summary"]]
        assert tags == ["stats/avg", "stats/top", "x_values"]
        values = dict(event["summary"])
        assert values["stats/avg"][1] == pytest.approx(batch.mean(), rel=1e-5)
        assert values["stats/top"][1] == pytest.approx(batch.max())
        assert values["x_values"][1]["num"] == 50 and sum(values["x_values"][1]["bucket"]) == 50
        assert values["x_values"][1]["min"] == pytest.approx(batch.min())


def test_writer_close_reopen_and_manual_summaries(tmp_path):
    writer = tf.summary.FileWriter(tmp_path / "run", flush_secs=0)
    assert writer.get_logdir() == str(tmp_path / "run")
    value = tf.summary.Summary.Value
    writer.add_summary(tf.summary.Summary(value=[value(tag="lr", simple_value=0.5)]), 3)
    writer.add_event(tf.summary.Event(wall_time=1.0, step=4, summary=tf.summary.Summary([value("lr", 0.25)])))
    writer.close()
    writer.add_summary(tf.summary.Summary([value("lr", 9.0)]), 5)     # dropped after close, as in TF
    writer.close()
    _, events = read_events(tmp_path / "run")
    assert scalar_series(events, "lr") == [(3, 0.5), (4, 0.25)]
    writer.reopen()
    writer.add_summary(tf.summary.Summary([value("lr", 1.0)]), -1)    # negative steps: 10-byte varints
    writer.close()
    files, events = read_events(tmp_path / "run")
    assert len(files) == 2
    assert sorted(scalar_series(events, "lr")) == [(-1, 1.0), (3, 0.5), (4, 0.25)]
    with pytest.raises(TypeError):
        tf.summary.FileWriter(tmp_path / "other").add_summary(None)


# ------------------------------------------------------------------------------------------
# the seed exercise 9.12 pattern, graph included; TensorBoard's reader
# ------------------------------------------------------------------------------------------
def _seed_9_12(logdir, n_epochs=3, batch_size=50, m=400):
    rng = np.random.default_rng(42)
    data = np.c_[np.ones((m, 1)), rng.normal(size=(m, 3))].astype(np.float32)
    target = (data @ np.array([[2.0], [1.0], [-1.0], [0.5]], np.float32) + 0.1 * rng.normal(size=(m, 1))
              ).astype(np.float32)
    n_batches = m // batch_size
    X = tf.placeholder(F32, shape=(None, 4), name="X")
    y = tf.placeholder(F32, shape=(None, 1), name="y")
    theta = tf.Variable(tf.random_uniform([4, 1], -1.0, 1.0, seed=42), name="theta")
    y_pred = tf.matmul(X, theta, name="predictions")
    with tf.name_scope("loss") as scope:
        error = y_pred - y
        mse = tf.reduce_mean(tf.square(error), name="mse")
    optimizer = tf.train.GradientDescentOptimizer(learning_rate=0.1)
    training_op = optimizer.minimize(mse)
    init = tf.global_variables_initializer()
    mse_summary = tf.summary.scalar("MSE", mse)
    file_writer = tf.summary.FileWriter(logdir, tf.get_default_graph())
    written = []
    with tf.Session() as sess:
        sess.run(init)
        for epoch in range(n_epochs):
            for batch_index in range(n_batches):
                X_batch = data[batch_index * batch_size:(batch_index + 1) * batch_size]
                y_batch = target[batch_index * batch_size:(batch_index + 1) * batch_size]
                if batch_index % 2 == 0:
                    summary_str = mse_summary.eval(feed_dict={X: X_batch, y: y_batch})
                    step = epoch * n_batches + batch_index
                    file_writer.add_summary(summary_str, step)
                    written.append((step, float(mse.eval(feed_dict={X: X_batch, y: y_batch}))))
                sess.run(training_op, feed_dict={X: X_batch, y: y_batch})
    file_writer.close()
    assert scope == "loss/"
    return written


def test_seed_9_12_pattern_and_graph(tmp_path):
    written = _seed_9_12(tmp_path)
    _, events = read_events(tmp_path)
    series = scalar_series(events, "MSE")
    assert [s for s, _ in series] == [s for s, _ in written] == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]
    assert [v for _, v in series] == pytest.approx([v for _, v in written], rel=1e-6)
    assert series[-1][1] < series[0][1] / 5                  # training made progress
    graphs = [e["graph_def"] for e in events if "graph_def" in e]
    assert len(graphs) == 1
    nodes = decode_graph_def(graphs[0])
    graph = tf.get_default_graph()
    assert set(nodes) == {op.name for op in graph.get_operations()}
    assert nodes["loss/mse"] == ("Mean", ["loss/Square"])
    assert nodes["MSE"] == ("ScalarSummary", ["loss/mse"])
    assert nodes["predictions"] == ("MatMul", ["X", "theta/read"])
    assert any(name.startswith("gradients/") for name in nodes)
    for op in graph.get_operations():                        # control inputs are "^name"
        assert nodes[op.name][1][len(op.inputs):] == ["^" + c.name for c in op.control_inputs]
    for _, inputs in nodes.values():
        assert all(i.lstrip("^").split(":")[0] in nodes for i in inputs)


def test_tensorboard_reader(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    written = _seed_9_12(tmp_path / "seed", n_epochs=2)
    acc = EventAccumulator(str(tmp_path / "seed"), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    assert "MSE" in acc.Tags()["scalars"] and acc.Tags()["graph"]
    events = acc.Scalars("MSE")
    assert [e.step for e in events] == [s for s, _ in written]
    assert [e.value for e in events] == pytest.approx([v for _, v in written], rel=1e-6)
    graph_def = acc.Graph()
    names = {n.name: n for n in graph_def.node}
    assert names["loss/mse"].op == "Mean" and list(names["loss/mse"].input) == ["loss/Square"]
    shapes = names["X"].attr["_output_shapes"].list.shape[0]
    assert [d.size for d in shapes.dim] == [-1, 4]

    tf.reset_default_graph()
    x = tf.placeholder(F32, (None,), name="x")
    tf.summary.histogram("acts", x)
    tf.summary.scalar("n", tf.reduce_sum(tf.ones_like(x)))
    merged = tf.summary.merge_all()
    data = [np.arange(k + 1, dtype=np.float32) for k in range(3)]
    with tf.Session() as sess, tf.summary.FileWriter(tmp_path / "hist") as writer:
        for step, batch in enumerate(data):
            writer.add_summary(sess.run(merged, {x: batch}), step)
    acc = EventAccumulator(str(tmp_path / "hist"), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    assert acc.Tags()["histograms"] == ["acts"] and acc.Tags()["scalars"] == ["n"]
    histos = acc.Histograms("acts")
    assert [h.step for h in histos] == [0, 1, 2]
    for h, batch in zip(histos, data):
        value = h.histogram_value
        assert value.num == len(batch) and sum(value.bucket) == len(batch)
        assert value.min == batch.min() and value.max == batch.max() and value.sum == batch.sum()
    assert [e.value for e in acc.Scalars("n")] == [1.0, 2.0, 3.0]


# ------------------------------------------------------------------------------------------
# DOT export
# ------------------------------------------------------------------------------------------
_QUOTED = r'"(?:[^"\\]|\\.)*"'


def parse_dot(text):
    """Structure of the DOT text: declared nodes with their enclosing clusters, edges, clusters."""
    assert text.startswith("digraph ") and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")            # no braces inside names here
    stack, clusters, nodes, edges = [], {}, {}, []
    for line in text.splitlines():
        line = line.strip()
        if m := re.fullmatch(r"subgraph (cluster_\w+) \{", line):
            stack.append(m.group(1))
            clusters[m.group(1)] = None
        elif line == "}":
            if stack:
                stack.pop()
        elif m := re.fullmatch(r"label=(" + _QUOTED + ");", line):
            clusters[stack[-1]] = m.group(1)[1:-1]
        elif m := re.fullmatch(rf"({_QUOTED}) -> ({_QUOTED})( \[.*\])?;", line):
            edges.append((m.group(1)[1:-1], m.group(2)[1:-1], m.group(3) or ""))
        elif m := re.fullmatch(rf"({_QUOTED}) \[label=({_QUOTED})\];", line):
            nodes[m.group(1)[1:-1]] = (tuple(stack), m.group(2)[1:-1])
    assert not stack
    return nodes, edges, clusters


def test_graph_to_dot(tmp_path):
    x = tf.placeholder(F32, (None, 2), name="X")
    w = tf.Variable(tf.zeros((2, 1)), name="w")
    with tf.name_scope("loss"):
        with tf.name_scope("inner"):
            d = tf.matmul(x, w) - 1.0
        mse = tf.reduce_mean(tf.square(d), name="mse")
    with tf.control_dependencies([mse]):
        done = tf.no_op(name="done")
    tf.summary.scalar("MSE", mse)
    text = tf.graph_to_dot()
    assert text == tf.graph_to_dot(tf.get_default_graph())
    nodes, edges, clusters = parse_dot(text)
    graph = tf.get_default_graph()
    assert set(nodes) == {op.name for op in graph.get_operations()}
    for a, b, _ in edges:
        assert a in nodes and b in nodes
    assert clusters["cluster_loss"] == "loss" and clusters["cluster_loss_inner"] == "loss/inner"
    assert nodes["loss/mse"] == (("cluster_loss",), "loss/mse\\nMean")
    assert nodes["loss/inner/MatMul"][0] == ("cluster_loss", "cluster_loss_inner")
    assert nodes["w"][0] == ("cluster_w",) and nodes["w/read"][0] == ("cluster_w",)
    assert nodes["X"] == ((), "X\\nPlaceholder")
    assert ("loss/mse", "MSE", "") in edges
    assert ("loss/mse", done.name, " [style=dashed]") in edges
    data_edges = sum(len(op.inputs) for op in graph.get_operations())
    assert sum(1 for *_, style in edges if "dashed" not in style) == data_edges



@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_graph_to_dot_parses_with_pydot():
    pydot = pytest.importorskip("pydot")        # a real DOT parser (pure Python), when installed
    x = tf.placeholder(F32, (None, 2), name="X")
    w = tf.Variable(tf.zeros((2, 1)), name="w")
    with tf.name_scope("loss"):
        with tf.name_scope("inner"):
            d = tf.matmul(x, w)
        mse = tf.reduce_mean(tf.square(d), name="mse")
    with tf.control_dependencies([mse]):
        tf.no_op(name="done")
    (graph,) = pydot.graph_from_dot_data(tf.graph_to_dot())
    (loss,) = graph.get_subgraph("cluster_loss")
    assert loss.get_label() == '"loss"'
    assert {n.get_name() for n in loss.get_nodes()} == {'"loss/Square"', '"loss/mse"'}
    (inner,) = loss.get_subgraph("cluster_loss_inner")
    assert {n.get_name() for n in inner.get_nodes()} == {'"loss/inner/MatMul"'}
    assert {n.get_name() for n in graph.get_subgraph("cluster_w")[0].get_nodes()} == {
        '"w"', '"w/Assign"', '"w/read"'}
    edges = {(e.get_source(), e.get_destination()): e.get_style() for e in graph.get_edges()}
    assert edges[('"loss/mse"', '"done"')] == "dashed" and edges[('"X"', '"loss/inner/MatMul"')] is None


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not on PATH")
def test_graph_to_dot_renders(tmp_path):
    x = tf.placeholder(F32, (None, 2), name="X")
    with tf.name_scope("loss"):
        mse = tf.reduce_mean(tf.square(tf.matmul(x, tf.Variable(tf.zeros((2, 1)), name="w"))), name="mse")
    with tf.control_dependencies([mse]):
        tf.no_op(name="done")
    text = tf.graph_to_dot()
    (tmp_path / "g.dot").write_text(text)
    result = subprocess.run(["dot", "-Tsvg", str(tmp_path / "g.dot")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "<svg" in result.stdout and "loss/mse" in result.stdout
