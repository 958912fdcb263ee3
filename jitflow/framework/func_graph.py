"""Graph-level regions: the sub-graphs that tf.cond branches and tf.while_loop condition/body
functions are traced into, and their lowering to IR region functions (jitflow/ir/regions.py).

A `FuncGraph` is a Graph whose ops may read tensors of the enclosing graph: each such tensor is
captured once as a placeholder of the FuncGraph (`captures`), so the traced region reads the
outside world only through explicit inputs; the control-flow op lists the captured outer
tensors as its operands. Variable reads are created in the graph that owns the variable and
captured like any tensor. Ops with side effects (variable updates, random ops) and
`check_numerics` (verified by Session.run on fetched values, which a region cannot provide)
cannot be traced into a region: `ImpureRegion` is raised and tf.cond falls back to computing
both branches; tf.while_loop raises UnsupportedError.

`lower_region` specializes a region to the operand types of one run with the same lowering as a
whole Session.run (jitflow/framework/lowering.py), so nested regions lower level by level.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import errors
from ..ir.core import Function, Value
from ..ir.types import TensorType
from ..ir.types import string as _STRING
from ..ops import get_op
from ..ops.registry import EFFECT, RANDOM
from .graph import Graph, Tensor, get_default_graph


class ImpureRegion(Exception):
    """An op with side effects was created while tracing a region."""

    def __init__(self, op_name: str):
        super().__init__(op_name)
        self.op_name = op_name


HOISTED = ("read_var",)     # created in the variable's own graph, then captured


class FuncGraph(Graph):
    def __init__(self, outer: Graph, name: str):
        super().__init__()
        self.outer = outer
        self.name = name
        self.seed = outer.seed
        self._variable_store = outer._variable_store
        self._collections = outer._collections          # layers register in the user's graph
        self.captures: dict[int, tuple[Tensor, Tensor]] = {}   # id(outer tensor) -> (outer, placeholder)
        scope = outer.get_name_scope()
        self._name_stack = f"{scope}/{name}" if scope else name     # op names read as in the outer graph
        self._outer_scope, self._own_scope = scope, self._name_stack

    def outer_scope(self, scope: str) -> str:
        """`scope` (a name scope of this graph) as TF 1.x spells it in the outer graph: without this
        region's own component (`while/body/x` -> `while/x`; TF names a loop's ops `while/...`)."""
        own = self._own_scope
        if scope == own or scope.startswith(own + "/"):
            rest = scope[len(own):].lstrip("/")
            return "/".join(p for p in (self._outer_scope, rest) if p)
        return scope

    def encloses(self, graph) -> bool:
        """True when `graph` is one of the graphs this region is traced inside."""
        outer = self.outer
        while outer is not None:
            if outer is graph:
                return True
            outer = getattr(outer, "outer", None)
        return False

    def capture(self, tensor: Tensor) -> Tensor:
        if tensor.graph is self:
            return tensor
        entry = self.captures.get(id(tensor))
        if entry is None:
            ph = Graph.create_op(self, "placeholder", [], {"dtype": tensor.dtype, "shape": tensor._type.shape},
                                 name="capture")
            entry = self.captures[id(tensor)] = (tensor, ph.outputs[0])
        return entry[1]

    def create_op(self, op_name, inputs, attrs=None, name=None, output_types=None):
        inputs = list(inputs)
        default = get_default_graph()
        if default is not self and op_name not in ("read_var", "variable") and getattr(default, "encloses", None) \
                and default.encloses(self):       # an op of this region's tensors, built in a nested region
            return default.create_op(op_name, inputs, attrs, name, output_types)
        if op_name in HOISTED and inputs and inputs[0].graph is not self:
            return inputs[0].graph.create_op(op_name, inputs, attrs, name, output_types)
        opdef = get_op(op_name)
        if opdef.stateful and op_name not in ("cond", "while") or opdef.kind in (RANDOM, EFFECT) \
                or op_name in ("variable", "check_numerics"):    # check_numerics: checked by Session.run
            raise ImpureRegion(op_name)
        if (attrs or {}).get("dtype") is _STRING or any(getattr(t._type, "dtype", None) is _STRING for t in inputs):
            raise ImpureRegion(op_name)           # tf.string values live on the host (host_values.py)
        return Graph.create_op(self, op_name, [self.capture(t) for t in inputs], attrs, name, output_types)

    def _current_control_inputs(self):
        return [op for op in Graph._current_control_inputs(self) if op.graph is self]


@dataclass
class Region:
    """A traced region: `params[k]` is the placeholder for the op's k-th region input (for cond the
    operands after the predicate), `outputs` the tensors the region returns."""
    graph: FuncGraph
    params: list
    outputs: list

    def meta_graph_encoding(self) -> dict:
        """The region in a meta graph (framework/graph_serialization.py): its own graph section."""
        from .graph_serialization import serialize_graph
        return {"name": self.graph.name, "graph": serialize_graph(self.graph),
                "params": [t.name for t in self.params], "outputs": [t.name for t in self.outputs]}


class EncodedRegion:
    """A region read from a meta graph; `regions_of(op)` rebuilds it in the op's graph when used."""

    def __init__(self, data: dict):
        self.data = data

    def meta_graph_encoding(self) -> dict:
        return self.data

    def materialize(self, outer: Graph) -> Region:
        from .graph_serialization import import_graph
        graph = FuncGraph(outer, str(self.data.get("name", "region")))
        created = import_graph(graph, self.data["graph"])

        def tensor(name):
            op_name, index = name.rsplit(":", 1)
            return created[op_name].outputs[int(index)]
        return Region(graph, [tensor(n) for n in self.data["params"]], [tensor(n) for n in self.data["outputs"]])


def regions_of(op) -> list:
    """The Regions of a cond / while graph op (materializing those read from a meta graph)."""
    regions = list(op.attrs["_regions"])
    if any(isinstance(r, EncodedRegion) for r in regions):
        regions = [r.materialize(op.graph) if isinstance(r, EncodedRegion) else r for r in regions]
        op.attrs["_regions"] = tuple(regions)
    return regions


def trace(outer: Graph, name: str, fn, param_types=()):
    """Runs `fn(*params)` with a new FuncGraph as the default graph; `param_types` (TensorTypes) are
    explicit parameters (a loop's carried values). Returns (graph, params, raw result of fn)."""
    graph = FuncGraph(outer, name)
    with graph.as_default():
        params = [Graph.create_op(graph, "placeholder", [], {"dtype": t.dtype, "shape": t.shape},
                                  name=f"arg{i}").outputs[0] for i, t in enumerate(param_types)]
        result = fn(*params)
    if graph.__dict__.get("_host_hooks"):      # ops Session.run executes on the host (framework/host_hooks.py)
        raise ImpureRegion("host op")
    return graph, params, result


def finish_regions(graphs_params_outputs, explicit: int):
    """Unifies the captures of several traced regions: returns (outer captured tensors, Regions), each
    region's params being its `explicit` parameters followed by one placeholder per capture."""
    resolved = []
    for graph, params, outputs in graphs_params_outputs:
        with graph.as_default():
            resolved.append((graph, params, [graph.capture(t) for t in outputs]))
    graphs_params_outputs = resolved
    captured, order = {}, []
    for graph, _, _ in graphs_params_outputs:
        for key, (outer, _) in graph.captures.items():
            if key not in captured:
                captured[key] = outer
                order.append(key)
    regions = []
    for graph, params, outputs in graphs_params_outputs:
        with graph.as_default():
            caps = [graph.capture(captured[key]) for key in order]
        regions.append(Region(graph, list(params) + caps, outputs))
    return [captured[key] for key in order], regions


def replay(region: Region, inputs) -> list:
    """Re-creates `region`'s ops in the current default graph with `inputs` for its params; returns
    its outputs there (gradient branches differentiate such a copy)."""
    graph = get_default_graph()
    mapping = {id(p): x for p, x in zip(region.params, inputs)}
    for op in region.graph._ops:
        if op.outputs and all(id(t) in mapping for t in op.outputs):
            continue
        if op._op == "placeholder":
            raise errors.InternalError(None, None, f"region {region.graph.name}: unmapped placeholder {op.name}")
        new = graph.create_op(op._op, [mapping[id(t)] for t in op.inputs], dict(op.attrs),
                              name=op.name.split("/")[-1], output_types=[t._type for t in op.outputs])
        for old, t in zip(op.outputs, new.outputs):
            mapping[id(old)] = t
    return [mapping[id(t)] for t in region.outputs]


class _Shaped:
    def __init__(self, shape):
        self.shape = tuple(shape)


def lower_region(region: Region, param_types, name: str, where) -> Function:
    """The IR function of `region` for operands of `param_types` (one per param)."""
    from .lowering import lower_run
    feeds = {ph: _Shaped(t.shape) for ph, t in zip(region.params, param_types)}
    if not region.outputs:
        raise errors.UnsupportedError(f"{where.name}: a control-flow region that returns no tensors")
    run = lower_run(region.graph, list(region.outputs), feeds)
    if run.var_names or run.rng_names:
        raise errors.UnsupportedError(f"{where.name}: a region reads state ({(run.var_names + run.rng_names)[0]})")
    fn = run.function
    by_tensor = {id(t): p for t, p in zip(run.feed_tensors, fn.params)}
    params = []
    for i, (ph, t) in enumerate(zip(region.params, param_types)):
        p = by_tensor.get(id(ph)) or Value(TensorType(t.dtype, tuple(t.shape)))
        p.name = f"a{i}"
        params.append(p)
    results = [fn.results[i] for i in run.fetch_results]
    return Function(name, params, fn.nodes, results)
