"""MNIST-1D (Greydanus 2020, "Scaling down deep learning"): 1-D signals of
length 40 made from 10 digit templates by padding, scaling, translation,
correlated and iid noise, shear and resampling. 5000 samples split 4000 train
/ 1000 test by default. Generated on the fly, deterministically for a seed;
no files, no network.

`load_data(num_samples=5000, train_split=0.8, seed=42, source="auto")` returns
`((x_train, y_train), (x_test, y_test))`: x float32 (n, 40), y uint8 (n,).

source="package" uses the `mnist1d` package (`pip install mnist1d`): its
`make_dataset` with its default arguments (only num_samples, train_split and
seed replaced); "builtin" uses the generator below, a numpy-only rewrite of the
same procedure that makes the same random draws in the same order, so for a
given seed it reproduces the package's data (up to float rounding in the
Gaussian filter and interpolation; the package needs scipy and matplotlib).
"auto" (default) uses the package when it is importable, else the builtin one.
Neither touches numpy's or Python's global random state (the package's
global seeding is undone afterwards).
"""
from __future__ import annotations

import random

import numpy as np

DEFAULTS = {"num_samples": 5000, "train_split": 0.8, "template_len": 12, "padding": (36, 60), "scale_coeff": 0.4,
            "max_translation": 48, "corr_noise_scale": 0.25, "iid_noise_scale": 2e-2, "shear_scale": 0.75,
            "final_seq_length": 40, "seed": 42}
_TEMPLATES = [[5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5], [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
              [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5], [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
              [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5], [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
              [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5], [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
              [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5], [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5]]


def templates() -> np.ndarray:
    """The 10 digit templates (10, 12): whitened, starting at 0, scaled by 1/6."""
    x = np.asarray(_TEMPLATES, dtype=np.float64)
    x -= x.mean(1, keepdims=True)
    x /= x.std(1, keepdims=True)
    x -= x[:, :1]
    return x / 6.0


def _interpolate(x, n):
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def _gaussian_filter(x, sigma=2.0, truncate=4.0):
    """scipy.ndimage.gaussian_filter for 1-D input (mode 'reflect' = numpy's 'symmetric' padding)."""
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * offsets ** 2 / sigma ** 2)
    weights /= weights.sum()
    padded = np.pad(x, radius, mode="symmetric")
    return np.correlate(padded, weights, mode="valid")


def _transform(rng, x, args):
    low, high = args["padding"]
    x = np.concatenate([x + 1e-8, np.zeros(low + int(rng.rand() * (high - low + 1)))])   # pad
    x = _interpolate(x, args["template_len"] + high)                                      # dilate
    x = x * (1 + args["scale_coeff"] * (rng.rand() - 0.5))                                # scale
    k = rng.choice(args["max_translation"])                                               # translate
    x = np.concatenate([x[-k:], x[:-k]])
    mask = x != 0
    x = mask * x + (1 - mask) * _gaussian_filter(args["corr_noise_scale"] * rng.randn(*x.shape))
    x = x + args["iid_noise_scale"] * rng.randn(*x.shape)
    x = x - args["shear_scale"] * (rng.rand() - 0.5) * np.linspace(-0.5, 0.5, len(x))    # shear
    return _interpolate(x, args["final_seq_length"])                                      # subsample


def generate(**overrides):
    """(xs float64 (n, 40), ys int64 (n,)) before the train/test split: the package's procedure."""
    args = dict(DEFAULTS, **overrides)
    rng = np.random.RandomState(args["seed"])
    digit_templates = templates()
    xs, ys = [], []
    for label in range(10):
        for _ in range(args["num_samples"] // 10):
            xs.append(_transform(rng, digit_templates[label], args))
            ys.append(label)
    order = rng.permutation(len(ys))
    xs, ys = np.stack(xs)[order], np.asarray(ys, dtype=np.int64)[order]
    return (xs - xs.mean()) / xs.std(), ys


def _package_generate(num_samples, train_split, seed):
    from mnist1d.data import get_dataset_args, make_dataset
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = num_samples, train_split, seed
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return (data["x"], data["y"]), (data["x_test"], data["y_test"])


def _package_available():
    try:
        import mnist1d.data  # noqa: F401
    except Exception:       # not installed, or its imports (scipy, matplotlib) are missing
        return False
    return True


def load_data(num_samples=5000, train_split=0.8, seed=42, source="auto"):
    """((x_train, y_train), (x_test, y_test)): x float32 (n, 40), y uint8; see the module docstring."""
    if source not in ("auto", "package", "builtin"):
        raise ValueError(f"source must be 'auto', 'package' or 'builtin', got {source!r}")
    if num_samples < 10:
        raise ValueError("num_samples must be at least 10 (one per class)")
    if source == "package" or (source == "auto" and _package_available()):
        (x_train, y_train), (x_test, y_test) = _package_generate(num_samples, train_split, seed)
    else:
        xs, ys = generate(num_samples=num_samples, seed=seed)
        split = int(len(ys) * train_split)
        (x_train, y_train), (x_test, y_test) = (xs[:split], ys[:split]), (xs[split:], ys[split:])
    return ((np.asarray(x_train, np.float32), np.asarray(y_train, np.uint8)),
            (np.asarray(x_test, np.float32), np.asarray(y_test, np.uint8)))
