"""Structural checks of a Function: SSA definition order, effect chains, result
types against the ops' inference rules, and the function's results.

The verifier knows no ops: type checking is done only when the caller passes an
`infer(op_name, operand_types, attrs) -> list of types` callable, e.g.
`lambda op, types, attrs: get_op(op).infer(types, attrs, op)`.
"""
from __future__ import annotations

from typing import Callable

from .core import Function, Node, Value
from .printer import ValueNamer
from .regions import REGION_OPS, region_problem, regions_of
from .types import EffectType, TensorType, VarType


class IRVerifyError(ValueError):
    """A malformed function; `node` is the offending node, when there is one."""

    def __init__(self, message: str, node: Node | None = None):
        super().__init__(message)
        self.node = node


def _fail(node: Node | None, message: str):
    where = f"{node.describe()}: " if node is not None else ""
    raise IRVerifyError(where + message, node)


def types_match(actual, inferred) -> bool:
    """Same kind, dtype and rank; a None dim of `inferred` matches any dim."""
    if isinstance(inferred, EffectType) or isinstance(actual, EffectType):
        return isinstance(inferred, EffectType) and isinstance(actual, EffectType)
    if type(actual) is not type(inferred) or not isinstance(actual, (TensorType, VarType)):
        return actual == inferred
    if actual.dtype != inferred.dtype or len(actual.shape) != len(inferred.shape):
        return False
    return all(want is None or have == want for have, want in zip(actual.shape, inferred.shape))


class _Verifier:
    def __init__(self, fn: Function, infer: Callable | None):
        self.fn = fn
        self.infer = infer
        self.name = ValueNamer(fn)
        self.defined: set[Value] = set()
        self.effect_consumer: dict[Value, Node] = {}
        self.defined_later: set[Value] = {r for node in fn.nodes for r in node.results}
        self.pending_regions: list[Function] = []      # verified after this function, by the caller

    def run(self):
        for k, param in enumerate(self.fn.params):
            if param in self.defined:
                _fail(None, f"function @{self.fn.name}: parameter {k} ({self.name(param)}) is defined twice")
            self.defined.add(param)
        for node in self.fn.nodes:
            self.check_operands(node)
            self.check_results(node)
            if regions_of(node) or node.op in REGION_OPS:     # structured control flow (ir/regions.py)
                problem = region_problem(node)
                if problem:
                    _fail(node, problem)
                self.pending_regions.extend(regions_of(node))
            elif self.infer is not None:
                self.check_types(node)
        for k, value in enumerate(self.fn.results):
            if value not in self.defined:
                _fail(None, f"function @{self.fn.name}: result {k} ({self.name(value)}) "
                            "is not defined in the function")

    def check_operands(self, node: Node):
        for k, value in enumerate(node.operands):
            if value not in self.defined:
                if value in self.defined_later:
                    _fail(node, f"operand {k} ({self.name(value)}) is used before it is defined")
                _fail(node, f"operand {k} ({self.name(value)}) is not defined in the function")
            if isinstance(value.type, EffectType):
                other = self.effect_consumer.setdefault(value, node)
                if other is not node:
                    _fail(node, f"effect {self.name(value)} is already consumed by {other.describe()}; "
                                "effects must form a chain")

    def check_results(self, node: Node):
        for k, value in enumerate(node.results):
            if value in self.defined:
                _fail(node, f"result {k} ({self.name(value)}) is defined twice")
            if value.node is not node or value.index != k:
                _fail(node, f"result {k} ({self.name(value)}) does not point back to its node")
            self.defined.add(value)

    def check_types(self, node: Node):
        operand_types = [v.type for v in node.operands]
        try:
            inferred = list(self.infer(node.op, operand_types, node.attrs))
        except Exception as exc:       # the op's own message says what is wrong
            _fail(node, f"type inference failed: {type(exc).__name__}: {exc}")
        actual = [v.type for v in node.results]
        if len(inferred) != len(actual):
            _fail(node, f"has {len(actual)} results but the op's inference rule gives {len(inferred)}")
        for k, (have, want) in enumerate(zip(actual, inferred)):
            if not types_match(have, want):
                _fail(node, f"result {k} ({self.name(node.results[k])}) has type {have}, "
                            f"but the op's inference rule gives {want}")


def verify_function(fn: Function, infer: Callable | None = None) -> None:
    """Raises IRVerifyError on the first problem found; returns None when `fn` is well formed."""
    pending = [fn]
    while pending:                   # region functions are verified iteratively, never recursively
        verifier = _Verifier(pending.pop(), infer)
        verifier.run()
        pending.extend(verifier.pending_regions)
