"""Keras optimizers (`SGD`, `Adam`, `RMSprop`, and the names 'sgd', 'adam',
'rmsprop') as thin descriptions that build `jitflow.train` optimizers inside a
model's graph, so the update is part of the one training executable.

The learning rate lives in a non-trainable Variable: setting
`model.optimizer.learning_rate = 1e-4` between epochs changes a value, never
the compiled code.
"""
from __future__ import annotations

from ..api.variables import Variable
from ..ir.types import float32
from ..train import optimizers as tf_optimizers


class KerasRMSProp(tf_optimizers.RMSPropOptimizer):
    """Keras' RMSprop: the mean-square slot starts at 0 (TF 1.x starts it at 1);
    var -= lr * g / sqrt(ms + epsilon)."""

    def _create_slots(self, var_list):
        for v in var_list:
            self._zeros_slot(v, "rms", self._name, value=0.0)
            self._zeros_slot(v, "momentum", self._name + "_1")
            if self._centered:
                self._zeros_slot(v, "mg", self._name + "_2")


def _legacy_kwargs(learning_rate, kwargs):
    """TF 1.x tf.keras (and Keras 2) optimizer keywords: `lr` is `learning_rate`; `decay`, `clipnorm`,
    `clipvalue` are not implemented here (an error names them); anything else is TF's TypeError."""
    kwargs = dict(kwargs)
    learning_rate = kwargs.pop("lr", learning_rate)
    for key, value in kwargs.items():
        if key not in ("decay", "clipnorm", "clipvalue"):
            raise TypeError(f"Unexpected keyword argument passed to optimizer: {key}")
        if key == "decay" and not value:
            continue
        from ..errors import UnsupportedError
        raise UnsupportedError(f"keras optimizer argument {key}={value!r} is not supported by jitflow")
    return learning_rate


class Optimizer:
    """Holds the hyper-parameters; `build()` makes the graph optimizer in the current (model) graph."""

    def __init__(self, learning_rate, name):
        self.name = name
        self._learning_rate = float(learning_rate)
        self._lr_variable = None
        self._session = None
        self._tf_optimizer = None

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = float(value)
        if self._lr_variable is not None:
            self._lr_variable.load(self._learning_rate, self._session)

    lr = learning_rate

    def build(self, session):
        """The jitflow.train optimizer for the default graph (the model's), with its learning-rate Variable."""
        self._session = session
        self._lr_variable = Variable(self._learning_rate, trainable=False, name="learning_rate", dtype=float32)
        self._tf_optimizer = self._make(self._lr_variable)
        return self._tf_optimizer

    def variables(self):
        """The slot Variables (and Adam's beta powers) of the built optimizer."""
        if self._tf_optimizer is None:
            return []
        found = list(self._tf_optimizer.variables())
        found += list(getattr(self._tf_optimizer, "_powers", None) or ())
        return found

    def _make(self, learning_rate):
        raise TypeError(f"{type(self).__name__} must implement this method")

    def get_config(self):
        return {"name": self.name, "learning_rate": self._learning_rate}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SGD(Optimizer):
    """Plain gradient descent, or momentum (`v = momentum * v - lr * g`; TF's accumulator form)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD", **kwargs):
        super().__init__(_legacy_kwargs(learning_rate, kwargs), name)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _make(self, learning_rate):
        if self.momentum == 0.0 and not self.nesterov:
            return tf_optimizers.GradientDescentOptimizer(learning_rate, name=self.name)
        return tf_optimizers.MomentumOptimizer(learning_rate, self.momentum, use_nesterov=self.nesterov,
                                               name=self.name)

    def get_config(self):
        return dict(super().get_config(), momentum=self.momentum, nesterov=self.nesterov)


class Adam(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="Adam", **kwargs):
        super().__init__(_legacy_kwargs(learning_rate, kwargs), name)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def _make(self, learning_rate):
        return tf_optimizers.AdamOptimizer(learning_rate, self.beta_1, self.beta_2, self.epsilon, name=self.name)

    def get_config(self):
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)


class RMSprop(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, name="RMSprop",
                 **kwargs):
        super().__init__(_legacy_kwargs(learning_rate, kwargs), name)
        self.rho, self.momentum, self.epsilon, self.centered = float(rho), float(momentum), float(epsilon), \
            bool(centered)

    def _make(self, learning_rate):
        return KerasRMSProp(learning_rate, self.rho, self.momentum, self.epsilon, centered=self.centered,
                            name=self.name)

    def get_config(self):
        return dict(super().get_config(), rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                    centered=self.centered)


class Adadelta(Optimizer):
    """TF 1.x tf.keras Adadelta (defaults learning_rate=0.001, rho=0.95, epsilon=1e-7): TF's ApplyAdadelta."""

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, name="Adadelta", **kwargs):
        super().__init__(_legacy_kwargs(learning_rate, kwargs), name)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def _make(self, learning_rate):
        from ..train.more_optimizers import AdadeltaOptimizer
        return AdadeltaOptimizer(learning_rate, self.rho, self.epsilon, name=self.name)

    def get_config(self):
        return dict(super().get_config(), rho=self.rho, epsilon=self.epsilon)


_BY_NAME = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adadelta": Adadelta}
_CLASSES = {"SGD": SGD, "Adam": Adam, "RMSprop": RMSprop, "Adadelta": Adadelta}


def get(identifier) -> Optimizer:
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        try:
            return _BY_NAME[identifier.lower()]()
        except KeyError:
            raise ValueError(f"Unknown optimizer: '{identifier}'. Known: {', '.join(sorted(_BY_NAME))}, "
                             f"or pass keras.optimizers.SGD/Adam/RMSprop(...).") from None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, tf_optimizers.Optimizer):
        raise TypeError("compile() takes a keras optimizer (keras.optimizers.Adam(...)) or its name, not a "
                        "tf.train optimizer")
    raise TypeError(f"Could not interpret optimizer identifier: {identifier!r}")


def serialize(optimizer: Optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config):
    try:
        cls = _CLASSES[config["class_name"]]
    except KeyError:
        raise ValueError(f"Unknown optimizer class: {config.get('class_name')!r}") from None
    return cls.from_config(config.get("config", {}))


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.keras.optimizers")  # PEP 562: a missing name says so
