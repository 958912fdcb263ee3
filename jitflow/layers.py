"""`tf.layers`: the TF 1.x layer functions and classes (see jitflow/api/layers.py)."""
from .api.layers import (BatchNormalization, Dense, Dropout, Flatten, Layer, average_pooling2d,  # noqa: F401
                         batch_normalization, conv1d, conv2d, conv2d_transpose, dense, dropout, flatten,
                         max_pooling2d)


from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.layers")  # PEP 562: a missing name says so
