"""The loops behind `fit`, `evaluate` and `predict`: input/label checking,
validation split, shuffling, batching, the epoch-mean of the batch values,
callbacks and progress output. Every batch is one call of a compiled step
(see engine.py); nothing here touches the graph.
"""
from __future__ import annotations

import numpy as np

from . import callbacks as callbacks_mod
from .progress import Progbar


def positive_int(value, name, default=None, minimum=1) -> int:
    """`value` as an int >= minimum (None gives `default`); tf.keras raises ValueError for 0, negative
    or fractional batch sizes and negative epochs instead of training on nothing (or on 32 rows)."""
    if value is None and default is not None:
        return default
    integral = isinstance(value, (int, np.integer)) or (
        isinstance(value, (float, np.floating)) and bool(np.isfinite(value)) and value == int(value))
    if isinstance(value, (bool, np.bool_)) or not integral:
        raise ValueError(f"`{name}` must be an integer, got {value!r}")
    if int(value) < minimum:
        bound = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"`{name}` must be {bound}, got {value!r}")
    return int(value)


def check_not_empty(x, name="x"):
    if len(x) == 0:
        raise ValueError(f"Expected input data to be non-empty: {name} has 0 samples")


def as_inputs(x, name="x") -> np.ndarray:
    if x is None:
        raise ValueError(f"{name} is required")
    array = np.asarray(x)
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric (a numpy array or nested lists), got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    return array.reshape(-1, 1) if array.ndim == 1 else array


def as_targets(y, engine, n, name="y") -> np.ndarray:
    """Labels shaped and typed for the engine's label placeholder (Keras' squeeze/expand rules)."""
    if y is None:
        raise ValueError(f"{name} is required for training and evaluation")
    array = np.asarray(y)
    if len(array) != n:
        raise ValueError(f"Data cardinality is ambiguous: x has {n} samples but {name} has {len(array)}. "
                         f"Make sure all arrays contain the same number of samples.")
    placeholder = engine.y
    if placeholder.dtype.is_integer:          # sparse labels: (n,) class indices
        if array.ndim == 2 and array.shape[1] == 1:
            array = array.reshape(-1)
        if array.ndim != 1:
            raise ValueError(f"sparse_categorical_crossentropy expects integer class labels of shape ({n},), got "
                             f"shape {array.shape}; for one-hot labels use categorical_crossentropy")
        if array.dtype.kind == "f" and np.any(array != np.round(array)):
            raise ValueError("sparse_categorical_crossentropy expects integer class labels")
        return np.ascontiguousarray(array, dtype=np.int32)
    expected = tuple(placeholder.shape.dims[1:])
    array = np.ascontiguousarray(array, dtype=np.float32)
    if array.ndim == len(expected) and expected[-1] == 1:
        array = array.reshape(array.shape + (1,))
    if len(array.shape) != len(expected) + 1 or any(e is not None and a != e
                                                    for a, e in zip(array.shape[1:], expected)):
        hint = ""
        if array.ndim == 1 and expected and expected[-1] and expected[-1] > 1:
            hint = (" (integer class labels need loss='sparse_categorical_crossentropy', or one-hot encode them "
                    "with keras.utils.to_categorical)")
        raise ValueError(f"{name} has shape {array.shape}, but the model's output has shape "
                         f"{(None,) + expected}{hint}")
    return array


class MeanAggregator:
    """Epoch means of batch values, weighted by batch size."""

    def __init__(self, names):
        self.names = list(names)
        self.sums = np.zeros(len(self.names))
        self.count = 0

    def add(self, values, weight):
        self.sums += np.asarray(values, dtype=np.float64) * weight
        self.count += weight

    def result(self) -> dict:
        if not self.count:
            return {}
        return {name: float(total / self.count) for name, total in zip(self.names, self.sums)}


def batch_starts(n, batch_size):
    return range(0, n, batch_size)


def split_validation(x, y, validation_split):
    """Keras takes the LAST fraction of the data (before any shuffling) for validation."""
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
    split_at = int(len(x) * (1.0 - validation_split))
    if split_at == 0 or split_at == len(x):
        raise ValueError(f"validation_split={validation_split} leaves no training or no validation samples "
                         f"out of {len(x)}")
    return (x[:split_at], y[:split_at]), (x[split_at:], y[split_at:])


def run_fit(model, x, y, batch_size, epochs, verbose, callbacks, validation_data, shuffle, initial_epoch,
            validation_freq, rng, history, validation_batch_size, train_batch=None, end_of_epoch=None):
    """The epoch loop. train_batch(rows) -> [loss, *metrics] trains on x[rows], y[rows] (rows: a slice or
    an index array; default: the model's compiled step); end_of_epoch() runs before validation and the
    epoch-end callbacks (a distribute strategy brings the replicas' weights back there)."""
    engine = model._engine
    if train_batch is None:
        def train_batch(rows):
            return engine.train_step(x[rows], y[rows])
    names = ["loss"] + engine.metric_names
    n = len(x)
    steps = -(-n // batch_size)
    callback_list = callbacks_mod.CallbackList(list(callbacks or []) + [history], model,
                                               {"epochs": epochs, "steps": steps, "verbose": verbose,
                                                "batch_size": batch_size, "samples": n})
    model.stop_training = False
    callback_list.on_train_begin()
    logs = {}
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        progbar = Progbar(steps, verbose=verbose)
        order = rng.permutation(n) if shuffle else None
        totals = MeanAggregator(names)
        for step, start in enumerate(batch_starts(n, batch_size)):
            rows = slice(start, start + batch_size) if order is None else order[start:start + batch_size]
            callback_list.on_train_batch_begin(step)
            totals.add(train_batch(rows), min(batch_size, n - start))
            logs = totals.result()
            callback_list.on_train_batch_end(step, logs)
            progbar.update(step + 1, logs)
        if end_of_epoch is not None:
            end_of_epoch()
        logs = dict(logs)
        if validation_data is not None and (epoch + 1) % validation_freq == 0:
            val_logs = evaluate_arrays(model, *validation_data, validation_batch_size)
            logs.update({"val_" + k: v for k, v in val_logs.items()})
        progbar.finish(logs)
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return history


def evaluate_arrays(model, x, y, batch_size, verbose=0, callback_list=None) -> dict:
    engine = model._engine
    totals = MeanAggregator(["loss"] + engine.metric_names)
    n = len(x)
    progbar = Progbar(-(-n // batch_size), verbose=verbose)
    for step, start in enumerate(batch_starts(n, batch_size)):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        if callback_list is not None:
            callback_list.on_test_batch_begin(step)
        totals.add(engine.eval_step(xb, yb), len(xb))
        if callback_list is not None:
            callback_list.on_test_batch_end(step, totals.result())
        progbar.update(step + 1, totals.result())
    result = totals.result()
    progbar.finish(result)
    return result


def predict_arrays(model, x, batch_size, verbose=0) -> np.ndarray:
    engine = model._engine
    outputs = []
    n = len(x)
    progbar = Progbar(-(-n // batch_size), verbose=verbose)
    for step, start in enumerate(batch_starts(n, batch_size)):
        outputs.append(engine.predict_step(x[start:start + batch_size]))
        progbar.update(step + 1, {})
    progbar.finish({})
    if not outputs:
        return np.zeros((0,) + tuple(engine.outputs.shape.dims[1:]), np.float32)
    return np.concatenate(outputs, axis=0)

