"""`keras.backend`: `clear_session` (restarts layer and model naming) and `floatx`."""
from __future__ import annotations

from . import base_layer


def clear_session():
    """Forgets the automatic names (the next Dense is 'dense' again). Models own their graphs and
    sessions, so nothing else is global."""
    base_layer._name_counts.clear()


def floatx() -> str:
    return "float32"
