"""Meta graphs: `tf.train.export_meta_graph`, `tf.train.import_meta_graph`,
`Saver.export_meta_graph` and the `<checkpoint>.meta` file `Saver.save` writes.

A meta graph is everything needed to rebuild a graph without the code that
built it: the ops, the collections (with Variables coming back as
`tf.Variable` objects, so `tf.global_variables()`, `trainable_variables()`
and initializers work), the saver's settings, the graph seed, the
name-uniquifier state (building `dense` again after an import gives
`dense_1`) and the `get_variable` store (so `get_variable(..., reuse=True)`
finds imported variables).

File format: a jitflow format, NOT TF's MetaGraphDef protobuf (a TF .meta
file cannot be read, and jitflow's cannot be read by TF). It is UTF-8 JSON,
documented in docs/METAGRAPH.md::

    {"format": "jitflow-meta-graph", "version": 1, "jitflow_version": "0.1.0",
     "meta_info": {...},                       # user meta_info_def (encoded values)
     "graph": {...},                           # see jitflow.framework.graph_serialization
     "variables": [{"name": "theta", "initializer": "theta/Assign", "read": "theta/read:0",
                    "initial_value": "theta/Initializer/random_uniform:0", "trainable": true,
                    "creation_site": "File ..."}],
     "collections": {"variables": [{"variable": "theta"}], "my_ops": [{"tensor": "X:0"}, {"operation": "init"}]},
     "variable_store": {"vars": {"relu/threshold": "relu/threshold"}, "default_names": {...}} | null,
     "saver": {"var_names": {"theta": "theta"}, "max_to_keep": 5, ...} | null}

`as_text=True` writes it indented, `as_text=False` compact; both read back.
Loading checks the format name and version and raises `MetaGraphFormatError`
(a `tf.errors.DataLossError`) for a corrupt, truncated or unknown file, and
`tf.errors.NotFoundError` (also an IOError) for a missing one.

Collection items may be Variables, Tensors, Operations, summaries, Savers,
strings, bytes, numbers and bools. As in TF, a collection holding anything
else (or with a non-string key) is not exported and a warning says so.
"""
from __future__ import annotations

import json
import logging
import os
import warnings

from .. import errors
from ..api.variables import Variable
from ..framework.gc_pause import gc_paused
from ..framework.graph import Graph, Operation, Tensor, get_default_graph
from ..framework.graph_serialization import (GraphFormatError, GraphSerializationError, decode_value,
                                             encode_value, import_graph, serialize_graph)
from .checkpoint_files import _fsync_dir, _jitflow_version, _remove, _write_temp

__all__ = ["MetaGraphDef", "MetaGraphFormatError", "export_meta_graph", "import_meta_graph",
           "read_meta_graph_file", "saver_def_of"]

FORMAT = "jitflow-meta-graph"
VERSION = 1

_log = logging.getLogger("jitflow")

MetaGraphFormatError = GraphFormatError


class MetaGraphNotFoundError(errors.NotFoundError, IOError):
    def __init__(self, message: str):
        super().__init__(None, None, message)


class MetaGraphDef:
    """An exported meta graph (TF returns a MetaGraphDef protobuf; this holds the JSON data)."""

    def __init__(self, data: dict):
        self.data = data

    @property
    def collection_keys(self) -> list:
        return list(self.data.get("collections", {}))

    @property
    def saver_def(self):
        return self.data.get("saver")

    def HasField(self, name: str) -> bool:       # noqa: N802 (TF's protobuf API)
        return name == "saver_def" and self.data.get("saver") is not None

    def op_names(self) -> list:
        return [op["name"] for op in self.data["graph"]["ops"]]

    def SerializeToString(self) -> bytes:        # noqa: N802
        return self.to_json().encode("utf-8")

    @classmethod
    def FromString(cls, data: bytes) -> "MetaGraphDef":   # noqa: N802
        return cls(_parse(data, "<bytes>"))

    def to_json(self, indent=None) -> str:
        return json.dumps(self.data, indent=indent, sort_keys=False, allow_nan=False)

    def __repr__(self):
        ops = len(self.data.get("graph", {}).get("ops", []))
        return f"<MetaGraphDef {FORMAT} v{self.data.get('version')}: {ops} ops, collections {self.collection_keys}>"


# --------------------------------------------------------------------------- export
def saver_def_of(saver) -> dict:
    """A Saver's settings: checkpoint key -> variable op name, and its bookkeeping options."""
    keep_s = saver._keep_every_s
    return {"var_names": {key: var.op.name for key, var in saver.var_list.items()},
            "max_to_keep": saver._max_to_keep,
            "keep_checkpoint_every_n_hours": None if keep_s is None else keep_s / 3600.0,
            "pad_step_number": bool(saver._pad_step_number),
            "save_relative_paths": bool(saver._save_relative_paths),
            "allow_empty": bool(saver._allow_empty),
            "filename": saver._filename}


def export_meta_graph(filename=None, meta_info_def=None, graph_def=None, saver_def=None, collection_list=None,
                      as_text=False, graph=None, export_scope=None, clear_devices=False,
                      clear_extraneous_savers=False, strip_default_attrs=False, save_debug_info=False, **kwargs):
    """Exports the graph (default: the default graph) and its collections; writes `filename` when given.

    Returns the MetaGraphDef. `saver_def` may be a Saver or `saver.as_saver_def()`. jitflow ops carry no
    default-valued attributes, so `strip_default_attrs` has nothing to strip.
    """
    if kwargs:
        raise TypeError(f"export_meta_graph() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
    if graph_def is not None:
        raise errors.UnsupportedError("export_meta_graph(graph_def=...): jitflow exports Graph objects; pass "
                                      "graph= (a tf.Graph) instead of a GraphDef")
    if export_scope is not None:
        raise errors.UnsupportedError("export_meta_graph(export_scope=...): exporting part of a graph is not "
                                      "supported; export the whole graph and use import_meta_graph(import_scope=)")
    if save_debug_info:
        raise errors.UnsupportedError("export_meta_graph(save_debug_info=True): jitflow keeps each op's source "
                                      "location in the meta graph itself and writes no separate debug file")
    graph = graph if graph is not None else get_default_graph()
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a tf.Graph, got {graph!r}")
    saver_vars = []
    if saver_def is not None and not isinstance(saver_def, dict):
        if not hasattr(saver_def, "var_list"):
            raise TypeError(f"saver_def must be a Saver or Saver.as_saver_def(), got {saver_def!r}")
        saver_vars = list(saver_def.var_list.values())
        saver_def = saver_def_of(saver_def)
    if saver_def is not None:
        saver_def = dict(saver_def)
    if meta_info_def is not None and not isinstance(meta_info_def, dict):
        raise TypeError(f"meta_info_def must be a dict of meta information, got {meta_info_def!r}")
    data = build_meta_graph(graph, saver_def, collection_list, clear_devices, clear_extraneous_savers,
                            meta_info_def or {}, saver_vars)
    meta = MetaGraphDef(data)
    if filename:
        write_meta_graph_file(os.fspath(filename), meta, as_text)
    return meta


def build_meta_graph(graph, saver_def=None, collection_list=None, clear_devices=False,
                     clear_extraneous_savers=False, meta_info=None, saver_vars=()) -> dict:
    """The meta graph data; `saver_vars` are the saver's Variable objects (they may be in no collection)."""
    with graph._lock:
        graph_section = serialize_graph(graph, clear_devices)
        variables: dict[str, Variable] = {v.op.name: v for v in saver_vars}
        collections = {}
        keys = graph.get_all_collection_keys() if collection_list is None else list(collection_list)
        for key in keys:
            if not isinstance(key, str):
                warnings.warn(f"Only collections with string type keys are exported to a meta graph; "
                              f"collection {key!r} was not exported", stacklevel=3)
                continue
            items = graph.get_collection(key)
            if clear_extraneous_savers and key == "savers":
                continue
            try:
                collections[key] = [_encode_item(item, graph, variables) for item in items]
            except GraphSerializationError as exc:
                warnings.warn(f"Collection {key!r} was not exported to the meta graph: {exc}", stacklevel=3)
        if saver_def is not None:
            for key, name in saver_def["var_names"].items():
                variables.setdefault(name, _variable_named(graph, name, variables))
        store = graph._variable_store
        store_section = None
        if store is not None:
            for full_name, var in store["vars"].items():
                variables.setdefault(var.op.name, var)
            store_section = {"vars": {full_name: var.op.name for full_name, var in store["vars"].items()},
                             "default_names": dict(store.get("default_names", {}))}
        return {"format": FORMAT, "version": VERSION, "jitflow_version": _jitflow_version(),
                "meta_info": encode_value(dict(meta_info or {}), "meta_info_def"),
                "graph": graph_section,
                "variables": [_variable_def(v) for v in variables.values()],
                "collections": collections,
                "variable_store": store_section,
                "saver": saver_def}


def _variable_named(graph, name, variables):
    if name in variables:
        return variables[name]
    for var in graph.get_collection("variables") + graph.get_collection("local_variables"):
        if isinstance(var, Variable) and var.op.name == name:
            return var
    raise GraphSerializationError(f"the saver's variable {name!r} is in no variable collection of the graph")


def _variable_def(var: Variable) -> dict:
    return {"name": var.op.name, "initializer": var.initializer.name, "read": var._read.name,
            "initial_value": var._initial_value.name, "trainable": bool(var._trainable),
            "creation_site": var._creation_site}


def _encode_item(item, graph, variables):
    from ..summary import SummaryTensor
    from .saver import Saver
    if isinstance(item, Variable):
        if item.graph is not graph:
            raise GraphSerializationError(f"variable {item.name} belongs to another graph")
        variables.setdefault(item.op.name, item)
        return {"variable": item.op.name}
    if isinstance(item, Tensor):
        return {"tensor": item.name}
    if isinstance(item, Operation):
        return {"operation": item.name}
    if isinstance(item, SummaryTensor):
        return {"summary": item.op.name,
                "entries": [{"kind": e.kind, "tag": e.tag, "tensor": e.tensor.name, "op": e.op.name}
                            for e in item._entries]}
    if isinstance(item, Saver):
        saver_def = saver_def_of(item)
        for name in saver_def["var_names"].values():
            variables.setdefault(name, _variable_named(graph, name, variables))
        return {"saver": saver_def}
    if isinstance(item, (str, bool, int, float)):
        return {"value": encode_value(item)}
    if isinstance(item, bytes):
        return {"value": encode_value(item)}
    raise GraphSerializationError(f"an item of type {type(item).__name__} ({item!r:.60}) has no meta graph "
                                  f"encoding (collections may hold Variables, Tensors, Operations, summaries, "
                                  f"Savers, strings, bytes, numbers)")


def write_meta_graph_file(path: str, meta: MetaGraphDef, as_text: bool = False):
    """Writes atomically (temp file, fsync, rename)."""
    text = meta.to_json(indent=1 if as_text else None).encode("utf-8")
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise errors.NotFoundError(None, None, f"Cannot write meta graph {path}: directory {directory} "
                                               f"does not exist")
    tmp = _write_temp(path, lambda f: f.write(text))
    try:
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(directory)


# --------------------------------------------------------------------------- reading
def read_meta_graph_file(filename) -> MetaGraphDef:
    """Reads and validates a .meta file written by jitflow."""
    filename = os.fspath(filename)
    if not os.path.exists(filename):
        raise MetaGraphNotFoundError(f"File {filename} does not exist.")
    try:
        with open(filename, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise MetaGraphNotFoundError(f"Cannot read meta graph file {filename}: {exc}") from None
    return MetaGraphDef(_parse(raw, filename))


def _parse(raw: bytes, where: str) -> dict:
    try:
        with gc_paused():                   # a big graph's JSON is millions of objects (framework/gc_pause.py)
            data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        hint = "" if raw.lstrip()[:1] == b"{" else " (TF's binary MetaGraphDef protobuf files are not " \
                                                          "supported; jitflow reads the .meta files it writes)"
        raise MetaGraphFormatError(f"{where} is not a valid jitflow meta graph file{hint}: "
                                   f"{type(exc).__name__}: {exc}") from None
    return validate(data, where)


def validate(data, where: str = "meta graph") -> dict:
    """Checks the format name, version and section types of meta graph data."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise MetaGraphFormatError(f"{where} is not a jitflow meta graph (format {got!r}, expected {FORMAT!r})")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise MetaGraphFormatError(f"{where} has no valid format version (got {version!r})")
    if version != VERSION:
        newer = " (written by a newer jitflow)" if version > VERSION else ""
        raise MetaGraphFormatError(f"{where} has meta graph format version {version}{newer}; this jitflow "
                                   f"(version {_jitflow_version()}) reads version {VERSION}")
    for key, kind in (("graph", dict), ("variables", list), ("collections", dict)):
        if not isinstance(data.get(key), kind):
            raise MetaGraphFormatError(f"{where} is corrupt: section {key!r} is missing or not a {kind.__name__}")
    for key in ("saver", "variable_store"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise MetaGraphFormatError(f"{where} is corrupt: section {key!r} is not an object")
    return data


# --------------------------------------------------------------------------- import
_IMPORT_KWARGS = ("graph", "input_map", "restore_collections_predicate", "unbound_inputs_col_name")


def import_meta_graph(meta_graph_or_file, clear_devices=False, import_scope=None, **kwargs):
    """Recreates a meta graph's ops and collections in the default graph (or `graph=`), under `import_scope`.

    Returns a Saver over the imported variables with the exported saver's settings, or, when the meta graph
    has no saver, `tf.train.Saver()` if the graph has variables and None if it has none (as TF).
    """
    unknown = set(kwargs) - set(_IMPORT_KWARGS)
    if unknown:
        raise TypeError(f"import_meta_graph() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    if kwargs.get("unbound_inputs_col_name", "unbound_inputs") != "unbound_inputs":
        raise errors.UnsupportedError("import_meta_graph(unbound_inputs_col_name=...): jitflow meta graphs "
                                      "have no unbound inputs (export_scope is not supported)")
    meta = _as_meta(meta_graph_or_file)
    graph = kwargs.get("graph") or get_default_graph()
    predicate = kwargs.get("restore_collections_predicate") or (lambda key: True)
    with graph.as_default():
        return _import(graph, meta.data, clear_devices, import_scope, kwargs.get("input_map"), predicate)


def _as_meta(obj) -> MetaGraphDef:
    if isinstance(obj, MetaGraphDef):
        return MetaGraphDef(validate(obj.data))
    if isinstance(obj, dict):
        return MetaGraphDef(validate(obj))
    if isinstance(obj, bytes):
        return MetaGraphDef.FromString(obj)
    if isinstance(obj, (str, os.PathLike)):
        return read_meta_graph_file(obj)
    raise TypeError(f"import_meta_graph needs a .meta file path or a MetaGraphDef, got {obj!r}")


def _import(graph, data, clear_devices, import_scope, input_map, predicate):
    from ..api.variable_scope import _state
    from .saver import Saver
    variable_defs = data["variables"]
    collections = data["collections"]
    # check the non-graph sections before anything is created
    for i, vdef in enumerate(variable_defs):
        if not isinstance(vdef, dict) or not all(isinstance(vdef.get(k), str) for k in
                                                 ("name", "initializer", "read", "initial_value")):
            raise MetaGraphFormatError(f"meta graph is corrupt: variable record #{i} is malformed: {vdef!r:.120}")
    for key, items in collections.items():
        if not isinstance(items, list) or not all(isinstance(x, dict) and len(x) >= 1 for x in items):
            raise MetaGraphFormatError(f"meta graph is corrupt: collection {key!r} is malformed")

    if import_scope:
        with graph.name_scope(import_scope) as scope:     # uniquified, as TF's importer does
            prefix = scope[:-1]
    else:
        prefix = ""
    ops = import_graph(graph, data["graph"], prefix, input_map, clear_devices)

    def op(name, what):
        try:
            return ops[name]
        except (KeyError, TypeError):
            raise MetaGraphFormatError(f"meta graph is corrupt: {what} names op {name!r}, which the graph "
                                       f"section does not have") from None

    def tensor(name, what):
        if not isinstance(name, str) or ":" not in name:
            raise MetaGraphFormatError(f"meta graph is corrupt: {what} has a bad tensor name {name!r}")
        src, _, index = name.rpartition(":")
        outputs = op(src, what).outputs
        if not index.isdigit() or int(index) >= len(outputs):
            raise MetaGraphFormatError(f"meta graph is corrupt: {what} names tensor {name!r}, which does not exist")
        return outputs[int(index)]

    variables = {}
    for vdef in variable_defs:
        variables[vdef["name"]] = _restore_variable(graph, vdef, op, tensor)

    def variable(name, what):
        if name not in variables:
            raise MetaGraphFormatError(f"meta graph is corrupt: {what} names variable {name!r}, which the "
                                       f"variables section does not have")
        return variables[name]

    for key, items in collections.items():
        if not predicate(key):
            continue
        decoded = [_decode_item(item, key, op, tensor, variable) for item in items]
        for value in decoded:
            graph.add_to_collection(key, value)

    store = data.get("variable_store")
    if store:
        state = _state(graph)
        for full_name, name in dict(store.get("vars", {})).items():
            state["vars"].setdefault(f"{prefix}/{full_name}" if prefix else full_name,
                                     variable(name, "the variable store"))
        defaults = state.setdefault("default_names", {})
        for key, count in dict(store.get("default_names", {})).items():
            if prefix:      # keys are "<parent scope>/<default name>"; the root scope is ""
                key = prefix + key if key.startswith("/") else f"{prefix}/{key}"
            if isinstance(count, int):
                defaults[key] = max(defaults.get(key, 0), count)

    saver_def = data.get("saver")
    if saver_def is not None:
        return Saver(**saver_kwargs(saver_def, lambda name: variable(name, "the saver")))
    from ..api.variables import global_variables
    if global_variables(scope=prefix or None):
        return Saver()
    _log.info("Saver not created because there are no variables in the graph to restore")
    return None


def _restore_variable(graph, vdef, op, tensor) -> Variable:
    """A tf.Variable object for imported ops (what TF's Variable(variable_def=...) does)."""
    what = f"variable {vdef['name']!r}"
    var = Variable.__new__(Variable)
    var.op = op(vdef["name"], what)
    if var.op._op != "variable":
        raise MetaGraphFormatError(f"meta graph is corrupt: {what} names an op of type {var.op.type}")
    var._handle = var.op.outputs[0]
    var.initializer = op(vdef["initializer"], what)
    var._read = tensor(vdef["read"], what)
    var._initial_value = tensor(vdef["initial_value"], what)
    var._trainable = bool(vdef.get("trainable", True))
    var.constraint = None          # a Python callable: not part of a meta graph (TF drops it too)
    var._creation_site = str(vdef.get("creation_site") or "<imported from a meta graph>")
    var.graph = graph
    return var


def _decode_item(item, key, op, tensor, variable):
    from ..summary import SummaryTensor, _Entry
    what = f"collection {key!r}"
    kind, body = next(iter(item.items()))
    if kind == "variable":
        return variable(body, what)
    if kind == "tensor":
        return tensor(body, what)
    if kind == "operation":
        return op(body, what)
    if kind == "summary":
        try:
            entries = [_Entry(e["kind"], e["tag"], tensor(e["tensor"], what), op(e["op"], what))
                       for e in item["entries"]]
        except (KeyError, TypeError):
            raise MetaGraphFormatError(f"meta graph is corrupt: a summary in {what} is malformed") from None
        return SummaryTensor(op(body, what), entries)
    if kind == "saver":
        from .saver import Saver
        return Saver(**saver_kwargs(body, lambda name: variable(name, what)))
    if kind == "value":
        return decode_value(body, what)
    raise MetaGraphFormatError(f"meta graph is corrupt: {what} has an item of unknown kind {kind!r}")


def saver_kwargs(saver_def, lookup) -> dict:
    """Saver constructor arguments for a saver def; `lookup(op name)` finds each variable."""
    if not isinstance(saver_def, dict) or not isinstance(saver_def.get("var_names"), dict):
        raise MetaGraphFormatError(f"malformed saver def: {saver_def!r:.120}")
    hours = saver_def.get("keep_checkpoint_every_n_hours", 10000.0)
    return {"var_list": {key: lookup(name) for key, name in saver_def["var_names"].items()},
            "max_to_keep": saver_def.get("max_to_keep", 5),
            "keep_checkpoint_every_n_hours": hours,
            "pad_step_number": bool(saver_def.get("pad_step_number", False)),
            "save_relative_paths": bool(saver_def.get("save_relative_paths", False)),
            "allow_empty": True,
            "filename": saver_def.get("filename")}


def saver_kwargs_in_graph(saver_def, graph, scope=None) -> dict:
    """For `Saver(saver_def=...)`: resolves the def's variable names in `graph` (under `scope`)."""
    by_name = {v.op.name: v for v in graph.get_collection("variables") + graph.get_collection("local_variables")
               if isinstance(v, Variable)}
    prefix = (scope.rstrip("/") + "/") if scope else ""

    def lookup(name):
        var = by_name.get(prefix + name)
        if var is None:
            raise ValueError(f"Saver(saver_def=...): variable {prefix + name!r} is not in the graph's variables")
        return var
    return saver_kwargs(saver_def, lookup)
