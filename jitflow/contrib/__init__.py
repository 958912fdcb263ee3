"""`tf.contrib`: the pieces of it the TF 1.x lectures use (`tf.contrib.layers.xavier_initializer`)."""
from types import SimpleNamespace

from ..api import init_ops as _init

layers = SimpleNamespace(xavier_initializer=_init.xavier_initializer,
                         variance_scaling_initializer=_init.variance_scaling_initializer)
