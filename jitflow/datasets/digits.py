"""scikit-learn's bundled 8x8 handwritten digits (1797 images, no download),
split Keras-style.

`load_data(test_split=0.2, seed=113)` returns `((x_train, y_train), (x_test, y_test))`:
images as uint8 arrays of shape (n, 8, 8) with values 0..16 (divide by 16 to
scale to [0, 1]) and labels as uint8 arrays of shape (n,); `image_size=28` gives them upscaled to
MNIST's layout instead (n, 28, 28) with values 0..255 (for convolutional examples). The split is a
seeded random permutation: the same seed gives the same split.
Needs scikit-learn (`pip install scikit-learn`, or `pip install jitflow[examples]`).
"""
from __future__ import annotations

import numpy as np


def upscale_to_mnist(images: np.ndarray, size: int = 28, box: int = 20) -> np.ndarray:
    """8x8 digits (values 0..16) -> size x size uint8 images (0..255) laid out as MNIST's: each digit
    resampled bilinearly (pixel centres aligned) to a box x box square centred in the frame."""
    images = np.asarray(images, np.float64)
    n, rows, cols = images.shape

    def resample_matrix(src):
        position = (np.arange(box) + 0.5) * src / box - 0.5          # source coordinate of each target pixel
        position = np.clip(position, 0, src - 1)
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, src - 1)
        weight = position - low
        matrix = np.zeros((box, src))
        matrix[np.arange(box), low] += 1 - weight
        matrix[np.arange(box), high] += weight
        return matrix

    r, c = resample_matrix(rows), resample_matrix(cols)
    scaled = np.einsum("ij,njk,lk->nil", r, images, c) * (255.0 / 16.0)
    out = np.zeros((n, size, size), np.uint8)
    top, left = (size - box) // 2, (size - box) // 2
    out[:, top:top + box, left:left + box] = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return out


def load_data(test_split=0.2, seed=113, image_size=None):
    """image_size=28: the images upscaled to MNIST's layout (28x28 uint8, 0..255; see upscale_to_mnist)."""
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
    if image_size is not None:
        if int(image_size) < 8:
            raise ValueError(f"image_size must be at least 8, got {image_size}")
        images = upscale_to_mnist(images, int(image_size), box=int(image_size) * 20 // 28)
    return (images[train], labels[train]), (images[test], labels[test])
