"""scikit-learn's bundled 8x8 handwritten digits (1797 images, no download),
split Keras-style.

`load_data(test_split=0.2, seed=113)` returns `((x_train, y_train), (x_test, y_test))`:
images as uint8 arrays of shape (n, 8, 8) with values 0..16 (divide by 16 to
scale to [0, 1]) and labels as uint8 arrays of shape (n,). The split is a
seeded random permutation: the same seed gives the same split.
Needs scikit-learn (`pip install scikit-learn`, or `pip install jitflow[examples]`).
"""
from __future__ import annotations

import numpy as np


def load_data(test_split=0.2, seed=113):
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("jitflow.datasets.digits needs scikit-learn, which is not installed: "
                          "pip install scikit-learn (or pip install jitflow[examples])") from exc
    if not 0.0 <= test_split < 1.0:
        raise ValueError(f"test_split must be in [0, 1), got {test_split}")
    digits = load_digits()
    images = digits.images.astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(len(labels) * test_split))
    test, train = order[:n_test], order[n_test:]
    return (images[train], labels[train]), (images[test], labels[test])
