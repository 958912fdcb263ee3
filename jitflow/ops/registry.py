"""The op registry: one `OpDef` record per op, holding everything about it.

| field       | used by                                                      |
| ----------- | ------------------------------------------------------------ |
| infer       | graph building, tracing, specialization, the verifier        |
| reference   | tests only (the numpy oracle); never run by Session or @jit |
| grad        | jitflow.autodiff (filled in by the autodiff issue)           |
| expand      | lowering: rewrites shape-dependent ops into ordinary ones    |
| kind + rule | codegen: `scalar` for ELEMENTWISE and CHECK, `index_map` for |
|             | LAYOUT, `reduce` for REDUCE; LIBRARY/RANDOM ops name a kernel |

Codegen dispatches on `kind`, never on an op name, except for LIBRARY ops
whose kernel is looked up by name in codegen's kernel table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

ELEMENTWISE = "elementwise"
REDUCE = "reduce"
LAYOUT = "layout"
LIBRARY = "library"
EFFECT = "effect"
RANDOM = "random"
SOURCE = "source"       # const, placeholder, variable handle
CHECK = "check"         # run-time checks (jitflow/ops/checks.py): operand passed through, run fails if broken
KINDS = (ELEMENTWISE, REDUCE, LAYOUT, LIBRARY, EFFECT, RANDOM, SOURCE, CHECK)


class ShapeError(ValueError):
    """Incompatible shapes or dtypes at graph-building time."""


@dataclass
class OpDef:
    name: str
    kind: str
    infer: Callable                      # (operand_types, attrs) -> list of result types
    reference: Callable | None = None    # (*np arrays, **attrs) -> array or tuple
    scalar: Callable | None = None       # ELEMENTWISE: (s, attrs, *scalars) -> scalar
    index_map: Callable | None = None    # LAYOUT: (out_point, operand_shape, attrs) -> operand_point
    reduce: str | None = None            # REDUCE: 'sum' | 'prod' | 'max' | 'min' | 'mean' | 'argmax' | 'argmin'
    grad: Callable | None = None         # (builder, node, grads_of_results) -> grads_of_operands
    expand: Callable | None = None       # lowering: (emit, operand values, attrs) -> result values
    differentiable: bool = True
    stateful: bool = False               # never CSE'd or folded
    test_domain: tuple = (-3.0, 3.0)
    tf_name: str = ""                    # default TF op name ("Add", "Sigmoid", ...)
    extra: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, OpDef] = {}


def define_op(name: str, kind: str, infer: Callable, **fields) -> OpDef:
    if name in _REGISTRY:
        raise ValueError(f"op {name!r} is defined twice")
    if kind not in KINDS:
        raise ValueError(f"unknown op kind {kind!r}")
    opdef = OpDef(name=name, kind=kind, infer=infer, **fields)
    _REGISTRY[name] = opdef
    return opdef


def get_op(name: str) -> OpDef:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no op named {name!r} is registered") from None


def all_ops() -> dict[str, OpDef]:
    return dict(_REGISTRY)
