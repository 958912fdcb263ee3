"""Weight regularizers: `l1(0.01)`, `l2(0.01)`, `l1_l2(l1=0.01, l2=0.01)`.

A regularizer maps a weight Variable to a scalar penalty tensor in the model's
graph (Keras' formulas: `l1 * sum(|w|) + l2 * sum(w**2)`, no factor 1/2);
`Model.compile` adds every layer's penalties to the training and evaluation loss.
"""
from __future__ import annotations

from ..api import math_ops as m


class Regularizer:
    def __call__(self, weight):
        raise TypeError(f"{type(self).__name__} must implement this method")

    def get_config(self):
        return {}


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, weight):
        penalty = None
        if self.l1:
            penalty = m.multiply(m.reduce_sum(m.abs(weight)), self.l1)
        if self.l2:
            term = m.multiply(m.reduce_sum(m.square(weight)), self.l2)
            penalty = term if penalty is None else m.add(penalty, term)
        return penalty if penalty is not None else m.multiply(m.reduce_sum(weight), 0.0)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def l1(l1=0.01):  # noqa: E741 (Keras' name)
    return L1(l1)


def l2(l2=0.01):
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):  # noqa: E741
    return L1L2(l1, l2)


_CLASSES = {"L1L2": L1L2, "L1": L1, "L2": L2}


def get(identifier):
    if identifier is None:
        return None
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ("l1", "l2", "l1_l2"):
            return {"l1": l1, "l2": l2, "l1_l2": l1_l2}[key]()
        raise ValueError(f"Unknown regularizer: '{identifier}' (use 'l1', 'l2', 'l1_l2' or an object)")
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(f"Could not interpret regularizer identifier: {identifier!r}")


def serialize(reg):
    if reg is None or not isinstance(reg, Regularizer):
        return None
    return {"class_name": type(reg).__name__, "config": reg.get_config()}


def deserialize(config):
    try:
        cls = _CLASSES[config["class_name"]]
    except KeyError:
        raise ValueError(f"Unknown regularizer class: {config.get('class_name')!r}") from None
    return cls(**config.get("config", {}))


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.keras.regularizers")  # PEP 562: a missing name says so
