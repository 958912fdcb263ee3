"""jitflow.datasets: MNIST from local IDX files (raw and gzip, magic/size checks,
clear errors), scikit-learn digits split, and the generated MNIST-1D benchmark."""
import gzip
import random

import numpy as np
import pytest

from jitflow.datasets import digits, mnist, mnist1d


def idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(">u1" if type_code == 0x08 else array.dtype).tobytes()


def write_mnist(directory, n_train=5, n_test=3, compress=False):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8)}
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if compress:
            (directory / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_idx_files(tmp_path, compress):
    arrays = write_mnist(tmp_path / "mnist", compress=compress)
    (x_train, y_train), (x_test, y_test) = mnist.load_data(tmp_path / "mnist")
    for got, name in ((x_train, "train-images-idx3-ubyte"), (y_train, "train-labels-idx1-ubyte"),
                      (x_test, "t10k-images-idx3-ubyte"), (y_test, "t10k-labels-idx1-ubyte")):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[name])
    assert x_train.shape == (5, 28, 28) and y_test.shape == (3,)


def test_mnist_default_directory_from_environment(tmp_path, monkeypatch):
    write_mnist(tmp_path / "data" / "mnist")
    monkeypatch.setenv("JITFLOW_DATA_DIR", str(tmp_path / "data"))
    (x_train, _), _ = mnist.load_data()
    assert x_train.shape == (5, 28, 28)
    monkeypatch.delenv("JITFLOW_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert str(mnist.default_dir()).endswith(".jitflow/datasets/mnist")


def test_mnist_missing_files_name_directory_and_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        mnist.load_data(tmp_path / "nowhere")
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message
    for name in mnist.FILES:
        assert name in message
    write_mnist(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="missing t10k-labels-idx1-ubyte"):
        mnist.load_data(tmp_path / "partial")


def test_mnist_corrupt_and_truncated_files(tmp_path):
    directory = tmp_path / "mnist"
    write_mnist(directory)
    images = directory / "train-images-idx3-ubyte"
    good = images.read_bytes()
    images.write_bytes(b"\x12\x34" + good[2:])
    with pytest.raises(ValueError, match="magic number"):
        mnist.load_data(directory)
    images.write_bytes(good)                      # restore; then an images file where labels belong
    labels = directory / "train-labels-idx1-ubyte"
    labels_good = labels.read_bytes()
    labels.write_bytes(good)
    with pytest.raises(ValueError, match="expected 0x00000801"):
        mnist.load_data(directory)
    labels.write_bytes(labels_good)
    images.write_bytes(good[:-10])
    with pytest.raises(ValueError, match="truncated"):
        mnist.load_data(directory)
    images.write_bytes(good[:10])
    with pytest.raises(ValueError, match="truncated"):
        mnist.load_data(directory)
    images.write_bytes(good + b"\0")
    with pytest.raises(ValueError, match="trailing"):
        mnist.load_data(directory)
    images.write_bytes(good)
    labels.write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match="5 images but .* 4 labels"):
        mnist.load_data(directory)
    labels.unlink()
    (directory / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="gzip"):
        mnist.load_data(directory)


def test_mnist_npz(tmp_path):
    arrays = {"x_train": np.zeros((2, 28, 28), np.uint8), "y_train": np.arange(2, dtype=np.uint8),
              "x_test": np.ones((1, 28, 28), np.uint8), "y_test": np.arange(1, dtype=np.uint8)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    (x_train, y_train), (x_test, _) = mnist.load_data(tmp_path / "mnist.npz")
    assert x_train.shape == (2, 28, 28) and x_test[0, 0, 0] == 1


def test_digits_split():
    pytest.importorskip("sklearn")
    (x_train, y_train), (x_test, y_test) = digits.load_data(test_split=0.2, seed=1)
    assert x_train.shape == (1438, 8, 8) and x_test.shape == (359, 8, 8)
    assert y_train.shape == (1438,) and y_test.shape == (359,)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8 and x_train.max() == 16
    assert set(np.unique(y_test)) == set(range(10))
    (again, _), _ = digits.load_data(test_split=0.2, seed=1)
    np.testing.assert_array_equal(again, x_train)
    (other, _), _ = digits.load_data(test_split=0.2, seed=2)
    assert not np.array_equal(other, x_train)


def test_mnist1d_shapes_dtypes_determinism():
    numpy_state, python_state = np.random.get_state(), random.getstate()
    (x_train, y_train), (x_test, y_test) = mnist1d.load_data(source="builtin")
    assert x_train.shape == (4000, 40) and x_test.shape == (1000, 40)
    assert x_train.dtype == np.float32 and y_train.dtype == np.uint8
    assert set(np.unique(y_train)) == set(range(10)) and np.bincount(y_train).min() > 350
    whole = np.concatenate([x_train, x_test]).astype(np.float64)
    assert abs(whole.mean()) < 1e-6 and abs(whole.std() - 1) < 1e-5
    (again, again_y), _ = mnist1d.load_data(source="builtin")
    np.testing.assert_array_equal(again, x_train)
    np.testing.assert_array_equal(again_y, y_train)
    (other, _), _ = mnist1d.load_data(seed=0, source="builtin", num_samples=500)
    assert other.shape == (400, 40) and not np.array_equal(other, x_train[:400])
    # no global random state is touched
    assert np.random.get_state()[1].tolist() == numpy_state[1].tolist() and random.getstate() == python_state


def test_mnist1d_gaussian_filter_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    noise = np.random.default_rng(0).normal(size=72)
    np.testing.assert_allclose(mnist1d._gaussian_filter(noise), ndimage.gaussian_filter(noise, 2), atol=1e-12)


def test_mnist1d_matches_the_package_when_installed():
    if not mnist1d._package_available():
        pytest.skip("the mnist1d package is not installed")
    (x_pkg, y_pkg), (xt_pkg, yt_pkg) = mnist1d.load_data(source="package", num_samples=1000)
    (x_own, y_own), (xt_own, yt_own) = mnist1d.load_data(source="builtin", num_samples=1000)
    np.testing.assert_array_equal(y_pkg, y_own)
    np.testing.assert_allclose(x_pkg, x_own, atol=1e-6)
    np.testing.assert_allclose(xt_pkg, xt_own, atol=1e-6)
