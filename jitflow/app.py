"""`tf.app` as in TF 1.x: `tf.app.flags` (the `jitflow.flags` module) and `tf.app.run`.

`run(main=None, argv=None)` parses the flags from `argv` (default `sys.argv`, unknown flags tolerated),
calls `main` (default: the `main` of the `__main__` module) with argv[0] plus the unparsed arguments,
and exits with its return value, as TF 1.x does.
"""
from __future__ import annotations

import sys

from . import flags  # noqa: F401  (tf.app.flags)


def run(main=None, argv=None):
    main = main or sys.modules["__main__"].main
    rest = flags.FLAGS(sys.argv if argv is None else argv, known_only=True)
    sys.exit(main(rest))


from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.app")
