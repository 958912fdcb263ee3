"""Sources and state: constants, placeholders, variable handles, variable reads
and writes (effect-ordered), identity and stop_gradient.

In a compiled function placeholders and variables are parameters; `read_var`
and the `assign*_var` ops take and return `!effect` tokens so no pass can drop
or reorder a side effect.
"""
from __future__ import annotations

from ..ir.types import EFFECT, TensorType, VarType
from .broadcast import fmt_shape
from .registry import EFFECT as EFFECT_KIND, ELEMENTWISE, SOURCE, ShapeError, define_op


def _const_infer(types, attrs, op="const"):
    value = attrs["value"]
    return [TensorType(attrs["dtype"], tuple(value.shape))]


const = define_op("const", SOURCE, _const_infer, reference=lambda value, dtype: value,
                  tf_name="Const", differentiable=False, extra={"constant": True})
placeholder = define_op("placeholder", SOURCE,
                        lambda types, attrs, op="placeholder": [TensorType(attrs["dtype"], attrs["shape"])],
                        tf_name="Placeholder", differentiable=False)
variable = define_op("variable", SOURCE,
                     lambda types, attrs, op="variable": [VarType(attrs["dtype"], attrs["shape"])],
                     tf_name="VariableV2", differentiable=False)


def _read_infer(types, attrs, op="read_var"):
    var = types[0]
    return [TensorType(var.dtype, var.shape), EFFECT]


def _assign_infer(types, attrs, op="assign_var"):
    var, value = types[0], types[1]
    if value.dtype != var.dtype:
        raise TypeError(f"{op}: cannot assign a {value.dtype.name} value to a {var.dtype.name} variable")
    if len(value.shape) != len(var.shape) or any(
            a is not None and b is not None and a != b for a, b in zip(value.shape, var.shape)):
        raise ShapeError(f"{op}: shapes must be equal: variable {fmt_shape(var.shape)} "
                         f"vs value {fmt_shape(value.shape)}")
    return [TensorType(var.dtype, var.shape), EFFECT]


read_var = define_op("read_var", EFFECT_KIND, _read_infer, stateful=True, tf_name="ReadVariableOp",
                     extra={"reads_var": True})
assign_var = define_op("assign_var", EFFECT_KIND, _assign_infer, stateful=True, tf_name="Assign",
                       extra={"update": "set"})
assign_add_var = define_op("assign_add_var", EFFECT_KIND, _assign_infer, stateful=True,
                           tf_name="AssignAdd", extra={"update": "add"})
assign_sub_var = define_op("assign_sub_var", EFFECT_KIND, _assign_infer, stateful=True,
                           tf_name="AssignSub", extra={"update": "sub"})


def _same_infer(types, attrs, op="identity"):
    (t,) = types
    return [TensorType(t.dtype, t.shape)]


identity = define_op("identity", ELEMENTWISE, _same_infer, reference=lambda x: x.copy(),
                     scalar=lambda s, a, x: x, tf_name="Identity", extra={"forwards": True})
stop_gradient = define_op("stop_gradient", ELEMENTWISE, _same_infer, reference=lambda x: x.copy(),
                          scalar=lambda s, a, x: x, tf_name="StopGradient", differentiable=False,
                          extra={"forwards": True})

no_op = define_op("no_op", SOURCE, lambda types, attrs, op="no_op": [], tf_name="NoOp",
                  differentiable=False)

identity.grad = lambda b, op, g: [g[0]]
identity.ulps = stop_gradient.ulps = 0      # the fuzzer's tolerance: exact (OpDef.ulps)
