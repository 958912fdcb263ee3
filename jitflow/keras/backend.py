"""`keras.backend`: `clear_session` (restarts layer and model naming) and `floatx`."""
from __future__ import annotations

from . import base_layer


def clear_session():
    """Forgets the automatic names (the next Dense is 'dense' again). Models own their graphs and
    sessions, so nothing else is global."""
    base_layer._name_counts.clear()


def floatx() -> str:
    return "float32"


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.keras.backend")  # PEP 562: a missing name says so
