"""`keras.preprocessing`: host-side data utilities (as in Keras, they run in Python/numpy before the data
reaches a model): `sequence.pad_sequences`, `text.Tokenizer` / `text.text_to_word_sequence`."""
from . import sequence, text  # noqa: F401

from ...missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.keras.preprocessing")  # PEP 562: a missing name says so
