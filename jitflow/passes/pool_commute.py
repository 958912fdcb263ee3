"""Max-pooling moved before the elementwise steps it commutes with: max_pool(f(x, c)) = f(max_pool(x), c)
when f is non-decreasing in x (its record's extra["nondecreasing"]: relu, add, maximum, minimum) and
every other operand c is the same across a window (it broadcasts along the rows and columns:
a bias [C]). The max of f over a window is f of the window's max, and TF's max_pool never reads a
padded cell, so the results are identical. A CNN's `max_pool(relu(conv + bias))` then runs its bias
and ReLU over the pooled map (a quarter of the cells for a 2x2 pool) in the loop that reads the pool,
and the full-size activation is never written. Applied only where f's result feeds nothing but the
pool (a training graph keeps it for the gradients, so nothing changes there)."""
from __future__ import annotations

from ..ir.core import Function, Node
from ..ops.registry import ELEMENTWISE, has_trait
from ..ops import get_op


def _uses(fn: Function) -> dict:
    count = {}
    for node in fn.nodes:
        for v in node.operands:
            count[id(v)] = count.get(id(v), 0) + 1
    for v in fn.results:
        count[id(v)] = count.get(id(v), 0) + 2        # a result is kept whatever else reads it
    return count


def _window_constant(v, rank: int) -> bool:
    """v broadcasts along axes 1 and 2 of a rank-`rank` (NHWC) operand: size 1 or absent there."""
    shape = v.shape
    if not v.is_tensor or shape is None or len(shape) > rank:
        return False
    aligned = (1,) * (rank - len(shape)) + tuple(shape)
    return aligned[1] == 1 and aligned[2] == 1


def _main_operand(node, pooled_input):
    """The index of the operand f is applied along (the one of the pool input's shape), or None."""
    if get_op(node.op).kind != ELEMENTWISE or not has_trait(node, "nondecreasing") or len(node.results) != 1:
        return None
    rank = len(pooled_input.shape)
    full = [k for k, v in enumerate(node.operands)
            if v.is_tensor and tuple(v.shape or ()) == tuple(pooled_input.shape) and v.dtype == pooled_input.dtype]
    if len(full) != 1:
        return None
    others = [v for k, v in enumerate(node.operands) if k != full[0]]
    return full[0] if all(_window_constant(v, rank) for v in others) else None


def commute_max_pools(fn: Function) -> Function:
    uses = None
    out, moved_away = [], set()
    for node in fn.nodes:
        if not has_trait(node, "max_window") or len(node.operands) != 1:
            out.append(node)
            continue
        if uses is None:
            uses = _uses(fn)
        steps = []            # the elementwise nodes moved after the pool, innermost first
        x = node.operands[0]
        while x.node is not None and uses.get(id(x), 0) == 1 and x.shape is not None:
            k = _main_operand(x.node, x)
            if k is None:
                break
            steps.append((x.node, k))
            moved_away.add(id(x.node))
            x = x.node.operands[k]
        if not steps:
            out.append(node)
            continue
        pooled_type = node.result.type
        pool = Node(node.op, [x], node.attrs, [pooled_type], loc=node.loc, scope=node.scope)
        out.append(pool)
        value = pool.result
        for i, (step, k) in enumerate(reversed(steps)):
            operands = list(step.operands)
            operands[k] = value
            moved = Node(step.op, operands, step.attrs, [pooled_type], loc=step.loc, scope=step.scope)
            if i == len(steps) - 1:          # the last step produces the old pool's value (its users keep it)
                moved.results[0] = node.result
                node.result.node = moved
            out.append(moved)
            value = moved.result
    if uses is None:
        return fn
    fn.nodes = [n for n in out if id(n) not in moved_away]     # their only reader was the pool
    return fn
