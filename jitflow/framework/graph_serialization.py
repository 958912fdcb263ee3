"""Serializes a Graph's ops to plain JSON-compatible data and imports them back
(the `graph` section of a jitflow meta graph; see docs/METAGRAPH.md and
`jitflow.train.meta_graph`, which owns the file format around it).

This is a jitflow format, not TF's GraphDef protobuf. An op record is::

    {"name": "dnn/hidden1/MatMul",      # the op's (TF) name
     "op": "matmul",                    # jitflow op-registry name
     "type": "MatMul",                  # the TF op type (information only)
     "inputs": ["X:0", "dnn/hidden1/kernel/read:0"],   # "op_name:output_index"
     "control_inputs": ["init"],        # op names
     "attrs": {"transpose_a": false, ...},             # encoded with `encode_value`
     "outputs": [{"dtype": "float32", "shape": [null, 300]}],   # "var": true for a variable handle,
                                        # {"effect": true} for an effect token (assign ops)
     "device": "/cpu:0",                # omitted when empty
     "loc": {"file": "model.py", "line": 12, "code": "..."}}   # the user's source line, or null

Ops are listed in creation order, so every input and control input names an
earlier op. Attribute values are encoded by `encode_value`: JSON scalars and
strings as themselves, and tagged objects (one key starting with "$") for the
rest: {"$tuple": [...]}, {"$list": [...]}, {"$dict": {...}}, {"$dtype": "float32"},
{"$float": "nan"|"inf"|"-inf"}, {"$bytes": base64},
{"$ndarray": {"dtype": "float32", "shape": [3], "data": base64 of C-order bytes}} (for tf.string arrays
"dtype": "string" and "data" a list of base64 elements),
{"$scalar": <same fields as $ndarray>} for numpy scalars. A value of any other
type raises `GraphSerializationError` naming the op and attribute: nothing is
dropped.

Importing validates the whole section before it creates any op, so a corrupt
record raises `GraphFormatError` (a DataLossError) and leaves the graph as it was.
"""
from __future__ import annotations

import base64
import math

import numpy as np

from .. import errors
from ..ir.core import SourceLoc
from ..ir.types import EFFECT, DType, EffectType, TensorType, VarType, as_dtype
from ..ops.registry import all_ops
from .gc_pause import gc_paused

__all__ = ["GraphSerializationError", "GraphFormatError", "encode_value", "decode_value", "serialize_graph",
           "import_graph"]


class GraphSerializationError(TypeError):
    """A graph holds something the meta graph format cannot represent (e.g. an op attribute of an unknown type)."""


class GraphFormatError(errors.DataLossError, ValueError):
    """A serialized graph (or meta graph file) is corrupt, truncated or of an unknown format/version."""

    def __init__(self, message: str):
        super().__init__(None, None, message)


# --------------------------------------------------------------------------- attribute values
def encode_value(value, where: str = "value"):
    """`value` as JSON-compatible data (see the module docstring); raises GraphSerializationError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, DType):
        return {"$dtype": value.name}
    if isinstance(value, np.ndarray):
        return {"$ndarray": _encode_array(value, where)}
    if isinstance(value, np.generic):
        return {"$scalar": _encode_array(np.asarray(value), where)}
    if isinstance(value, tuple):
        return {"$tuple": [encode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return {"$list": [encode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise GraphSerializationError(f"cannot serialize {where}: dict key {k!r} is not a string")
            out[k] = encode_value(v, f"{where}[{k!r}]")
        return {"$dict": out}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if hasattr(value, "meta_graph_encoding"):      # a cond / while region (framework/func_graph.py)
        return {"$region": value.meta_graph_encoding()}
    raise GraphSerializationError(f"cannot serialize {where}: a value of type {type(value).__name__} ({value!r:.80}) "
                                  f"has no meta graph encoding")


def _encode_array(array: np.ndarray, where: str) -> dict:
    if array.dtype == object and all(isinstance(x, bytes) for x in array.reshape(-1)):   # tf.string
        return {"dtype": "string", "shape": list(array.shape),
                "data": [base64.b64encode(x).decode("ascii") for x in array.reshape(-1)]}
    if array.dtype.kind not in "biuf":
        raise GraphSerializationError(f"cannot serialize {where}: numpy dtype {array.dtype} is not supported")
    array = np.array(array, order="C", copy=not array.flags.c_contiguous)   # (ascontiguousarray makes 0-d 1-d)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return {"dtype": array.dtype.name, "shape": list(array.shape),
            "data": base64.b64encode(little.tobytes()).decode("ascii")}


def decode_value(data, where: str = "value"):
    """Inverse of `encode_value`; raises GraphFormatError on malformed data."""
    if data is None or isinstance(data, (bool, str, int, float)):
        return data
    if isinstance(data, list):       # plain JSON lists only come from hand-written files: treat as lists
        return [decode_value(v, where) for v in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise GraphFormatError(f"malformed {where}: {data!r:.100}")
    (tag, body), = data.items()
    try:
        if tag == "$tuple":
            return tuple(decode_value(v, where) for v in _expect(body, list, where))
        if tag == "$list":
            return [decode_value(v, where) for v in _expect(body, list, where)]
        if tag == "$dict":
            return {k: decode_value(v, where) for k, v in _expect(body, dict, where).items()}
        if tag == "$dtype":
            return as_dtype(_expect(body, str, where))
        if tag == "$float":
            return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[body]
        if tag == "$region":            # materialized in the op's graph on first use (framework/func_graph.py)
            from .func_graph import EncodedRegion
            return EncodedRegion(_expect(body, dict, where))
        if tag == "$bytes":
            return base64.b64decode(_expect(body, str, where), validate=True)
        if tag in ("$ndarray", "$scalar"):
            body = _expect(body, dict, where)
            if body["dtype"] == "string":      # tf.string: a list of base64 elements
                shape = tuple(int(d) for d in _expect(body["shape"], list, where))
                items = [base64.b64decode(_expect(x, str, where), validate=True)
                         for x in _expect(body["data"], list, where)]
                array = np.empty(len(items), object)
                array[:] = items
                array = array.reshape(shape)
                return array[()] if tag == "$scalar" else array
            dtype = np.dtype(_expect(body["dtype"], str, where)).newbyteorder("<")
            shape = tuple(int(d) for d in _expect(body["shape"], list, where))
            raw = base64.b64decode(_expect(body["data"], str, where), validate=True)
            array = np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
            return array[()] if tag == "$scalar" else array
    except GraphFormatError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise GraphFormatError(f"malformed {where}: {type(exc).__name__}: {exc}") from None
    raise GraphFormatError(f"malformed {where}: unknown tag {tag!r}")


def _expect(value, kind, where):
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise GraphFormatError(f"malformed {where}: expected {kind.__name__}, got {value!r:.80}")
    return value


# --------------------------------------------------------------------------- types and locations
def _encode_type(t, where):
    if isinstance(t, EffectType):
        return {"effect": True}
    if isinstance(t, (TensorType, VarType)):
        record = {"dtype": t.dtype.name, "shape": None if t.shape is None else list(t.shape)}
        if isinstance(t, VarType):
            record["var"] = True
        return record
    raise GraphSerializationError(f"cannot serialize {where}: output type {t!r} is not a tensor or variable type")


def _decode_type(data, where):
    data = _expect(data, dict, where)
    if data.get("effect"):
        return EFFECT
    dtype = as_dtype(_expect(data.get("dtype"), str, where))
    shape = data.get("shape")
    if shape is not None:
        shape = tuple(None if d is None else int(_expect(d, int, where)) for d in _expect(shape, list, where))
    return (VarType if data.get("var") else TensorType)(dtype, shape)


def _encode_loc(loc):
    if loc is None:
        return None
    return {"file": loc.file, "line": loc.line, "code": loc.code}


def _decode_loc(data, where):
    if data is None:
        return None
    data = _expect(data, dict, where)
    return SourceLoc(_expect(data.get("file"), str, where), _expect(data.get("line"), int, where),
                     data.get("code") or "")


# --------------------------------------------------------------------------- export
def serialize_graph(graph, clear_devices: bool = False) -> dict:
    """The graph section: ops in creation order, the name-uniquifier counts and the graph seed."""
    with gc_paused():
        return _serialize_graph(graph, clear_devices)


def _serialize_graph(graph, clear_devices: bool) -> dict:
    ops = []
    for op in graph.get_operations():
        attrs = {}
        for key, value in op.attrs.items():
            if key == "_device":
                continue
            attrs[key] = encode_value(value, f"attribute {key!r} of op {op.name!r} ({op.type})")
        record = {"name": op.name, "op": op._op, "type": op.type,
                  "inputs": [t.name for t in op.inputs],
                  "control_inputs": [c.name for c in op.control_inputs],
                  "attrs": attrs,
                  "outputs": [_encode_type(t._type, f"output {t.name}") for t in op.outputs],
                  "loc": _encode_loc(op.loc)}
        device = op.attrs.get("_device", "")
        if device and not clear_devices:
            record["device"] = device
        ops.append(record)
    return {"ops": ops, "names_in_use": dict(graph._names_in_use),
            "seed": encode_value(graph.seed, "the graph seed")}


# --------------------------------------------------------------------------- import
def _scoped(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _free_name(graph, name: str, taken: set) -> str:
    """`name`, or `name_1`, `name_2`... when the graph (or this import) already uses it."""
    def used(n):
        return n in graph._by_name or n.lower() in graph._names_in_use or n.lower() in taken
    if not used(name):
        return name
    k = 1
    while used(f"{name}_{k}"):
        k += 1
    return f"{name}_{k}"


def import_graph(graph, data: dict, prefix: str = "", input_map: dict | None = None,
                 clear_devices: bool = False) -> dict:
    """`_import_graph` with the cyclic GC paused (framework/gc_pause.py)."""
    with gc_paused():
        return _import_graph(graph, data, prefix, input_map, clear_devices)


def _import_graph(graph, data: dict, prefix: str = "", input_map: dict | None = None,
                  clear_devices: bool = False) -> dict:
    """Recreates the ops of a graph section in `graph` under `prefix` (no slash at the end).

    Names that clash with ops already in `graph` are made unique (`X` -> `X_1`), as TF's importer does.
    `input_map` maps original tensor names ("X:0") to Tensors of `graph` that replace them.
    Returns {original op name: new Operation}. Raises GraphFormatError for corrupt data, before any op is made.
    """
    from .graph import Tensor
    data = _expect(data, dict, "graph section")
    records = _expect(data.get("ops"), list, "graph section 'ops'")
    input_map = dict(input_map or {})
    for key, tensor in input_map.items():
        if not isinstance(key, str) or ":" not in key:
            raise ValueError(f"input_map keys must be tensor names like 'X:0', got {key!r}")
        if not isinstance(tensor, Tensor) or tensor.graph is not graph:
            raise ValueError(f"input_map[{key!r}] must be a Tensor of the graph imported into, got {tensor!r}")
    registry = all_ops()

    # pass 1: decode and check everything
    plans, known, taken, used_map = [], {}, set(), set()
    for i, record in enumerate(records):
        where = f"op #{i}"
        record = _expect(record, dict, where)
        name = _expect(record.get("name"), str, f"{where} 'name'")
        where = f"op #{i} ({name!r})"
        if name in known:
            raise GraphFormatError(f"corrupt graph: {where} repeats the name of an earlier op")
        op_name = _expect(record.get("op"), str, f"{where} 'op'")
        if op_name not in registry:
            raise GraphFormatError(f"{where} has op type {op_name!r}, which this jitflow does not register "
                                   f"(a meta graph from a newer jitflow, or from a module not imported here?)")
        try:
            attrs = {k: decode_value(v, f"{where} attribute {k!r}")
                     for k, v in _expect(record.get("attrs", {}), dict, f"{where} 'attrs'").items()}
            outputs = [_decode_type(t, f"{where} output") for t in _expect(record.get("outputs"), list,
                                                                           f"{where} 'outputs'")]
        except (TypeError, ValueError) as exc:
            if isinstance(exc, GraphFormatError):
                raise
            raise GraphFormatError(f"corrupt graph: {where}: {exc}") from None
        inputs = []
        for ref in _expect(record.get("inputs", []), list, f"{where} 'inputs'"):
            ref = _expect(ref, str, f"{where} input")
            if ref in input_map:
                used_map.add(ref)
                inputs.append(("mapped", ref))
                continue
            src, _, index = ref.rpartition(":")
            if src not in known or not index.isdigit() or int(index) >= len(known[src]):
                raise GraphFormatError(f"corrupt graph: {where} input {ref!r} is not an output of an earlier op")
            inputs.append((src, int(index)))
        controls = []
        for ref in _expect(record.get("control_inputs", []), list, f"{where} 'control_inputs'"):
            if ref not in known:
                raise GraphFormatError(f"corrupt graph: {where} control input {ref!r} is not an earlier op")
            controls.append(ref)
        device = record.get("device", "")
        device = "" if clear_devices else _expect(device, str, f"{where} 'device'")
        loc = _decode_loc(record.get("loc"), f"{where} 'loc'")
        new_name = _free_name(graph, _scoped(prefix, name), taken)
        taken.add(new_name.lower())
        known[name] = outputs
        plans.append((name, new_name, op_name, inputs, controls, attrs, outputs, device, loc))
    unused = set(input_map) - used_map
    if unused:
        raise ValueError(f"Attempted to map inputs that were not found in graph_def: [{', '.join(sorted(unused))}]")
    names_in_use = _expect(data.get("names_in_use", {}), dict, "graph section 'names_in_use'")
    for key, count in names_in_use.items():
        _expect(count, int, f"names_in_use[{key!r}]")

    # pass 2: create the ops. Control inputs are set explicitly (no enclosing control_dependencies block
    # applies); an enclosing tf.device applies to imported ops that have no device (as in TF); an enclosing
    # tf.cond branch does not (imported updates stay unconditional, as they were in the exported graph).
    created = {}
    saved_cond, graph._cond_stack = graph._cond_stack, []
    try:
        with graph.control_dependencies(None):
            _create_ops(graph, plans, input_map, created)
    finally:
        graph._cond_stack = saved_cond
    base = prefix.lower()
    for key, count in names_in_use.items():
        target = _scoped(base, key)
        graph._names_in_use[target] = max(graph._names_in_use.get(target, 0), count)
    seed = decode_value(data.get("seed"), "graph seed")
    if seed is not None and graph.seed is None:
        graph.seed = seed
    return created


def _create_ops(graph, plans, input_map, created):
    for name, new_name, op_name, inputs, controls, attrs, outputs, device, loc in plans:
        tensors = [input_map[ref] if kind == "mapped" else created[kind].outputs[ref] for kind, ref in inputs]
        attrs.pop("_device", None)
        op = graph.create_op(op_name, tensors, attrs, name=new_name + "/", output_types=outputs)
        if device:
            op.attrs["_device"] = device
        op.control_inputs = tuple(created[c] for c in controls)
        op.loc = loc
        graph._names_in_use[new_name.lower()] = max(graph._names_in_use.get(new_name.lower(), 0), 1)
        created[name] = op
        if op_name == "check_numerics":
            graph._numeric_checks = True         # Session.run looks for checks only in graphs that have some
