"""`keras.backend`: `clear_session` (restarts layer and model naming), `floatx`, `image_data_format`
(and Keras 2's `image_dim_ordering`)."""
from __future__ import annotations

from . import base_layer


def clear_session():
    """Forgets the automatic names (the next Dense is 'dense' again). Models own their graphs and
    sessions, so nothing else is global."""
    base_layer._name_counts.clear()


def floatx() -> str:
    return "float32"


def image_data_format() -> str:
    """jitflow's Keras image layers are channels-last (NHWC), Keras' default."""
    return "channels_last"


def set_image_data_format(data_format):
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"Unknown data_format: {data_format}")
    if data_format != "channels_last":
        from ..errors import UnsupportedError
        raise UnsupportedError("keras.backend.set_image_data_format('channels_first') is not supported by jitflow")


def image_dim_ordering() -> str:
    """Keras 1/2 legacy name: 'tf' (channels last) or 'th' (channels first)."""
    return "tf" if image_data_format() == "channels_last" else "th"


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.keras.backend")  # PEP 562: a missing name says so
