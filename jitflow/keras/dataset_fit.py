"""`fit` / `evaluate` / `predict` on a `tf.data.Dataset` of batches: the
elements are (x, y) batches (or x alone for predict), pulled from the dataset's
host-side pipeline (its `map` functions run compiled), and each batch is one
compiled step of the model's engine, as with numpy arrays. As in Keras: a
dataset is not shuffled by `fit` (shuffle it in the pipeline), `batch_size`
must not be given, without `steps_per_epoch` every epoch runs the dataset to its
end, with it one iterator continues across epochs, and an infinitely repeated
dataset needs `steps_per_epoch`."""
from __future__ import annotations

import weakref

from ..errors import UnsupportedError
from . import callbacks as callbacks_mod
from . import training
from .progress import Progbar


def is_dataset(x) -> bool:
    from ..data.dataset import Dataset
    return isinstance(x, Dataset)


def _elements(model, dataset):
    """A generator of the dataset's elements (nested numpy values); reshuffles per pass, seeded per model."""
    from ..data import structure
    from ..data.context import make_context
    counters = model.__dict__.setdefault("_data_seed_counters", weakref.WeakKeyDictionary())
    ctx = make_context(dataset, seed_counters=counters)
    for flat in dataset._iter(ctx):
        yield structure.pack(dataset._tree, list(flat))


def _split(element, what, need_y=True):
    """(x, y) of one element: an (x, y) tuple, or x alone when y is not needed."""
    if isinstance(element, tuple) and not hasattr(element, "_fields"):
        if len(element) == 3:
            raise UnsupportedError(f"{what}: datasets of (x, y, sample_weight) are not supported by jitflow")
        if len(element) == 2:
            return element
        if len(element) == 1 and not need_y:
            return element[0], None
    if isinstance(element, dict):
        raise UnsupportedError(f"{what}: datasets of dict elements (named inputs) are not supported by jitflow")
    if need_y:
        raise ValueError(f"{what}: the dataset must yield (inputs, targets) tuples; it yields "
                         f"{type(element).__name__} elements")
    return element, None


def _check_args(dataset, y, batch_size, what):
    if y is not None:
        raise ValueError("`y` argument is not supported when using dataset as input.")
    if batch_size is not None:
        raise ValueError(f"The `batch_size` argument must not be specified for the given input type. Received "
                         f"input: {dataset}, batch_size: {batch_size}")


def _steps(dataset, steps, what, arg="steps_per_epoch") -> int | None:
    from ..data.dataset import INFINITE
    if steps is not None:
        steps = int(steps)
        if steps <= 0:
            raise ValueError(f"{what}: `{arg}` must be positive, got {steps}")
        return steps
    if dataset._cardinality() == INFINITE:
        raise ValueError(f"When passing an infinitely repeating dataset, you must specify the `{arg}` argument.")
    return None


def _batch(model, element, what, need_y=True):
    xb, yb = _split(element, what, need_y)
    xb = training.as_inputs(xb)
    model._ensure_engine(xb.shape[1:])
    return xb, yb


def fit(model, dataset, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
        validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
        steps_per_epoch=None, validation_batch_size=None, validation_freq=1, validation_steps=None):
    _check_args(dataset, y, batch_size, "fit")
    if validation_split:
        raise ValueError("`validation_split` is only supported for Tensors or NumPy arrays, found following "
                         f"types in the input: [{type(dataset).__name__}]")
    if class_weight is not None or sample_weight is not None:
        raise UnsupportedError("fit(): class_weight and sample_weight are not supported")
    if model.distribute_strategy is not None:
        raise UnsupportedError("fit(): a distribute strategy with a tf.data.Dataset input is not supported")
    steps = _steps(dataset, steps_per_epoch, "fit")
    validation = None
    if validation_data is not None:
        if is_dataset(validation_data):
            validation = ("dataset", validation_data, validation_steps)
        else:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val) or a Dataset")
            if len(validation_data) == 3 and validation_data[2] is not None:
                raise UnsupportedError("validation sample weights are not supported")
            validation = ("arrays", validation_data, int(validation_batch_size or 32))
    verbose = 1 if verbose == "auto" else int(verbose)
    known = steps if steps is not None else max(dataset._cardinality(), 0)
    history = model.history = callbacks_mod.History()
    callback_list = callbacks_mod.CallbackList(list(callbacks or []) + [history], model,
                                               {"epochs": int(epochs), "steps": known or None, "verbose": verbose})
    model.stop_training = False
    callback_list.on_train_begin()
    logs, engine, source = {}, None, None
    for epoch in range(int(initial_epoch), int(epochs)):
        callback_list.on_epoch_begin(epoch)
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        progbar = Progbar(known, verbose=verbose)
        totals = None
        if source is None or steps is None:
            source = _elements(model, dataset)
        step, exhausted = 0, False
        while steps is None or step < steps:
            element = next(source, None)
            if element is None:
                exhausted = steps is not None
                break
            xb, yb = _batch(model, element, "fit")
            if engine is None:
                engine = model._ensure_training()
            if totals is None:
                totals = training.MeanAggregator(["loss"] + engine.metric_names)
            callback_list.on_train_batch_begin(step)
            totals.add(engine.train_step(xb, training.as_targets(yb, engine, len(xb))), len(xb))
            logs = totals.result()
            callback_list.on_train_batch_end(step, logs)
            step += 1
            progbar.update(step, logs)
        if step == 0 and epoch == int(initial_epoch):
            raise ValueError("fit(): the dataset yielded no elements")
        if exhausted:
            print(f"WARNING: Your input ran out of data; interrupting training. Make sure that your dataset can "
                  f"generate at least `steps_per_epoch * epochs` batches (in this case, {steps * int(epochs)} "
                  f"batches).", flush=True)
        logs = dict(logs)
        if validation is not None and (epoch + 1) % int(validation_freq) == 0:
            logs.update({"val_" + k: v for k, v in _validate(model, validation).items()})
        progbar.target = max(progbar.target, step)
        progbar.finish(logs)
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training or exhausted:
            break
    callback_list.on_train_end(logs)
    return history


def _validate(model, validation) -> dict:
    kind, data, extra = validation
    if kind == "dataset":
        return evaluate_results(model, data, extra, 0, None)
    engine = model._ensure_training()
    x_val = training.as_inputs(data[0], "validation_data x")
    model._set_input_shape((None,) + x_val.shape[1:])
    y_val = training.as_targets(data[1], engine, len(x_val), "validation_data y")
    return training.evaluate_arrays(model, x_val, y_val, extra)


def evaluate_results(model, dataset, steps, verbose, callback_list) -> dict:
    steps = _steps(dataset, steps, "evaluate", "steps")
    engine, totals = None, None
    progbar = Progbar(steps or max(dataset._cardinality(), 0), verbose=verbose)
    step = 0
    for element in _elements(model, dataset):
        if steps is not None and step >= steps:
            break
        xb, yb = _batch(model, element, "evaluate")
        if engine is None:
            engine = model._ensure_training()
            totals = training.MeanAggregator(["loss"] + engine.metric_names)
        if callback_list is not None:
            callback_list.on_test_batch_begin(step)
        totals.add(engine.eval_step(xb, training.as_targets(yb, engine, len(xb))), len(xb))
        if callback_list is not None:
            callback_list.on_test_batch_end(step, totals.result())
        step += 1
        progbar.update(step, totals.result())
    if totals is None:
        raise ValueError("evaluate(): the dataset yielded no elements")
    progbar.target = max(progbar.target, step)
    result = totals.result()
    progbar.finish(result)
    return result


def evaluate(model, dataset, y=None, batch_size=None, verbose=1, return_dict=False, callbacks=None, steps=None):
    _check_args(dataset, y, batch_size, "evaluate")
    verbose = 1 if verbose == "auto" else int(verbose)
    callback_list = callbacks_mod.CallbackList(callbacks, model, {"verbose": verbose}) if callbacks else None
    result = evaluate_results(model, dataset, steps, verbose, callback_list)
    if return_dict:
        return result
    values = list(result.values())
    return values[0] if len(values) == 1 else values


def predict(model, dataset, batch_size=None, verbose=0, steps=None):
    import numpy as np
    _check_args(dataset, None, batch_size, "predict")
    steps = _steps(dataset, steps, "predict", "steps")
    verbose = 1 if verbose == "auto" else int(verbose)
    progbar = Progbar(steps or max(dataset._cardinality(), 0), verbose=verbose)
    outputs, engine = [], None
    for element in _elements(model, dataset):
        if steps is not None and len(outputs) >= steps:
            break
        xb, _ = _batch(model, element, "predict", need_y=False)
        if engine is None:
            engine = model._ensure_engine()
            engine.initialize_new_variables()
        outputs.append(engine.predict_step(xb))
        progbar.update(len(outputs), {})
    progbar.target = max(progbar.target, len(outputs))
    progbar.finish({})
    if not outputs:
        raise ValueError("predict(): the dataset yielded no elements")
    return np.concatenate(outputs, axis=0)
