"""The IR side of the gradient rules: `IRBuilder`, the op constructors the per-op `grad` rules of the
op records use (the same surface as jitflow/autodiff.py `GradBuilder`, which it extends), creating IR
`Node`s instead of graph ops, and `IROp`, the small adapter that shows an IR node to a rule the way a
graph Operation looks (inputs, outputs, attrs, type, name, loc).

Every node goes through a lowering emitter (jitflow/framework/lowering.py `_Emitter`): an op with an
`expand` rule (sum_to_shape, broadcast_grad, reshape_like, fill_like, ...) is expanded on the spot with
the concrete (or symbolic) shapes of the run, every other op gets its result types from its record's
`infer` rule. So the rules run unchanged against IR values, and there is one set of them.
"""
from __future__ import annotations

import numpy as np

from ..ops import get_op


class _Site:
    """Where nodes built without a graph op (hand-built IR functions) say they come from."""

    type = _op = "gradients"
    attrs: dict = {}
    inputs: list = []

    def __init__(self, name: str = "gradients", loc=None):
        self.name = name
        self.loc = loc


def make_emitter(nodes: list, op=None):
    """A lowering emitter appending to `nodes`; `op` is the graph op the nodes are attributed to."""
    from ..framework.lowering import _Emitter
    return _Emitter(nodes, op if op is not None else _Site())


def _builder_base():
    from ..autodiff import GradBuilder
    return GradBuilder


class IRTensor:
    """An IR value seen as a graph Tensor by a rule (dtype, static `shape` as a TensorShape whose
    run-time (symbolic) dims read as unknown); builders unwrap it (`unwrap`)."""

    __slots__ = ("ir",)

    def __init__(self, value):
        self.ir = value

    @property
    def dtype(self):
        return self.ir.type.dtype

    @property
    def _type(self):
        return self.ir.type

    @property
    def shape(self):
        from ..framework.shapes import TensorShape
        from ..ir.symdim import is_symbolic
        return TensorShape([None if is_symbolic(d) else d for d in self.ir.type.shape])

    def get_shape(self):
        return self.shape

    @property
    def name(self):
        return self.ir.name or "?"

    @property
    def op(self):
        """The node computing it, as a graph Operation looks (static shape-value readers use it)."""
        return IROp(self.ir.node) if self.ir.node is not None else _Site(self.name)


def unwrap(value):
    return value.ir if type(value) is IRTensor else value


class IROp:
    """An IR node seen as the forward op of a gradient rule."""

    __slots__ = ("node", "operands")

    def __init__(self, node, operands=None):
        self.node = node
        self.operands = node.operands if operands is None else operands

    @property
    def inputs(self):
        return [IRTensor(v) for v in self.operands]

    @property
    def outputs(self):
        return [IRTensor(v) for v in self.node.results]

    @property
    def attrs(self):
        return self.node.attrs

    @property
    def _op(self):
        return self.node.op

    type = _op

    @property
    def name(self):
        return self.node.scope or self.node.op

    @property
    def loc(self):
        return self.node.loc

    graph = None


def new_builder(emit):
    """An IRBuilder emitting through `emit` (an emitter from `make_emitter` or the lowering's own)."""
    return _builder_class()(emit)


_CLASS = []


def _builder_class():
    if _CLASS:
        return _CLASS[0]
    base = _builder_base()

    class IRBuilder(base):
        """GradBuilder's constructors over IR values: `op` expands or infers, `const` is an IR const."""

        def __init__(self, emit):
            self.emit = emit
            self.nodes = emit.nodes
            self.graph = None

        def op(self, name, inputs, attrs=None):
            opdef = get_op(name)
            attrs = dict(attrs or {})
            inputs = [unwrap(v) for v in inputs]
            if opdef.expand is not None:
                return IRTensor(opdef.expand(self.emit, inputs, attrs)[0])
            return IRTensor(self.emit(name, inputs, attrs))

        def shape_const(self, dims):
            """An int32 shape tensor (the graph form of an op whose IR node holds it as an attr)."""
            from ..ir.types import int32
            array = np.array([int(d) for d in dims], dtype=np.int32)
            array.setflags(write=False)
            return IRTensor(self.emit("const", [], {"value": array, "dtype": int32}))

        def const(self, value, like):
            array = np.array(value, dtype=like.dtype.np)
            array.setflags(write=False)
            return IRTensor(self.emit("const", [], {"value": array, "dtype": like.dtype}))

    _CLASS.append(IRBuilder)
    return IRBuilder
