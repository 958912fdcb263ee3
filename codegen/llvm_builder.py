"""A small builder for LLVM IR text: fresh names, basic blocks, counted loops
with phi induction variables, if-blocks, and literal formatting that never
depends on the locale (floats are written as hex doubles)."""
from __future__ import annotations

import contextlib
import struct

import numpy as np

from jitflow.ir.symdim import NeedsConcreteShape, SymDim
from jitflow.ir.types import DType

LLVM_TYPES = {"float32": "float", "float64": "double", "int32": "i32", "int64": "i64", "bool": "i8",
              "float16": "half", "int8": "i8", "int16": "i16", "uint8": "i8"}


def llvm_type(dtype: DType, in_register: bool = True) -> str:
    """Register type (bool is i1) or memory type (bool is i8)."""
    if dtype.is_bool:
        return "i1" if in_register else "i8"
    return LLVM_TYPES[dtype.name]


def float_literal(value: float, dtype: DType) -> str:
    if dtype.name == "float32":
        value = struct.unpack("<f", struct.pack("<f", value))[0]
    elif dtype.name == "float16":    # LLVM takes a half constant as the double of its exact value
        with np.errstate(over="ignore"):
            value = float(np.float16(value))
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", value))[0]


def literal(value, dtype: DType) -> str:
    if dtype.is_floating:
        return float_literal(float(value), dtype)
    if dtype.is_bool:
        return "true" if value else "false"
    if isinstance(value, SymDim):       # an i64 value defined from the run's dims (codegen/symdims.py)
        if llvm_type(dtype) != "i64":
            raise NeedsConcreteShape(f"a symbolic {dtype.name} literal")
        return str(value)
    return str(int(value))


class FunctionBuilder:
    def __init__(self, name: str, params: list[str], attrs: str = "", linkage: str = "internal"):
        self.name = name
        self.params = params
        self.attrs = attrs
        self.linkage = linkage
        self.lines: list[str] = []
        self.counter = 0
        self.block = "entry"
        self.allocas: list[str] = []

    def fresh(self, hint: str = "t") -> str:
        self.counter += 1
        return f"%{hint}{self.counter}"

    def label(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}{self.counter}"

    def emit(self, text: str):
        self.lines.append("  " + text)

    def assign(self, text: str, hint: str = "t") -> str:
        name = self.fresh(hint)
        self.emit(f"{name} = {text}")
        return name

    def start_block(self, label: str):
        self.lines.append(f"{label}:")
        self.block = label

    def alloca(self, type_: str) -> str:
        name = self.fresh("slot")
        self.allocas.append(f"  {name} = alloca {type_}, align 8")
        return name

    @contextlib.contextmanager
    def loop(self, start: str, stop: str, hint: str = "i"):
        """for (i = start; i < stop; ++i): yields the i64 induction name."""
        head, body, exit_ = self.label(hint + "_head"), self.label(hint + "_body"), self.label(hint + "_exit")
        before = self.block
        index, next_index = self.fresh(hint), self.fresh(hint + "n")
        self.emit(f"br label %{head}")
        self.start_block(head)
        latch_marker = len(self.lines)
        self.lines.append(None)  # phi placeholder
        cond = self.assign(f"icmp slt i64 {index}, {stop}", "c")
        self.emit(f"br i1 {cond}, label %{body}, label %{exit_}")
        self.start_block(body)
        yield index
        self.emit(f"{next_index} = add nuw nsw i64 {index}, 1")
        latch = self.block
        self.emit(f"br label %{head}")
        self.lines[latch_marker] = f"  {index} = phi i64 [ {start}, %{before} ], [ {next_index}, %{latch} ]"
        self.start_block(exit_)

    @contextlib.contextmanager
    def if_(self, cond: str):
        then, done = self.label("then"), self.label("endif")
        self.emit(f"br i1 {cond}, label %{then}, label %{done}")
        self.start_block(then)
        yield
        self.emit(f"br label %{done}")
        self.start_block(done)

    def gep(self, elem_type: str, ptr: str, index: str) -> str:
        return self.assign(f"getelementptr inbounds {elem_type}, ptr {ptr}, i64 {index}", "p")

    def load(self, elem_type: str, ptr: str) -> str:
        return self.assign(f"load {elem_type}, ptr {ptr}", "v")

    def store(self, elem_type: str, value: str, ptr: str):
        self.emit(f"store {elem_type} {value}, ptr {ptr}")

    def render(self, ret: str = "void") -> str:
        params = ", ".join(self.params)
        body = [line for line in self.lines if line is not None]
        head = f"define {self.linkage} {ret} @{self.name}({params}) {self.attrs} {{\nentry:"
        return "\n".join([head] + self.allocas + body + ["  ret void" if ret == "void" else "", "}"]) + "\n"
