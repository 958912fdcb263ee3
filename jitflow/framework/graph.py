"""The TF 1.x graph: `Graph`, `Operation`, `Tensor`, the default-graph stack,
name scopes, control dependencies and collections.

Graph building records ops and infers static types with each op's registry
`infer` rule; nothing is computed here. `Session.run` lowers a pruned part of a
graph to an IR function (see `jitflow.framework.lowering`).
"""
from __future__ import annotations

import contextlib
import re
import threading

from ..ir.types import DType, TensorType
from ..ir.types import string as _STRING
from ..ops import get_op
from ..ops.registry import ShapeError
from ..source_info import user_location
from .shapes import TensorShape


class GraphKeys:
    GLOBAL_VARIABLES = "variables"
    TRAINABLE_VARIABLES = "trainable_variables"
    LOCAL_VARIABLES = "local_variables"
    MODEL_VARIABLES = "model_variables"
    SUMMARIES = "summaries"
    UPDATE_OPS = "update_ops"
    LOSSES = "losses"
    REGULARIZATION_LOSSES = "regularization_losses"
    METRIC_VARIABLES = "metric_variables"
    WEIGHTS = "weights"
    BIASES = "biases"
    MOVING_AVERAGE_VARIABLES = "moving_average_variables"
    GLOBAL_STEP = "global_step"
    TRAIN_OP = "train_op"
    INIT_OP = "init_op"
    SAVERS = "savers"


_CONDITIONAL_UPDATES = ("assign_var", "assign_add_var", "assign_sub_var")
_VALID_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/]*$")


class Operation:
    """A node of a Graph. `type` is the TF op name; `_op` the registry name."""

    def __init__(self, graph, op_name, inputs, attrs, name, output_types, control_inputs, loc):
        self.graph = graph
        self._op = op_name
        self.inputs = tuple(inputs)
        self.attrs = attrs
        self.name = name
        self.control_inputs = tuple(control_inputs)
        self.loc = loc
        self._id = len(graph._ops)
        self.outputs = tuple(Tensor(self, i, t) for i, t in enumerate(output_types))

    @property
    def type(self) -> str:
        return get_op(self._op).tf_name or self._op

    def get_attr(self, name):
        return self.attrs[name]

    @property
    def device(self) -> str:
        return self.attrs.get("_device", "")

    def run(self, feed_dict=None, session=None):
        from ..session import _session_for
        _session_for(session, self.graph).run(self, feed_dict)

    def __repr__(self):
        return f"<tf.Operation '{self.name}' type={self.type}>"


class Tensor:
    """One output of an Operation; Python operators build new ops."""

    __array_priority__ = 100

    def __init__(self, op, value_index, type_):
        self.op = op
        self.value_index = value_index
        self._type = type_

    # --- static information
    @property
    def graph(self):
        return self.op.graph

    @property
    def name(self) -> str:
        return f"{self.op.name}:{self.value_index}"

    @property
    def dtype(self) -> DType:
        return self._type.dtype

    @property
    def shape(self) -> TensorShape:
        return TensorShape(self._type.shape)

    def get_shape(self) -> TensorShape:
        return self.shape

    def set_shape(self, shape):
        shape = TensorShape(shape)
        if self._type.shape is None:
            self._type = type(self._type)(self._type.dtype, shape.dims)
            return
        if shape.dims is None:
            return
        if len(shape.dims) != len(self._type.shape) or any(
                a is not None and b is not None and a != b for a, b in zip(shape.dims, self._type.shape)):
            raise ValueError(f"Shapes {self.shape} and {shape} are not compatible")
        merged = tuple(a if a is not None else b for a, b in zip(self._type.shape, shape.dims))
        self._type = type(self._type)(self._type.dtype, merged)

    @property
    def device(self):
        return self.op.attrs.get("_device", "")

    def eval(self, feed_dict=None, session=None):
        from ..session import _session_for
        return _session_for(session, self.graph).run(self, feed_dict)

    def __repr__(self):
        return f"<tf.Tensor '{self.name}' shape={self.shape} dtype={self.dtype.name}>"

    def __str__(self):
        return f'Tensor("{self.name}", shape={self.shape}, dtype={self.dtype.name})'

    def __hash__(self):
        return id(self)

    def __bool__(self):
        loc = user_location()
        where = f" (at {loc}: {loc.code})" if loc else ""
        raise TypeError(f"Using a `tf.Tensor` as a Python `bool` is not allowed{where}. A graph (or a function "
                        f"traced by @jit) has no values yet: use TensorFlow ops such as tf.where to select "
                        f"values, or make the value a static argument (jit(..., static_argnums=...)) to "
                        f"branch in Python.")

    def __iter__(self):
        shape = self._type.shape
        if shape is None or not shape or shape[0] is None:
            raise TypeError("Tensor objects are only iterable when the first dimension is known.")
        return (self[i] for i in range(shape[0]))

    def __len__(self):
        raise TypeError("len is not well defined for symbolic Tensors; use tf.shape or .shape")


class Graph:
    """A TF 1.x computation graph."""

    def __init__(self):
        self._ops: list[Operation] = []
        self._by_name: dict[str, Operation] = {}
        self._names_in_use: dict[str, int] = {}
        self._name_stack = ""
        self._control_stack: list[list[Operation]] = []
        self._device_stack: list[str] = []
        self._collections: dict[str, list] = {}
        self._lock = threading.RLock()
        self._finalized = False
        self.seed = None
        self._version = 0
        self._variable_store = None      # used by get_variable / variable_scope
        self._cond_stack: list = []       # (pred, branch) frames of enclosing tf.cond branches

    # --- default graph
    @contextlib.contextmanager
    def as_default(self):
        _default_graph_stack.stack.append(self)
        try:
            yield self
        finally:
            _default_graph_stack.stack.pop()

    @property
    def version(self) -> int:
        return self._version

    @property
    def finalized(self) -> bool:
        return self._finalized

    def finalize(self):
        self._finalized = True

    # --- names
    def unique_name(self, name: str, mark_as_used: bool = True) -> str:
        if self._name_stack:
            name = self._name_stack + "/" + name
        key = name.lower()
        count = self._names_in_use.get(key, 0)
        if mark_as_used:
            self._names_in_use[key] = count + 1
        if count > 0:
            base = name
            while self._names_in_use.get(f"{base}_{count}".lower(), 0):
                count += 1
            name = f"{base}_{count}"
            if mark_as_used:
                self._names_in_use[name.lower()] = 1
        return name

    def get_name_scope(self) -> str:
        return self._name_stack

    @contextlib.contextmanager
    def name_scope(self, name):
        old = self._name_stack
        if name is None or name == "":
            new = "" if name == "" else old
        elif name.endswith("/"):
            new = name[:-1]
        else:
            if not _VALID_NAME.match(name):
                raise ValueError(f"'{name}' is not a valid scope name")
            new = self.unique_name(name)
        self._name_stack = new
        try:
            yield (new + "/") if new else ""
        finally:
            self._name_stack = old

    # --- control dependencies and devices
    @contextlib.contextmanager
    def control_dependencies(self, control_inputs):
        if control_inputs is None:
            saved, self._control_stack = self._control_stack, []
            try:
                yield
            finally:
                self._control_stack = saved
            return
        ops = []
        for item in control_inputs:
            ops.append(_as_operation(item, self))
        self._control_stack.append(ops)
        try:
            yield
        finally:
            self._control_stack.pop()

    def _current_control_inputs(self):
        return [op for frame in self._control_stack for op in frame]

    @contextlib.contextmanager
    def device(self, name):
        self._device_stack.append(name or "")
        try:
            yield
        finally:
            self._device_stack.pop()

    # --- ops
    def create_op(self, op_name: str, inputs, attrs=None, name: str | None = None,
                  output_types=None) -> Operation:
        """Creates an op; infers output types with the registry rule."""
        if self._finalized:
            raise RuntimeError("Graph is finalized and cannot be modified.")
        default = get_default_graph()
        if default is not self and op_name not in ("read_var", "variable") and getattr(default, "encloses", None) \
                and default.encloses(self):       # tracing a control-flow region (framework/func_graph.py)
            return default.create_op(op_name, inputs, attrs, name, output_types)
        attrs = dict(attrs or {})
        opdef = get_op(op_name)
        loc = user_location()
        for t in inputs:
            if t.graph is not self:
                raise ValueError(f"Tensor {t.name} must be from the same graph as the other inputs "
                                 f"of {name or opdef.tf_name or op_name} (at {loc}). Inside @jit, pass "
                                 f"tensors and parameters as arguments instead of capturing them.")
        if self._cond_stack and op_name in _CONDITIONAL_UPDATES:
            inputs = self._conditional_update(op_name, list(inputs))
        if attrs.get("dtype") is _STRING or any(getattr(t._type, "dtype", None) is _STRING for t in inputs):
            from ..host_values import check_string_op     # tf.string: host values, no string math
            check_string_op(self, op_name, inputs, attrs, name)
        if output_types is None:
            output_types = infer_types(opdef, [t._type for t in inputs], attrs, op_name, loc)
        with self._lock:
            if name and name.endswith("/"):      # an absolute name: a scope already reserved it
                op_name_unique = name[:-1]
            else:
                op_name_unique = self.unique_name(name or opdef.tf_name or op_name)
            if self._device_stack and self._device_stack[-1]:
                attrs["_device"] = self._device_stack[-1]
            op = Operation(self, op_name, inputs, attrs, op_name_unique, output_types,
                           self._current_control_inputs(), loc)
            self._ops.append(op)
            self._by_name[op.name] = op
            self._version += 1
        return op

    # --- tf.cond support: variable updates inside a branch only take effect when it is taken
    @contextlib.contextmanager
    def _cond_branch(self, pred, taken_when: bool):
        self._cond_stack.append((pred, taken_when))
        try:
            yield
        finally:
            self._cond_stack.pop()

    @contextlib.contextmanager
    def _outside_conditions(self):
        """Like TF's `init_scope` for a variable created in a cond branch: its initializer runs
        whenever the initializers run, whichever branch a later run takes."""
        frames, self._cond_stack = self._cond_stack, []
        try:
            yield
        finally:
            self._cond_stack = frames

    def _conditional_update(self, op_name, inputs):
        handle, value = inputs[0], inputs[1]
        frames, self._cond_stack = self._cond_stack, []
        try:
            for pred, taken_when in frames:
                cond = pred if taken_when else self.create_op("logical_not", [pred]).outputs[0]
                if op_name == "assign_var":
                    keep = self.create_op("read_var", [handle]).outputs[0]
                else:
                    keep = self.create_op("fill_like", [value], {"value": 0, "dtype": value.dtype}).outputs[0]
                value = self.create_op("select", [cond, value, keep]).outputs[0]
        finally:
            self._cond_stack = frames
        return [handle, value] + inputs[2:]

    def get_operations(self):
        return list(self._ops)

    def get_operation_by_name(self, name: str) -> Operation:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"The name '{name}' refers to an Operation not in the graph.") from None

    def get_tensor_by_name(self, name: str) -> Tensor:
        if ":" not in name:
            raise ValueError(f"The name '{name}' looks like an Operation name, not a Tensor name "
                             f"(Tensor names must be of the form '<op_name>:<output_index>').")
        op_name, index = name.rsplit(":", 1)
        op = self.get_operation_by_name(op_name)
        index = int(index)
        if index >= len(op.outputs):
            raise KeyError(f"The name '{name}' refers to a Tensor which does not exist. "
                           f"The operation '{op_name}' has {len(op.outputs)} outputs.")
        return op.outputs[index]

    def as_graph_element(self, obj):
        if isinstance(obj, str):
            return self.get_tensor_by_name(obj) if ":" in obj else self.get_operation_by_name(obj)
        return obj

    # --- collections
    def add_to_collection(self, name, value):
        self._collections.setdefault(name, []).append(value)

    def get_collection(self, name, scope=None):
        items = list(self._collections.get(name, []))
        if scope is None:
            return items
        pattern = re.compile(scope)
        return [x for x in items if pattern.match(getattr(x, "name", ""))]

    def get_collection_ref(self, name):
        return self._collections.setdefault(name, [])

    def get_all_collection_keys(self):
        return list(self._collections)


def infer_types(opdef, types, attrs, op_name, loc=None):
    """Runs an op's infer rule at graph-building time; unknown-rank inputs give
    unknown-rank outputs with the dtype the rule picks for scalar stand-ins."""
    try:
        if any(isinstance(t, TensorType) and t.shape is None for t in types) and \
                not opdef.extra.get("infers_unknown_rank"):
            stand_ins = [TensorType(t.dtype, ()) if isinstance(t, TensorType) and t.shape is None else t
                         for t in types]
            try:
                out = opdef.infer(stand_ins, attrs, op_name)
            except (ShapeError, ValueError):
                out = [TensorType(types[0].dtype, ())]
            return [TensorType(t.dtype, None) if isinstance(t, TensorType) else t for t in out]
        return opdef.infer(types, attrs, op_name)
    except ShapeError as exc:
        where = f" (at {loc})" if loc else ""
        raise ValueError(f"{exc}{where}") from None
    except TypeError as exc:
        where = f" (at {loc})" if loc else ""
        raise TypeError(f"{exc}{where}") from None


def _as_operation(item, graph):
    from ..api.variables import Variable
    if isinstance(item, Operation):
        return item
    if isinstance(item, Tensor):
        return item.op
    if isinstance(item, Variable):
        return item.op
    if isinstance(item, str):
        return graph.as_graph_element(item)
    if isinstance(getattr(item, "op", None), Operation):   # e.g. a summary, which is not a Tensor
        return item.op
    raise TypeError(f"Can not convert {item!r} to an Operation")


class _DefaultGraphStack(threading.local):
    def __init__(self):
        self.stack = []


_default_graph_stack = _DefaultGraphStack()
_global_default_graph = [None]


def get_default_graph() -> Graph:
    if _default_graph_stack.stack:
        return _default_graph_stack.stack[-1]
    if _global_default_graph[0] is None:
        _global_default_graph[0] = Graph()
    return _global_default_graph[0]


def reset_default_graph():
    if _default_graph_stack.stack:
        raise AssertionError("Do not use tf.reset_default_graph() to clear nested graphs. If you need a "
                             "cleared graph, exit the nesting and create a new graph.")
    _global_default_graph[0] = Graph()

