"""The process side of `DataParallel`: one `Worker` lives in each Ray actor and
holds that replica's graph, Session and `GradientStep`. Its methods are what
the driver calls; nothing here imports Ray, so it is tested like any class.

A step is `step(shard, *previous_messages)`: first apply the average of the
previous step's messages (every worker's), then compute on this step's shard.
The driver never fetches gradients: it hands each worker the other workers'
message references, which Ray resolves from its object store.
"""
from __future__ import annotations

import os

import numpy as np

from ..api.array_ops import placeholder
from ..api.variables import global_variables_initializer, group
from ..framework.graph import Graph, GraphKeys
from ..session import Session
from .gradient_step import GradientStep
from .spec import TrainSpec


class Worker:
    def __init__(self, rank: int, num_workers: int):
        self.rank = rank
        self.num_workers = num_workers
        self.session = None
        self.step_impl: GradientStep | None = None
        self.saver = None
        self.model = None            # the Keras replica, for keras setups
        self.data = None             # arrays loaded once (load_data); steps then send row indices
        self._loader = None
        self._global_step = None
        self._applied_step = 0       # the last step whose messages this worker applied

    # --- set-up
    def setup_session(self, model_fn) -> dict:
        """Builds the model function's graph and the split training step; initializes the variables."""
        from ..train.saver import Saver
        graph = Graph()
        with graph.as_default():
            spec = model_fn()
            if not isinstance(spec, TrainSpec):
                raise TypeError(f"the model function must return a jitflow.distribute.TrainSpec, got "
                                f"{type(spec).__name__}")
            spec.checked(graph)
            self.session = Session(graph=graph)
            self.step_impl = GradientStep(self.session, spec.inputs, spec.loss, spec.optimizer, spec.var_list,
                                          list(spec.metrics.values()), spec.updates, spec.global_step)
            self.saver = spec.saver or Saver()
            self._global_step = spec.global_step
            self.session.run(global_variables_initializer())
        return self.describe(list(spec.metrics))

    def setup_keras(self, payload: dict) -> dict:
        """Rebuilds the driver's Sequential model from its config and compile arguments."""
        from ..keras import metrics as metrics_mod
        from ..keras import optimizers
        from ..keras.models import Sequential
        model = Sequential.from_config(payload["config"])
        if payload["graph_seed"] is not None:   # different dropout masks on each replica
            model._graph_seed = (payload["graph_seed"] + 7919 * self.rank) & 0x7FFFFFFF
        model.compile(optimizer=optimizers.deserialize(payload["optimizer"]), loss=payload["loss"],
                      metrics=payload["metrics"])
        engine = model._ensure_engine()
        metrics = [metrics_mod.get(m, model._loss, engine.outputs.shape.dims) for m in model._metric_ids]
        engine.build_training(model._layers, model.optimizer, model._loss, metrics, data_parallel=True)
        self.model, self.session, self.step_impl = model, engine.session, engine.gradient_step
        return self.describe(engine.metric_names)

    def describe(self, metric_names) -> dict:
        import socket

        from ..runtime import stats
        variables = self._variables()
        try:
            import ray
            node = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - not in a Ray worker (tests drive Worker in-process)
            node = socket.gethostname()
        return {"rank": self.rank, "pid": os.getpid(), "host": socket.gethostname(), "node": node,
                "metric_names": list(metric_names),
                "parameters": int(sum(np.prod(v.shape.as_list()) for v in self.step_impl.variables)),
                "variables": [v.op.name for v in variables], "stats": stats()}

    def stats(self) -> dict:
        from ..runtime import stats
        return stats()

    def ping(self) -> int:
        return self.rank

    # --- steps
    def load_data(self, *arrays):
        """Keeps the arrays (zero-copy views of Ray's object store on this node) for step_rows."""
        self.data = arrays

    def step(self, shard, previous_step, *previous):
        """Applies the messages of step `previous_step` (once: a retried step does not apply them
        again), then computes on `shard`."""
        self.apply(previous_step, *previous)
        return self.step_impl.compute(list(shard))

    def step_rows(self, rows, previous_step, *previous):
        return self.step([array[rows] for array in self.data], previous_step, *previous)

    def apply(self, previous_step, *previous):
        if previous and previous_step > self._applied_step:
            self.step_impl.apply(previous)
            self._applied_step = previous_step

    def forget_applied(self):
        """The driver starts numbering afresh (new state pushed, restored)."""
        self._applied_step = 0

    # --- one worker: nothing to exchange, apply at once and keep the gradients home
    def step_local(self, shard, total_rows):
        message, scalars = self.step_impl.compute(list(shard))
        self.step_impl.apply([message])
        return scalars

    def step_rows_local(self, rows, total_rows):
        return self.step_local([array[rows] for array in self.data], total_rows)

    # --- the collective exchange (exchange="gloo"): Ray's all-reduce instead of the object store
    def init_collective(self, group_name):
        from ray.util import collective
        collective.init_collective_group(self.num_workers, self.rank, backend="gloo", group_name=group_name)
        self._group = group_name

    def step_allreduce(self, shard, total_rows, by_rows=False):
        """Compute, all-reduce, apply. A worker that fails still joins the all-reduce with a failure flag
        (the buffer's last element), so its peers do not wait forever and nobody applies the step."""
        from ray.util import collective
        error = None
        try:
            arrays = [array[shard] for array in self.data] if by_rows else list(shard)
            message, scalars = self.step_impl.compute(arrays)
            buffer = self.step_impl.pack(message, total_rows, extra=1)
        except Exception as err:  # noqa: BLE001 - re-raised below, after the all-reduce
            error, buffer = err, self.step_impl.pack(None, total_rows, extra=1)
            buffer[-1] = 1
        collective.allreduce(buffer, group_name=self._group)
        if error is not None:
            raise error
        if buffer[-1] != 0:
            return None              # a peer failed: its exception reaches the driver
        self.step_impl.apply_flat(buffer[:-1])
        return scalars

    def step_rows_allreduce(self, rows, total_rows):
        return self.step_allreduce(rows, total_rows, by_rows=True)

    # --- state: every variable by name (parameters, optimizer slots, global step, moving statistics)
    def _variables(self):
        return list(self.session.graph.get_collection(GraphKeys.GLOBAL_VARIABLES))

    def read_state(self) -> dict:
        variables = self._variables()
        values = self.session.run([v.value() for v in variables])
        return {v.op.name: np.array(value) for v, value in zip(variables, values)}

    def load_state(self, state: dict):
        """Assigns every variable named in `state` in one run (missing names keep their values)."""
        if self._loader is None:
            graph = self.session.graph
            variables = self._variables()
            with graph.as_default(), graph.name_scope("data_parallel_load/"):
                inputs = [placeholder(v.dtype, v.shape.as_list(), name="value") for v in variables]
                op = group(*[v.assign(ph) for v, ph in zip(variables, inputs)])
            self._loader = (variables, inputs, op)
        variables, inputs, op = self._loader
        current = self.read_state()
        feed = {ph: np.asarray(state.get(v.op.name, current[v.op.name]), v.dtype.np)
                for v, ph in zip(variables, inputs)}
        self.session.run(op, feed)

    def save(self, path, global_step=None) -> str:
        if self.saver is None:
            raise ValueError("this trainer was set up from a Keras model: save it with model.save(path)")
        step = global_step if global_step is not None else self._global_step
        return self.saver.save(self.session, path, global_step=step)

    def restore(self, path) -> dict:
        if self.saver is None:
            raise ValueError("this trainer was set up from a Keras model: load it with "
                             "keras.models.load_model(path) inside strategy.scope()")
        self.saver.restore(self.session, path)
        return self.read_state()

    # --- Keras replicas
    def keras_state(self):
        """(weights, optimizer values in optimizer.variables() order)."""
        from .keras_strategy import optimizer_values
        return self.model.get_weights(), optimizer_values(self.model)

    def load_keras_state(self, weights, optimizer_state, learning_rate):
        from .keras_strategy import load_optimizer_values
        self.model.set_weights(weights)
        load_optimizer_values(self.model, optimizer_state)
        self.model.optimizer.learning_rate = learning_rate

    def load_keras_state_packed(self, packed):
        self.load_keras_state(*packed)

    def set_learning_rate(self, value):
        self.model.optimizer.learning_rate = value
