"""More TF 1.x optimizers: Adadelta, Ftrl, ProximalGradientDescent, ProximalAdagrad. Each writes
TF's training kernel (ApplyAdadelta, ApplyFtrl/ApplyFtrlV2, ApplyProximalGradientDescent,
ApplyProximalAdagrad) as graph ops, with TF's slot names."""
from __future__ import annotations

from ..api import math_ops as m
from .optimizers import Optimizer


class AdadeltaOptimizer(Optimizer):
    """accum = rho*accum + (1-rho)*g^2; update = sqrt(accum_update + eps) / sqrt(accum + eps) * g;
    accum_update = rho*accum_update + (1-rho)*update^2; var -= lr * update.
    Slots `accum` (`<var>/Adadelta`) and `accum_update` (`<var>/Adadelta_1`)."""

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-8, use_locking=False, name="Adadelta"):
        super().__init__(use_locking, name)
        self._learning_rate, self._rho, self._epsilon = learning_rate, rho, epsilon

    def _create_slots(self, var_list):
        for v in var_list:
            self._zeros_slot(v, "accum", self._name)
            self._zeros_slot(v, "accum_update", self._name + "_1")

    def _apply_dense(self, grad, var):
        lr, rho = self._lr(var, self._learning_rate), self._lr(var, self._rho)
        eps, one = self._lr(var, self._epsilon), self._lr(var, 1.0)
        accum, accum_update = self.get_slot(var, "accum"), self.get_slot(var, "accum_update")
        accum_t = accum.assign(m.add(m.multiply(rho, accum), m.multiply(m.subtract(one, rho), m.square(grad))))
        update = m.multiply(m.truediv(m.sqrt(m.add(accum_update, eps)), m.sqrt(m.add(accum_t, eps))), grad)
        accum_update_t = accum_update.assign(m.add(m.multiply(rho, accum_update),
                                                   m.multiply(m.subtract(one, rho), m.square(update))))
        # the variable update waits for accum_update's (which reads the old value)
        with var.graph.control_dependencies([accum_update_t.op]):
            return var.assign_sub(m.multiply(lr, update)).op


class FtrlOptimizer(Optimizer):
    """FTRL-Proximal (TF's ApplyFtrlV2): with g' = g + 2*l2_shrinkage*var, n' = accum + g^2,
    linear += g' - (n'^-p - accum^-p) / lr * var; quadratic = n'^-p / lr + 2*l2;
    var = (sign(linear)*l1 - linear) / quadratic if |linear| > l1 else 0; accum = n'.
    Slots `accum` (`<var>/Ftrl`, starts at initial_accumulator_value) and `linear` (`<var>/Ftrl_1`)."""

    def __init__(self, learning_rate, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0, use_locking=False, name="Ftrl",
                 accum_name=None, linear_name=None, l2_shrinkage_regularization_strength=0.0, beta=None):
        super().__init__(use_locking, name)
        for arg, value in (("initial_accumulator_value", initial_accumulator_value),
                           ("l1_regularization_strength", l1_regularization_strength),
                           ("l2_regularization_strength", l2_regularization_strength),
                           ("l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength)):
            if value < 0.0:
                raise ValueError(f"{arg} {value:f} needs to be positive or zero")
        if learning_rate_power > 0.0:
            raise ValueError(f"learning_rate_power {learning_rate_power:f} needs to be negative or zero")
        self._learning_rate, self._power = learning_rate, learning_rate_power
        self._initial = initial_accumulator_value
        self._l1, self._l2 = l1_regularization_strength, l2_regularization_strength
        self._shrinkage = l2_shrinkage_regularization_strength
        self._beta = 0.0 if beta is None else beta
        self._accum_name, self._linear_name = accum_name, linear_name

    def _create_slots(self, var_list):
        accum_name = self._accum_name or self._name
        linear_name = self._linear_name or self._name
        if linear_name == accum_name:
            linear_name += "_1"
        for v in var_list:
            self._zeros_slot(v, "accum", accum_name, value=self._initial)
            self._zeros_slot(v, "linear", linear_name)

    def _pow_neg(self, var, x):
        """x ** -learning_rate_power (a sqrt for TF's special case -0.5)."""
        if self._power == -0.5:
            return m.sqrt(x)
        return m.pow(x, self._lr(var, -self._power))

    def _apply_dense(self, grad, var):
        lr = self._lr(var, self._learning_rate)
        l1, two = self._lr(var, self._l1), self._lr(var, 2.0)
        l2 = self._lr(var, self._l2)
        if self._beta:
            l2 = m.add(l2, m.truediv(self._lr(var, self._beta), m.multiply(two, lr)))
        accum, linear = self.get_slot(var, "accum"), self.get_slot(var, "linear")
        old_accum, old_var = accum.value(), var.value()
        shrunk = grad
        if self._shrinkage:
            shrunk = m.add(grad, m.multiply(m.multiply(two, self._lr(var, self._shrinkage)), old_var))
        new_accum = m.add(old_accum, m.square(grad))
        sigma = m.truediv(m.subtract(self._pow_neg(var, new_accum), self._pow_neg(var, old_accum)), lr)
        linear_t = linear.assign_add(m.subtract(shrunk, m.multiply(sigma, old_var)))
        quadratic = m.add(m.truediv(self._pow_neg(var, new_accum), lr), m.multiply(two, l2))
        l1_t = m.multiply(m.sign(linear_t), l1)
        new_var = m.where(m.greater(m.abs(linear_t), l1), m.truediv(m.subtract(l1_t, linear_t), quadratic),
                          self._lr(var, 0.0))
        var_t = var.assign(new_var)
        with var.graph.control_dependencies([var_t.op]):
            return accum.assign(new_accum).op


def _proximal(prox_var, step, l1, l2, one, zero):
    """TF's proximal step: sign(p) * max(|p| - step*l1, 0) / (1 + step*l2) (the max skipped when l1 = 0)."""
    shrink = m.add(one, m.multiply(step, l2))
    if l1 is None:
        return m.truediv(prox_var, shrink)
    return m.truediv(m.multiply(m.sign(prox_var), m.maximum(m.subtract(m.abs(prox_var), m.multiply(step, l1)),
                                                            zero)), shrink)


class ProximalGradientDescentOptimizer(Optimizer):
    """prox = var - lr*g; var = sign(prox) * max(|prox| - lr*l1, 0) / (1 + lr*l2)."""

    def __init__(self, learning_rate, l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                 use_locking=False, name="ProximalGradientDescent"):
        super().__init__(use_locking, name)
        self._learning_rate, self._l1, self._l2 = learning_rate, l1_regularization_strength, \
            l2_regularization_strength

    def _apply_dense(self, grad, var):
        lr, one, zero = self._lr(var, self._learning_rate), self._lr(var, 1.0), self._lr(var, 0.0)
        l1 = self._lr(var, self._l1) if self._l1 else None
        prox = m.subtract(var.value(), m.multiply(lr, grad))
        return var.assign(_proximal(prox, lr, l1, self._lr(var, self._l2), one, zero)).op


class ProximalAdagradOptimizer(Optimizer):
    """accum += g^2; step = lr / sqrt(accum); prox = var - step*g;
    var = sign(prox) * max(|prox| - step*l1, 0) / (1 + step*l2). Slot `accumulator` (`<var>/ProximalAdagrad`)."""

    def __init__(self, learning_rate, initial_accumulator_value=0.1, l1_regularization_strength=0.0,
                 l2_regularization_strength=0.0, use_locking=False, name="ProximalAdagrad"):
        super().__init__(use_locking, name)
        self._learning_rate, self._initial = learning_rate, initial_accumulator_value
        self._l1, self._l2 = l1_regularization_strength, l2_regularization_strength

    def _create_slots(self, var_list):
        for v in var_list:
            self._zeros_slot(v, "accumulator", self._name, value=self._initial)

    def _apply_dense(self, grad, var):
        lr, one, zero = self._lr(var, self._learning_rate), self._lr(var, 1.0), self._lr(var, 0.0)
        accum_t = self.get_slot(var, "accumulator").assign_add(m.square(grad))
        step = m.multiply(lr, m.rsqrt(accum_t))
        prox = m.subtract(var.value(), m.multiply(step, grad))
        l1 = self._lr(var, self._l1) if self._l1 else None
        return var.assign(_proximal(prox, step, l1, self._lr(var, self._l2), one, zero)).op
