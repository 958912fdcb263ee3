"""Small datasets for examples and tests, Keras-style: `load_data()` returns
`((x_train, y_train), (x_test, y_test))` as numpy arrays. Nothing is ever
downloaded.

- `mnist`: the four standard IDX files from a local directory.
- `digits`: scikit-learn's bundled 8x8 digits (needs scikit-learn).
- `mnist1d`: the MNIST-1D benchmark, generated procedurally (no files needed).
"""
from . import digits, mnist, mnist1d  # noqa: F401
