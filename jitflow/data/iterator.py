"""`tf.data.Iterator`: one-shot and initializable iterators, `from_structure`
and `make_initializer`, and `get_next`.

`get_next()` creates an `IteratorGetNext` source op (a placeholder-kind op with
one output per component, TF's static shapes); the iterator's `initializer` is a
`MakeIterator` no-op. Both are host hooks (framework/host_hooks.py): when a
Session.run needs them, the initializer builds this Session's pipeline state
(its source tensors evaluated with the run's feed_dict) and get_next pulls ONE
element per run per get_next op and feeds its arrays to the compiled
executable. Each Session has its own iterator positions, as in TF.
"""
from __future__ import annotations

import threading

from .. import errors
from ..framework import host_hooks
from ..framework.graph import Tensor, get_default_graph
from ..framework.shapes import TensorShape
from ..ir.types import TensorType, as_dtype
from . import structure
from .context import make_context, source_tensors
from .dataset import Dataset

_NOT_INITIALIZED = ("GetNext() failed because the iterator has not been initialized. Ensure that you have run the "
                    "initializer operation for this iterator before getting the next element.")


class _State:
    """One Session's position in one iterator's pipeline."""

    def __init__(self, dataset, ctx):
        self._elements = dataset._iter(ctx)
        self._lock = threading.Lock()
        self._done = False

    def next(self, op) -> tuple:
        with self._lock:
            if not self._done:
                element = next(self._elements, None)
                if element is not None:
                    return element
                self._done = True
        raise errors.OutOfRangeError(None, op, f"End of sequence\n  {errors.describe_op(op)}")


def _states(session) -> dict:
    return session.__dict__.setdefault("_data_iterators", {})


class _GetNextHook(host_hooks.HostHook):
    stage = 1

    def __init__(self, iterator, op):
        self.iterator = iterator
        self.op = op

    def __call__(self, session, feeds):
        states = _states(session)
        state = states.get(self.iterator)
        if state is None:
            dataset = self.iterator._one_shot
            if dataset is None:
                raise errors.FailedPreconditionError(None, self.op, f"{_NOT_INITIALIZED}\n  "
                                                     f"{errors.describe_op(self.op)}")
            with session._lock:
                state = states.get(self.iterator)
                if state is None:
                    state = states[self.iterator] = _State(dataset, make_context(dataset, session))
        return state.next(self.op)


class _InitializerHook(host_hooks.HostHook):
    stage = 0

    def __init__(self, iterator, dataset):
        self.iterator = iterator
        self.dataset = dataset

    def __call__(self, session, feeds):
        ctx = make_context(self.dataset, session, feeds)
        _states(session)[self.iterator] = _State(self.dataset, ctx)
        return None


class Iterator:
    """An iterator over elements of a fixed structure (`output_types`, `output_shapes`)."""

    def __init__(self, tree, types, shapes, one_shot=None, graph=None):
        self._tree = tree
        self._types = list(types)
        self._shapes = list(shapes)
        self._one_shot = one_shot
        self._graph = graph or get_default_graph()
        self._initializer = None

    @staticmethod
    def from_structure(output_types, output_shapes=None, shared_name=None, output_classes=None):
        if shared_name:
            raise errors.UnsupportedError("Iterator.from_structure: shared_name is not supported by jitflow")
        types, tree = structure.flatten(output_types)
        types = [as_dtype(t) for t in types]
        if output_shapes is None:
            shapes = [None] * len(types)
        else:
            shapes = [TensorShape(s).dims for s in structure.flatten_as(tree, output_shapes, "output_shapes")]
        return Iterator(tree, types, shapes)

    @staticmethod
    def from_string_handle(string_handle, output_types, output_shapes=None, output_classes=None):
        raise errors.UnsupportedError("Iterator.from_string_handle needs string tensors, which jitflow does not "
                                      "support; use Iterator.from_structure and make_initializer instead")

    def string_handle(self, name=None):
        raise errors.UnsupportedError("Iterator.string_handle needs string tensors, which jitflow does not support")

    # --- element description
    @property
    def output_types(self):
        return structure.pack(self._tree, self._types)

    @property
    def output_shapes(self):
        return structure.pack(self._tree, [TensorShape(s) for s in self._shapes])

    @property
    def output_classes(self):
        return structure.pack(self._tree, [Tensor] * len(self._types))

    @property
    def initializer(self):
        if self._initializer is None:
            raise ValueError("Iterator does not have an initializer.")
        return self._initializer

    def make_initializer(self, dataset, name=None):
        """An op that (re)starts this iterator on `dataset` in the session that runs it."""
        if not isinstance(dataset, Dataset):
            raise TypeError(f"make_initializer: expected a Dataset, got {type(dataset).__name__}")
        if dataset._tree != self._tree or dataset._types != self._types:
            raise TypeError(f"Expected output types {self.output_types} but got dataset with output types "
                            f"{dataset.output_types}.")
        for mine, theirs in zip(self._shapes, dataset._shapes):
            if mine is not None and (theirs is None or len(mine) != len(theirs) or any(
                    a is not None and a != b for a, b in zip(mine, theirs))):
                raise TypeError(f"Expected output shapes compatible with {self.output_shapes} but got dataset "
                                f"with output shapes {dataset.output_shapes}.")
        graph = get_default_graph()
        if graph is not self._graph:
            raise ValueError("make_initializer: the iterator belongs to another graph")
        _check_graph(dataset, graph)
        op = graph.create_op("no_op", [], {}, name=name or "MakeIterator")
        host_hooks.register(op, _InitializerHook(self, dataset))
        return op

    def get_next(self, name=None):
        """The next element as tensors; each Session.run that needs them advances the iterator once."""
        graph = get_default_graph()
        if graph is not self._graph:
            raise ValueError("get_next: the iterator belongs to another graph")
        types = [TensorType(t, s) for t, s in zip(self._types, self._shapes)]
        op = graph.create_op("placeholder", [], {"dtype": self._types[0], "shape": self._shapes[0]},
                             name=name or "IteratorGetNext", output_types=types)
        host_hooks.register(op, _GetNextHook(self, op))
        return structure.pack(self._tree, list(op.outputs))


def _check_graph(dataset, graph):
    for tensor in source_tensors(dataset):
        if tensor.graph is not graph:
            raise ValueError(f"The dataset reads tensor {tensor.name} of another graph than the iterator's")


def make_one_shot_iterator(dataset) -> Iterator:
    """An iterator that needs no initialization; it starts at the first run of its get_next in a Session."""
    graph = get_default_graph()
    _check_graph(dataset, graph)
    from ..framework.lowering import needed_ops
    tensors = source_tensors(dataset)
    if tensors and any(op._op == "placeholder" for op in needed_ops(tensors, set())):
        raise ValueError("Failed to create a one-shot iterator for a dataset. `Dataset.make_one_shot_iterator()` "
                         "does not support datasets that capture placeholders; use "
                         "`Dataset.make_initializable_iterator()` instead.")
    return Iterator(dataset._tree, dataset._types, dataset._shapes, one_shot=dataset, graph=graph)


def make_initializable_iterator(dataset, shared_name=None) -> Iterator:
    """An iterator whose `initializer` op (re)starts it; feed the dataset's placeholders when running it."""
    if shared_name:
        raise errors.UnsupportedError("make_initializable_iterator: shared_name is not supported by jitflow")
    iterator = Iterator(dataset._tree, dataset._types, dataset._shapes, graph=get_default_graph())
    iterator._initializer = iterator.make_initializer(dataset)
    return iterator
