"""Keras initializer names and objects on top of `jitflow.api.init_ops`.

`get('glorot_uniform')`, `get('he_normal')`, `get(keras.initializers.RandomNormal(stddev=0.1))`
all give a callable `(shape, dtype) -> Tensor`; `serialize`/`deserialize`
turn one into `{"class_name", "config"}` JSON and back.
"""
from __future__ import annotations

from ..api import init_ops
from ..api.init_ops import Constant, Initializer, Ones, TruncatedNormal, VarianceScaling, Zeros
from ..ir.types import float32


class RandomNormal(init_ops.RandomNormal):
    """Keras' default stddev is 0.05 (TF 1.x's is 1.0)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None, dtype=float32):
        super().__init__(mean, stddev, seed, dtype)


class RandomUniform(init_ops.RandomUniform):
    """Keras' default range is [-0.05, 0.05]."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None, dtype=float32):
        super().__init__(minval, maxval, seed, dtype)


def _scaling(class_name, scale, mode, distribution):
    def make(seed=None):
        init = VarianceScaling(scale, mode, distribution, seed)
        init._keras_name = class_name
        return init
    make.__name__ = class_name
    return make


GlorotUniform = _scaling("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeNormal = _scaling("HeNormal", 2.0, "fan_in", "truncated_normal")
HeUniform = _scaling("HeUniform", 2.0, "fan_in", "uniform")
LecunNormal = _scaling("LecunNormal", 1.0, "fan_in", "truncated_normal")
LecunUniform = _scaling("LecunUniform", 1.0, "fan_in", "uniform")

_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": lambda: TruncatedNormal(0.0, 0.05),
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_normal": HeNormal,
    "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
}
_CLASSES = {"Zeros": Zeros, "Ones": Ones, "Constant": Constant, "RandomNormal": RandomNormal,
            "RandomUniform": RandomUniform, "TruncatedNormal": TruncatedNormal,
            "VarianceScaling": VarianceScaling, "GlorotUniform": GlorotUniform, "GlorotNormal": GlorotNormal,
            "HeNormal": HeNormal, "HeUniform": HeUniform, "LecunNormal": LecunNormal,
            "LecunUniform": LecunUniform}
# Keras-style aliases: keras.initializers.glorot_uniform(), keras.initializers.Zeros(), ...
zeros, ones, constant = Zeros, Ones, Constant
glorot_uniform, glorot_normal, he_normal, he_uniform = GlorotUniform, GlorotNormal, HeNormal, HeUniform
lecun_normal, lecun_uniform = LecunNormal, LecunUniform
random_normal = normal = RandomNormal          # TF 1.x / Keras 2 lower-case names
random_uniform = uniform = RandomUniform
from .recurrent_math import Orthogonal  # noqa: E402  (the recurrent layers' default recurrent_initializer)
_BY_NAME.update(orthogonal=Orthogonal, uniform=RandomUniform)
_CLASSES.update(Orthogonal=Orthogonal)
orthogonal = Orthogonal


def get(identifier):
    """A name, a config dict, an initializer object or a callable -> an initializer."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        try:
            return _BY_NAME[identifier.lower()]()
        except KeyError:
            raise ValueError(f"Unknown initializer: '{identifier}'. Known: {', '.join(sorted(_BY_NAME))}.") \
                from None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(f"Could not interpret initializer identifier: {identifier!r}")


def serialize(init):
    """`{"class_name", "config"}` for JSON; None for a callable that is not an Initializer."""
    if init is None or not isinstance(init, Initializer):
        return None
    name = getattr(init, "_keras_name", None)
    if name is not None:
        return {"class_name": name, "config": {"seed": init.seed}}
    if isinstance(init, (Zeros, Ones)):
        return {"class_name": type(init).__name__, "config": {}}
    config = {k: v for k, v in init.__dict__.items() if k != "dtype" and not k.startswith("_")}
    if not all(isinstance(v, (int, float, str, bool, type(None))) for v in config.values()):
        return None
    return {"class_name": type(init).__name__, "config": config}


def deserialize(config):
    try:
        cls = _CLASSES[config["class_name"]]
    except KeyError:
        raise ValueError(f"Unknown initializer class: {config.get('class_name')!r}") from None
    return cls(**config.get("config", {}))


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.keras.initializers")  # PEP 562: a missing name says so
