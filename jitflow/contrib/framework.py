"""`tf.contrib.framework`: `arg_scope` (default keyword arguments for the `@add_arg_scope`-decorated
functions listed, nested scopes merging) and its helpers, as TF 1.x's contrib framework."""
from __future__ import annotations

import contextlib
import functools

_ARG_STACK = [{}]          # innermost scope last: {op key: {argument: value}}


def _key_op(op):
    return getattr(op, "_key_op", str(op))


def current_arg_scope():
    return _ARG_STACK[-1]


@contextlib.contextmanager
def arg_scope(list_ops_or_scope, **kwargs):
    """Within the block, each listed op gets `kwargs` as defaults (explicit call arguments win); a dict
    (a scope yielded earlier) re-enters that scope."""
    if isinstance(list_ops_or_scope, dict):
        if kwargs:
            raise ValueError("When attempting to re-use a scope by suppling a dictionary, kwargs must be empty.")
        current = list_ops_or_scope.copy()
    else:
        if not isinstance(list_ops_or_scope, (list, tuple)):
            raise TypeError("list_ops_or_scope must either be a list/tuple or reused scope (i.e. dict)")
        current = current_arg_scope().copy()
        for op in list_ops_or_scope:
            key = _key_op(op)
            if not has_arg_scope(op):
                raise ValueError(f"{key} is not decorated with @add_arg_scope")
            merged = dict(current.get(key, {}))
            merged.update(kwargs)
            current[key] = merged
    _ARG_STACK.append(current)
    try:
        yield current
    finally:
        _ARG_STACK.pop()


def add_arg_scope(func):
    """Makes `func` take its defaults from the enclosing `arg_scope`s."""
    key = _key_op(func)

    @functools.wraps(func)
    def func_with_args(*args, **kwargs):
        scoped = current_arg_scope().get(key)
        if scoped:
            kwargs = dict(scoped, **kwargs)
        return func(*args, **kwargs)

    func_with_args._key_op = key
    _DECORATED.add(key)
    return func_with_args


_DECORATED: set = set()


def has_arg_scope(func):
    return _key_op(func) in _DECORATED


def arg_scoped_arguments(func):
    """The argument names `func` accepts (those an arg_scope may set)."""
    import inspect
    return [name for name, p in inspect.signature(func).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


from ..missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.contrib.framework")  # PEP 562: a missing name says so
