"""The fused schedule of a function: which values get buffers, and the ordered
kernels (loop nests and library calls) that fill them. Produced by
`jitflow.passes.fusion`, consumed by codegen and the runtime.

Buffers live in ABI slots: the compiled entry point receives one pointer per
slot. Temps all live in one workspace slot at fixed byte offsets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .core import Value
from .types import DType

PARAM, VAR, CONST, OUTPUT, WORKSPACE = "param", "var", "const", "output", "workspace"


@dataclass
class Buffer:
    id: int
    kind: str                  # param | var | const | output | temp
    dtype: DType
    shape: tuple
    slot: int = -1             # ABI slot; temps use the workspace slot
    offset: int = 0            # byte offset inside the workspace (temps)
    ref: Any = None            # param index, var name, const array or output index

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n * self.dtype.itemsize


@dataclass
class Kernel:
    kind: str                  # 'loop' | 'reduce' | 'library' (the record's extra['kernel']) | 'random' | 'check'
    root: Value                # the value this kernel computes
    out: Buffer
    update: str = "set"        # 'set' | 'add' | 'sub' (variable updates in place)
    expr: Value | None = None  # the value evaluated into `out` (root's operand for assigns)
    scratch: Buffer | None = None  # extra temp a library kernel needs (its record's extra['scratch'])
    group: int | None = None       # row group: consecutive kernels sharing one loop over rows
    alpha: float = 1.0             # matmul into a variable: out = beta * out + alpha * a @ b
    beta: float = 0.0

    def describe(self) -> str:
        node = self.root.node
        return f"{self.kind} -> buffer {self.out.id} ({node.op if node else 'param'})"


@dataclass
class Schedule:
    kernels: list[Kernel]
    buffers: list[Buffer]
    value_buffer: dict[int, Buffer]            # id(value) -> buffer holding it
    slots: list[Buffer | None] = field(default_factory=list)
    workspace_bytes: int = 0
    var_of_value: dict[int, str] = field(default_factory=dict)
    output_aliases: dict[int, int] = field(default_factory=dict)   # result -> earlier result, same value
