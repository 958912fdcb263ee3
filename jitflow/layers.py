"""`tf.layers`: the TF 1.x layer functions and classes (see jitflow/api/core_layers.py)."""
from .api.core_layers import (BatchNormalization, Dense, Dropout, Flatten, Layer,  # noqa: F401
                         batch_normalization, dense, dropout, flatten)
from .api.conv1d_layer import Conv1D, Convolution1D, conv1d  # noqa: F401
from .api.conv_layers import (AveragePooling2D, AvgPool2D, Conv2D, Conv2DTranspose, Convolution2D,  # noqa: F401
                              Convolution2DTranspose, Deconv2D, Deconvolution2D, MaxPool2D, MaxPooling2D,
                              average_pooling2d, conv2d, conv2d_transpose, max_pooling2d)
from .api.pool1d_layers import (AveragePooling1D, AvgPool1D, MaxPool1D, MaxPooling1D,  # noqa: F401
                                average_pooling1d, max_pooling1d)


from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.layers")  # PEP 562: a missing name says so
