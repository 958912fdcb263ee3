"""`tf.contrib`: the pieces of it the TF 1.x lectures use (`tf.contrib.layers`: fully_connected, batch_norm,
regularizers, initializers)."""
from . import layers  # noqa: F401  (tf.contrib.layers)
from . import rnn  # noqa: F401,E402  (tf.contrib.rnn)
from . import factorization  # noqa: F401,E402  (tf.contrib.factorization.KMeans)
from . import seq2seq  # noqa: F401,E402  (tf.contrib.seq2seq.sequence_loss)
from . import framework  # noqa: F401,E402  (tf.contrib.framework.arg_scope)


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.contrib")  # PEP 562: a missing name says so
