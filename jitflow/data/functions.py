"""User functions of `Dataset.map` / `Dataset.filter`, traced ONCE into a
private graph (placeholders with the element's dtypes and static shapes, as TF
traces them) and executed per element by a private Session: compiled code,
specialized and cached per element shape like any Session.run."""
from __future__ import annotations

import numpy as np

from .. import errors
from ..framework.graph import Graph, Tensor
from . import structure


class TracedFunction:
    """`func` traced on the element structure (tree, types, shapes); `outputs` are its result tensors."""

    def __init__(self, func, tree, types, shapes, what: str, seed=None):
        from ..api.array_ops import placeholder
        from ..api.convert import convert_to_tensor
        self.graph = Graph()
        self.graph.seed = seed
        self.what = what
        with self.graph.as_default():
            self.inputs = [placeholder(t, s, name=f"arg{i}") for i, (t, s) in enumerate(zip(types, shapes))]
            element = structure.pack(tree, self.inputs)
            try:
                result = func(*element) if tree[0] == "tuple" else func(element)
            except ValueError as exc:
                if "must be from the same graph" in str(exc):
                    raise errors.UnsupportedError(
                        f"{what}: the function uses a tensor of the outer graph; jitflow traces it into its own "
                        f"graph, so captured tensors are not supported (use Python or numpy constants, or pass "
                        f"the value through the dataset)") from None
                raise
            if isinstance(result, list):
                result = tuple(result)
            leaves, self.tree = structure.flatten(result)
            if any(leaf is None for leaf in leaves):
                raise TypeError(f"{what}: the function returned None")
            self.outputs = [convert_to_tensor(v) for v in leaves]
        for t in self.outputs:
            if not isinstance(t, Tensor) or t.graph is not self.graph:
                raise errors.UnsupportedError(f"{what}: the function returned a tensor of another graph")
        self.types = [t.dtype for t in self.outputs]
        self.shapes = [t.shape.dims for t in self.outputs]
        self._session = None

    def __call__(self, element: tuple) -> tuple:
        if self._session is None:
            from ..session import Session
            self._session = Session(graph=self.graph)
        values = self._session.run(self.outputs, dict(zip(self.inputs, element)))
        return tuple(np.asarray(v) for v in values)
