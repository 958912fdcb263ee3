"""Reading checkpoints by name, for both formats jitflow understands: its own (safetensors +
`.index.json`, `jitflow.train.checkpoint_files`) and TensorFlow's TensorBundle V2 (`.index` +
`.data-*-of-*`, `jitflow.train.tf_bundle`).

- `open_checkpoint(prefix)`: {checkpoint key: array} (a lazy mapping for TF checkpoints) and the
  path to name in errors; what `Saver.restore` reads.
- `tf.train.NewCheckpointReader` / `tf.train.load_checkpoint` -> `CheckpointReader`
  (`get_variable_to_shape_map`, `get_variable_to_dtype_map`, `get_tensor`, `has_tensor`),
  `tf.train.list_variables`, `tf.train.load_variable`, with TF's errors (`NotFoundError`
  "Unsuccessful TensorSliceReader constructor: ...", "Key ... not found in checkpoint").
"""
from __future__ import annotations

import os

import numpy as np

from .. import errors
from ..ir import types as ir_types
from . import tf_bundle
from .checkpoint_files import INDEX_SUFFIX, _read_checkpoint, _strip
from .checkpoint_state import latest_checkpoint

__all__ = ["CheckpointReader", "NewCheckpointReader", "load_checkpoint", "list_variables", "load_variable",
           "open_checkpoint", "checkpoint_format"]


def checkpoint_format(prefix: str) -> str | None:
    """"jitflow" (an `.index.json` exists), "tensorflow" (only TF's `.index`), or None."""
    if os.path.exists(prefix + INDEX_SUFFIX):
        return "jitflow"
    if tf_bundle.is_tf_checkpoint(prefix):
        return "tensorflow"
    return None


def open_checkpoint(save_path) -> tuple:
    """({key: numpy array}, the path errors name) of the checkpoint at `save_path`, either format."""
    prefix = _strip(os.fspath(save_path))
    if checkpoint_format(prefix) == "tensorflow":
        return tf_bundle.BundleReader(prefix), prefix
    return _read_checkpoint(prefix)


class CheckpointReader:
    """`tf.train.NewCheckpointReader(prefix)`: the names, shapes, dtypes and values of a checkpoint."""

    def __init__(self, prefix):
        self._prefix = _strip(os.fspath(prefix))
        kind = checkpoint_format(self._prefix)
        if kind is None:
            raise errors.NotFoundError(None, None, f"Unsuccessful TensorSliceReader constructor: Failed to find "
                                                   f"any matching files for {os.fspath(prefix)}")
        if kind == "tensorflow":
            self._bundle = tf_bundle.BundleReader(self._prefix)
            self._arrays = None
        else:
            self._bundle = None
            self._arrays, _ = _read_checkpoint(self._prefix)

    def _names(self):
        return self._bundle.entries if self._bundle is not None else self._arrays

    def get_variable_to_shape_map(self) -> dict:
        if self._bundle is not None:
            return {name: self._bundle.shape(name) for name in self._bundle.entries}
        return {name: list(a.shape) for name, a in self._arrays.items()}

    def get_variable_to_dtype_map(self) -> dict:
        if self._bundle is not None:
            return {name: self._bundle.dtype(name) for name in self._bundle.entries}
        return {name: ir_types.as_dtype("string" if a.dtype == object else a.dtype.name)
                for name, a in self._arrays.items()}

    def has_tensor(self, name) -> bool:
        return name in self._names()

    def get_tensor(self, name):
        """The value (a numpy array; a numpy scalar for a scalar, as TF returns)."""
        if name not in self._names():
            raise errors.NotFoundError(None, None, f"Key {name} not found in checkpoint")
        if self._bundle is not None:
            value = self._bundle.get_tensor(name)
        else:
            value = np.array(self._arrays[name], copy=True)
        return value[()] if value.ndim == 0 else value

    def debug_string(self) -> bytes:
        shapes, dtypes = self.get_variable_to_shape_map(), self.get_variable_to_dtype_map()
        return "".join(f"{name} ({dtypes[name].name}) [{','.join(map(str, shapes[name]))}]\n"
                       for name in sorted(shapes)).encode()

    def __repr__(self):
        return f"<CheckpointReader {self._prefix}>"


def NewCheckpointReader(filepattern) -> CheckpointReader:  # noqa: N802  (TF's name)
    return CheckpointReader(filepattern)


def _checkpoint_path(ckpt_dir_or_file) -> str:
    path = os.fspath(ckpt_dir_or_file)
    if os.path.isdir(path):
        found = latest_checkpoint(path)
        if found is None:
            raise ValueError(f"Couldn't find 'checkpoint' file or checkpoints in given directory {path}")
        return found
    return path


def load_checkpoint(ckpt_dir_or_file) -> CheckpointReader:
    """A CheckpointReader of the checkpoint file, or of the newest checkpoint in a directory."""
    return CheckpointReader(_checkpoint_path(ckpt_dir_or_file))


def list_variables(ckpt_dir_or_file) -> list[tuple[str, list]]:
    """[(name, shape)] of every variable in the checkpoint, sorted by name."""
    shapes = load_checkpoint(ckpt_dir_or_file).get_variable_to_shape_map()
    return [(name, shapes[name]) for name in sorted(shapes)]


def load_variable(ckpt_dir_or_file, name):
    """The value of variable `name` ("dense/kernel" or "dense/kernel:0") in the checkpoint."""
    if name.endswith(":0"):
        name = name[:-2]
    return load_checkpoint(ckpt_dir_or_file).get_tensor(name)
