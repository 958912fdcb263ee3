"""Clear errors for TensorFlow names jitflow does not provide.

Each public namespace (`jitflow` as `tf`, `jitflow.nn` as `tf.nn`, `tf.train`, `tf.keras.layers`, ...)
ends with `__getattr__ = module_getattr(__name__, "tf.nn")` (PEP 562), so `tf.nn.gelu` raises

    AttributeError: jitflow does not implement tf.nn.gelu (did you mean tf.nn.elu?)

with the nearest existing names of that namespace (difflib) and, when another namespace has the
exact name, that one (`tf.softmax` -> `tf.nn.softmax`). Private and dunder names (`__path__`,
`_pytest...` probes) raise Python's ordinary AttributeError without any search. `Namespace` is
the same for plain attribute bags such as `tf.contrib.layers`.
"""
from __future__ import annotations

import difflib
import sys
import types

_NAMESPACES: dict[str, object] = {}      # "tf.nn" -> the module or Namespace


def _public_names(namespace) -> list[str]:
    names = []
    for name, value in vars(namespace).items():
        if name.startswith("_") or name == "annotations":
            continue
        if isinstance(value, types.ModuleType) and not value.__name__.startswith("jitflow"):
            continue                       # `np`, `math`, ... imported for the module's own use
        names.append(name)
    return names


def missing_message(prefix: str, name: str, namespace) -> str:
    suggestions = [f"{other}.{name}" for other, ns in _NAMESPACES.items()
                   if other != prefix and name in _public_names(ns)]
    suggestions += [f"{prefix}.{match}" for match in difflib.get_close_matches(name, _public_names(namespace),
                                                                               n=3, cutoff=0.6)]
    hint = f" (did you mean {' or '.join(suggestions[:3])}?)" if suggestions else ""
    return f"jitflow does not implement {prefix}.{name}{hint}"


def module_getattr(module_name: str, prefix: str):
    """A PEP 562 module `__getattr__` for `module_name`, which users reach as `prefix`."""
    _NAMESPACES[prefix] = module = sys.modules[module_name]

    def __getattr__(name: str):
        if name.startswith("_"):
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        raise AttributeError(missing_message(prefix, name, module))
    return __getattr__


# TF namespaces whose module may lack its own `__getattr__` line (e.g. one added after this module):
# `install_namespaces` gives them one when `import jitflow` has imported them
TF_NAMESPACES = ("nn", "train", "layers", "losses", "summary", "errors", "initializers", "dtypes", "math",
                 "metrics", "data", "debugging", "random", "linalg", "image", "contrib", "contrib.layers",
                 "keras", "keras.layers", "keras.models", "keras.optimizers", "keras.losses", "keras.activations",
                 "keras.callbacks", "keras.initializers", "keras.metrics", "keras.utils", "keras.backend",
                 "keras.regularizers", "keras.datasets")


def install_namespaces(root: types.ModuleType, names=TF_NAMESPACES):
    """Gives each imported TF namespace under `root` (`jitflow.math` as `tf.math`, ...) that has no
    `__getattr__` of its own the missing-name `__getattr__`."""
    for dotted in names:
        module = root
        for part in dotted.split("."):
            module = vars(module).get(part) if isinstance(module, types.ModuleType) else None
        if isinstance(module, types.ModuleType) and module.__name__.startswith(root.__name__ + ".") \
                and "__getattr__" not in vars(module):
            module.__getattr__ = module_getattr(module.__name__, "tf." + dotted)


class Namespace(types.SimpleNamespace):
    """A SimpleNamespace (e.g. `tf.contrib.layers`) whose missing names say so, as above."""

    def __init__(self, _prefix: str, **names):
        super().__init__(**names)
        object.__setattr__(self, "_prefix", _prefix)
        _NAMESPACES[_prefix] = self

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        raise AttributeError(missing_message(self._prefix, name, self))

    def __repr__(self):
        return f"<namespace {self._prefix}>"
