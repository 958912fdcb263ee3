"""The TF-named error classes (`tf.errors.*`) and the helper that names the
offending node and the user's source line in a message."""
from __future__ import annotations


class OpError(Exception):
    """Base class of run-time errors, as in `tf.errors.OpError`."""

    error_code = 2

    def __init__(self, node_def=None, op=None, message: str = ""):
        if message == "" and isinstance(node_def, str) and op is None:
            message, node_def = node_def, None
        super().__init__(message)
        self.node_def = node_def
        self.op = op
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        """Pickles as (class, message): the op (with its graph) stays behind, the text names it already.
        Errors raised in another process (a jitflow.distribute worker) arrive with their type."""
        return _rebuild, (type(self), self.message)


def _rebuild(cls, message):
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.node_def = error.op = None
    error.message = message
    return error


class CancelledError(OpError):
    error_code = 1


class UnknownError(OpError):
    error_code = 2


class InvalidArgumentError(OpError):
    error_code = 3


class NotFoundError(OpError):
    error_code = 5


class AlreadyExistsError(OpError):
    error_code = 6


class ResourceExhaustedError(OpError, MemoryError):
    """A run needs more memory than the machine has (also a MemoryError)."""

    error_code = 8


class FailedPreconditionError(OpError):
    error_code = 9


class AbortedError(OpError):
    error_code = 10


class OutOfRangeError(OpError):
    error_code = 11


class UnimplementedError(OpError):
    error_code = 12


class InternalError(OpError):
    error_code = 13


class UnavailableError(OpError):
    """A part of the system is gone (a distributed worker died); retrying from a checkpoint may work."""

    error_code = 14


class DataLossError(OpError):
    error_code = 15


def describe_op(op) -> str:
    """'node "loss/mse" (reduce_mean) created at model.py:14\n    mse = ...'"""
    text = f"node '{op.name}' ({op.type})"
    if getattr(op, "loc", None) is not None:
        text += f", created at {op.loc}"
        if op.loc.code:
            text += f":\n    {op.loc.code}"
    return text


class UnsupportedError(UnimplementedError, NotImplementedError):
    """A TF 1.x feature jitflow does not provide; the message says which and what to use instead."""

    def __init__(self, message: str):
        super().__init__(None, None, message)


from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.errors")  # PEP 562: a missing name says so
