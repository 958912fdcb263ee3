"""Checkpoint files on disk: atomic writes of `<prefix>.safetensors` and
`<prefix>.index.json`, and their validated reading (the format is described in
`jitflow.train.saver`)."""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil

import numpy as np

from .. import errors
from . import safetensors_format, temp_files

FORMAT = "jitflow-checkpoint"
FORMAT_VERSION = 1
STRINGS_KEY = "jitflow.strings"      # safetensors metadata key of the tf.string variables (see below)
DATA_SUFFIX = ".safetensors"
INDEX_SUFFIX = ".index.json"
BACKUP_SUFFIX = ".safetensors.old"
STATE_FILENAME = "checkpoint"

_log = logging.getLogger("jitflow")


class CheckpointNotFoundError(errors.NotFoundError, ValueError):
    """No checkpoint at the given prefix. A NotFoundError, and a ValueError as
    newer TF 1.x releases raise ("The passed save_path is not a valid checkpoint")."""


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


# --------------------------------------------------------------------------- tf.string variables
# Safetensors holds numbers only. String variables (numpy object arrays of bytes) are kept in the data
# file's header metadata under STRINGS_KEY, as JSON {name: {"shape": [...], "data": [base64 of each
# element, C order]}}, so the data file's sha256 covers them; the index lists them with dtype "string".
# A checkpoint without string variables is unchanged.

def _dtype_name(array) -> str:
    return "string" if array.dtype == object else str(array.dtype)


def _encode_strings(arrays: dict) -> str:
    return json.dumps({key: {"shape": list(a.shape),
                             "data": [base64.b64encode(bytes(x)).decode("ascii") for x in a.reshape(-1)]}
                       for key, a in sorted(arrays.items())})


def _decode_strings(text: str) -> dict:
    out = {}
    for key, entry in json.loads(text).items():
        items = [base64.b64decode(x, validate=True) for x in entry["data"]]
        array = np.empty(len(items), object)
        array[:] = items
        out[key] = array.reshape([int(d) for d in entry["shape"]])
    return out


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
    """Writes a temp file next to `final_path` with `write(fileobj)`, fsyncs it, returns its path.
    The temp name carries this process's pid (temp_files.py), so a later save can tell a crashed
    writer's leftover from a live writer's file."""
    fd, tmp = temp_files.make_temp(final_path)
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
    numeric = {key: a for key, a in arrays.items() if a.dtype != object}
    if len(numeric) != len(arrays):     # tf.string variables: JSON in the data file's metadata
        metadata[STRINGS_KEY] = _encode_strings({key: a for key, a in arrays.items() if a.dtype == object})

    def write_data(f):
        writer = _HashingWriter(f)
        safetensors_format.write(writer, numeric, metadata)
        digest["sha256"], digest["size"] = writer.sha.hexdigest(), writer.size

    tmp_data = _write_temp(data_path, write_data)
    try:
        index = {"format": FORMAT, "format_version": FORMAT_VERSION,
                 "data_file": os.path.basename(data_path), "data_size": digest["size"],
                 "data_sha256": digest["sha256"], "global_step": global_step, "jitflow_version": version,
                 "variables": {key: {"dtype": _dtype_name(arrays[key]), "shape": list(arrays[key].shape)}
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
        arrays, metadata = safetensors_format.deserialize(data)
        if STRINGS_KEY in metadata:
            arrays.update(_decode_strings(metadata[STRINGS_KEY]))
    except (safetensors_format.SafetensorsError, ValueError, TypeError, KeyError) as exc:
        raise errors.DataLossError(None, None, f"Checkpoint data file {data_path} is malformed: {exc}") from None
    recorded = index["variables"]
    if set(recorded) != set(arrays):
        raise errors.DataLossError(None, None, f"Checkpoint {prefix}: the index and the data file list "
                                               f"different variables")
    for name, info in recorded.items():
        array = arrays[name]
        if (not isinstance(info, dict) or info.get("shape") != list(array.shape)
                or str(info.get("dtype")) != _dtype_name(array)):
            raise errors.DataLossError(None, None, f"Checkpoint {prefix}: the index and the data file disagree "
                                                   f"on variable {name}")
    return arrays, data_path


def checkpoint_exists(checkpoint_prefix) -> bool:
    """Whether a checkpoint (its index file: jitflow's `.index.json` or TensorFlow's `.index`) exists
    at this prefix."""
    prefix = _strip(os.fspath(checkpoint_prefix))
    return os.path.exists(prefix + INDEX_SUFFIX) or os.path.isfile(prefix + ".index")


# --------------------------------------------------------------------------- the `checkpoint` state file
