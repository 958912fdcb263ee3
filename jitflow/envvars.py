"""Integer settings read from JITFLOW_* environment variables, validated in one place.

`env_int(name, default)` returns the variable's value as an int. A value that is not an
integer, or is below `minimum`, never raises at every compile (the old behaviour: a bare
`ValueError: invalid literal for int()` from deep inside codegen): it warns ONCE per
variable and value, naming the variable, what it must be and the default used instead.
"""
from __future__ import annotations

import os
import threading
import warnings


class ConfigWarning(UserWarning):
    """A JITFLOW_* environment variable had an unusable value; its default is used."""


_warned: set = set()
_lock = threading.Lock()


def env_int(name: str, default: int, minimum: int = 1) -> int:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is not None and value >= minimum:
        return value
    with _lock:
        fresh = (name, text) not in _warned
        _warned.add((name, text))
    if fresh:
        warnings.warn(f"{name}={text!r} is not valid: it must be an integer >= {minimum}; "
                      f"using the default {default} instead", ConfigWarning, stacklevel=3)
    return default
