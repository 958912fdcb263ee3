"""`tf.contrib.rnn`: the TF 1.x-era home of the RNN cells and the static drivers, which the classic
example programs import (`from tensorflow.contrib import rnn`; TF 2 dropped it). The same objects as
`tf.nn.rnn_cell` (jitflow/api/rnn_cells.py) and `tf.nn.static_rnn` (jitflow/api/rnn.py)."""
from ..api.rnn import static_bidirectional_rnn, static_rnn  # noqa: F401
from ..api.rnn_cells import (BasicLSTMCell, BasicRNNCell, DropoutWrapper, GRUCell, LayerRNNCell,  # noqa: F401
                             LSTMCell, LSTMStateTuple, MultiRNNCell, RNNCell)

from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.contrib.rnn")  # PEP 562: a missing name says so
