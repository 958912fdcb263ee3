"""`tf.layers`."""
from .api.layers import dense, dropout, flatten  # noqa: F401
