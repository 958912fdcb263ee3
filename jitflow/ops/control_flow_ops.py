"""Op records of the structured control-flow ops `cond` and `while` (jitflow/ir/regions.py).

Graph level: the op's operands are (pred, captures...) / (loop vars..., captures...); its
traced regions (jitflow/framework/func_graph.py) sit in the private attr `_regions` and its
result types are given when it is created. Lowering (`expand`) specializes each region to the
run's operand types and emits one IR node owning the region functions. The kind is LIBRARY:
the scheduler stores every operand in a buffer and gives the op its own kernel
(jitflow/passes/region_schedule.py); `stateful` keeps CSE and folding away from it (two
conds with equal operands but different branches are different).
"""
from __future__ import annotations

from .. import errors
from ..ir.core import Node
from .registry import LIBRARY, define_op


def _infer(types, attrs, op="cond"):
    raise TypeError(f"{op}: result types come from its regions (give output_types when creating it)")


def _expand(emit, operands, attrs):
    from ..framework.func_graph import lower_region, regions_of
    op = emit.op
    kind = op._op
    region_inputs = operands[1:] if kind == "cond" else operands
    types = [v.type for v in region_inputs]
    names = ("then", "else") if kind == "cond" else ("cond", "body")
    regions = tuple(lower_region(r, types, n, op) for r, n in zip(regions_of(op), names))
    if kind == "cond":
        result_types = regions[0].value_types()
        if regions[1].value_types() != result_types:
            raise errors.InvalidArgumentError(
                None, op, f"cond: the branches return different types ({', '.join(map(str, result_types))}) vs "
                f"({', '.join(map(str, regions[1].value_types()))})\n  {errors.describe_op(op)}")
    else:
        result_types = [v.type for v in operands[:len(op.outputs)]]
        if regions[1].value_types() != result_types:
            raise errors.InvalidArgumentError(
                None, op, f"while_loop: the body changes the shape of a loop variable: it enters as "
                f"({', '.join(map(str, result_types))}) and leaves as "
                f"({', '.join(map(str, regions[1].value_types()))}); carried shapes must stay the same in "
                f"every iteration\n  {errors.describe_op(op)}")
    bound = op.attrs.get("_bound_operand")
    if bound is not None and attrs.get("maximum_iterations", -1) < 0:
        limit = _static_bound(operands[bound])     # maximum_iterations=tf.shape(x)[1]: constant in this run
        if limit is not None:
            attrs = dict(attrs, maximum_iterations=limit)
    node = Node(kind, operands, attrs, result_types, loc=op.loc, scope=op.name)
    node.regions = regions
    emit.nodes.append(node)
    return node.results


def _static_bound(value):
    """The loop bound `value` as a non-negative int when specialization made it a constant, else None."""
    node = getattr(value, "node", None)
    if node is None or node.op != "const":
        return None
    return max(int(node.attrs["value"]), 0)


def _grad(builder, op, grads):
    from ..api import control_flow_grad
    return control_flow_grad.gradient(builder, op, grads)


cond = define_op("cond", LIBRARY, _infer, expand=_expand, grad=_grad, stateful=True, tf_name="If")
while_ = define_op("while", LIBRARY, _infer, expand=_expand, grad=_grad, stateful=True, tf_name="While",
                   extra={"loop": True})     # scheduler / codegen: a loop over its body region, not a branch
