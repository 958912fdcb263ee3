"""`keras.utils.np_utils` (Keras 2 / TF 1.x): `to_categorical` on numpy labels."""
from .utils import to_categorical  # noqa: F401
