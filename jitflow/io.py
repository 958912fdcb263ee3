"""`tf.io` (TF 1.x): `tf.io.gfile`, the local-filesystem file API of jitflow/gfile.py."""
from .gfile import io_gfile as gfile  # noqa: F401

from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.io")  # PEP 562: a missing name says so
