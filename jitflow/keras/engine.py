"""A model's graph machinery: its own `tf.Graph` and `tf.Session`, the input
and label placeholders (batch dimension None), the inference forward
(training=False), the training step (forward with training=True, loss with the
regularization penalties, metrics, the optimizer update and the layers'
updates, grouped into ONE fetch list) and the evaluation step.

Each step is one `Session.run`, so one native executable per (step kind,
batch size): the first call of a signature compiles, later calls only launch.
"""
from __future__ import annotations

import numpy as np

from ..api import math_ops as m
from ..api.array_ops import placeholder
from ..api.variables import group, variables_initializer
from ..framework.graph import Graph, GraphKeys
from ..ir.types import float32, int32
from ..session import Session


class Engine:
    def __init__(self, graph_seed=None):
        self.graph = Graph()
        self.graph.seed = graph_seed
        self.session = Session(graph=self.graph)
        self._initialized: set[int] = set()
        self.x = None                 # input placeholder
        self.outputs = None           # inference forward output
        self.layer_outputs = []       # inference output of each layer (for summary)
        self.train_fetches = None     # [step op, total loss, *metrics]
        self.eval_fetches = None      # [total loss, *metrics]
        self.y = None
        self.metric_names: list[str] = []
        self.gradient_step = None     # jitflow.distribute workers: the split compute/apply step

    # --- forward (inference)
    def build_forward(self, layers, batch_input_shape):
        with self.graph.as_default():
            self.x = placeholder(float32, batch_input_shape, name="input")
            self.layer_outputs = []
            out = self.x
            for layer in layers:
                out = self._call_layer(layer, out, training=False)
                self.layer_outputs.append(out)
            self.outputs = out
        self.initialize_new_variables()

    def extend_forward(self, layer):
        """A layer added to a built model: build it on the current output."""
        with self.graph.as_default():
            self.outputs = self._call_layer(layer, self.outputs, training=False)
            self.layer_outputs.append(self.outputs)
        self.train_fetches = self.eval_fetches = None
        self.initialize_new_variables()

    def _call_layer(self, layer, inputs, training):
        layer._engine = self
        return layer._call_in_graph(inputs, training)

    def forward(self, layers, training):
        out = self.x
        for layer in layers:
            out = self._call_layer(layer, out, training)
        return out

    # --- training and evaluation steps
    def build_training(self, layers, optimizer, loss, metrics, data_parallel=False):
        """metrics: keras.metrics.Metric objects (already resolved for this loss and output).

        data_parallel=True (a jitflow.distribute worker): instead of the one fused step, a
        GradientStep whose gradients are averaged across workers before they are applied."""
        with self.graph.as_default():
            with self.graph.name_scope("training/"):
                self.y = self._label_placeholder(loss)
                outputs = self.forward(layers, training=True)
                penalty = self._penalty(layers)
                total = self._total(loss(self.y, outputs), penalty)
                metric_values = [metric.batch_value(self.y, outputs) for metric in metrics]
                tf_optimizer = optimizer.build(self.session)
                var_list = [v for layer in layers for v in layer.trainable_weights]
                if not var_list:
                    raise ValueError("The model has no trainable weights to optimize.")
                updates = [u for layer in layers if layer.trainable for u in layer.updates]
                if data_parallel:
                    from ..distribute.gradient_step import GradientStep
                    self.gradient_step = GradientStep(self.session, [self.x, self.y], total, tf_optimizer,
                                                      var_list, metric_values, updates)
                    self.train_fetches = [self.gradient_step.apply_op, total] + metric_values
                else:
                    minimize = tf_optimizer.minimize(total, var_list=var_list)
                    step = group(minimize, *updates, name="train_step")
                    self.train_fetches = [step, total] + metric_values
            with self.graph.name_scope("evaluation/"):
                total_eval = self._total(loss(self.y, self.outputs), penalty)
                self.eval_fetches = [total_eval] + [metric.batch_value(self.y, self.outputs) for metric in metrics]
        self.metric_names = [metric.name for metric in metrics]
        self._train_plan = dedupe_fetches(self.train_fetches)
        self._eval_plan = dedupe_fetches(self.eval_fetches)
        self.initialize_new_variables()

    def _label_placeholder(self, loss):
        if getattr(loss, "kind", None) == "sparse":
            return placeholder(int32, (None,), name="labels")
        return placeholder(float32, tuple(self.outputs.shape.dims), name="labels")

    @staticmethod
    def _penalty(layers):
        penalties = [p for layer in layers for p in layer.losses]
        if not penalties:
            return None
        return penalties[0] if len(penalties) == 1 else m.add_n(penalties, name="regularization")

    @staticmethod
    def _total(loss_value, penalty):
        return loss_value if penalty is None else m.add(loss_value, penalty, name="total_loss")

    # --- running
    def train_step(self, xb, yb):
        """[total loss, *metrics] of one batch (values before the update), after one update."""
        fetches, positions = self._train_plan
        values = self.session.run(fetches, {self.x: xb, self.y: yb})
        return [values[i] for i in positions[1:]] if positions else values[1:]

    def eval_step(self, xb, yb):
        fetches, positions = self._eval_plan
        values = self.session.run(fetches, {self.x: xb, self.y: yb})
        return [values[i] for i in positions] if positions else values

    def predict_step(self, xb):
        return self.session.run(self.outputs, {self.x: xb})

    # --- variables
    def initialize_new_variables(self):
        new = [v for v in self.graph.get_collection(GraphKeys.GLOBAL_VARIABLES) if id(v) not in self._initialized]
        if not new:
            return
        with self.graph.as_default():
            init = variables_initializer(new, name="init")
        self.session.run(init)
        self._initialized.update(id(v) for v in new)

    def read(self, variables) -> list[np.ndarray]:
        if not variables:
            return []
        self.initialize_new_variables()
        return [np.array(v) for v in self.session.run([v.value() for v in variables])]

    def load(self, variable, value):
        self.initialize_new_variables()
        variable.load(np.asarray(value, variable.dtype.np), self.session)


def _attr_key(value):
    if isinstance(value, np.ndarray):
        return (value.shape, value.dtype.str, value.tobytes())
    return repr(value)


def _structure(tensor, memo, canon):
    """A small int naming how `tensor` is computed (op, attributes, inputs' names; hash-consed, so
    equal computations get equal ints). Inputs, variables and stateful ops are named by the op itself.
    Iterative: deep models do not hit the recursion limit."""
    stack = [tensor.op]
    while stack:
        op = stack[-1]
        if op._id in memo:
            stack.pop()
            continue
        if op._op in ("placeholder", "variable") or op._op.startswith(("random", "assign", "read_var")):
            memo[op._id] = canon.setdefault(("op", op._id), len(canon))
            stack.pop()
            continue
        pending = [t.op for t in op.inputs if t.op._id not in memo]
        if pending:
            stack.extend(pending)
            continue
        key = (op._op, tuple(sorted((k, _attr_key(v)) for k, v in op.attrs.items())),
               tuple((memo[t.op._id], t.value_index) for t in op.inputs))
        memo[op._id] = canon.setdefault(key, len(canon))
        stack.pop()
    return memo[tensor.op._id], tensor.value_index


def dedupe_fetches(fetches):
    """(unique fetches, position of each original fetch or None when all are unique).

    Fetching two tensors that compute the same thing (loss='mse' with metrics=['mse']) makes the
    compiler merge them into one value returned twice, which codegen does not handle: fetch it once."""
    memo, canon, unique, positions, seen = {}, {}, [], [], {}
    for fetch in fetches:
        key = ("operation", fetch._id) if not hasattr(fetch, "value_index") else _structure(fetch, memo, canon)
        if key not in seen:
            seen[key] = len(unique)
            unique.append(fetch)
        positions.append(seen[key])
    return (unique, None) if len(unique) == len(fetches) else (unique, positions)
