"""Lowers the part of a Graph that a `Session.run` needs into one IR function,
specialized on the fed shapes and dtypes.

Pruning follows TF 1.x: walk back from the fetches through inputs and control
inputs, stopping at fed tensors. Fed tensors become tensor parameters,
variables become `!var` parameters, each random op gets a `!var<i64[]>` run
counter, and stateful ops are chained by `!effect` tokens in graph order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import errors
from ..ir.core import Function, Node, Value
from ..ir.symdim import is_symbolic
from ..ir.types import EFFECT, EffectType, TensorType, VarType, int64, num_elements
from ..ops import get_op
from ..ops.broadcast import normalize_axes
from ..ops.dynamic_shape import constant_value
from ..ops.registry import ELEMENTWISE, LAYOUT, RANDOM, REDUCE, ShapeError
from .gc_pause import gc_paused
from .graph import Operation, Tensor

RNG_STATE_SIZE = 3
STATE_OPS = ("read_var", "assign_var", "assign_add_var", "assign_sub_var")


@dataclass
class LoweredRun:
    function: Function
    feed_tensors: list[Tensor]          # tensor params, in order
    var_names: list[str]                # !var params: variable op names, in order
    var_types: list[VarType]
    rng_names: list[str]                # run-counter params of random ops, in order
    fetch_results: list[int | None]     # per fetch target: result index, None for Operations
    needs_initialized: list[str]        # variables read before any assignment in this run
    rng_seeds: list[tuple]              # (seed, seed2) of each random op's state, in rng_names order

    def new_rng_states(self) -> list:
        """Fresh [run counter, seed, seed2] arrays for the random ops of this run."""
        import numpy as np
        return [np.array([0, s1, s2], np.int64) for s1, s2 in self.rng_seeds]

    @property
    def state_names(self) -> list[str]:
        """Names of the !var params (variables, then run counters), in parameter order."""
        return self.var_names + self.rng_names


def needed_ops(targets, fed: set) -> list[Operation]:
    seen, stack = set(), [t.op if isinstance(t, Tensor) else t for t in targets]
    while stack:
        op = stack.pop()
        if op._id in seen:
            continue
        seen.add(op._id)
        if op.outputs and all(id(t) in fed for t in op.outputs):
            continue
        for t in op.inputs:
            if id(t) not in fed:
                stack.append(t.op)
        stack.extend(op.control_inputs)
    graph_ops = targets[0].graph._ops if targets else []
    return [graph_ops[i] for i in sorted(seen)]


def lower_run(graph, targets, feeds: dict, feed_shapes: dict | None = None) -> LoweredRun:
    """targets: Tensors and Operations; feeds: {Tensor: numpy array of its dtype}. `feed_shapes`
    ({id(Tensor): shape}) overrides fed shapes: symbolic dims (jitflow/ir/symdim.py) make a
    shape-polymorphic run (jitflow/shape_poly.py)."""
    with gc_paused():
        return _lower_run(graph, targets, feeds, feed_shapes or {})


def _lower_run(graph, targets, feeds: dict, feed_shapes: dict) -> LoweredRun:
    fed = {id(t) for t in feeds}
    ops = needed_ops(targets, fed)
    through = _fed_through(ops, feeds) if len(feeds) else []
    if through:     # a fed tensor a tf.gradients request differentiates through: compute it as well
        more = needed_ops([t.op for t in through], fed - {id(t) for t in through})
        merged = {op._id: op for op in ops + more}
        ops = [merged[i] for i in sorted(merged)]
    shadow_ops = {t.op._id for t in through}
    aliases: dict[int, Value] = {}          # id(param of a fed tensor) -> the value its op computes
    values: dict[int, Value] = {}
    params: list[Value] = []
    feed_tensors: list[Tensor] = []
    consumed = {id(t) for op in ops for t in op.inputs} | {id(t) for t in targets}
    for t, array in feeds.items():
        if id(t) in consumed:
            p = Value(TensorType(t.dtype, tuple(feed_shapes.get(id(t), array.shape))), name=_param_name(t))
            values[id(t)] = p
            params.append(p)
            feed_tensors.append(t)
    var_params: dict[str, Value] = {}
    rng_params: dict[str, Value] = {}
    rng_seeds: dict[str, tuple] = {}
    effect = Value(EFFECT, name="e0")
    nodes: list[Node] = []
    first_use: dict[str, str] = {}
    unfed: dict[int, Exception] = {}        # stand-ins of unfed placeholders (see below)
    has_request = None
    value_uses = {id(t) for t in targets if isinstance(t, Tensor)} | {
        id(t) for o in ops for t in (o.inputs[1:] if o._op in STATE_OPS else o.inputs)}

    def var_param(handle_tensor):
        op = handle_tensor.op
        if op.name not in var_params:
            var_params[op.name] = Value(VarType(op.attrs["dtype"], tuple(op.attrs["shape"])), name=op.name)
        return var_params[op.name]

    for op in ops:
        if op.outputs and all(id(t) in fed for t in op.outputs) and op._id not in shadow_ops:
            continue
        opdef = get_op(op._op)
        if op._op == "placeholder":
            if not any(id(t) in consumed and id(t) not in fed for t in op.outputs):
                continue            # a multi-output source whose needed outputs are all fed
            shape = op.attrs["shape"]
            shape_text = "<unknown>" if shape is None else "[" + ",".join(
                "?" if d is None else str(d) for d in shape) + "]"
            error = errors.InvalidArgumentError(
                None, op, f"You must feed a value for placeholder tensor '{op.name}' with dtype "
                f"{op.attrs['dtype'].name} and shape {shape_text}\n  {errors.describe_op(op)}")
            if has_request is None:
                has_request = any(get_op(o._op).extra.get("autodiff_request") for o in ops)
            if not has_request or shape is None or None in shape:
                raise error
            # an autodiff request reads the forward values, its gradients may need only their shapes
            # (tf.gradients of conv2d w.r.t. x): a stand-in, refused after lowering if anything live reads it
            stand_in = Value(TensorType(op.attrs["dtype"], tuple(shape)), name=_param_name(op.outputs[0]))
            values[id(op.outputs[0])] = stand_in
            unfed[id(stand_in)] = error
            continue
        if op._op == "variable" and id(op.outputs[0]) in value_uses:
            # the variable's own tensor (`get_tensor_by_name("w:0")`) used as a value: a read, as TF's ref
            var = var_param(op.outputs[0])
            first_use.setdefault(var.name, "read_var")
            read = _Emitter(nodes, op).node("read_var", [var, effect], {}).results
            values[id(op.outputs[0])], effect = read[0], read[1]
            continue
        if op._op in ("variable", "no_op"):
            continue
        if op._op in STATE_OPS:
            var = var_param(op.inputs[0])
            first_use.setdefault(var.name, op._op)
            operands = [var] + [values[id(t)] for t in op.inputs[1:]] + [effect]
        elif opdef.kind == RANDOM:
            # the seeds live in the op's state ([run counter, seed, seed2]), not in the code,
            # so compiled kernels are shared by graphs that differ only in their seeds
            name = "rng:" + op.name
            rng = rng_params.setdefault(name, Value(VarType(int64, (RNG_STATE_SIZE,)), name=name))
            rng_seeds[name] = (op.attrs["seed"], op.attrs["seed2"])
            shape = _random_shape(op, [values[id(t)] for t in op.inputs])
            op_attrs = {"shape": shape, "dtype": op.attrs["dtype"]}
            results_of_op = _Emitter(nodes, op).node(op._op, [rng], op_attrs).results
            values[id(op.outputs[0])] = results_of_op[0]
            continue
        else:
            operands = [values[id(t)] for t in op.inputs]
        attrs = {k: v for k, v in op.attrs.items() if not k.startswith("_")}
        emit = _Emitter(nodes, op)
        emit.aliases = aliases
        if opdef.expand is not None:
            try:
                results_of_op = opdef.expand(emit, operands, attrs)
            except ShapeError as exc:
                raise errors.InvalidArgumentError(None, op, f"{exc}\n  {errors.describe_op(op)}") from None
        else:
            results_of_op = emit.node(op._op, operands, attrs).results
        for t, v in zip(op.outputs, results_of_op):
            if id(t) not in fed:
                values[id(t)] = v
            elif id(t) in values:
                aliases[id(values[id(t)])] = v
        if op._op in STATE_OPS:
            effect = results_of_op[1]
    results, fetch_results, index_of = [], [], {}
    for target in targets:
        if isinstance(target, Operation):
            fetch_results.append(None)
            continue
        value = values[id(target)]
        if id(value) not in index_of:
            index_of[id(value)] = len(results)
            results.append(value)
        fetch_results.append(index_of[id(value)])
    if unfed:
        nodes[:] = _drop_unfed(nodes, results + [effect], unfed)
    if has_request is None:
        has_request = any(get_op(o._op).extra.get("autodiff_request") for o in ops)
    if has_request:     # a request lowered its whole forward pass: reads its gradients do not use go
        effect = _drop_unused_reads(nodes, results, effect)
        referenced = {id(v) for n in nodes for v in n.operands}
        for name in [n for n, v in var_params.items() if id(v) not in referenced]:
            del var_params[name]
            first_use.pop(name, None)
    var_names = list(var_params)
    all_params = params + list(var_params.values()) + list(rng_params.values()) + [effect_param(nodes, effect)]
    function = Function("run", all_params, nodes, results + [effect])
    needs_init = [name for name, first in first_use.items() if first != "assign_var"]
    return LoweredRun(function, feed_tensors, var_names, [var_params[n].type for n in var_names],
                      list(rng_params), fetch_results, needs_init, [rng_seeds[n] for n in rng_params])


def _drop_unused_reads(nodes, results, effect) -> Value:
    """Removes the variable reads whose value no result and no variable update uses, and the pure nodes
    only they fed, splicing the effect chain around each read; returns the new final effect. A
    tf.gradients request lowers the whole forward pass, but d(a + f(w2))/da never reads w2: as in TF,
    such a run needs neither w2 initialized nor the feeds f reads."""
    def data(values):
        return [v for v in values if not isinstance(v.type, EffectType)]
    live, stack = set(), data(results)
    stack += [v for n in nodes if n.op in STATE_OPS[1:] for v in data(n.operands[1:])]
    while stack:
        node = stack.pop().node
        if node is None or id(node) in live:
            continue
        live.add(id(node))
        stack.extend(data(node.operands))
    forward: dict[int, Value] = {}      # id(effect out of a dropped read) -> the effect it continues
    kept = []
    for node in nodes:
        if node.op == "read_var" and id(node) not in live:
            forward[id(node.results[1])] = forward.get(id(node.operands[1]), node.operands[1])
            continue
        stateful = node.op in STATE_OPS or any(isinstance(r.type, EffectType) for r in node.results)
        if id(node) not in live and not stateful:
            continue        # pure and unused: what DCE would drop, dropped now with the reads it read
        if forward:
            node.operands = [forward.get(id(v), v) for v in node.operands]
        kept.append(node)
    nodes[:] = kept
    return forward.get(id(effect), effect)


def _fed_through(ops, feeds) -> list:
    if not any(t.op.inputs for t in feeds):
        return []
    from ..passes.autodiff_request import fed_through
    return fed_through(ops, feeds)


def _drop_unfed(nodes, results, unfed) -> list:
    """Raises the feed error of an unfed placeholder's stand-in that a result depends on; otherwise
    returns the nodes without those reading a stand-in (all dead)."""
    live, stack = set(), [v for v in results]
    while stack:
        v = stack.pop()
        if id(v) in unfed:
            raise unfed[id(v)]
        node = v.node
        if node is None or id(node) in live:
            continue
        live.add(id(node))
        stack.extend(node.operands)
    tainted, kept = set(unfed), []
    for node in nodes:
        if any(id(v) in tainted for v in node.operands):
            tainted.update(id(r) for r in node.results)
        else:
            kept.append(node)
    return kept


class _Emitter:
    """Creates IR nodes for one graph op (its own node, or what its expand rule emits)."""

    def __init__(self, nodes: list, op: Operation):
        self.nodes = nodes
        self.op = op
        self.aliases: dict = {}     # autodiff requests: id(param of a fed tensor) -> its computed value

    def node(self, op_name: str, operands, attrs) -> Node:
        opdef = get_op(op_name)
        if opdef.kind == REDUCE and opdef.reduce not in ("argmax", "argmin") and operands:
            # codegen reads sorted non-negative axes; graph ops may spell them any way infer accepts
            try:
                axes = normalize_axes(attrs.get("axes"), len(operands[0].shape), op_name)
            except ShapeError as exc:
                raise errors.InvalidArgumentError(None, self.op, f"{exc}\n  {errors.describe_op(self.op)}") from None
            attrs = dict(attrs, axes=axes, keepdims=bool(attrs.get("keepdims", False)))
        try:
            types = opdef.infer([v.type for v in operands], attrs, op_name)
        except (ShapeError, ValueError, TypeError) as exc:
            raise errors.InvalidArgumentError(None, self.op, f"{exc}\n  {errors.describe_op(self.op)}") from None
        folded = fold_shape_arithmetic(opdef, operands, attrs, types)
        if folded is not None:
            node = Node("const", [], {"value": folded, "dtype": types[0].dtype}, types, loc=self.op.loc,
                        scope=self.op.name)
        else:
            node = Node(op_name, operands, attrs, types, loc=self.op.loc, scope=self.op.name)
        self.nodes.append(node)
        return node

    def __call__(self, op_name: str, operands, attrs) -> Value:
        return self.node(op_name, operands, attrs).results[0]


FOLD_MAX_ELEMENTS = 64


def fold_shape_arithmetic(opdef, operands, attrs, types):
    """Shape arithmetic folded at specialization: an integer or bool result of at most
    FOLD_MAX_ELEMENTS elements, computed by a pure elementwise, layout or reduction op from constants
    (`tf.shape(x)[0] * 2`, `tf.stack([n, -1])`), becomes a constant, so the ops that take shapes as
    tensors (jitflow/ops/dynamic_shape.py) can read it. The value comes from the op's numpy reference,
    which the differential tests hold equal to the compiled op; float math is never folded here (it is
    left to the compiled code). Returns the value, or None when the node is not such arithmetic."""
    if opdef.kind not in (ELEMENTWISE, LAYOUT, REDUCE) or opdef.stateful or opdef.reference is None:
        return None
    if len(types) != 1 or not isinstance(types[0], TensorType) or types[0].dtype.is_floating:
        return None
    if types[0].shape is None or None in types[0].shape or is_symbolic(types[0].shape) \
            or num_elements(types[0].shape) > FOLD_MAX_ELEMENTS:
        return None
    if not all(getattr(v, "node", None) is not None and v.node.op == "const" for v in operands):
        return None
    if any(is_symbolic(v) for v in attrs.values()):     # a run-time dim (dim_value of a symbolic dim)
        return None
    value = np.asarray(opdef.reference(*(v.node.attrs["value"] for v in operands), **attrs))
    value = np.array(value.astype(types[0].dtype.np).reshape(types[0].shape), order="C")
    value.setflags(write=False)
    return value


def _random_shape(op, operands):
    """A random op's shape: its attribute, the shape of its operand (dropout's `random_uniform(x)`), or
    the value of a shape tensor (`tf.random_normal(tf.shape(z))`), constant once the run is specialized."""
    if not operands:
        return op.attrs["shape"]
    if op.attrs.get("shape_from_value"):
        try:
            shape = constant_value(operands[0], "the shape argument", op.type)
        except ShapeError as exc:
            raise errors.InvalidArgumentError(None, op, f"{exc}\n  {errors.describe_op(op)}") from None
        return tuple(int(d) for d in np.atleast_1d(shape))
    return tuple(operands[0].shape)


def effect_param(nodes, final_effect) -> Value:
    """The function's incoming effect token (the first one in the chain)."""
    for node in nodes:
        if node.op in STATE_OPS:
            return node.operands[-1]
    return final_effect


def _param_name(tensor: Tensor) -> str:
    return tensor.name.replace(":", "_").replace("/", ".")
