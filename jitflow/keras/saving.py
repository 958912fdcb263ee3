"""Saving and loading Keras models.

`model.save(path)` writes a DIRECTORY `path/` holding

- `config.json`: `{"format": "jitflow.keras", "format_version": 1, "jitflow_version",
  "model": {"class_name": "Sequential", "config": {"name", "layers": [{"class_name",
  "config"}...], "build_input_shape"}}, "compile": {"optimizer", "loss", "metrics"} or null,
  "weights": {"file": "model.safetensors", "size", "sha256"} or null (an unbuilt model),
  "optimizer_weights": the same for optimizer.safetensors, or null}`;
- `model.safetensors`: every weight, named `<layer name>/<weight name>` ("dense/kernel",
  "batch_normalization/moving_mean"), in the safetensors format (written by
  `jitflow.train.safetensors_format`), readable by any safetensors reader;
- `optimizer.safetensors` (when the model has trained and include_optimizer=True): the
  optimizer's slots under their graph names, restored at the first fit after loading.

`keras.models.load_model(path)` rebuilds the model from config.json (checked field by
field: model_config.py), loads the weights and re-compiles it. The weight files' size
and sha256 recorded in config.json are verified first: a missing weights file raises
`ModelFileNotFoundError` (a FileNotFoundError), a damaged one `CorruptModelFileError`
(a DataLossError and an OSError); both are ValueErrors too and name the file. A model is
never returned with freshly initialized weights in place of the saved ones.

`save_weights(path)` / `load_weights(path)` use a single .safetensors file with the same
weight names; its metadata holds "jitflow.weights_sha256", a digest of the weights
(names, dtypes, shapes, values) that `load_weights` verifies.

Every file is written atomically (temp file + rename, train/temp_files.py); a save
first removes the temp files that earlier, interrupted saves of the same files left.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .. import errors
from ..train import safetensors_format as st
from ..train import temp_files
from ..train.checkpoint_files import _remove, _write_temp
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import model_config
from . import optimizers as optimizers_mod

FORMAT = "jitflow.keras"
FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, OPTIMIZER_FILE = "config.json", "model.safetensors", "optimizer.safetensors"
DIGEST_KEY = "jitflow.weights_sha256"      # safetensors metadata: digest of the weights (see _weights_digest)


class ModelFileNotFoundError(FileNotFoundError, ValueError):
    """A file the saved model's config.json records is missing."""


class CorruptModelFileError(errors.DataLossError, OSError, ValueError):
    """A saved model's weights file whose size, checksum or layout is wrong."""

    def __init__(self, message: str):
        errors.DataLossError.__init__(self, None, None, message)


# --------------------------------------------------------------------------- files

def _atomic_write(path, data: bytes):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = _write_temp(path, lambda f: f.write(data))        # pid-named, fsynced (train/temp_files.py)
    try:
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove_stale_temps(path: str, names) -> list:
    """Leftover temp files of interrupted writes of `names` in directory `path`."""
    names = set(names)
    return temp_files.remove_stale_temps(path, lambda base: base is None or base in names)


def _metadata():
    import jitflow
    return {"format": FORMAT, "format_version": str(FORMAT_VERSION), "jitflow_version": jitflow.__version__}


def _weights_digest(tensors: dict) -> str:
    """sha256 over the weights in name order: name, little-endian dtype, shape, C-order bytes."""
    sha = hashlib.sha256()
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        little = array.dtype.newbyteorder("<") if array.dtype.itemsize > 1 else array.dtype
        sha.update(f"{name}\0{little.str}\0{list(array.shape)}\0".encode("utf-8"))
        sha.update(np.ascontiguousarray(array, dtype=little).tobytes())
    return sha.hexdigest()


def _serialize_weights(tensors: dict) -> bytes:
    return st.serialize(tensors, dict(_metadata(), **{DIGEST_KEY: _weights_digest(tensors)}))


def _file_record(name: str, data: bytes) -> dict:
    return {"file": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _parse_weights(data: bytes, where: str) -> dict:
    """{name: array} of safetensors bytes, checked against the digest in their metadata (when present)."""
    try:
        tensors, metadata = st.deserialize(data)
    except (st.SafetensorsError, ValueError, TypeError, KeyError) as exc:
        raise CorruptModelFileError(f"Weights file {where} is corrupt: {exc}") from None
    want = metadata.get(DIGEST_KEY)
    if want is not None and _weights_digest(tensors) != want:
        raise CorruptModelFileError(f"Weights file {where} is corrupt: its weights do not match the checksum "
                                    f"stored in it ({DIGEST_KEY})")
    return tensors


def _read_recorded(directory: str, record, config_path: str, field: str) -> dict:
    """The tensors of a weights file that config.json records as `record` ({"file", "size", "sha256"})."""
    if not isinstance(record, dict) or not all(isinstance(record.get(k), t) for k, t in
                                               (("file", str), ("size", int), ("sha256", str))):
        raise model_config.ConfigError(config_path, field, f"must be an object with file, size and sha256, got "
                                                           f"{record!r:.120}")
    name = record["file"]
    if os.path.basename(name) != name or name in ("", ".", ".."):
        raise model_config.ConfigError(config_path, field + ".file", f"must be a file name, got {name!r}")
    path = os.path.join(directory, name)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ModelFileNotFoundError(f"Weights file {path} of the saved model {directory} is missing "
                                     f"({config_path} records it): the model cannot be loaded without "
                                     f"its weights") from None
    except OSError as exc:
        raise OSError(f"Cannot read weights file {path}: {exc}") from None
    if len(data) != record["size"]:
        raise CorruptModelFileError(
            f"Weights file {path} is {'truncated' if len(data) < record['size'] else 'corrupt'}: {len(data)} "
            f"bytes, {config_path} records {record['size']} (damaged, or replaced by an interrupted save)")
    if hashlib.sha256(data).hexdigest() != record["sha256"]:
        raise CorruptModelFileError(f"Weights file {path} is corrupt: its sha256 does not match the one "
                                    f"recorded in {config_path} (damaged, or replaced by an interrupted save)")
    return _parse_weights(data, path)


# --------------------------------------------------------------------------- weights

def weights_dict(model) -> dict:
    named = model.named_weights()
    values = model._engine.read([v for _, v in named]) if named else []
    return {key: value for (key, _), value in zip(named, values)}


def _model_weights_bytes(model) -> bytes:
    model._ensure_engine()
    model._engine.initialize_new_variables()
    return _serialize_weights(weights_dict(model))


def save_weights(model, path):
    path = os.fspath(path)
    _remove_stale_temps(os.path.dirname(os.path.abspath(path)), [os.path.basename(path)])
    _atomic_write(path, _model_weights_bytes(model))


def load_weights(model, path):
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ModelFileNotFoundError(f"Weights file {path} not found") from None
    tensors = _parse_weights(data, path)
    model._ensure_engine()
    model._engine.initialize_new_variables()
    _assign(model, tensors, path)


def _assign(model, tensors: dict, where: str):
    named = model.named_weights()
    missing = [key for key, _ in named if key not in tensors]
    if missing:
        raise ValueError(f"{where} has no weights named {', '.join(missing)} (it holds {', '.join(sorted(tensors))})")
    for key, variable in named:
        value = tensors[key]
        if tuple(value.shape) != tuple(variable.shape.as_list()):
            raise ValueError(f"{where}: weight {key} has shape {value.shape}, the model expects "
                             f"{tuple(variable.shape.as_list())}")
    for key, variable in named:        # everything checked: now write
        model._engine.load(variable, tensors[key])


# --------------------------------------------------------------------------- models

def compile_config(model):
    if not model.compiled:
        return None
    return {"optimizer": optimizers_mod.serialize(model.optimizer), "loss": losses_mod.serialize(model._loss),
            "metrics": [metrics_mod.serialize(m) for m in model._metric_ids]}


def save_model(model, path, include_optimizer=True):
    path = os.fspath(path)
    if os.path.isfile(path):
        raise ValueError(f"model.save writes a directory, but {path} is a file")
    os.makedirs(path, exist_ok=True)
    _remove_stale_temps(path, (CONFIG_FILE, WEIGHTS_FILE, OPTIMIZER_FILE))
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "jitflow_version": _metadata()["jitflow_version"],
              "model": {"class_name": type(model).__name__, "config": model.get_config()},
              "compile": compile_config(model), "weights": None, "optimizer_weights": None}
    if model.built:
        data = _model_weights_bytes(model)
        _atomic_write(os.path.join(path, WEIGHTS_FILE), data)
        config["weights"] = _file_record(WEIGHTS_FILE, data)
    state = model.optimizer_state() if include_optimizer else {}
    optimizer_path = os.path.join(path, OPTIMIZER_FILE)
    if state:
        data = _serialize_weights(state)
        _atomic_write(optimizer_path, data)
        config["optimizer_weights"] = _file_record(OPTIMIZER_FILE, data)
    elif os.path.exists(optimizer_path):
        os.unlink(optimizer_path)
    _atomic_write(os.path.join(path, CONFIG_FILE), json.dumps(config, indent=2).encode())


def load_model(path, custom_objects=None, compile=True):  # noqa: A002 (Keras' argument name)
    """The model saved by `model.save(path)`: architecture, weights, compile arguments, optimizer state."""
    path = os.fspath(path)
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"No jitflow.keras model at {path}: expected a directory with {CONFIG_FILE} and "
                                f"{WEIGHTS_FILE} (written by model.save)")
    config = model_config.read_config(config_path, FORMAT, FORMAT_VERSION)
    weights = _recorded_weights(path, config, config_path)       # verified before anything is built
    model = model_config.build_model(config, config_path, custom_objects)
    if weights is None and model.built:
        if "weights" in config:
            raise model_config.ConfigError(config_path, "weights", "is null, but the model it describes has "
                                                                   "weights (its input shape is known)")
        raise ModelFileNotFoundError(f"Weights file {os.path.join(path, WEIGHTS_FILE)} of the saved model {path} "
                                     f"is missing: the model cannot be loaded without its weights")
    if weights is not None:
        model._ensure_engine()
        model._engine.initialize_new_variables()
        _assign(model, weights, os.path.join(path, WEIGHTS_FILE))
    if compile and config.get("compile"):
        model_config.compile_from_config(model, config, config_path, custom_objects)
        record = config.get("optimizer_weights")
        optimizer_path = os.path.join(path, OPTIMIZER_FILE)
        if record is not None:
            state = _read_recorded(path, record, config_path, "optimizer_weights")
        elif "optimizer_weights" not in config and os.path.exists(optimizer_path):    # saved before checksums
            with open(optimizer_path, "rb") as f:
                state = _parse_weights(f.read(), optimizer_path)
        else:
            state = {}
        model._pending_optimizer_state = {k: np.asarray(v) for k, v in state.items()}
    return model


def _recorded_weights(path: str, config: dict, config_path: str):
    """The model weights config.json records (verified), or None for a model saved unbuilt."""
    if "weights" in config:
        record = config["weights"]
        return None if record is None else _read_recorded(path, record, config_path, "weights")
    # a model saved before config.json recorded its weights: the file must still be there when the
    # model has weights (the caller checks that against the rebuilt model)
    weights_path = os.path.join(path, WEIGHTS_FILE)
    try:
        with open(weights_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    return _parse_weights(data, weights_path)
