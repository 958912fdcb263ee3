"""One worker's half of a synchronous data-parallel step: the training step
split in two executables around the exchange of gradients.

`compute` runs forward, backward, the layers' own updates (batch-norm moving
averages) and the metrics on the worker's shard and returns a `Message` (the
shard's row count, its gradients, the new values of the variables those
updates wrote). `apply` takes every worker's message, averages them in rank
order (weighted by rows, so uneven shards still give the gradient of the
global batch's mean loss) and runs the optimizer's update on the averages.
Every worker computes the same average from the same bytes in the same order,
so the replicas' parameters stay bitwise identical.

This module knows nothing of Ray: `worker.py` moves the messages.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..api.array_ops import placeholder
from ..api.variables import group
from ..framework.graph import GraphKeys

ASSIGN_OPS = ("assign_var", "assign_add_var", "assign_sub_var")


class Message(NamedTuple):
    """What one worker sends after computing on its shard (rows == 0: an empty shard, nothing to add)."""
    rows: int
    grads: list
    state: list


class GradientStep:
    """compute/apply executables for `loss` over `var_list` with `optimizer` (a jitflow.train optimizer)."""

    def __init__(self, session, inputs, loss, optimizer, var_list, metrics=(), updates=(), global_step=None):
        from ..keras.engine import dedupe_fetches
        graph = session.graph
        self.session = session
        self.inputs = list(inputs)
        with graph.as_default(), graph.name_scope("data_parallel/"):
            grads_and_vars = optimizer.compute_gradients(loss, var_list=var_list)
            present = [(g, v) for g, v in grads_and_vars if g is not None]
            if not present:
                names = [v.name for _, v in grads_and_vars]
                raise ValueError(f"No gradients provided for any variable: loss {loss.name} (created at "
                                 f"{loss.op.loc}) does not depend on any of {names}.")
            self.variables = [v for _, v in present]
            self.grad_inputs = [placeholder(v.dtype, v.shape.as_list(), name="averaged_gradient")
                                for v in self.variables]
            self.synced = written_variables(graph, updates, exclude=self.variables)
            self.state_inputs = [placeholder(v.dtype, v.shape.as_list(), name="averaged_state")
                                 for v in self.synced]
            # optimizer names (slots, Adam's powers) do not depend on this scope: they match minimize()'s
        apply = optimizer.apply_gradients(zip(self.grad_inputs, self.variables), global_step=global_step)
        with graph.as_default():
            assigns = [v.assign(ph) for v, ph in zip(self.synced, self.state_inputs)]
            self.apply_op = group(apply, *assigns, name="data_parallel/apply") if assigns else apply
            update_op = group(*updates, name="data_parallel/updates") if updates else None
            self._state_reads = [v.value() for v in self.synced]
        self.metric_count = 1 + len(metrics)
        fetches = [g for g, _ in present] + [loss] + list(metrics) + ([update_op] if update_op is not None else [])
        self._fetches, self._positions = dedupe_fetches(fetches)
        self._grad_count = len(present)
        self._flat_layout = [(v.dtype.np, tuple(v.shape.as_list())) for v in self.variables + self.synced]

    # --- compute on this worker's shard
    def compute(self, arrays) -> tuple[Message, list]:
        """(message, [loss, *metrics]) of the shard `arrays` (one array per input, same row count)."""
        rows = len(arrays[0]) if arrays else 0
        if rows == 0:
            return Message(0, [], []), []
        values = self.session.run(self._fetches, dict(zip(self.inputs, arrays)))
        if self._positions is not None:
            values = [values[i] for i in self._positions]
        grads = [np.asarray(g) for g in values[:self._grad_count]]
        scalars = [float(v) for v in values[self._grad_count:self._grad_count + self.metric_count]]
        state = [np.array(v) for v in self.session.run(self._state_reads)] if self.synced else []
        return Message(rows, grads, state), scalars

    # --- apply the average of every worker's message
    def apply(self, messages):
        present = [m for m in messages if m is not None and m.rows > 0]
        if not present:
            return
        grads, state = average(present)
        feed = dict(zip(self.grad_inputs, grads))
        feed.update(zip(self.state_inputs, state))
        self.session.run(self.apply_op, feed)


    # --- the collective (all-reduce) exchange: one flat buffer per step
    def pack(self, message: Message | None, total_rows: int, extra: int = 0) -> np.ndarray:
        """This worker's share of the sum: its gradients and state times rows/total, in one float buffer
        with `extra` zeros at the end (zeros for an empty shard or no message: every worker must still
        take part in the all-reduce)."""
        dtype = np.result_type(np.float32, *[d for d, _ in self._flat_layout])
        size = sum(int(np.prod(shape)) for _, shape in self._flat_layout)
        buffer = np.zeros(size + extra, dtype)
        if message is not None and message.rows:
            weight, at = dtype.type(message.rows / total_rows), 0
            for part in list(message.grads) + list(message.state):
                part = np.ravel(part)
                np.multiply(part, weight, out=buffer[at:at + part.size])
                at += part.size
        return buffer

    def apply_flat(self, buffer: np.ndarray):
        """Applies an all-reduced buffer of `pack`s (the row-weighted means)."""
        parts, at = [], 0
        for dtype, shape in self._flat_layout:
            size = int(np.prod(shape))
            part = buffer[at:at + size]
            if np.dtype(dtype).kind in "iub":
                part = np.rint(part)
            parts.append(part.astype(dtype, copy=False).reshape(shape))
            at += size
        feed = dict(zip(self.grad_inputs + self.state_inputs, parts))
        self.session.run(self.apply_op, feed)


def average(messages) -> tuple[list, list]:
    """Row-weighted means of the messages' gradients (in their dtype) and state (in float64, then cast):
    sum_i (rows_i / total) * g_i, summed in the order given."""
    total = sum(m.rows for m in messages)
    grads = []
    for j in range(len(messages[0].grads)):
        first = np.asarray(messages[0].grads[j])
        weight = first.dtype.type
        acc = np.multiply(first, weight(messages[0].rows / total), out=np.empty(first.shape, first.dtype))
        term = np.empty_like(acc) if len(messages) > 1 else None
        for m in messages[1:]:
            np.multiply(m.grads[j], weight(m.rows / total), out=term)
            np.add(acc, term, out=acc)
        grads.append(acc)
    state = []
    for j in range(len(messages[0].state)):
        acc = sum(np.asarray(m.state[j], np.float64) * (m.rows / total) for m in messages)
        dtype = messages[0].state[j].dtype
        state.append(np.asarray(np.rint(acc) if dtype.kind in "iub" else acc, dtype=dtype))
    return grads, state


def written_variables(graph, updates, exclude=()) -> list:
    """The graph's variables that the ops `updates` (or anything they depend on) assign to, minus `exclude`:
    the non-trainable state (batch-norm moving statistics) that replicas must agree on."""
    by_handle = {id(v._handle): v for v in graph.get_collection(GraphKeys.GLOBAL_VARIABLES)}
    excluded = {id(v) for v in exclude}
    found, seen, found_ids = [], set(), set()
    stack = [u if hasattr(u, "control_inputs") else u.op for u in updates]
    while stack:
        op = stack.pop()
        if op._id in seen:
            continue
        seen.add(op._id)
        if op._op in ASSIGN_OPS:
            variable = by_handle.get(id(op.inputs[0]))
            if variable is not None and id(variable) not in excluded | found_ids:
                found.append(variable)
                found_ids.add(id(variable))
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return sorted(found, key=lambda v: v.op.name)
