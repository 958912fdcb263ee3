"""Optimizers of `tf.train`: each builds its update as graph ops (assigns to
the variables and their slot variables), so `sess.run([train_op, loss])`
compiles forward, backward and update into one executable."""
from __future__ import annotations

from ..api import math_ops as m
from ..api.convert import convert_to_tensor
from ..api.variables import Variable, group, trainable_variables
from ..autodiff import gradients
from ..framework.graph import GraphKeys, get_default_graph


class Optimizer:
    """Base class: compute_gradients, apply_gradients, minimize, slots."""

    def __init__(self, use_locking=False, name="Optimizer"):
        self._name = name
        self._slots: dict[str, dict[int, Variable]] = {}

    # --- gradients
    # gate_gradients only orders the computation of the gradients and aggregation_method only picks how
    # the terms of a sum are added (TF documents both as not changing the values beyond rounding), and
    # colocation only places ops: all three are validated as TF does and otherwise have no effect here
    GATE_NONE, GATE_OP, GATE_GRAPH = 0, 1, 2

    def compute_gradients(self, loss, var_list=None, gate_gradients=1, aggregation_method=None,
                          colocate_gradients_with_ops=False, grad_loss=None):
        from .optimizer_checks import check_compute_gradients_args, check_var_dtypes
        check_compute_gradients_args(loss, gate_gradients, aggregation_method)
        graph = loss.graph
        if var_list is None:
            var_list = trainable_variables()
            var_list += graph.get_collection("trainable_resource_variables")
        var_list = list(var_list)
        if not var_list:
            raise ValueError("No variables to optimize.")
        grads = gradients(loss, var_list, grad_ys=grad_loss)
        check_var_dtypes([v for g, v in zip(grads, var_list) if g is not None])
        return list(zip(grads, var_list))

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        grads_and_vars = list(grads_and_vars)
        from .optimizer_checks import check_apply_gradients_args
        check_apply_gradients_args(grads_and_vars, global_step)
        present = [(g, v) for g, v in grads_and_vars if g is not None]
        if not present:
            names = [v.name for _, v in grads_and_vars]
            raise ValueError(f"No gradients provided for any variable, check your graph for ops that do not "
                             f"support gradients, between variables {names} and loss.")
        graph = get_default_graph()
        with graph.name_scope(name or self._name) as scope:
            with graph.control_dependencies(None):
                self._create_slots([v for _, v in present])
                self._prepare()
            updates = []
            for g, v in present:
                with graph.name_scope("update_" + v.op.name.replace("/", "_")):
                    update = self._apply_dense(convert_to_tensor(g, dtype=v.dtype), v)
                    if getattr(v, "constraint", None) is not None:   # TF 1.x: projected after the update
                        with graph.control_dependencies([update]):
                            update = v.assign(v.constraint(v.read_value())).op
                    updates.append(update)
            # as TF: the training op takes the scope's own name ("GradientDescent", "train/Adam"); with a
            # global step the update group is "<scope>/update" and the step increment takes the name
            stepped = isinstance(global_step, Variable)
            self._finish_name = "update" if stepped else scope
            finish = self._finish(updates)
            if stepped:
                with graph.control_dependencies([finish]):
                    return global_step.assign_add(1, name=scope).op
            return finish

    def minimize(self, loss, global_step=None, var_list=None, gate_gradients=1, aggregation_method=None,
                 colocate_gradients_with_ops=False, name=None, grad_loss=None):
        grads_and_vars = self.compute_gradients(loss, var_list=var_list, gate_gradients=gate_gradients,
                                                aggregation_method=aggregation_method,
                                                colocate_gradients_with_ops=colocate_gradients_with_ops,
                                                grad_loss=grad_loss)
        if all(g is None for g, _ in grads_and_vars):
            names = [v.name for _, v in grads_and_vars]
            raise ValueError(f"No gradients provided for any variable: loss {loss.name} (created at "
                             f"{loss.op.loc}) does not depend on any of {names}.")
        return self.apply_gradients(grads_and_vars, global_step=global_step, name=name)

    # --- slots
    def _zeros_slot(self, var: Variable, slot_name: str, op_name: str, value=0.0):
        graph = var.graph
        with graph.name_scope(""):
            slot = Variable(_filled_like(var, value), trainable=False, name=var.op.name + "/" + op_name)
        self._slots.setdefault(slot_name, {})[id(var)] = slot
        return slot

    def get_slot(self, var, name):
        return self._slots.get(name, {}).get(id(var))

    def get_slot_names(self):
        return sorted(self._slots)

    def variables(self):
        return [v for slots in self._slots.values() for v in slots.values()]

    # --- hooks
    def _create_slots(self, var_list):
        pass

    def _prepare(self):
        pass

    def _finish(self, updates):
        return group(*updates, name=getattr(self, "_finish_name", self._name))

    def _apply_dense(self, grad, var):
        raise TypeError(f"{type(self).__name__} must implement this method")

    def _lr(self, var, value):
        if callable(value) and not hasattr(value, "dtype"):
            value = value()                        # TF 1.x calls a callable hyperparameter when it applies
        return m.cast(convert_to_tensor(value), var.dtype) if not isinstance(value, (int, float)) \
            else convert_to_tensor(value, dtype=var.dtype)


def _filled_like(var, value):
    from ..api.array_ops import constant, fill
    return fill(var.shape.as_list(), constant(value, dtype=var.dtype))


class GradientDescentOptimizer(Optimizer):
    def __init__(self, learning_rate, use_locking=False, name="GradientDescent"):
        super().__init__(use_locking, name)
        self._learning_rate = learning_rate

    def _apply_dense(self, grad, var):
        return var.assign_sub(m.multiply(self._lr(var, self._learning_rate), grad)).op


class MomentumOptimizer(Optimizer):
    """accum = momentum * accum + g; var -= lr * accum (Nesterov: var -= lr * (g + momentum * accum))."""

    def __init__(self, learning_rate, momentum, use_locking=False, name="Momentum", use_nesterov=False):
        super().__init__(use_locking, name)
        self._learning_rate, self._momentum, self._nesterov = learning_rate, momentum, use_nesterov

    def _create_slots(self, var_list):
        for v in var_list:
            self._zeros_slot(v, "momentum", self._name)

    def _apply_dense(self, grad, var):
        accum = self.get_slot(var, "momentum")
        lr, mom = self._lr(var, self._learning_rate), self._lr(var, self._momentum)
        accum_t = accum.assign(m.add(m.multiply(accum, mom), grad))
        step = m.add(grad, m.multiply(mom, accum_t)) if self._nesterov else accum_t
        return var.assign_sub(m.multiply(lr, step)).op


class AdamOptimizer(Optimizer):
    """TF 1.x Adam: lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t); var -= lr_t * m / (sqrt(v) + epsilon)."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, use_locking=False, name="Adam"):
        super().__init__(use_locking, name)
        self._learning_rate, self._beta1, self._beta2, self._epsilon = learning_rate, beta1, beta2, epsilon
        self._powers = None

    def _create_slots(self, var_list):
        first = min(var_list, key=lambda v: v.name)
        graph = first.graph
        if self._powers is None:
            with graph.name_scope(""):
                self._powers = (Variable(self._beta1, trainable=False, name="beta1_power", dtype=first.dtype),
                                Variable(self._beta2, trainable=False, name="beta2_power", dtype=first.dtype))
        for v in var_list:
            self._zeros_slot(v, "m", self._name)
            self._zeros_slot(v, "v", self._name + "_1")

    def _apply_dense(self, grad, var):
        b1, b2 = self._lr(var, self._beta1), self._lr(var, self._beta2)
        eps, lr = self._lr(var, self._epsilon), self._lr(var, self._learning_rate)
        beta1_power, beta2_power = (m.cast(p, var.dtype) for p in self._powers)
        one = self._lr(var, 1.0)
        lr_t = m.truediv(m.multiply(lr, m.sqrt(m.subtract(one, beta2_power))), m.subtract(one, beta1_power))
        m_slot, v_slot = self.get_slot(var, "m"), self.get_slot(var, "v")
        m_t = m_slot.assign(m.add(m.multiply(b1, m_slot), m.multiply(m.subtract(one, b1), grad)))
        v_t = v_slot.assign(m.add(m.multiply(b2, v_slot), m.multiply(m.subtract(one, b2), m.square(grad))))
        return var.assign_sub(m.truediv(m.multiply(lr_t, m_t), m.add(m.sqrt(v_t), eps))).op

    def _finish(self, updates):
        beta1_power, beta2_power = self._powers
        graph = beta1_power.graph
        with graph.control_dependencies(updates):
            update_b1 = beta1_power.assign(m.multiply(beta1_power.read_value(), self._beta1))
            update_b2 = beta2_power.assign(m.multiply(beta2_power.read_value(), self._beta2))
        return group(*updates, update_b1, update_b2, name=getattr(self, "_finish_name", self._name))


class RMSPropOptimizer(Optimizer):
    """ms = decay*ms + (1-decay)*g^2; mom = momentum*mom + lr*g/sqrt(ms + eps); var -= mom."""

    def __init__(self, learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10, use_locking=False, centered=False,
                 name="RMSProp"):
        super().__init__(use_locking, name)
        self._learning_rate, self._decay, self._momentum, self._epsilon = learning_rate, decay, momentum, epsilon
        self._centered = centered

    def _create_slots(self, var_list):
        for v in var_list:
            self._zeros_slot(v, "rms", self._name, value=1.0)
            self._zeros_slot(v, "momentum", self._name + "_1")
            if self._centered:
                self._zeros_slot(v, "mg", self._name + "_2")

    def _apply_dense(self, grad, var):
        lr, decay = self._lr(var, self._learning_rate), self._lr(var, self._decay)
        mom, eps, one = self._lr(var, self._momentum), self._lr(var, self._epsilon), self._lr(var, 1.0)
        ms = self.get_slot(var, "rms")
        ms_t = ms.assign(m.add(m.multiply(decay, ms), m.multiply(m.subtract(one, decay), m.square(grad))))
        denominator = m.subtract(ms_t, m.square(self._mg_update(var, grad, decay, one))) if self._centered else ms_t
        mom_slot = self.get_slot(var, "momentum")
        mom_t = mom_slot.assign(m.add(m.multiply(mom, mom_slot),
                                      m.truediv(m.multiply(lr, grad), m.sqrt(m.add(denominator, eps)))))
        return var.assign_sub(mom_t).op

    def _mg_update(self, var, grad, decay, one):
        mg = self.get_slot(var, "mg")
        return mg.assign(m.add(m.multiply(decay, mg), m.multiply(m.subtract(one, decay), grad)))


class AdagradOptimizer(Optimizer):
    """accum += g^2; var -= lr * g / sqrt(accum)."""

    def __init__(self, learning_rate, initial_accumulator_value=0.1, use_locking=False, name="Adagrad"):
        super().__init__(use_locking, name)
        self._learning_rate, self._initial = learning_rate, initial_accumulator_value

    def _create_slots(self, var_list):
        for v in var_list:
            self._zeros_slot(v, "accumulator", self._name, value=self._initial)

    def _apply_dense(self, grad, var):
        accum = self.get_slot(var, "accumulator")
        accum_t = accum.assign_add(m.square(grad))
        return var.assign_sub(m.truediv(m.multiply(self._lr(var, self._learning_rate), grad),
                                        m.sqrt(accum_t))).op


def get_or_create_global_step(graph=None):
    graph = graph or get_default_graph()
    existing = graph.get_collection(GraphKeys.GLOBAL_STEP)
    if existing:
        return existing[0]
    from ..ir.types import int64
    with graph.as_default(), graph.name_scope(""), graph.control_dependencies(None):
        step = Variable(0, trainable=False, name="global_step", dtype=int64,
                        collections=[GraphKeys.GLOBAL_VARIABLES, GraphKeys.GLOBAL_STEP])
    return step


def get_global_step(graph=None):
    existing = (graph or get_default_graph()).get_collection(GraphKeys.GLOBAL_STEP)
    return existing[0] if existing else None


create_global_step = get_or_create_global_step
