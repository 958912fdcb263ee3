"""IR data structures: SSA values, nodes, functions and modules, plus the source
location every node remembers.

A `Function` holds its nodes in a valid topological order; stateful nodes are
chained by `!effect` values, so every pass sees the order of side effects as
ordinary data edges. Nothing here imports the rest of jitflow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .types import EffectType, TensorType, VarType


@dataclass(frozen=True)
class SourceLoc:
    """The user's source line that created a node."""

    file: str
    line: int
    code: str = ""

    def __str__(self) -> str:
        import os
        return f"{os.path.basename(self.file)}:{self.line}"

    def long(self) -> str:
        text = f'File "{self.file}", line {self.line}'
        if self.code:
            text += f"\n    {self.code.strip()}"
        return text


class Value:
    """One SSA value: a function parameter or one result of a node."""

    __slots__ = ("type", "node", "index", "name")

    def __init__(self, type_, node: "Node | None" = None, index: int = 0, name: str | None = None):
        self.type = type_
        self.node = node
        self.index = index
        self.name = name

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def shape(self):
        return self.type.shape

    @property
    def is_tensor(self) -> bool:
        return isinstance(self.type, TensorType)

    def __repr__(self) -> str:
        return f"Value({self.name or '?'}: {self.type})"


class Node:
    """An operation instance: op name, operands, attributes, typed results."""

    # `regions`: the Functions a structured control-flow op owns (cond: two branches; while: condition
    # and body), empty for every other op; see jitflow/ir/regions.py
    __slots__ = ("op", "operands", "attrs", "results", "loc", "scope", "regions")

    def __init__(self, op: str, operands, attrs: dict[str, Any], result_types,
                 loc: SourceLoc | None = None, scope: str = ""):
        self.op = op
        self.operands = list(operands)
        self.attrs = dict(attrs)
        self.results = [Value(t, self, i) for i, t in enumerate(result_types)]
        self.loc = loc
        self.scope = scope
        self.regions: tuple = ()

    @property
    def result(self) -> Value:
        return self.results[0]

    def describe(self) -> str:
        where = f" at {self.loc}" if self.loc else ""
        scope = f" '{self.scope}'" if self.scope else ""
        return f"{self.op}{scope}{where}"

    def __repr__(self) -> str:
        return f"Node({self.op}, {len(self.operands)} operands)"


@dataclass
class Function:
    name: str
    params: list[Value]
    nodes: list[Node]
    results: list[Value]

    def value_types(self):
        return [v.type for v in self.results]

    def effect_params(self):
        return [p for p in self.params if isinstance(p.type, EffectType)]

    def var_params(self):
        return [p for p in self.params if isinstance(p.type, VarType)]


@dataclass
class Module:
    functions: list[Function] = field(default_factory=list)

    def get(self, name: str) -> Function:
        for fn in self.functions:
            if fn.name == name:
                return fn
        raise KeyError(name)
