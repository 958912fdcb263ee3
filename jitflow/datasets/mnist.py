"""MNIST from the four standard IDX files in a local directory (no download).

`load_data(path=None)` looks in `path`, else `$JITFLOW_DATA_DIR/mnist`, else
`~/.jitflow/datasets/mnist`, for

    train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte

each raw or gzip-compressed (`.gz` appended), and returns
`((x_train, y_train), (x_test, y_test))` as uint8 arrays of shapes
(60000, 28, 28), (60000,), (10000, 28, 28), (10000,) as Keras does.
`path` may also name a Keras-style `mnist.npz` (x_train, y_train, x_test, y_test).

IDX layout: two zero bytes, a type byte (0x08 = unsigned byte), the number of
dimensions, each dimension as a big-endian uint32, then the data. The reader
checks the magic number, the dimensions and the data size, so truncated or
corrupt files raise ValueError naming the file.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def default_dir() -> Path:
    root = os.environ.get("JITFLOW_DATA_DIR")
    if root:
        return Path(root) / "mnist"
    return Path.home() / ".jitflow" / "datasets" / "mnist"


def _find(directory: Path, name: str) -> Path | None:
    for candidate in (name, name + ".gz", name.replace("-idx", ".idx"), name.replace("-idx", ".idx") + ".gz"):
        path = directory / candidate
        if path.is_file():
            return path
    return None


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: not a valid gzip file ({exc})") from None


def parse_idx(data: bytes, where="IDX data", expected_magic=None) -> np.ndarray:
    """The array stored in IDX bytes; ValueError on a bad magic number or a size mismatch."""
    if len(data) < 4:
        raise ValueError(f"{where}: {len(data)} bytes is too short for an IDX header (corrupt or truncated file)")
    magic = int.from_bytes(data[:4], "big")
    type_code, ndim = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or type_code not in _IDX_TYPES or ndim == 0:
        raise ValueError(f"{where}: bad IDX magic number 0x{magic:08x} (not an IDX file, or corrupt)")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"{where}: IDX magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                         f"({'images' if expected_magic == IMAGES_MAGIC else 'labels'})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{where}: truncated IDX header ({len(data)} bytes, need {header})")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_TYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        state = "truncated" if actual < expected else "has trailing bytes"
        raise ValueError(f"{where}: {state}: dimensions {dims} need {expected} data bytes, found {actual}")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def _load_pair(directory, images_name, labels_name):
    images_path, labels_path = _find(directory, images_name), _find(directory, labels_name)
    images = parse_idx(_read_bytes(images_path), str(images_path), IMAGES_MAGIC)
    labels = parse_idx(_read_bytes(labels_path), str(labels_path), LABELS_MAGIC)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise ValueError(f"{images_path}, {labels_path}: MNIST files hold unsigned bytes (IDX type 0x08)")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    return images, labels


def _load_npz(path: Path):
    with np.load(path, allow_pickle=False) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])


def load_data(path=None):
    """((x_train, y_train), (x_test, y_test)) as uint8 arrays; see the module docstring for where it looks."""
    directory = Path(path).expanduser() if path is not None else default_dir()
    if directory.is_file() and directory.suffix == ".npz":
        return _load_npz(directory)
    missing = [name for name in FILES if _find(directory, name) is None]
    if missing:
        raise FileNotFoundError(
            f"MNIST files not found in {directory}: missing {', '.join(missing)}. jitflow does not download "
            f"data: put the four IDX files {', '.join(FILES)} (raw or .gz) in that directory, or pass "
            f"load_data(path=...) or set JITFLOW_DATA_DIR (files in $JITFLOW_DATA_DIR/mnist).")
    train = _load_pair(directory, FILES[0], FILES[1])
    test = _load_pair(directory, FILES[2], FILES[3])
    return train, test
