"""Reading a saved model's `config.json` (see saving.py): parse it, check every field
`load_model` uses, and rebuild the Sequential model and its compile arguments from it.
A damaged or hand-edited file raises `ValueError` naming the file and the bad field
("model.config.layers[1].config"), never a bare KeyError/AttributeError/TypeError."""
from __future__ import annotations

import json

from . import losses as losses_mod
from . import optimizers as optimizers_mod

_BUILD_ERRORS = (KeyError, AttributeError, TypeError, ValueError, IndexError, OverflowError)


class ConfigError(ValueError):
    """A config.json that cannot be used; the message names the file and the field."""

    def __init__(self, path: str, field: str, problem: str):
        self.path, self.field = path, field
        super().__init__(f"Invalid model config {path}: field '{field}' {problem}")


def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def _get(obj: dict, key: str, kinds, path: str, where: str, required: bool = True):
    """obj[key] checked to be one of `kinds` (types); a missing optional field is None."""
    field = f"{where}.{key}" if where else key
    if key not in obj:
        if required:
            raise ConfigError(path, field, "is missing")
        return None
    value = obj[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        names = " or ".join(k.__name__ for k in _as_tuple(kinds))
        raise ConfigError(path, field, f"must be {names}, got {_type_name(value)} {value!r:.80}")
    return value


def _as_tuple(kinds) -> tuple:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def read_config(path: str, expected_format: str, max_version: int) -> dict:
    """The parsed config.json with its top-level fields checked."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise OSError(f"Cannot read model config {path}: {exc}") from None
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"Invalid model config {path}: not valid UTF-8 JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ConfigError(path, "<top level>", f"must be a JSON object, got {_type_name(config)}")
    fmt = config.get("format")
    if fmt != expected_format:
        raise ConfigError(path, "format", f"is {fmt!r}: not a {expected_format} model config")
    version = _get(config, "format_version", int, path, "")
    if version > max_version:
        raise ValueError(f"{path} was saved by a newer jitflow (format_version {version})")
    model = _get(config, "model", dict, path, "")
    class_name = _get(model, "class_name", str, path, "model")
    if class_name != "Sequential":
        raise ConfigError(path, "model.class_name", f"is {class_name!r}: jitflow.keras loads Sequential models")
    model_config = _get(model, "config", dict, path, "model")
    _get(model_config, "name", (str, type(None)), path, "model.config", required=False)
    layers = _get(model_config, "layers", list, path, "model.config")
    for i, entry in enumerate(layers):
        where = f"model.config.layers[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(path, where, f"must be an object, got {_type_name(entry)}")
        _get(entry, "class_name", str, path, where)
        _get(entry, "config", dict, path, where)
    shape = _get(model_config, "build_input_shape", (list, type(None)), path, "model.config", required=False)
    if shape is not None and not all(d is None or (type(d) is int and d >= 0) for d in shape):
        raise ConfigError(path, "model.config.build_input_shape", f"must list non-negative ints or nulls, got "
                                                                  f"{shape!r:.80}")
    compiled = _get(config, "compile", (dict, type(None)), path, "", required=False)
    if compiled is not None:
        _get(compiled, "optimizer", (dict, str), path, "compile")
        _get(compiled, "loss", (dict, str), path, "compile")
        metrics = _get(compiled, "metrics", list, path, "compile", required=False) or []
        for i, metric in enumerate(metrics):
            if not isinstance(metric, str):
                raise ConfigError(path, f"compile.metrics[{i}]", f"must be a str, got {_type_name(metric)}")
    return config


def build_model(config: dict, path: str, custom_objects=None):
    """The Sequential model of a checked config (layers built, weights freshly initialized)."""
    from .layers import LAYER_CLASSES
    from .models import Sequential
    model_config = config["model"]["config"]
    classes = dict(LAYER_CLASSES, **(custom_objects or {}))
    model = Sequential(name=model_config.get("name"))
    for i, entry in enumerate(model_config["layers"]):
        where = f"model.config.layers[{i}]"
        layer_class = classes.get(entry["class_name"])
        if layer_class is None:
            raise ConfigError(path, where + ".class_name",
                              f"names an unknown layer class {entry['class_name']!r}: pass it in "
                              f"custom_objects={{'{entry['class_name']}': cls}}")
        try:
            layer = layer_class.from_config(dict(entry["config"]))
        except _BUILD_ERRORS as exc:
            raise ConfigError(path, where + ".config", f"cannot build a {entry['class_name']} layer: "
                                                       f"{type(exc).__name__}: {exc}") from None
        try:
            model.add(layer)
        except _BUILD_ERRORS as exc:
            raise ConfigError(path, where, f"cannot be added to the model: {type(exc).__name__}: {exc}") from None
    shape = model_config.get("build_input_shape")
    if shape:
        try:
            model._set_input_shape(tuple(shape))
        except _BUILD_ERRORS as exc:
            raise ConfigError(path, "model.config.build_input_shape", f"cannot build the model: "
                                                                      f"{type(exc).__name__}: {exc}") from None
    return model


def compile_from_config(model, config: dict, path: str, custom_objects=None):
    """`model.compile(...)` with the saved compile arguments (a checked config with "compile")."""
    compiled = config["compile"]
    custom = custom_objects or {}
    try:
        optimizer = compiled["optimizer"]
        optimizer = optimizers_mod.get(optimizer) if isinstance(optimizer, str) else \
            optimizers_mod.deserialize(optimizer)
    except _BUILD_ERRORS as exc:
        raise ConfigError(path, "compile.optimizer", f"cannot be rebuilt: {type(exc).__name__}: {exc}") from None
    try:
        loss = compiled["loss"]
        loss = custom.get(loss, loss) if isinstance(loss, str) else losses_mod.deserialize(loss, custom)
    except _BUILD_ERRORS as exc:
        raise ConfigError(path, "compile.loss", f"cannot be rebuilt: {type(exc).__name__}: {exc}") from None
    metrics = [custom.get(m, m) for m in compiled.get("metrics") or []]
    try:
        model.compile(optimizer, loss, metrics)
    except _BUILD_ERRORS as exc:
        raise ConfigError(path, "compile", f"cannot be applied: {type(exc).__name__}: {exc}") from None
