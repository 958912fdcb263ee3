"""conv2d followed by a max_pool of non-overlapping windows becomes one op, when the pool is the
convolution's only reader (its record's extra["fused_max_pool"] names the fused op;
jitflow/ops/conv.py `fusable_with_max_pool` says which shapes its kernel takes). Runs after
jitflow/passes/pool_commute.py has moved the pool past the bias and ReLU, so a CNN's
`max_pool(relu(conv + b))` is `relu(pooled + b)`; the fused op then takes in the per-channel bias
add and the ReLU that are the pooled map's only readers (records with extra["epilogue"] "bias" /
"relu"), so the layer is one kernel: `conv2d_max_pool(x, f, b, activation="relu")`."""
from __future__ import annotations

from ..ir.core import Function, Node
from ..ops import get_op
from ..ops.conv import fusable_with_max_pool
from ..ops.registry import has_trait


def _readers(fn: Function) -> dict:
    readers = {}
    for node in fn.nodes:
        for v in node.operands:
            readers.setdefault(id(v), []).append(node)
    for v in fn.results:
        readers.setdefault(id(v), []).append(None)       # a result: read from outside
    return readers


def _only_reader(readers, value):
    nodes = readers.get(id(value), [])
    return nodes[0] if len(nodes) == 1 and nodes[0] is not None else None


def _epilogue(node, kind):
    return node is not None and get_op(node.op).extra.get("epilogue") == kind and len(node.results) == 1


def _absorb(readers, value, channels, dtype):
    """(bias value or None, activation or None, the nodes absorbed) of the steps reading `value`."""
    bias, activation, absorbed = None, None, []
    step = _only_reader(readers, value)
    if _epilogue(step, "bias") and len(step.operands) == 2 and step.result.type == value.type:
        other = step.operands[1] if step.operands[0] is value else step.operands[0]
        if other is not value and other.is_tensor and tuple(other.shape or ()) == (channels,) \
                and other.dtype == dtype:
            bias, value = other, step.result
            absorbed.append(step)
            step = _only_reader(readers, value)
    if _epilogue(step, "relu") and step.result.type == value.type:
        activation = "relu"
        absorbed.append(step)
    return bias, activation, absorbed


def fuse_conv_pools(fn: Function) -> Function:
    readers = None                        # built at the first pool (most graphs have none)
    replaced, dropped = {}, set()         # node -> its replacement; absorbed nodes
    for node in fn.nodes:
        if not has_trait(node, "max_window") or len(node.operands) != 1:
            continue
        readers = _readers(fn) if readers is None else readers
        conv = node.operands[0].node
        fused = get_op(conv.op).extra.get("fused_max_pool") if conv is not None else None
        if fused is None or len(readers.get(id(node.operands[0]), [])) != 1 or len(conv.results) != 1:
            continue
        pool = {"ksize": node.attrs["ksize"], "strides": node.attrs["strides"], "padding": node.attrs["padding"]}
        if not fusable_with_max_pool(conv, pool):
            continue
        bias, activation, absorbed = _absorb(readers, node.result, node.result.shape[3], node.result.dtype)
        attrs = dict(conv.attrs, pool_ksize=pool["ksize"], pool_strides=pool["strides"],
                     pool_padding=pool["padding"], activation=activation)
        final = absorbed[-1].result if absorbed else node.result
        new = Node(fused, list(conv.operands) + ([bias] if bias is not None else []), attrs, [final.type],
                   loc=node.loc, scope=node.scope)
        new.results[0] = final                # the last step's readers keep their value
        final.node = new
        if absorbed:                          # the bias is defined before its add: the fused op goes there
            dropped.add(id(node))
            dropped.update(id(n) for n in absorbed[:-1])
            replaced[id(absorbed[-1])] = new
        else:
            replaced[id(node)] = new
    if replaced or dropped:
        fn.nodes = [replaced.get(id(n), n) for n in fn.nodes if id(n) not in dropped]
    return fn          # the fused convolutions, now unread, go with DCE
