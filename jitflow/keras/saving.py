"""Saving and loading Keras models.

`model.save(path)` writes a DIRECTORY `path/` holding

- `config.json`: `{"format": "jitflow.keras", "format_version": 1, "jitflow_version",
  "model": {"class_name": "Sequential", "config": {"name", "layers": [{"class_name",
  "config"}...], "build_input_shape"}}, "compile": {"optimizer", "loss", "metrics"} or null}`;
- `model.safetensors`: every weight, named `<layer name>/<weight name>` ("dense/kernel",
  "batch_normalization/moving_mean"), in the safetensors format (written by
  `jitflow.train.safetensors_format`), readable by any safetensors reader;
- `optimizer.safetensors` (when the model has trained and include_optimizer=True): the
  optimizer's slots under their graph names, restored at the first fit after loading.

`keras.models.load_model(path)` rebuilds the model from config.json, loads the
weights and re-compiles it. `save_weights(path)` / `load_weights(path)` use a
single .safetensors file with the same weight names.
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from ..train import safetensors_format as st
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optimizers as optimizers_mod

FORMAT = "jitflow.keras"
FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, OPTIMIZER_FILE = "config.json", "model.safetensors", "optimizer.safetensors"


def _atomic_write(path, data: bytes):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _metadata():
    import jitflow
    return {"format": FORMAT, "format_version": str(FORMAT_VERSION), "jitflow_version": jitflow.__version__}


def weights_dict(model) -> dict:
    named = model.named_weights()
    values = model._engine.read([v for _, v in named]) if named else []
    return {key: value for (key, _), value in zip(named, values)}


def save_weights(model, path):
    model._ensure_engine()
    model._engine.initialize_new_variables()
    _atomic_write(os.fspath(path), st.serialize(weights_dict(model), _metadata()))


def load_weights(model, path):
    tensors, _ = st.read(os.fspath(path))
    model._ensure_engine()
    model._engine.initialize_new_variables()
    _assign(model, tensors, str(path))


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
        model._engine.load(variable, value)


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
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "jitflow_version": _metadata()["jitflow_version"],
              "model": {"class_name": type(model).__name__, "config": model.get_config()},
              "compile": compile_config(model)}
    if model.built:
        save_weights(model, os.path.join(path, WEIGHTS_FILE))
    state = model.optimizer_state() if include_optimizer else {}
    optimizer_path = os.path.join(path, OPTIMIZER_FILE)
    if state:
        _atomic_write(optimizer_path, st.serialize(state, _metadata()))
    elif os.path.exists(optimizer_path):
        os.unlink(optimizer_path)
    _atomic_write(os.path.join(path, CONFIG_FILE), json.dumps(config, indent=2).encode())


def load_model(path, custom_objects=None, compile=True):  # noqa: A002 (Keras' argument name)
    """The model saved by `model.save(path)`: architecture, weights, compile arguments, optimizer state."""
    from .models import Sequential
    path = os.fspath(path)
    config_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"No jitflow.keras model at {path}: expected a directory with {CONFIG_FILE} and "
                                f"{WEIGHTS_FILE} (written by model.save)")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    if config.get("format") != FORMAT:
        raise ValueError(f"{config_path} is not a jitflow.keras model config (format {config.get('format')!r})")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} was saved by a newer jitflow (format_version {config['format_version']})")
    model_config = config["model"]
    if model_config["class_name"] != "Sequential":
        raise ValueError(f"Unknown model class {model_config['class_name']!r}")
    model = Sequential.from_config(model_config["config"], custom_objects)
    weights_path = os.path.join(path, WEIGHTS_FILE)
    if os.path.exists(weights_path):
        load_weights(model, weights_path)
    compiled = config.get("compile")
    if compile and compiled:
        custom = custom_objects or {}
        loss = compiled["loss"]
        loss = custom.get(loss, loss) if isinstance(loss, str) else losses_mod.deserialize(loss, custom)
        metrics = [custom.get(m, m) for m in compiled.get("metrics", [])]
        model.compile(optimizers_mod.deserialize(compiled["optimizer"]), loss, metrics)
        optimizer_path = os.path.join(path, OPTIMIZER_FILE)
        if os.path.exists(optimizer_path):
            state, _ = st.read(optimizer_path)
            model._pending_optimizer_state = {k: np.asarray(v) for k, v in state.items()}
    return model
