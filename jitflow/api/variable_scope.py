"""Variable sharing: `variable_scope`, `get_variable`, `get_variable_scope`,
`AUTO_REUSE`, with TF 1.x's rules:

- `get_variable` names follow variable scopes only (`name_scope` is ignored);
- re-entering a variable scope opens a new name scope (`relu_1/`) while shared
  variables keep their first name (`relu/threshold`);
- creating an existing variable without reuse, or reusing a missing one, raises
  the ValueError TF raises, naming where the variable was first defined.
"""
from __future__ import annotations

import contextlib

from ..errors import UnsupportedError
from ..framework.graph import get_default_graph
from ..ir.types import as_dtype, float32
from .convert import convert_to_tensor
from .init_ops import glorot_uniform_initializer, zeros_initializer
from .variables import Variable


class _ReuseMode:
    def __repr__(self):
        return "tf.AUTO_REUSE"


AUTO_REUSE = _ReuseMode()


class VariableScope:
    def __init__(self, name: str, reuse=None, initializer=None, regularizer=None, name_scope: str = "",
                 dtype=float32, constraint=None):
        self.name = name
        self.reuse = reuse
        self.initializer = initializer
        self.regularizer = regularizer
        self.original_name_scope = name_scope
        self.dtype = dtype
        self.constraint = constraint

    def reuse_variables(self):
        self.reuse = True

    def set_initializer(self, initializer):
        self.initializer = initializer

    def __repr__(self):
        return f"<VariableScope '{self.name}' reuse={self.reuse}>"


def _state(graph):
    if graph._variable_store is None:
        graph._variable_store = {"vars": {}, "stack": [VariableScope("")]}
    return graph._variable_store


def get_variable_scope() -> VariableScope:
    return _state(get_default_graph())["stack"][-1]


@contextlib.contextmanager
def variable_scope(name_or_scope=None, default_name=None, values=None, initializer=None, regularizer=None,
                   caching_device=None, partitioner=None, custom_getter=None, reuse=None, dtype=None,
                   use_resource=None, constraint=None, auxiliary_name_scope=True):
    _refuse_unsupported(partitioner=partitioner, custom_getter=custom_getter)
    graph = get_default_graph()
    state = _state(graph)
    parent = state["stack"][-1]
    if isinstance(name_or_scope, VariableScope):
        full_name = name_or_scope.name
        scope_name_for_ops = full_name.rsplit("/", 1)[-1]
        inherited_reuse = name_or_scope.reuse
    else:
        base = name_or_scope if name_or_scope is not None else default_name
        if base is None:
            raise ValueError("variable_scope needs a name_or_scope or a default_name")
        if name_or_scope is None:   # default_name is uniquified like a name scope
            base = _unique_default(graph, parent.name, base)
        full_name = f"{parent.name}/{base}" if parent.name else base
        scope_name_for_ops = base
        inherited_reuse = None
    _open_scope(graph, full_name)
    if reuse is False:
        reuse = None
    effective_reuse = reuse if reuse is not None else (inherited_reuse if inherited_reuse is not None else parent.reuse)
    if parent.reuse is True and effective_reuse is None:
        effective_reuse = True
    with graph.name_scope(scope_name_for_ops) as op_scope:
        scope = VariableScope(full_name, effective_reuse, initializer or parent.initializer,
                              regularizer or parent.regularizer, op_scope, dtype or parent.dtype,
                              constraint or parent.constraint)
        state["stack"].append(scope)
        try:
            yield scope
        finally:
            state["stack"].pop()


def _unique_default(graph, parent_name, base):
    """TF's _get_unique_variable_scope: the first of base, base_1, ... not opened yet under the parent
    (explicitly named scopes count too)."""
    opened = _state(graph).setdefault("default_names", {})   # full scope name -> times opened
    prefix = f"{parent_name}/{base}" if parent_name else base
    if not opened.get(prefix):
        return base
    index = 1
    while opened.get(f"{prefix}_{index}"):
        index += 1
    return f"{base}_{index}"


def _open_scope(graph, full_name):
    """Counts an entry of a variable scope and forgets the subscopes opened under it (as TF's
    open_variable_scope / close_variable_subscopes), so re-entering a scope repeats its default names."""
    opened = _state(graph).setdefault("default_names", {})   # full scope name -> times opened
    opened[full_name] = opened.get(full_name, 0) + 1
    for key in opened:
        if key.startswith(full_name + "/"):
            opened[key] = 0


def _refuse_unsupported(**arguments):
    for name, value in arguments.items():
        if value is not None:
            raise UnsupportedError(f"variable_scope/get_variable argument `{name}` is not supported by jitflow")


def get_variable(name, shape=None, dtype=None, initializer=None, regularizer=None, trainable=True,
                 collections=None, caching_device=None, partitioner=None, validate_shape=True,
                 use_resource=None, custom_getter=None, constraint=None, **kwargs):
    _refuse_unsupported(partitioner=partitioner, custom_getter=custom_getter)
    unknown = sorted(set(kwargs) - {"synchronization", "aggregation"})   # distribution hints: no effect here
    if unknown:
        raise TypeError(f"get_variable() got an unexpected keyword argument '{unknown[0]}'")
    graph = get_default_graph()
    state = _state(graph)
    scope = state["stack"][-1]
    full_name = f"{scope.name}/{name}" if scope.name else name
    existing = state["vars"].get(full_name)
    if existing is not None:
        if scope.reuse is None:
            raise ValueError(f"Variable {full_name} already exists, disallowed. Did you mean to set reuse=True or "
                             f"reuse=tf.AUTO_REUSE in VarScope? Originally defined at:\n\n  "
                             f"{existing._creation_site}")
        if shape is not None and tuple(existing.shape.dims) != tuple(int(d) for d in shape):
            raise ValueError(f"Trying to share variable {full_name}, but specified shape {tuple(shape)} and "
                             f"found shape {tuple(existing.shape.dims)}.")
        return existing
    if scope.reuse is True:
        raise ValueError(f"Variable {full_name} does not exist, or was not created with tf.get_variable(). "
                         f"Did you mean to set reuse=tf.AUTO_REUSE in VarScope?")
    dtype = as_dtype(dtype) if dtype is not None else scope.dtype
    default = glorot_uniform_initializer() if dtype.is_floating else zeros_initializer()   # as TF 1.x
    init = initializer if initializer is not None else (scope.initializer or default)
    if callable(init):
        if shape is None:
            raise ValueError(f"Shape of a new variable ({full_name}) must be fully defined, but instead was None.")
        shape = tuple(int(d) for d in shape)

        def initial_value():
            return init(shape, dtype)
    else:
        value = convert_to_tensor(init, dtype=dtype)
        if shape is not None and tuple(value.shape.dims) != tuple(int(d) for d in shape):
            raise ValueError(f"get_variable {full_name}: initializer shape {value.shape} does not match {shape}")

        def initial_value():
            return value
    with graph.name_scope(""), graph.control_dependencies(None):
        variable = Variable(initial_value, trainable=trainable, collections=collections, name=full_name,
                            dtype=dtype, validate_shape=validate_shape)
    state["vars"][full_name] = variable
    variable.constraint = constraint if constraint is not None else scope.constraint   # applied by optimizers
    reg = regularizer or scope.regularizer
    if reg is not None:
        with graph.name_scope(full_name + "/Regularizer/"):
            penalty = reg(variable)
        if penalty is not None:
            graph.add_to_collection("regularization_losses", penalty)
    return variable
