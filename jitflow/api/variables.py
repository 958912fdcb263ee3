"""`tf.Variable`: a variable handle op, its initializer (an assign op), its
read op, and the methods users call (`assign`, `eval`, `initializer`, ...);
`global_variables_initializer` and `variables_initializer`."""
from __future__ import annotations

import contextlib

from ..framework.graph import GraphKeys, Operation, Tensor, get_default_graph
from ..source_info import user_location
from ..errors import UnsupportedError
from .convert import convert_to_tensor


@contextlib.contextmanager
def _outside_regions():
    """The graph a variable is created in: the default graph, or, while a tf.cond branch or a
    tf.while_loop body is traced (a FuncGraph, jitflow/framework/func_graph.py), the graph the
    regions are traced inside, under the name scope TF 1.x gives it (`while/u`, `cond/w`; a
    tf.get_variable ignores name scopes) -- TF 1.x creates such a variable and its initializer
    outside the control-flow construct; the region reads it like any variable."""
    graph = get_default_graph()
    if getattr(graph, "outer", None) is None:
        yield graph
        return
    scope = graph.get_name_scope()
    root = graph
    while getattr(root, "outer", None) is not None:
        scope = root.outer_scope(scope)
        root = root.outer
    with root.as_default(), root.name_scope(scope + "/" if scope else ""):
        yield root


class Variable:
    def __init__(self, initial_value=None, trainable=True, collections=None, validate_shape=True,
                 caching_device=None, name=None, variable_def=None, dtype=None, expected_shape=None,
                 import_scope=None, constraint=None, use_resource=None, synchronization=None,
                 aggregation=None, shape=None):
        if initial_value is None:
            raise ValueError("initial_value must be specified.")
        loc = user_location()
        self._creation_site = loc.long() if loc else "<unknown location>"
        with _outside_regions() as graph:
            self._create(graph, initial_value, dtype, name, validate_shape, loc)
        self._trainable = trainable
        self._validate_shape = bool(validate_shape)
        self.constraint = constraint   # applied after each optimizer update (TF 1.x)
        self.graph = graph
        collections = [GraphKeys.GLOBAL_VARIABLES] if collections is None else list(collections)  # [] means none
        for key in collections:
            graph.add_to_collection(key, self)
        if trainable and GraphKeys.TRAINABLE_VARIABLES not in collections:
            graph.add_to_collection(GraphKeys.TRAINABLE_VARIABLES, self)

    def _create(self, graph, initial_value, dtype, name, validate_shape, loc):
        with graph.name_scope(name or "Variable") as scope, graph._outside_conditions():
            op_name = scope[:-1]
            with graph.name_scope("Initializer"), graph.control_dependencies(None):
                if callable(initial_value):
                    initial_value = initial_value()
                init = convert_to_tensor(initial_value, dtype=dtype, name="initial_value")
            if init.graph is not graph:
                raise ValueError(f"Initializer for variable {scope[:-1]} is from inside a control-flow construct, "
                                 f"such as a loop or conditional. When creating a variable inside a loop or "
                                 f"conditional, use a lambda as the initializer (at {loc}).")
            if init.shape.dims is None or not init.shape.is_fully_defined():
                if validate_shape:
                    raise ValueError(f"initial_value must have a fully defined shape: {init}")
                raise UnsupportedError(
                    f"tf.Variable(validate_shape=False) with an initial value whose shape is known only at run "
                    f"time ({init}) is not supported by jitflow: a variable's shape is fixed when the graph is "
                    f"built (at {loc}). Give the initial value a static shape.")
            self._initial_value = init
            self.op = graph.create_op("variable", [], {"dtype": init.dtype, "shape": init.shape.dims},
                                      name=op_name + "/")
            self._handle = self.op.outputs[0]
            with graph.control_dependencies(None):
                self.initializer = graph.create_op("assign_var", [self._handle, init], {},
                                                   name="Assign").outputs[0].op
                self._read = graph.create_op("read_var", [self._handle], {}, name="read").outputs[0]

    # --- properties
    @property
    def name(self) -> str:
        return self.op.name + ":0"

    @property
    def dtype(self):
        return self._read.dtype

    @property
    def shape(self):
        return self._read.shape

    def get_shape(self):
        return self.shape

    @property
    def trainable(self) -> bool:
        return self._trainable

    @property
    def initial_value(self) -> Tensor:
        return self._initial_value

    @property
    def handle(self) -> Tensor:
        return self._handle

    @property
    def device(self):
        return self.op.attrs.get("_device", "")

    # --- reads
    def value(self) -> Tensor:
        """The variable's value; inside `control_dependencies` a fresh read."""
        if self.graph._control_stack and any(self.graph._control_stack):
            return self.read_value()
        return self._read

    def read_value(self) -> Tensor:
        return self.graph.create_op("read_var", [self._handle], {}, name=self.op.name + "/read").outputs[0]

    def _as_graph_element(self):
        return self._read

    def eval(self, session=None, feed_dict=None):
        return self._read.eval(feed_dict=feed_dict, session=session)

    # --- writes
    def _update(self, kind, value, name, validate_shape=True):
        value = convert_to_tensor(value, dtype=self.dtype)
        if kind == "assign_var" and not (validate_shape and getattr(self, "_validate_shape", True)):
            _refuse_reshaping_assign(self, value)
        return self.graph.create_op(kind, [self._handle, value], {}, name=name).outputs[0]

    def assign(self, value, use_locking=False, name=None, read_value=True):
        return self._update("assign_var", value, name or "Assign")

    def assign_add(self, delta, use_locking=False, name=None, read_value=True):
        return self._update("assign_add_var", delta, name or "AssignAdd")

    def assign_sub(self, delta, use_locking=False, name=None, read_value=True):
        return self._update("assign_sub_var", delta, name or "AssignSub")

    def load(self, value, session=None):
        from ..session import _session_for
        _session_for(session, self.graph)._load_variable(self, value)

    def __repr__(self):
        return f"<tf.Variable '{self.name}' shape={self.shape} dtype={self.dtype.name}>"

    def __hash__(self):
        return id(self)

    def __iter__(self):
        return iter(self._read)

    def __bool__(self):
        return self._read.__bool__()


def assign(ref, value, validate_shape=None, use_locking=None, name=None):
    variable = _as_variable(ref)
    return variable._update("assign_var", value, name or "Assign", validate_shape=validate_shape is not False)


def _refuse_reshaping_assign(variable, value):
    """validate_shape=False lets TF change a variable's shape on assign; jitflow fixes the shape when the
    graph is built, so an assign of another shape says so by name (same-shape assigns are unaffected)."""
    dims, target = value.shape.dims, variable.shape.dims
    if dims is not None and (len(dims) != len(target) or any(d is not None and d != t for d, t in zip(dims, target))):
        loc = user_location()
        raise UnsupportedError(
            f"assigning a value of shape {value.shape} to {variable.name} of shape {variable.shape} with "
            f"validate_shape=False (a variable whose shape changes) is not supported by jitflow: a variable's "
            f"shape is fixed when the graph is built{f' (at {loc})' if loc else ''}")


def assign_add(ref, value, use_locking=None, name=None):
    return _as_variable(ref).assign_add(value, name=name)


def assign_sub(ref, value, use_locking=None, name=None):
    return _as_variable(ref).assign_sub(value, name=name)


def _as_variable(ref) -> Variable:
    if isinstance(ref, Variable):
        return ref
    if isinstance(ref, Tensor) and ref.op._op == "variable":   # get_tensor_by_name("<variable>:0")
        for key in (GraphKeys.GLOBAL_VARIABLES, GraphKeys.LOCAL_VARIABLES):
            for v in ref.graph.get_collection(key):
                if isinstance(v, Variable) and v.op is ref.op:
                    return v
    raise TypeError(f"assign needs a tf.Variable, got {ref!r}")


def global_variables(scope=None):
    return get_default_graph().get_collection(GraphKeys.GLOBAL_VARIABLES, scope)


def trainable_variables(scope=None):
    return get_default_graph().get_collection(GraphKeys.TRAINABLE_VARIABLES, scope)


def local_variables(scope=None):
    return get_default_graph().get_collection(GraphKeys.LOCAL_VARIABLES, scope)


def variables_initializer(var_list, name="init") -> Operation:
    return group(*[v.initializer for v in var_list], name=name)


def global_variables_initializer() -> Operation:
    return variables_initializer(global_variables(), name="init")


def local_variables_initializer() -> Operation:
    return variables_initializer(local_variables(), name="init")


initialize_all_variables = global_variables_initializer


def group(*inputs, name=None) -> Operation:
    graph = get_default_graph()
    from ..framework.graph import _as_operation
    deps = [_as_operation(x, graph) for x in inputs]
    with graph.control_dependencies(deps):
        return graph.create_op("no_op", [], {}, name=name or "NoOp")


def no_op(name=None) -> Operation:
    return get_default_graph().create_op("no_op", [], {}, name=name or "NoOp")

