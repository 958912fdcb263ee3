"""`tf.train.ExponentialMovingAverage` (TF 1.x): shadow variables `<var>/ExponentialMovingAverage`
updated by graph ops (`shadow -= (1 - decay) * (shadow - var)`), their lookup (`average`,
`average_name`) and the name map a Saver uses to load the averages into the model's variables
(`variables_to_restore`); `tf.moving_average_variables()`.

As in TF: a shadow of a Variable starts at the variable's initial value, a shadow of a Tensor at
zeros; the *averaged* Variables (not the shadows) join `MOVING_AVERAGE_VARIABLES`; shadows are
non-trainable members of `GLOBAL_VARIABLES`. TF applies zero-debiasing only to averages of Tensors,
so `zero_debias=True` changes nothing for Variables and is accepted for them; for a Tensor it raises
UnsupportedError (not implemented here). Difference: TF starts a shadow from the variable's
*current* value when the variable is already initialized; here it always starts from the initial value.
"""
from __future__ import annotations

from ..api import math_ops as m
from ..api.array_ops import zeros
from ..api.convert import convert_to_tensor
from ..api.variables import Variable, group, trainable_variables, global_variables
from ..errors import UnsupportedError
from ..framework.graph import GraphKeys, get_default_graph
from ..ir.types import float32


def moving_average_variables(scope=None):
    """The variables that have a moving average (`tf.moving_average_variables`)."""
    return get_default_graph().get_collection(GraphKeys.MOVING_AVERAGE_VARIABLES, scope)


def assign_moving_average(variable, value, decay, zero_debias=True, name=None):
    """`variable -= (1 - decay) * (variable - value)`; returns the assign's output."""
    if zero_debias:
        raise UnsupportedError("assign_moving_average(zero_debias=True) is not supported by jitflow; "
                               "pass zero_debias=False")
    graph = variable.graph
    with graph.name_scope(name or "AssignMovingAvg"):
        decay = m.cast(convert_to_tensor(decay), variable.dtype)
        one_minus = m.subtract(convert_to_tensor(1.0, dtype=variable.dtype), decay)
        delta = m.multiply(m.subtract(variable.value(), convert_to_tensor(value, dtype=variable.dtype)), one_minus)
        return variable.assign_sub(delta)


class ExponentialMovingAverage:
    """Keeps moving averages of variables (or tensors) in shadow variables."""

    def __init__(self, decay, num_updates=None, zero_debias=False, name="ExponentialMovingAverage"):
        self._decay = decay
        self._num_updates = num_updates
        self._zero_debias = zero_debias
        self._name = name
        self._averages: dict[int, tuple[object, Variable]] = {}

    @property
    def name(self):
        return self._name

    def apply(self, var_list=None):
        """Creates the shadows of `var_list` (default: the trainable variables) and returns the op
        that updates them all."""
        if var_list is None:
            var_list = trainable_variables()
        var_list = list(var_list)
        graph = get_default_graph()
        for var in var_list:
            if var.dtype.name not in ("float16", "float32", "float64"):
                raise TypeError(f"The variables must be half, float, or double: {var.name}")
            if id(var) in self._averages:
                raise ValueError(f"Moving average already computed for: {var.name}")
            if not isinstance(var, Variable) and self._zero_debias:
                raise UnsupportedError("ExponentialMovingAverage(zero_debias=True) applied to a Tensor "
                                       f"({var.name}) is not supported by jitflow")
            with graph.name_scope(""), graph.control_dependencies(None):
                if isinstance(var, Variable):
                    initial = var.initial_value
                else:
                    if not var.shape.is_fully_defined():
                        raise ValueError(f"ExponentialMovingAverage of {var.name} needs a fully defined shape, "
                                         f"got {var.shape}")
                    initial = zeros(var.shape.as_list(), dtype=var.dtype)
                prefix = var.op.name
                avg = Variable(initial, trainable=False, name=prefix + "/" + self._name, dtype=var.dtype)
            if isinstance(var, Variable):
                graph.add_to_collection(GraphKeys.MOVING_AVERAGE_VARIABLES, var)
            self._averages[id(var)] = (var, avg)
        with graph.name_scope(self._name) as scope:
            decay = convert_to_tensor(self._decay, name="decay")
            if not decay.dtype.is_floating:
                decay = m.cast(decay, float32)
            if self._num_updates is not None:
                n = m.cast(convert_to_tensor(self._num_updates), float32, name="num_updates")
                ratio = m.truediv(m.add(1.0, n), m.add(10.0, n))
                decay = m.minimum(m.cast(decay, float32), ratio)
            updates = [assign_moving_average(self._averages[id(var)][1], var, decay, zero_debias=False)
                       for var in var_list]
            return group(*updates, name=scope)

    def average(self, var):
        """The shadow variable of `var`, or None."""
        entry = self._averages.get(id(var))
        return entry[1] if entry else None

    def average_name(self, var):
        """The name of `var`'s shadow variable (`<var op name>/<EMA name>` before `apply`)."""
        entry = self._averages.get(id(var))
        if entry:
            return entry[1].op.name
        return var.op.name + "/" + self._name

    def variables_to_restore(self, moving_avg_variables=None):
        """{checkpoint name: variable}: each averaged variable reads its shadow's saved value; the other
        global variables are restored under their own names."""
        if moving_avg_variables is None:
            moving_avg_variables = trainable_variables() + moving_average_variables()
        unique = list({id(v): v for v in moving_avg_variables}.values())
        name_map = {self.average_name(v): v for v in unique}
        averaged_names = {v.name for v in unique}
        for v in global_variables():
            if v.name not in averaged_names and v.op.name not in name_map:
                name_map[v.op.name] = v
        return name_map
