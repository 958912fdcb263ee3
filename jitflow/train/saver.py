"""`tf.train.Saver`: save and restore a Session's variable values, plus the
`checkpoint` state-file helpers `latest_checkpoint`, `get_checkpoint_state` and
`checkpoint_exists`.

Semantics follow TF 1.x: `Saver()` built at the end of graph construction saves
all global variables (optimizer slots and the global step included) under their
op names ("theta", "layer/kernel"); `Saver([v, w])` saves a list under the same
names; `Saver({"weights": v})` saves `v` under the checkpoint name "weights".
`save(sess, prefix, global_step=100)` writes the checkpoint "<prefix>-100" and
returns that path; a freshly built graph with the same variable names (in this
or another process) restores it with `saver.restore(sess, path)`. Restoring
needs no initializer run: it marks the variables initialized.

On-disk format (a checkpoint is identified by its *prefix*, as in TF)
-----------------------------------------------------------------------
``<prefix>.safetensors``
    Every saved variable as a tensor named by its checkpoint name, in the
    safetensors format, written and read by the `safetensors` package
    (`jitflow.train.safetensors_format` adapts it; jitflow keeps the atomic
    write, the index and its checks around it): 8-byte
    little-endian header length, a JSON header
    ``{name: {"dtype": "F32"|"F64"|"I32"|"I64"|"BOOL", "shape": [...],
    "data_offsets": [begin, end]}, "__metadata__": {...}}``, then the raw
    little-endian C-order bytes. ``__metadata__`` holds strings: "format"
    ("jitflow-checkpoint"), "format_version", "jitflow_version" and, when given,
    "global_step". Any safetensors reader (e.g. ``safetensors.numpy.load_file``)
    can read it.
``<prefix>.index.json``
    ``{"format": "jitflow-checkpoint", "format_version": 1,
    "data_file": "<basename of the .safetensors file>", "data_size": <bytes>,
    "data_sha256": "<hex digest of the whole .safetensors file>",
    "global_step": <int or null>, "jitflow_version": "0.1.0",
    "variables": {name: {"dtype": "float32", "shape": [3, 1]}, ...}}``.
    A checkpoint exists when its index exists; the index is written last.
``checkpoint`` (in the checkpoint's directory)
    TF's CheckpointState text format, newest path last::

        model_checkpoint_path: "/abs/dir/model.ckpt-200"
        all_model_checkpoint_paths: "/abs/dir/model.ckpt-100"
        all_model_checkpoint_paths: "/abs/dir/model.ckpt-200"

    Paths are written absolute (or relative to the directory with
    ``Saver(save_relative_paths=True)``); relative paths are read relative to
    the directory, as TF does.
``<prefix>.safetensors.old``
    Exists only while a save over an existing checkpoint of the same prefix is
    in progress (or was interrupted): a hard link to the previous data file.

Crash safety: each file is written to a temporary file in the same directory,
fsynced, and moved into place with `os.replace`; the data file goes first and
the index last. A save that fails before the data file is replaced leaves the
previous checkpoint untouched. A save over the same prefix that dies between
the two renames leaves the old index next to the new data file; the old data
file is still there as ``.safetensors.old``, and `restore` picks whichever data
file matches the index's sha256, so the previous checkpoint stays restorable.

`restore` validates everything before it writes anything into the session:
the files exist (`NotFoundError`), the data file has the recorded size and
sha256 and a well-formed layout (`DataLossError`), every variable's key is in
the checkpoint (`NotFoundError`: "Key <name> not found in checkpoint"), dtypes
and shapes match (`InvalidArgumentError`). A failed restore leaves the
session's variable values untouched.

``<prefix>.meta``
    The graph, its collections and this Saver's settings, written by `save`
    unless ``write_meta_graph=False`` (``meta_graph_suffix`` picks the
    extension); `tf.train.import_meta_graph` reads it back. A jitflow JSON
    format, see `jitflow.train.meta_graph` and docs/METAGRAPH.md.

``<prefix>.index`` + ``<prefix>.data-00000-of-00001``
    TensorFlow's own format (TensorBundle V2): `restore` reads a checkpoint written by TF when
    no ``.index.json`` exists at that prefix, by the same names and with the same checks
    (`jitflow.train.tf_bundle`); ``Saver(write_version=tf.train.SaverDef.V2)`` writes it, byte
    for byte as TF does (`jitflow.train.tf_bundle_writer`), so TF can restore it.

Not supported: sharding, and reading TF's .meta files.
"""
from __future__ import annotations

import logging
import os
import re
import time

import numpy as np

from .. import errors
from . import safetensors_format, temp_files
from ..api.variables import Variable, global_variables
from ..framework.graph import get_default_graph
from ..runtime.native_arrays import owned_native_array
from .checkpoint_files import (BACKUP_SUFFIX, STATE_FILENAME, CheckpointNotFoundError, DATA_SUFFIX, FORMAT, FORMAT_VERSION, INDEX_SUFFIX,  # noqa: F401
                               _delete_checkpoint_files, _fmt_shape, _read_checkpoint, _remove, _strip,
                               _write_checkpoint, checkpoint_exists, read_checkpoint)
from .checkpoint_state import (CheckpointState, get_checkpoint_state, latest_checkpoint,  # noqa: F401
                               update_checkpoint_state)

__all__ = ["Saver", "CheckpointState", "latest_checkpoint", "get_checkpoint_state", "checkpoint_exists",
           "update_checkpoint_state", "read_checkpoint"]

_log = logging.getLogger("jitflow")


# --------------------------------------------------------------------------- Saver

class Saver:
    """Saves and restores variables (see the module docstring for the format)."""

    def __init__(self, var_list=None, reshape=False, sharded=False, max_to_keep=5,
                 keep_checkpoint_every_n_hours=10000.0, name=None, restore_sequentially=False,
                 saver_def=None, builder=None, defer_build=False, allow_empty=False, write_version=None,
                 pad_step_number=False, save_relative_paths=False, filename=None):
        self._var_list_arg = var_list
        self._allow_empty = allow_empty
        self._max_to_keep = max_to_keep
        self._keep_every_s = (keep_checkpoint_every_n_hours * 3600.0
                              if keep_checkpoint_every_n_hours else None)
        self._next_keep_time = time.time() + self._keep_every_s if self._keep_every_s else None
        self._pad_step_number = pad_step_number
        self._save_relative_paths = save_relative_paths
        self._filename = filename
        self._tf_format = _tf_format(write_version)      # write TensorFlow's TensorBundle V2 (tf_bundle_writer.py)
        self._last_checkpoints: list[tuple[str, float]] = []
        self._to_delete: list[tuple[str, float]] = []
        self._vars: dict[str, Variable] | None = None
        if saver_def is not None:      # from as_saver_def() or an imported meta graph: its variables and settings
            from .meta_graph import saver_kwargs_in_graph
            self.__init__(**saver_kwargs_in_graph(saver_def, get_default_graph(), name), defer_build=defer_build)
            return
        if not defer_build:
            self.build()

    def build(self):
        """Resolves var_list (None: the global variables of the default graph, now)."""
        if self._vars is not None:
            return
        var_list = self._var_list_arg
        if var_list is None:
            var_list = global_variables()
        self._vars = _var_list_to_dict(var_list)
        if not self._vars and not self._allow_empty:
            raise ValueError("No variables to save")

    # --- bookkeeping, as in TF
    @property
    def last_checkpoints(self) -> list[str]:
        """The paths of the checkpoints this Saver keeps, oldest first."""
        return [path for path, _ in self._last_checkpoints]

    def set_last_checkpoints(self, last_checkpoints):
        self._last_checkpoints = [(path, time.time()) for path in last_checkpoints]

    def set_last_checkpoints_with_time(self, last_checkpoints_with_time):
        self._last_checkpoints = [(path, float(ts)) for path, ts in last_checkpoints_with_time]

    def recover_last_checkpoints(self, checkpoint_paths):
        """Keeps (and later prunes) the given checkpoints that still exist, e.g.
        `get_checkpoint_state(dir).all_model_checkpoint_paths` after a restart."""
        kept = []
        for path in checkpoint_paths:
            index = _strip(path) + INDEX_SUFFIX
            if not os.path.exists(index):
                index = _strip(path) + ".index"            # a TensorFlow-format checkpoint
            if os.path.exists(index):
                kept.append((path, os.path.getmtime(index)))
        self.set_last_checkpoints_with_time(kept)

    @property
    def var_list(self) -> dict:
        """{checkpoint name: Variable}."""
        self.build()
        return dict(self._vars)

    # --- save
    def save(self, sess, save_path, global_step=None, latest_filename=None, meta_graph_suffix="meta",
             write_meta_graph=True, write_state=True, strip_default_attrs=False, save_debug_info=False):
        """Writes `<save_path>[-<global_step>].safetensors` and `.index.json`; returns that prefix."""
        self.build()
        _check_session(sess, self._vars)
        if not isinstance(save_path, (str, os.PathLike)):
            raise TypeError(f"'save_path' must be a string or path, got {save_path!r}")
        save_path = os.fspath(save_path)
        if not save_path:
            raise ValueError("'save_path' must not be empty")
        step = None
        prefix = save_path
        if global_step is not None:
            step = _global_step_value(sess, global_step)
            prefix = f"{save_path}-{step:08d}" if self._pad_step_number else f"{save_path}-{step}"
        latest_filename = latest_filename or STATE_FILENAME
        if os.path.split(latest_filename)[0]:
            raise ValueError("'latest_filename' must not contain path components")
        save_dir = os.path.dirname(prefix) or "."
        if not os.path.isdir(save_dir):
            raise ValueError(f"Parent directory of {save_path} doesn't exist, can't save.")

        # temp files of earlier saves of this path that were killed mid-write (temp_files.py)
        temp_files.remove_stale_temps(save_dir, temp_files.checkpoint_owner(save_path, [latest_filename]))
        if save_debug_info:
            raise errors.UnsupportedError("Saver.save(save_debug_info=True): jitflow keeps each op's source location "
                                          "in the .meta file itself and writes no separate debug file")
        meta = None
        if write_meta_graph:       # serialized before anything is written: an unexportable graph saves nothing
            from .meta_graph import build_meta_graph
            meta = build_meta_graph(sess.graph, self.as_saver_def(), saver_vars=list(self._vars.values()))
        arrays = {}
        for key, var in self._vars.items():
            value = sess._variables.get(var.op.name)
            if value is None:
                raise errors.FailedPreconditionError(
                    None, var.op, f"Attempting to use uninitialized value {var.op.name} (saving {key!r})\n  "
                                  f"{errors.describe_op(var.op)}")
            arrays[key] = np.asarray(value, dtype=var.dtype.np)
        if self._tf_format:
            from .tf_bundle_writer import write_bundle
            write_bundle(prefix, arrays)
        else:
            _write_checkpoint(prefix, arrays, step)
        if meta is not None:
            from .meta_graph import MetaGraphDef, write_meta_graph_file
            write_meta_graph_file(f"{prefix}.{meta_graph_suffix}", MetaGraphDef(meta))

        if write_state:
            self._record(prefix)
            update_checkpoint_state(save_dir, prefix, self.last_checkpoints or [prefix], latest_filename,
                                    save_relative_paths=self._save_relative_paths)
            self._delete_old()
        return prefix

    def _record(self, path):
        if not self._max_to_keep:
            return
        self._last_checkpoints = [(p, t) for p, t in self._last_checkpoints if p != path]
        self._last_checkpoints.append((path, time.time()))
        while len(self._last_checkpoints) > self._max_to_keep:
            self._to_delete.append(self._last_checkpoints.pop(0))

    def _delete_old(self):
        while self._to_delete:
            path, stamp = self._to_delete.pop(0)
            if self._next_keep_time is not None and stamp >= self._next_keep_time:
                self._next_keep_time += self._keep_every_s      # keep one checkpoint every N hours
                continue
            _delete_checkpoint_files(path)
            from .tf_bundle_writer import delete_bundle
            delete_bundle(path)
            _remove(path + ".meta")

    # --- restore
    def restore(self, sess, save_path):
        """Loads the saved values of this Saver's variables into `sess` (all or nothing)."""
        self.build()
        if save_path is None:
            raise ValueError("Can't load save_path when it is None.")
        _check_session(sess, self._vars)
        prefix = _strip(os.fspath(save_path))
        from .checkpoint_reader import open_checkpoint      # jitflow's format, or TensorFlow's (tf_bundle.py)
        arrays, data_path = open_checkpoint(prefix)
        temp_files.remove_stale_temps(os.path.dirname(prefix), temp_files.checkpoint_owner(
            re.sub(r"-\d+$", "", prefix), [STATE_FILENAME]))
        loads = []
        for key, var in self._vars.items():
            if key not in arrays:
                held = ", ".join(sorted(arrays)[:20]) + (", ..." if len(arrays) > 20 else "")
                raise errors.NotFoundError(
                    None, var.op, f"Key {key} not found in checkpoint {data_path} (restoring variable "
                                  f"{var.name}; the checkpoint holds: {held or 'nothing'})")
            array = arrays[key]
            want_dtype = var.dtype.np
            if array.dtype != want_dtype:
                raise errors.InvalidArgumentError(
                    None, var.op, f"Cannot restore variable {var.name} from key {key} of checkpoint "
                                  f"{data_path}: expected dtype {var.dtype.name} does not equal the "
                                  f"checkpoint's dtype {array.dtype.name}")
            dims = var.shape.dims
            if dims is not None and (len(dims) != array.ndim or any(
                    d is not None and d != n for d, n in zip(dims, array.shape))):
                raise errors.InvalidArgumentError(
                    None, var.op, f"Cannot restore variable {var.name} from key {key} of checkpoint "
                                  f"{data_path}: shapes do not match: variable shape {_fmt_shape(dims)}, "
                                  f"checkpoint shape {_fmt_shape(array.shape)} (Assign requires shapes of both "
                                  f"tensors to match. lhs shape= {_fmt_shape(dims)} rhs shape= "
                                  f"{_fmt_shape(array.shape)})")
            loads.append((var, array))
        for var, array in loads:           # everything validated: now write
            if var.shape.is_fully_defined():
                sess._load_variable(var, array)
            else:
                sess._variables[var.op.name] = owned_native_array(array, var.dtype.np)

    # --- meta graphs (jitflow/train/meta_graph.py)
    def as_saver_def(self) -> dict:
        """This Saver's settings (checkpoint key -> variable name, max_to_keep, ...) as a plain dict."""
        from .meta_graph import saver_def_of
        return saver_def_of(self)

    def export_meta_graph(self, filename=None, collection_list=None, as_text=False, export_scope=None,
                          clear_devices=False, clear_extraneous_savers=False, strip_default_attrs=False,
                          save_debug_info=False):
        """`tf.train.export_meta_graph` of the default graph with this Saver's settings."""
        from .meta_graph import export_meta_graph
        self.build()
        graph = next(iter(self._vars.values())).graph if self._vars else None
        return export_meta_graph(filename=filename, saver_def=self, collection_list=collection_list,
                                 as_text=as_text, graph=graph, export_scope=export_scope,
                                 clear_devices=clear_devices, clear_extraneous_savers=clear_extraneous_savers,
                                 strip_default_attrs=strip_default_attrs, save_debug_info=save_debug_info)

    def __repr__(self):
        names = list(self._vars or {})
        return f"<tf.train.Saver {len(names)} variables: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''}>"


def _tf_format(write_version) -> bool:
    """Whether `Saver(write_version=...)` asks for TensorFlow's own format: None (the default) writes
    jitflow's format, `tf.train.SaverDef.V2` TF's TensorBundle V2; V1 is refused."""
    from .tf_bundle_writer import SaverDef
    if write_version is None:
        return False
    if write_version == SaverDef.V2:
        return True
    if write_version in (SaverDef.V1, SaverDef.LEGACY):
        raise errors.UnsupportedError(f"Saver(write_version={write_version}): jitflow cannot write TensorFlow's "
                                      f"V1 checkpoint format; use tf.train.SaverDef.V2 or leave it unset")
    raise ValueError(f"Saver(write_version={write_version!r}): expected tf.train.SaverDef.V1 or V2")


def _var_list_to_dict(var_list) -> dict[str, Variable]:
    if isinstance(var_list, Variable):
        var_list = [var_list]
    if isinstance(var_list, dict):
        result = {}
        for key, var in var_list.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"Saver var_list keys must be non-empty strings, got {key!r}")
            if not isinstance(var, Variable):
                raise TypeError(f"Variable to save is not a Variable: {var!r} (key {key!r})")
            result[key] = var
    else:
        try:
            items = list(var_list)
        except TypeError:
            raise TypeError(f"Saver var_list must be a dict, a list or None, got {var_list!r}") from None
        result = {}
        for var in items:
            if not isinstance(var, Variable):
                raise TypeError(f"Variable to save is not a Variable: {var!r}")
            key = var.op.name
            if key in result and result[key] is not var:
                raise ValueError(f"At least two variables have the same name: {key}")
            result[key] = var
    for key in result:
        if key == safetensors_format.METADATA_KEY:
            raise ValueError(f"{key!r} cannot be used as a checkpoint name")
    return result


def _check_session(sess, variables):
    if sess is None or not hasattr(sess, "_variables"):
        raise TypeError(f"'sess' must be a Session; {sess!r}")
    if sess._closed:
        raise RuntimeError("Attempted to use a closed Session.")
    for var in variables.values():
        if var.graph is not sess.graph:
            raise ValueError(f"Variable {var.name} is not an element of the session's graph: build the Saver "
                             f"in the graph the session runs (after the variables are created)")


def _global_step_value(sess, global_step) -> int:
    if isinstance(global_step, (int, np.integer)) and not isinstance(global_step, bool):
        return int(global_step)
    if isinstance(global_step, Variable) and global_step.graph is sess.graph:
        value = sess._variables.get(global_step.op.name)
        if value is not None:
            return int(value)
    return int(sess.run(global_step))
