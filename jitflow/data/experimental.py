"""`tf.data.experimental`: AUTOTUNE, the cardinality constants and `cardinality`."""
from __future__ import annotations

import numpy as np

from .dataset import INFINITE, UNKNOWN

AUTOTUNE = -1
INFINITE_CARDINALITY = INFINITE
UNKNOWN_CARDINALITY = UNKNOWN


def cardinality(dataset):
    """The number of elements (an int64 scalar tensor): -1 when infinite, -2 when unknown."""
    from ..api.array_ops import constant
    return constant(np.int64(dataset._cardinality()), name="DatasetCardinality")
