"""`keras.utils`: `set_random_seed` (reproducible weights, dropout masks and
shuffling for the models built afterwards) and `to_categorical`."""
from __future__ import annotations

import random

import numpy as np

_seed_state = {"seed": None, "models": 0}


def set_random_seed(seed):
    """Seeds Python's `random`, numpy's global RNG and every model built afterwards: the n-th new model's
    graph seed (initial weights, dropout) and shuffling RNG derive from (seed, n)."""
    seed = int(seed)
    _seed_state["seed"], _seed_state["models"] = seed, 0
    random.seed(seed)
    np.random.seed(seed % 2**32)


def model_seeds():
    """(graph seed or None, numpy Generator) for a new model. Without set_random_seed, the default
    graph's seed (tf.set_random_seed) seeds models the same way; without either, they are random."""
    base = _seed_state["seed"]
    if base is None:
        from ..framework.graph import get_default_graph
        base = get_default_graph().seed
    if base is None:
        return None, np.random.default_rng()
    index = _seed_state["models"]
    _seed_state["models"] += 1
    sequence = np.random.SeedSequence([int(base) % 2**32, index])
    graph_seed = int(sequence.generate_state(1)[0] & 0x7FFFFFFF)
    return graph_seed, np.random.default_rng(sequence)


def to_categorical(y, num_classes=None, dtype="float32"):
    """Integer class labels -> one-hot rows."""
    y = np.asarray(y, dtype=np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    num_classes = int(y.max()) + 1 if num_classes is None else int(num_classes)
    out = np.zeros(y.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, y[..., None], 1, axis=-1)
    return out


import sys as _sys  # noqa: E402

from . import np_utils, vis_utils  # noqa: E402  (`from keras.utils.np_utils import to_categorical`)
from .vis_utils import model_to_dot, plot_model  # noqa: E402,F401

_sys.modules[__name__ + ".np_utils"] = np_utils     # keras.utils is a module here: make the Keras 2
_sys.modules[__name__ + ".vis_utils"] = vis_utils   # submodule paths importable

from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.keras.utils")  # PEP 562: a missing name says so
