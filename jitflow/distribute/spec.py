"""`TrainSpec`: what a model function returns so that `DataParallel` can run its
training step on every worker (the inputs fed per step, a batch-mean loss, the
optimizer, and optionally metrics, extra updates, the global step and a Saver)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..framework.graph import GraphKeys, Tensor


@dataclass
class TrainSpec:
    """A training step for `jitflow.distribute.DataParallel`, built by the model function on each worker.

    inputs:      the placeholders fed each step, in the order of `trainer.step(*arrays)`; their first
                 dimension is the batch (the global batch is split along it).
    loss:        a scalar that is a MEAN over the batch rows (tf.reduce_mean of per-example losses):
                 averaging the workers' gradients, weighted by their rows, then gives the gradient of the
                 global batch's loss.
    optimizer:   a tf.train optimizer (not yet applied; the trainer calls compute/apply_gradients).
    metrics:     {name: scalar tensor}, batch means reported by `step` next to the loss.
    updates:     extra ops run with every gradient computation (default: the graph's UPDATE_OPS, e.g.
                 batch-norm moving averages); the variables they write are averaged across workers.
    global_step: incremented once per step (as `minimize(global_step=...)` does).
    saver:       the Saver checkpoints use (default: tf.train.Saver() over every variable).
    """
    inputs: list
    loss: Tensor
    optimizer: object
    var_list: list | None = None
    metrics: dict = field(default_factory=dict)
    updates: list | None = None
    global_step: object = None
    saver: object = None

    def checked(self, graph) -> TrainSpec:
        """Validates the spec against the worker's graph (clear errors before anything compiles)."""
        from ..train.optimizers import Optimizer
        if isinstance(self.inputs, Tensor):
            self.inputs = [self.inputs]
        self.inputs = list(self.inputs)
        if not self.inputs:
            raise ValueError("TrainSpec.inputs is empty: list the placeholders fed each step, e.g. [X, y]")
        for tensor in self.inputs:
            if not isinstance(tensor, Tensor) or tensor.op._op != "placeholder":
                raise TypeError(f"TrainSpec.inputs must be placeholders, got {tensor!r}")
            if tensor.graph is not graph:
                raise ValueError(f"TrainSpec input {tensor.name} belongs to another graph: build everything "
                                 f"inside the model function")
            if tensor.shape.ndims == 0:
                raise ValueError(f"TrainSpec input {tensor.name} is a scalar: inputs are split along their "
                                 f"first (batch) dimension")
        if not isinstance(self.loss, Tensor) or self.loss.graph is not graph:
            raise TypeError(f"TrainSpec.loss must be a scalar tensor of the model function's graph, got "
                            f"{self.loss!r}")
        if self.loss.shape.ndims not in (0, None):
            raise ValueError(f"TrainSpec.loss must be a scalar (a mean over the batch), got shape "
                             f"{self.loss.shape}")
        if not isinstance(self.optimizer, Optimizer):
            raise TypeError(f"TrainSpec.optimizer must be a tf.train optimizer (not its minimize() op), got "
                            f"{self.optimizer!r}")
        self.metrics = dict(self.metrics or {})
        if "loss" in self.metrics:
            raise ValueError("TrainSpec.metrics may not be named 'loss' (the loss is always reported)")
        if self.updates is None:
            self.updates = list(graph.get_collection(GraphKeys.UPDATE_OPS))
        return self
