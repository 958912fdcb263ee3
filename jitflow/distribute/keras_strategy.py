"""`RayStrategy`: Keras `fit` on N Ray workers, TF2-style:

    strategy = tf.distribute.RayStrategy(num_workers=2)
    with strategy.scope():
        model = keras.Sequential([...])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=10)   # 64 = the GLOBAL batch, 32 rows per worker

The driver keeps the model, the epoch loop, shuffling, callbacks and the
progress bar; each worker holds a replica rebuilt from the model's config and
compile arguments. At the start of every fit the driver pushes its weights,
optimizer state and learning rate to the replicas; the data set goes to Ray's
object store once and each step sends row indices; at the end of every epoch
the replicas' weights come back to the driver model, so validation, callbacks,
evaluate, predict and save run on the driver as usual.

If a worker dies, fit raises tf.errors.UnavailableError; the driver model still
holds the weights of the last completed epoch, so calling fit again (with
initial_epoch=) resumes from there on a fresh set of workers.
"""
from __future__ import annotations

import contextlib

import numpy as np

_scopes: list = []


def get_strategy():
    """The strategy of the innermost `strategy.scope()`, or None."""
    return _scopes[-1] if _scopes else None


def has_strategy() -> bool:
    return bool(_scopes)


class RayStrategy:
    """Synchronous data parallelism for Keras models on `num_workers` Ray actors (see DataParallel for
    address, cpus_per_worker, spread, timeout and exchange)."""

    def __init__(self, num_workers=2, cpus_per_worker=1, address=None, spread=False, timeout=None,
                 exchange="auto"):
        if int(num_workers) < 1:
            raise ValueError(f"num_workers must be at least 1, got {num_workers}")
        self.num_workers = int(num_workers)
        self._options = {"cpus_per_worker": cpus_per_worker, "address": address, "spread": spread,
                         "timeout": timeout, "exchange": exchange}
        self._trainer = None
        self._trainer_key = None

    @property
    def num_replicas_in_sync(self) -> int:
        return self.num_workers

    @contextlib.contextmanager
    def scope(self):
        """Models created (or compiled) inside the scope train on this strategy's workers."""
        _scopes.append(self)
        try:
            yield self
        finally:
            _scopes.pop()

    def close(self):
        if self._trainer is not None:
            self._trainer.close()
        self._trainer = self._trainer_key = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- used by Model.fit
    def trainer_for(self, model, verbose):
        """The DataParallel holding replicas of `model` (started at the first fit, kept across fits of the
        same model and compile arguments) with the driver model's current state pushed to it."""
        from ..keras import optimizers
        from .trainer import DataParallel
        payload = {"config": model.get_config(), "optimizer": optimizers.serialize(model.optimizer),
                   "loss": model.loss, "metrics": list(model._metric_ids), "graph_seed": model._graph_seed}
        # the learning rate is pushed with the weights: changing it does not restart the workers
        key = (id(model), id(model.optimizer), repr(payload["config"]), repr(payload["loss"]),
               repr(payload["metrics"]))
        broken = self._trainer is not None and self._trainer._failure is not None
        if self._trainer is None or self._trainer_key != key or broken:   # (a lost worker: start afresh)
            self.close()
            self._trainer = DataParallel(num_workers=self.num_workers, verbose=verbose, _keras_payload=payload,
                                         **self._options)
            self._trainer_key = key
        trainer = self._trainer
        trainer._pending = None          # an interrupted fit's last gradients: superseded by the push
        state = (model.get_weights(), optimizer_values(model), model.optimizer.learning_rate)
        trainer._call_all("push the model's weights", "load_keras_state_packed", trainer._ray.put(state))
        trainer._call_all("push the model's weights", "forget_applied")
        return trainer

    def fit(self, model, x, y, fit_args: dict):
        """The distributed body of Model.fit (x, y already checked and typed)."""
        from ..keras import training
        trainer = self.trainer_for(model, fit_args["verbose"])
        trainer.load_data(x, y)
        sent = {"learning_rate": model.optimizer.learning_rate}

        def train_batch(rows):
            rate = model.optimizer.learning_rate
            if rate != sent["learning_rate"]:        # a callback changed it on the driver
                trainer.flush()
                trainer._call_all("set the learning rate", "set_learning_rate", rate)
                sent["learning_rate"] = rate
            if isinstance(rows, slice):
                rows = np.arange(rows.start, min(rows.stop, len(x)))
            values = trainer.step_rows(rows)
            return [values[name] for name in ["loss"] + trainer.metric_names]

        def sync():
            trainer.flush()
            weights, optimizer_state = trainer._get(trainer.workers[0].keras_state.remote(),
                                                    "read the replicas' weights")
            model.set_weights(weights)
            load_optimizer_values(model, optimizer_state)

        return training.run_fit(model, x, y, train_batch=train_batch, end_of_epoch=sync, **fit_args)


def optimizer_values(model) -> list:
    """The Keras model's optimizer variables (slots, Adam's powers), in optimizer.variables() order: the
    same order on the driver and on every replica, whatever the variables are named."""
    variables = model.optimizer.variables()
    return model._engine.read(variables) if variables else []


def load_optimizer_values(model, values):
    variables = model.optimizer.variables()
    if len(values) != len(variables):
        raise ValueError(f"optimizer state mismatch between the driver and the replicas: {len(values)} "
                         f"values for {len(variables)} variables")
    for variable, value in zip(variables, values):
        if tuple(np.shape(value)) != tuple(variable.shape.as_list()):
            raise ValueError(f"optimizer state mismatch for {variable.op.name}: shape {np.shape(value)} vs "
                             f"{variable.shape}")
        model._engine.load(variable, value)
