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
    safetensors format (see `jitflow.train.safetensors_format`): 8-byte
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

Not supported: TF's .meta graph files (`write_meta_graph` is accepted and
ignored), sharding, and reading TF's own checkpoint files.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time

import numpy as np

from .. import errors
from ..api.variables import Variable, global_variables
from . import safetensors_format

__all__ = ["Saver", "CheckpointState", "latest_checkpoint", "get_checkpoint_state", "checkpoint_exists",
           "update_checkpoint_state", "read_checkpoint"]

FORMAT = "jitflow-checkpoint"
FORMAT_VERSION = 1
DATA_SUFFIX = ".safetensors"
INDEX_SUFFIX = ".index.json"
BACKUP_SUFFIX = ".safetensors.old"
STATE_FILENAME = "checkpoint"

_log = logging.getLogger("jitflow")


class CheckpointNotFoundError(errors.NotFoundError, ValueError):
    """No checkpoint at the given prefix. A NotFoundError, and a ValueError as
    newer TF 1.x releases raise ("The passed save_path is not a valid checkpoint")."""


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
        self._last_checkpoints: list[tuple[str, float]] = []
        self._to_delete: list[tuple[str, float]] = []
        self._vars: dict[str, Variable] | None = None
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

        arrays = {}
        for key, var in self._vars.items():
            value = sess._variables.get(var.op.name)
            if value is None:
                raise errors.FailedPreconditionError(
                    None, var.op, f"Attempting to use uninitialized value {var.op.name} (saving {key!r})\n  "
                                  f"{errors.describe_op(var.op)}")
            arrays[key] = np.asarray(value, dtype=var.dtype.np)
        _write_checkpoint(prefix, arrays, step)

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

    # --- restore
    def restore(self, sess, save_path):
        """Loads the saved values of this Saver's variables into `sess` (all or nothing)."""
        self.build()
        if save_path is None:
            raise ValueError("Can't load save_path when it is None.")
        _check_session(sess, self._vars)
        prefix = _strip(os.fspath(save_path))
        arrays, data_path = _read_checkpoint(prefix)
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
                sess._variables[var.op.name] = np.array(array, dtype=var.dtype.np)

    def __repr__(self):
        names = list(self._vars or {})
        return f"<tf.train.Saver {len(names)} variables: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''}>"


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


def _fmt_shape(dims) -> str:
    if dims is None:
        return "<unknown>"
    return "[" + ",".join("?" if d is None else str(int(d)) for d in dims) + "]"


def _strip(path: str) -> str:
    """The prefix of a checkpoint path that may name one of its files."""
    for suffix in (INDEX_SUFFIX, BACKUP_SUFFIX, DATA_SUFFIX):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


# --------------------------------------------------------------------------- writing

class _HashingWriter:
    def __init__(self, f):
        self.f = f
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha.update(data)
        self.size += memoryview(data).nbytes
        self.f.write(data)


def _write_temp(final_path: str, write) -> str:
    """Writes a temp file next to `final_path` with `write(fileobj)`, fsyncs it, returns its path."""
    directory, base = os.path.split(final_path)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def _fsync_dir(directory: str):
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path: str):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _jitflow_version() -> str:
    from .. import __version__
    return __version__


def _write_checkpoint(prefix: str, arrays: dict, global_step):
    data_path, index_path, backup_path = prefix + DATA_SUFFIX, prefix + INDEX_SUFFIX, prefix + BACKUP_SUFFIX
    directory = os.path.dirname(prefix) or "."
    version = _jitflow_version()
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "jitflow_version": version}
    if global_step is not None:
        metadata["global_step"] = str(global_step)
    digest = {}

    def write_data(f):
        writer = _HashingWriter(f)
        safetensors_format.write(writer, arrays, metadata)
        digest["sha256"], digest["size"] = writer.sha.hexdigest(), writer.size

    tmp_data = _write_temp(data_path, write_data)
    try:
        index = {"format": FORMAT, "format_version": FORMAT_VERSION,
                 "data_file": os.path.basename(data_path), "data_size": digest["size"],
                 "data_sha256": digest["sha256"], "global_step": global_step, "jitflow_version": version,
                 "variables": {key: {"dtype": str(arrays[key].dtype), "shape": list(arrays[key].shape)}
                               for key in sorted(arrays)}}
        text = _format_index(index).encode("utf-8")
        tmp_index = _write_temp(index_path, lambda f: f.write(text))
    except BaseException:
        _remove(tmp_data)
        raise
    try:
        backed_up = _keep_previous_data(data_path, index_path, backup_path)
    except BaseException:
        _remove(tmp_data)
        _remove(tmp_index)
        raise
    try:
        os.replace(tmp_data, data_path)
    except BaseException:
        _remove(tmp_data)
        _remove(tmp_index)
        if backed_up:
            _remove(backup_path)      # the data file was not replaced: the backup is not needed
        raise
    _fsync_dir(directory)
    try:
        os.replace(tmp_index, index_path)
    except BaseException:
        _remove(tmp_index)            # the old index still names the old data, kept as the backup
        raise
    _fsync_dir(directory)
    _remove(backup_path)


def _format_index(index: dict) -> str:
    """The index as JSON, one line per field and per variable."""
    lines = [f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}," for key, value in index.items()
             if key != "variables"]
    variables = [f"  {json.dumps(name, ensure_ascii=False)}: {json.dumps(info)}"
                 for name, info in index["variables"].items()]
    body = ",\n".join(variables)
    return "{\n" + "\n".join(lines) + '\n "variables": {' + (f"\n{body}\n }}" if variables else "}") + "\n}\n"


def _keep_previous_data(data_path, index_path, backup_path) -> bool:
    """Before a data file that an index refers to is replaced, keeps it as `backup_path`
    (a hard link) so that a crash before the index is replaced loses nothing."""
    if not (os.path.exists(data_path) and os.path.exists(index_path)):
        _remove(backup_path)
        return False
    if os.path.exists(backup_path):
        # an earlier save was interrupted: keep whichever file the current index describes
        try:
            with open(index_path, "rb") as f:
                want = json.load(f).get("data_sha256")
        except (OSError, ValueError, AttributeError):
            want = None
        if want is not None and _sha256_file(data_path) != want and _sha256_file(backup_path) == want:
            return True
        _remove(backup_path)
    try:
        os.link(data_path, backup_path)
    except OSError:
        shutil.copy2(data_path, backup_path)
    return True


def _sha256_file(path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _delete_checkpoint_files(prefix: str):
    for path in (prefix + INDEX_SUFFIX, prefix + DATA_SUFFIX, prefix + BACKUP_SUFFIX):  # index first
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            _log.warning("Ignoring: failed to delete %s: %s", path, exc)


# --------------------------------------------------------------------------- reading

def _read_index(prefix: str) -> dict:
    index_path = prefix + INDEX_SUFFIX
    if not os.path.exists(index_path):
        if os.path.exists(prefix + DATA_SUFFIX):
            raise errors.NotFoundError(
                None, None, f"Checkpoint index file {index_path} not found (the data file "
                            f"{prefix + DATA_SUFFIX} exists: an interrupted save?)")
        raise CheckpointNotFoundError(
            None, None, f"Failed to find any matching files for {prefix}: checkpoint index file {index_path} "
                        f"does not exist (The passed save_path is not a valid checkpoint)")
    try:
        with open(index_path, "rb") as f:
            index = json.loads(f.read().decode("utf-8"))
    except OSError as exc:
        raise errors.NotFoundError(None, None, f"Cannot read checkpoint index file {index_path}: {exc}") from None
    except ValueError as exc:
        raise errors.DataLossError(None, None, f"Checkpoint index file {index_path} is corrupted: {exc}") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise errors.DataLossError(None, None, f"Checkpoint index file {index_path} is not a {FORMAT} index")
    if index.get("format_version") != FORMAT_VERSION:
        raise errors.DataLossError(
            None, None, f"Checkpoint index file {index_path} has format version {index.get('format_version')!r}; "
                        f"this jitflow reads version {FORMAT_VERSION}")
    for field, kind in (("data_sha256", str), ("data_size", int), ("variables", dict)):
        if not isinstance(index.get(field), kind):
            raise errors.DataLossError(None, None, f"Checkpoint index file {index_path} lacks a valid {field!r}")
    return index


def read_checkpoint(save_path) -> tuple[dict, dict]:
    """({checkpoint name: numpy array}, index dict) of a checkpoint, fully validated."""
    prefix = _strip(os.fspath(save_path))
    arrays, _ = _read_checkpoint(prefix)
    return arrays, _read_index(prefix)


def _read_checkpoint(prefix: str) -> tuple[dict, str]:
    """Validated {name: array} of the checkpoint at `prefix`, and the data file's path."""
    index = _read_index(prefix)
    data_path = os.path.join(os.path.dirname(prefix), os.path.basename(index.get("data_file") or
                                                                      os.path.basename(prefix + DATA_SUFFIX)))
    data = None
    problem = None
    for candidate in (data_path, prefix + BACKUP_SUFFIX):
        try:
            with open(candidate, "rb") as f:
                content = f.read()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise errors.NotFoundError(None, None, f"Cannot read checkpoint data file {candidate}: {exc}") from None
        if len(content) != index["data_size"]:
            problem = problem or (f"Checkpoint data file {candidate} is "
                                  f"{'truncated' if len(content) < index['data_size'] else 'corrupted'}: "
                                  f"{len(content)} bytes, the index {prefix + INDEX_SUFFIX} records "
                                  f"{index['data_size']}")
            continue
        if hashlib.sha256(content).hexdigest() != index["data_sha256"]:
            problem = problem or (f"Checkpoint data file {candidate} is corrupted: its sha256 does not match "
                                  f"the one recorded in {prefix + INDEX_SUFFIX}")
            continue
        data = content
        break
    if data is None:
        if problem is None:
            raise errors.NotFoundError(None, None, f"Checkpoint data file {data_path} not found (index "
                                                   f"{prefix + INDEX_SUFFIX} exists)")
        raise errors.DataLossError(None, None, problem)
    try:
        arrays, _ = safetensors_format.deserialize(data)
    except safetensors_format.SafetensorsError as exc:
        raise errors.DataLossError(None, None, f"Checkpoint data file {data_path} is malformed: {exc}") from None
    recorded = index["variables"]
    if set(recorded) != set(arrays):
        raise errors.DataLossError(None, None, f"Checkpoint {prefix}: the index and the data file list "
                                               f"different variables")
    for name, info in recorded.items():
        array = arrays[name]
        if (not isinstance(info, dict) or info.get("shape") != list(array.shape)
                or str(info.get("dtype")) != str(array.dtype)):
            raise errors.DataLossError(None, None, f"Checkpoint {prefix}: the index and the data file disagree "
                                                   f"on variable {name}")
    return arrays, data_path


def checkpoint_exists(checkpoint_prefix) -> bool:
    """Whether a checkpoint (its index file) exists at this prefix."""
    return os.path.exists(_strip(os.fspath(checkpoint_prefix)) + INDEX_SUFFIX)


# --------------------------------------------------------------------------- the `checkpoint` state file

class CheckpointState:
    """The contents of a `checkpoint` state file (TF's CheckpointState proto)."""

    def __init__(self, model_checkpoint_path="", all_model_checkpoint_paths=None):
        self.model_checkpoint_path = model_checkpoint_path
        self.all_model_checkpoint_paths = list(all_model_checkpoint_paths or [])

    def __eq__(self, other):
        return (isinstance(other, CheckpointState) and self.model_checkpoint_path == other.model_checkpoint_path
                and self.all_model_checkpoint_paths == other.all_model_checkpoint_paths)

    def __str__(self):
        lines = [f'model_checkpoint_path: "{_escape(self.model_checkpoint_path)}"']
        lines += [f'all_model_checkpoint_paths: "{_escape(p)}"' for p in self.all_model_checkpoint_paths]
        return "\n".join(lines) + "\n"

    def __repr__(self):
        return f"CheckpointState({self.model_checkpoint_path!r}, {self.all_model_checkpoint_paths!r})"


_ESCAPES = {ord("\n"): b"\\n", ord("\r"): b"\\r", ord("\t"): b"\\t", ord('"'): b'\\"', ord("'"): b"\\'",
            ord("\\"): b"\\\\"}
_UNESCAPES = {"n": 10, "r": 13, "t": 9, '"': 34, "'": 39, "\\": 92, "a": 7, "b": 8, "f": 12, "v": 11, "?": 63}
_LINE = re.compile(r'^\s*([A-Za-z_]\w*)\s*:\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))\s*$')


def _escape(path: str) -> str:
    """Protobuf text-format (C) escaping of a path's bytes."""
    out = bytearray()
    for byte in os.fsencode(path):
        if byte in _ESCAPES:
            out += _ESCAPES[byte]
        elif 0x20 <= byte < 0x7F:
            out.append(byte)
        else:
            out += b"\\%03o" % byte
    return out.decode("ascii")


def _unescape(text: str) -> str:
    out = bytearray()
    i = 0
    raw = text.encode("utf-8", "surrogateescape")
    while i < len(raw):
        c = raw[i]
        if c != 0x5C:
            out.append(c)
            i += 1
            continue
        nxt = chr(raw[i + 1])
        if nxt in _UNESCAPES:
            out.append(_UNESCAPES[nxt])
            i += 2
        elif nxt in "01234567":
            j = i + 1
            while j < len(raw) and j < i + 4 and chr(raw[j]) in "01234567":
                j += 1
            out.append(int(raw[i + 1:j], 8) & 0xFF)
            i = j
        elif nxt in "xX":
            j = i + 2
            while j < len(raw) and j < i + 4 and chr(raw[j]) in "0123456789abcdefABCDEF":
                j += 1
            if j == i + 2:
                raise ValueError(f"bad escape in {text!r}")
            out.append(int(raw[i + 2:j], 16))
            i = j
        else:
            raise ValueError(f"bad escape \\{nxt} in {text!r}")
    return os.fsdecode(bytes(out))


def _parse_state(text: str) -> CheckpointState:
    state = CheckpointState()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"line {number}: cannot parse {line!r}")
        field, quoted, bare = match.groups()
        if field == "model_checkpoint_path" and quoted is not None:
            state.model_checkpoint_path = _unescape(quoted)
        elif field == "all_model_checkpoint_paths" and quoted is not None:
            state.all_model_checkpoint_paths.append(_unescape(quoted))
        elif field in ("model_checkpoint_path", "all_model_checkpoint_paths"):
            raise ValueError(f"line {number}: {field} needs a quoted string")
        # other fields (TF's all_model_checkpoint_timestamps, last_preserved_timestamp) are ignored
    return state


def _state_path(checkpoint_dir, latest_filename=None) -> str:
    return os.path.join(os.fspath(checkpoint_dir), latest_filename or STATE_FILENAME)


def get_checkpoint_state(checkpoint_dir, latest_filename=None):
    """The CheckpointState of `<checkpoint_dir>/checkpoint`, with relative paths made relative
    to `checkpoint_dir`; None when the file does not exist or cannot be parsed."""
    checkpoint_dir = os.fspath(checkpoint_dir)
    path = _state_path(checkpoint_dir, latest_filename)
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None
    except OSError as exc:
        _log.warning("%s: %s", type(exc).__name__, exc)
        return None
    try:
        state = _parse_state(text)
    except ValueError as exc:
        _log.warning("Cannot parse checkpoint state file %s: %s", path, exc)
        return None
    if not state.model_checkpoint_path:
        raise ValueError("Invalid checkpoint state loaded from " + checkpoint_dir)
    if not os.path.isabs(state.model_checkpoint_path):
        state.model_checkpoint_path = os.path.join(checkpoint_dir, state.model_checkpoint_path)
    state.all_model_checkpoint_paths = [p if os.path.isabs(p) else os.path.join(checkpoint_dir, p)
                                        for p in state.all_model_checkpoint_paths]
    return state


def latest_checkpoint(checkpoint_dir, latest_filename=None):
    """The path of the newest checkpoint recorded in `<checkpoint_dir>/checkpoint`, or None."""
    state = get_checkpoint_state(checkpoint_dir, latest_filename)
    if state and state.model_checkpoint_path:
        if checkpoint_exists(state.model_checkpoint_path):
            return state.model_checkpoint_path
        _log.error("Couldn't match files for checkpoint %s", state.model_checkpoint_path)
    return None


def update_checkpoint_state(save_dir, model_checkpoint_path, all_model_checkpoint_paths=None,
                            latest_filename=None, save_relative_paths=False):
    """Writes `<save_dir>/checkpoint` atomically; paths absolute, or relative to save_dir."""
    save_dir = os.fspath(save_dir)
    paths = list(all_model_checkpoint_paths or [])
    if not paths or paths[-1] != model_checkpoint_path:
        paths.append(model_checkpoint_path)
    base = os.path.abspath(save_dir)

    def shown(path):
        path = os.path.abspath(path)
        return os.path.relpath(path, base) if save_relative_paths else path

    state = CheckpointState(shown(model_checkpoint_path), [shown(p) for p in paths])
    target = _state_path(save_dir, latest_filename)
    if os.path.abspath(target) == os.path.abspath(model_checkpoint_path):
        raise ValueError(f"Save path '{model_checkpoint_path}' conflicts with path used for checkpoint "
                         f"state. Please use a different save path.")
    text = str(state).encode("utf-8", "surrogateescape")
    tmp = _write_temp(target, lambda f: f.write(text))
    try:
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise
