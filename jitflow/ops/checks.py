"""Run-time checks: ops that pass their integer operand through unchanged and make
the run fail with `InvalidArgumentError` when an element breaks a condition, where
TF raises and plain compiled arithmetic would give a silently wrong answer.

| op              | condition          | guards                                            |
| --------------- | ------------------ | ------------------------------------------------- |
| `check_range`   | lo <= x < hi       | sparse softmax cross-entropy labels (1-based ...) |
| `check_nonzero` | x != 0             | integer floordiv / floormod divisors              |

How a check runs (kind CHECK, see jitflow/ops/registry.py):
- the scheduler (jitflow/passes/fusion.py) gives every check value its own buffer and
  its own single-threaded kernel of kind "check", so the check runs once per element,
  before any consumer, and never inside another kernel;
- codegen (codegen/checks.py, codegen/ptx_checks.py) builds the element with the op's
  `scalar` rule, `s.check(ok, x)`: the vectorized loop ORs `not ok` into a flag (no
  branch per element) and tests it once after the loop; only then a scalar pass finds
  the first failing element, stores its value in the run's detail word and the kernel
  returns its status code, CHECK_STATUS_BASE + the kernel's position in the schedule;
- the CPU entry point returns that status at once (later kernels, variable updates
  included, do not run; on the GPU the rest of the run's launches still execute) and
  runtime/checks.py raises InvalidArgumentError with the op's message, the node's
  name and the user's source line.

`extra["predicate"](s, attrs, x)` is the condition as a scalar DAG; `extra["message"]
(attrs, value)` the error text. An optional second operand, a bool scalar, says whether
the check is on (false in a tf.cond branch that is not taken). Checks are never folded
at specialization (only ELEMENTWISE/LAYOUT/REDUCE ops are) nor simplified away.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import INTS, TensorType, bool_, int8, int16, uint8
from .broadcast import check_dtype
from .registry import CHECK, define_op

CHECK_STATUS_BASE = 64     # status codes below this are the library kernels' (1: not invertible, 2: gather)
CHECKED_DTYPES = INTS + (int8, int16, uint8)


def status_code(position: int) -> int:
    """The status a failing check kernel returns: its position in the schedule, offset."""
    return CHECK_STATUS_BASE + position


def _infer(types, attrs, op="check"):
    """(x) or (x, active): `active`, a bool scalar, turns the check off when false (a tf.cond branch
    that is not taken: both branches are computed, only the taken one may fail)."""
    t = types[0]
    check_dtype(t, CHECKED_DTYPES, op)
    if len(types) > 2 or (len(types) == 2 and (types[1].dtype != bool_ or types[1].shape not in ((), None))):
        raise TypeError(f"{op}: takes the checked tensor and an optional bool scalar (whether the check is on)")
    return [TensorType(t.dtype, t.shape)]


class CheckFailed(ValueError):
    """Raised by the numpy references (tests only): the same condition the compiled check tests."""


def _bounds(attrs, dtype):
    """(lo, hi) limited to what the dtype can hold: a bound outside it (or no `lo`) is always met."""
    info = np.iinfo(dtype.np)
    lo = attrs.get("lo")
    lo = lo if lo is not None and lo > info.min else None
    hi = attrs["hi"] if attrs["hi"] <= info.max else None
    return lo, hi


def range_predicate(s, attrs, x):
    """lo <= x < hi as a scalar bool (the bounds the dtype cannot exceed are left out); also gather_ops.py."""
    lo, hi = _bounds(attrs, x.dtype)
    tests = ([s.cmp("ge", x, s.const(lo, x.dtype))] if lo is not None else []) + \
            ([s.cmp("lt", x, s.const(hi, x.dtype))] if hi is not None else [])
    if not tests:
        return s.const(True, bool_)
    return tests[0] if len(tests) == 1 else s.and_(tests[0], tests[1])


def _range_message(attrs, value) -> str:
    return (f"Received a {attrs.get('what', 'value')} value of {value} which is outside the valid range of "
            f"[{attrs['lo']}, {attrs['hi']}).")


def _range_reference(x, active=True, *, lo, hi, **attrs):
    bad = ((x < lo) | (x >= hi)) & np.asarray(active, bool)
    if np.any(bad):
        raise CheckFailed(_range_message(dict(attrs, lo=lo, hi=hi), x.reshape(-1)[np.argmax(bad.reshape(-1))]))
    return x


def _nonzero_reference(x, active=True, **attrs):
    if np.any((x == 0) & np.asarray(active, bool)):
        raise CheckFailed(_nonzero_message(attrs, 0))
    return x


def _nonzero_message(attrs, value) -> str:
    return "Integer division by zero"


def _pass_through_grad(b, op, g):
    return [g[0]] + [None] * (len(op.inputs) - 1)


def _scalar(predicate):
    def rule(s, attrs, x, active=None):
        ok = predicate(s, attrs, x)
        if active is not None:
            ok = s.or_(ok, s.not_(active))
        return s.check(ok, x)
    return rule


def _nonzero_predicate(s, attrs, x):
    return s.cmp("ne", x, s.const(0, x.dtype))


# attrs: lo, hi (ints); what ("label"): the message's noun; op_type: the TF op whose input this is
check_range = define_op("check_range", CHECK, _infer, reference=_range_reference, scalar=_scalar(range_predicate),
                        grad=_pass_through_grad, differentiable=False, tf_name="CheckRange",
                        extra={"predicate": range_predicate, "message": _range_message})
# attrs: op_type ("FloorDiv", "FloorMod"): the TF op whose divisor this is
check_nonzero = define_op("check_nonzero", CHECK, _infer, reference=_nonzero_reference,
                          scalar=_scalar(_nonzero_predicate), grad=_pass_through_grad, differentiable=False,
                          tf_name="CheckNonzero",
                          extra={"predicate": _nonzero_predicate, "message": _nonzero_message})


def is_check(op_name: str) -> bool:
    from .registry import get_op
    return get_op(op_name).kind == CHECK
