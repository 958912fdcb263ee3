"""Host-side summary work: vectorized histogram buckets equal a slow per-value reference of
TF's Histogram, and CRC-32C (native and numpy fallback) matches known vectors."""
import bisect
import os
import struct

import numpy as np
import pytest

import jitflow as tf
from jitflow import crc32c as crc_module
from jitflow.summary import _BUCKET_LIMITS, histogram_buckets
from jitflow.tensorboard_proto import crc32c, masked_crc32c, tfrecord


# ------------------------------------------------------------------------------- histograms
def slow_histogram(values):
    """TF's Histogram::Add (std::upper_bound per value) + EncodeToProto, one value at a time."""
    limits = [float(x) for x in _BUCKET_LIMITS]
    buckets = [0.0] * len(limits)
    for v in values:
        b = bisect.bisect_right(limits, float(v))
        buckets[min(b, len(limits) - 1)] += 1
    out_limits, out_counts, i = [], [], 0
    while i < len(buckets):
        end, count = limits[i], buckets[i]
        i += 1
        if count <= 0:
            while i < len(buckets) and buckets[i] <= 0:
                end, count = limits[i], buckets[i]
                i += 1
        out_limits.append(end)
        out_counts.append(count)
    return out_limits, out_counts


def test_default_buckets_are_tfs():
    limits = _BUCKET_LIMITS
    assert limits[len(limits) // 2] == 0.0
    assert limits[-1] == np.finfo(np.float64).max and limits[0] == -limits[-1]
    assert limits[len(limits) // 2 + 1] == 1e-12
    assert np.all(np.diff(limits) > 0)
    assert np.array_equal(limits, -limits[::-1])


@pytest.mark.parametrize("seed", range(5))
def test_histogram_buckets_equal_slow_reference(seed):
    rng = np.random.RandomState(seed)
    values = np.concatenate([
        rng.randn(300) * 10.0 ** rng.randint(-15, 25, 300),        # all magnitudes, both signs
        np.zeros(7), -np.zeros(3), [np.inf, -np.inf, np.inf, 1e-12, -1e-12, 1e20, -1e20, 1e300, -1e300],
        rng.randint(-5, 5, 50).astype(np.float64)])                 # repeated exact values
    rng.shuffle(values)
    limits, counts = histogram_buckets(values)
    want_limits, want_counts = slow_histogram(values)
    assert limits.tolist() == want_limits
    assert counts.tolist() == want_counts
    assert sum(want_counts) == len(values)


def test_histogram_buckets_edge_cases():
    for values in ([], [0.0], [5.0] * 10, [np.inf], [-np.inf], [float(_BUCKET_LIMITS[3])]):
        limits, counts = histogram_buckets(np.asarray(values, np.float64))
        want_limits, want_counts = slow_histogram(values)
        assert limits.tolist() == want_limits and counts.tolist() == want_counts


def test_histogram_summary_round_trip_and_nan_error():
    from test_summary import decode_summary
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None])
        h = tf.summary.histogram("h", x)
    data = np.array([-3.0, 0.0, 0.5, 0.5, 2.0, 1e6], np.float32)
    with tf.Session(graph=graph) as sess:
        [(tag, (kind, histo))] = decode_summary(sess.run(h, {x: data}))
        assert (tag, kind) == ("h", "histo")
        want_limits, want_counts = slow_histogram(data.astype(np.float64))
        assert histo["bucket_limit"] == want_limits and histo["bucket"] == want_counts
        assert histo["min"] == -3.0 and histo["max"] == 1e6 and histo["num"] == 6
        assert histo["sum"] == pytest.approx(float(data.astype(np.float64).sum()))
        with pytest.raises(tf.errors.InvalidArgumentError, match="Nan in summary histogram for: h"):
            sess.run(h, {x: np.array([1.0, np.inf], np.float32)})


# ------------------------------------------------------------------------------- CRC-32C
KNOWN = [(b"123456789", 0xE3069283), (b"", 0), (bytes(32), 0x8A9136AA), (bytes([0xFF] * 32), 0x62A8AB43),
         (bytes(range(32)), 0x46DD794E), (bytes(range(31, -1, -1)), 0x113FDB5C), (b"a", 0xC1D04330)]


@pytest.mark.parametrize("impl", [crc32c, crc_module.crc32c_table, crc_module.crc32c_lanes])
def test_crc32c_known_vectors(impl):
    for data, want in KNOWN:
        assert impl(data) == want, data


def test_crc32c_fallback_equals_table_on_random_lengths():
    rng = np.random.RandomState(1)
    for n in [0, 1, 63, 64, 65, 1023, 1024, 1025, 4096, 4097, 9999, 70001]:
        data = rng.randint(0, 256, n).astype(np.uint8).tobytes()
        want = crc_module.crc32c_table(data)
        assert crc_module.crc32c_lanes(data) == want, n
        assert crc32c(data) == want, n
        half = n // 2                                     # continuing from a partial CRC
        assert crc_module.crc32c_lanes(data[half:], crc_module.crc32c_lanes(data[:half])) == want
        assert crc32c(data[half:], crc32c(data[:half])) == want


def test_native_crc_when_installed():
    google = pytest.importorskip("google_crc32c")
    assert crc_module._NATIVE == (google.implementation == "c")


def _tensorboard_masked(data):
    c = crc_module.crc32c_table(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_masked_crc_and_tfrecord_framing_validate(monkeypatch):
    data = os.urandom(5000)
    for native in (crc_module._NATIVE, False):
        monkeypatch.setattr(crc_module, "_NATIVE", native)
        assert masked_crc32c(data) == _tensorboard_masked(data)
        record = tfrecord(data)
        (length,) = struct.unpack("<Q", record[:8])
        assert length == len(data)
        assert struct.unpack("<I", record[8:12])[0] == _tensorboard_masked(record[:8])
        assert record[12:12 + length] == data
        assert struct.unpack("<I", record[12 + length:])[0] == _tensorboard_masked(data)
