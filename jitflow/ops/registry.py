"""The op registry: one `OpDef` record per op, holding everything about it.

| field       | used by                                                      |
| ----------- | ------------------------------------------------------------ |
| infer       | graph building, tracing, specialization, the verifier        |
| reference   | tests only (the numpy oracle); never run by Session or @jit |
| grad        | jitflow.autodiff (filled in by the autodiff issue)           |
| expand      | lowering: rewrites shape-dependent ops into ordinary ones    |
| kind + rule | codegen: `scalar` for ELEMENTWISE and CHECK, `index_map` for |
|             | LAYOUT, `reduce` for REDUCE; library kernels by `extra`:     |
| extra       | "kernel": the key of the op's kernel in the kernel table     |
|             | "scratch": (node) -> TensorType of the kernel's workspace    |
|             | temp, or None; "update": set/add/sub of an assignment;       |
|             | traits the scheduler, simplifier and codegen may assume:     |
|             | "writes_slabs", "constant", "reads_var", "forwards", "gemm"  |
|             | (transposed operands by flag, alpha/beta epilogue), "mul",   |
|             | "transpose", "reshape", "broadcast", "cast", "cheap" (recom- |
|             | puted by each reader), "loop" (a while region op);           |
|             | "shape_operand": (position, attr): the graph form's shape    |
|             | operand the IR node holds as attr (autodiff's rule adapter)  |
| ulps        | the fuzzer's tolerance: 0 = correctly rounded (bit-exact on  |
|             | exact operands), n = n units in the last place, None = the   |
|             | fuzzer's generic bound (jitflow/fuzz/bounds.py)              |

The kernel table. Codegen and the scheduler dispatch on `kind` and on the
record's `extra` fields, never on an op name (tests/test_no_name_dispatch.py
checks it). An op whose work is a library kernel (GEMM, inversion,
convolution, pooling, gather, concat's slab copies, ...) names it by
`extra["kernel"]`, a key. jitflow.ops must not import codegen (the import
rules, tests/test_import_rules.py), so the emitters come the other way:
codegen/kernel_table.py registers them under (target, key) with
`register_kernel` when codegen/cpu.py or codegen/gpu.py is imported, and those
two look them up with `kernel_emitter(node, target)`. Per target, every emitter has one signature:
- "cpu": (name, schedule, kernel, declarations, blas) ->
  (function text, buffers, returns_status, RangeInfo or None);
- "gpu": (gpu_module, name, schedule, kernel) -> None.
The scheduler gives such a node a buffer and a "library" kernel, plus a
workspace temp of the type `extra["scratch"](node)` returns.
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
    ulps: int | None = None              # the fuzzer's tolerance (see the table above)
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


# ---- the kernel table: (target, key) -> emitter, filled by codegen at import --------------------
TARGETS = ("cpu", "gpu")
_KERNELS: dict[tuple[str, str], Callable] = {}


def register_kernel(target: str, key: str, emitter: Callable) -> Callable:
    """Codegen registers the emitter of library kernel `key` for `target` (see the docstring)."""
    if target not in TARGETS:
        raise ValueError(f"unknown kernel target {target!r}")
    if _KERNELS.get((target, key), emitter) is not emitter:
        raise ValueError(f"a {target} kernel {key!r} is registered twice")
    _KERNELS[(target, key)] = emitter
    return emitter


def kernel_key(op: str) -> str | None:
    """The kernel-table key op `op`'s record names, or None (its code is a fused loop)."""
    return get_op(op).extra.get("kernel")


def kernel_emitter(node, target: str) -> Callable | None:
    """The `target` emitter of the library kernel computing `node`, or None."""
    key = kernel_key(node.op)
    return None if key is None else _KERNELS.get((target, key))


def scratch_type(node):
    """The workspace temp (a TensorType) the kernel of `node` needs, from its record, or None."""
    rule = get_op(node.op).extra.get("scratch")
    return None if rule is None else rule(node)


def has_trait(node, trait: str) -> bool:
    """Whether `node`'s op record sets `extra[trait]` (the scheduler's and simplifier's facts)."""
    return node is not None and bool(get_op(node.op).extra.get(trait))


# The IR parser checks op names against this table; jitflow.ir imports nothing of the project, so the
# registry hands its (live) table over.
from ..ir.parser import set_default_op_table  # noqa: E402

set_default_op_table(_REGISTRY)
