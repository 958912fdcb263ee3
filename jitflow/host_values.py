"""tf.string tensors as host-side values.

jitflow compiles numbers; strings never reach the IR. A `tf.string` tensor holds a numpy object
array of `bytes` (a scalar fetches as `bytes`, as in TF: `sess.run(hello)` -> b'Hello, TensorFlow!').
The graph ops that may carry strings are the ones that move values without computing on them:

    const, placeholder, variable (a string variable), read_var, assign_var, identity,
    ensure_shape (tf.placeholder_with_default)

`check_string_op` (called by `Graph.create_op` whenever an op touches tf.string) rejects every other
op with a TypeError naming it ("no string math"), and marks the graph. `Session.run` of a marked
graph calls `run` here: the string ops the fetches need are evaluated on the host, in graph order
(constants, fed values, the session's stored variable values, identity chains, assignments of string
variables), and the numeric fetches are compiled and run as usual in the same `run` (a group such as
`global_variables_initializer()` is split into its string and numeric members). A numeric op that
depends on a string op through a control dependency (other than a group) is unsupported and says so.
String variable values live in the session's variable store like numeric ones, so `tf.train.Saver`
saves and restores them (see `jitflow.train.checkpoint_files`).
"""
from __future__ import annotations

import numpy as np

from . import errors
from .ir.types import string

HOST_STRING_OPS = ("const", "placeholder", "variable", "read_var", "assign_var", "identity", "ensure_shape")
COMPILED_ONLY = object()       # Session.run(..., options=COMPILED_ONLY): the numeric part of a host run


# ------------------------------------------------------------------------------- values
def _leaf_bytes(x) -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, (str, np.str_)):
        return x.encode("utf-8")
    if isinstance(x, (bytearray, np.bytes_)):
        return bytes(x)
    raise TypeError(f"Expected string, got {x!r} of type '{type(x).__name__}' instead.")


def is_string_value(value) -> bool:
    """Whether a Python/numpy value is string data (str, bytes, nested lists of them, S/U/object arrays)."""
    if isinstance(value, (str, bytes, np.str_, np.bytes_)):
        return True
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SU":
            return True
        return value.dtype == object and value.size > 0 and isinstance(value.flat[0], (str, bytes))
    if isinstance(value, (list, tuple)):
        while isinstance(value, (list, tuple)) and value:
            value = value[0]
        return isinstance(value, (str, bytes, np.str_, np.bytes_))
    return False


def string_array(value) -> np.ndarray:
    """A C-contiguous numpy object array of bytes (str encoded as UTF-8); TypeError for non-strings."""
    if isinstance(value, (str, bytes, np.str_, np.bytes_, bytearray)):
        out = np.empty((), object)
        out[()] = _leaf_bytes(value)
        return out
    raw = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
    if raw.dtype.kind not in "SUO" and raw.size:
        raise TypeError(f"Expected string, got values of dtype {raw.dtype}.")
    out = np.empty(raw.shape, object)
    flat = out.reshape(-1)
    for i, x in enumerate(raw.reshape(-1)):
        flat[i] = _leaf_bytes(x)
    return out


def _fetched(array):
    """What Session.run returns for a string value: bytes for a scalar, else an object array."""
    return array[()] if array.ndim == 0 else array.copy()


# ------------------------------------------------------------------------------- graph building
def _touches_string(t) -> bool:
    return getattr(t._type, "dtype", None) is string


def check_string_op(graph, op_name: str, inputs, attrs, name):
    """Called by Graph.create_op for an op with a tf.string input or dtype: only the host string
    ops may carry strings; any other op raises a TypeError naming it."""
    if op_name not in HOST_STRING_OPS:
        from .ops import get_op
        tf_name = get_op(op_name).tf_name or op_name
        raise TypeError(f"{tf_name} (op '{name or tf_name}') does not take tf.string tensors: jitflow keeps "
                        f"strings on the host and has no string math; only constants, placeholders, variables, "
                        f"assignments and tf.identity carry tf.string values")
    if op_name == "assign_var" and not all(_touches_string(t) for t in inputs[:2]):
        raise TypeError(f"Assign (op '{name or 'Assign'}'): cannot assign between tf.string and numeric types")
    graph._string_ops = True


def _is_string_op(op) -> bool:
    if op._op not in HOST_STRING_OPS:
        return False
    if op._op in ("const", "placeholder", "variable"):
        return op.attrs.get("dtype") is string
    return _touches_string(op.inputs[0])


# ------------------------------------------------------------------------------- Session.run
class _Plan:
    """What one (fetches, fed tensors) signature of a graph with strings runs."""

    def __init__(self, targets, fed: set):
        from .framework.graph import Operation, Tensor
        from .framework.lowering import needed_ops
        ops = needed_ops(targets, fed)
        self.host_ops = [op for op in ops if _is_string_op(op) and not (
            op.outputs and all(id(t) in fed for t in op.outputs))]
        host_ids = {op._id for op in self.host_ops}
        compiled, seen = [], set()

        position = {}                          # id(element) -> its index in `compiled`

        def add(op_or_tensor):
            if id(op_or_tensor) not in seen:
                seen.add(id(op_or_tensor))
                position[id(op_or_tensor)] = len(compiled)
                compiled.append(op_or_tensor)

        def add_operation(root):
            # iterative (nested groups can be arbitrarily deep); members keep their left-to-right order
            stack, visited = [root], set()
            while stack:
                op = stack.pop()
                if op._id in host_ids or op._id in visited:
                    continue
                visited.add(op._id)
                if op._op == "no_op" and any(_is_string_op(c) or c._op == "no_op" for c in op.control_inputs):
                    stack.extend(reversed(op.control_inputs))   # a group: its members run where they belong
                    continue
                add(op)

        self.compiled_index = []               # per target: index into the compiled results, or None
        for t in targets:
            if isinstance(t, Tensor) and t.dtype is string:
                self.compiled_index.append(None)
            elif isinstance(t, Operation):
                add_operation(t)
                self.compiled_index.append(None)
            else:
                add(t)
                self.compiled_index.append(position[id(t)])
        for op in self.host_ops:               # numeric ops a string op waits for
            for c in op.control_inputs:
                add_operation(c)
        for user in needed_ops(compiled, fed) if compiled else ():
            op = next((c for c in user.control_inputs if _is_string_op(c)), None) if not _is_string_op(user) \
                else None
            if op is not None:
                raise errors.UnsupportedError(
                    f"jitflow does not support a control dependency of {user.type} op "
                    f"'{user.name}' on the tf.string op '{op.name}' (strings are host values; use tf.group)"
                    f"\n  {errors.describe_op(user)}")
        self.compiled = compiled
        self.targets = targets                 # pins the graph elements the cache key's ids name


def _string_feeds(session, feed_dict):
    """Splits a feed_dict into {string Tensor: object array} and the numeric rest (user keys kept)."""
    from .session import FeedError
    strings, numeric = {}, {}
    for key, value in feed_dict.items():
        tensor = session._feed_spec(key)[0]
        if tensor.dtype is not string:
            numeric[key] = value
            continue
        try:
            array = string_array(value)
        except TypeError as exc:
            from .session import FeedTypeError
            raise FeedTypeError(None, tensor.op, f"Cannot feed value {value!r:.60} to Tensor '{tensor.name}' of "
                                f"dtype string: {exc}\n  {errors.describe_op(tensor.op)}") from None
        static = tensor._type.shape
        if static is not None and (len(static) != array.ndim or any(
                d is not None and d != n for d, n in zip(static, array.shape))):
            raise FeedError(None, tensor.op, f"Cannot feed value of shape {array.shape} for Tensor "
                            f"'{tensor.name}', which has shape '{tensor.shape}'\n  {errors.describe_op(tensor.op)}")
        strings[tensor] = array
    return strings, numeric


def _variable_value(session, op):
    value = session._variables.get(op.name)
    if value is None:
        raise errors.FailedPreconditionError(
            None, op, f"Attempting to use uninitialized value {op.name}\n  {errors.describe_op(op)}")
    if value.dtype != object or any(not isinstance(x, bytes) for x in value.reshape(-1)):
        value = session._variables[op.name] = string_array(value)     # e.g. from Variable.load("text")
    return value


def _run_host_ops(session, ops, fed: dict) -> dict:
    """Evaluates the string ops in graph order; {id(tensor): object array}."""
    values = {id(t): v for t, v in fed.items()}
    for op in ops:
        kind = op._op
        if kind == "const":
            values[id(op.outputs[0])] = op.attrs["value"]
        elif kind == "placeholder":
            shape = op.attrs["shape"]
            shape_text = "<unknown>" if shape is None else "[" + ",".join(
                "?" if d is None else str(d) for d in shape) + "]"
            raise errors.InvalidArgumentError(
                None, op, f"You must feed a value for placeholder tensor '{op.name}' with dtype string and "
                f"shape {shape_text}\n  {errors.describe_op(op)}")
        elif kind == "read_var":
            values[id(op.outputs[0])] = _variable_value(session, op.inputs[0].op)
        elif kind == "identity":
            values[id(op.outputs[0])] = values[id(op.inputs[0])]
        elif kind == "ensure_shape":
            value, want = values[id(op.inputs[0])], op.attrs["shape"]
            if want is not None and (len(want) != value.ndim or any(
                    d is not None and d != n for d, n in zip(want, value.shape))):
                raise errors.InvalidArgumentError(
                    None, op, f"{op.attrs.get('what') or op.name} has shape {list(value.shape)}, which is not "
                    f"compatible with the expected shape {list(want)}\n  {errors.describe_op(op)}")
            values[id(op.outputs[0])] = value
        elif kind == "assign_var":
            value = values[id(op.inputs[1])]
            var_op = op.inputs[0].op
            want = var_op.attrs["shape"]
            if want is not None and tuple(value.shape) != tuple(want):
                raise errors.InvalidArgumentError(
                    None, op, f"Assign requires shapes of both tensors to match. lhs shape= {list(want)} rhs "
                    f"shape= {list(value.shape)}\n  {errors.describe_op(op)}")
            session._variables[var_op.name] = value
            values[id(op.outputs[0])] = value
    return values


def run(session, fetches, feed_dict):
    """Session.run for a graph with string tensors (see the module docstring)."""
    from .session import Session, _flatten
    from .summary import expand_summary_fetches
    if session._closed:
        raise RuntimeError("Attempted to use a closed Session.")
    leaves, rebuild = _flatten(fetches)
    leaves, summarize = expand_summary_fetches(leaves)
    targets = [session._target(x) for x in leaves]
    string_feeds, numeric_feeds = _string_feeds(session, feed_dict) if feed_dict else ({}, {})
    fed = {id(t) for t in string_feeds} | {id(session._feed_spec(k)[0]) for k in numeric_feeds}
    plans = session.__dict__.setdefault("_host_plans", {})
    key = (tuple(map(id, targets)), frozenset(fed))
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = _Plan(targets, fed)
    with session._lock:
        host = _run_host_ops(session, plan.host_ops, string_feeds)
    compiled = Session.run(session, plan.compiled, numeric_feeds, options=COMPILED_ONLY) if plan.compiled else []
    values = []
    for target, index in zip(targets, plan.compiled_index):
        if index is not None:
            values.append(compiled[index])
        elif getattr(target, "dtype", None) is string:
            value = _variable_value(session, target.op) if target.op._op == "variable" else host[id(target)]
            values.append(_fetched(value))
        else:
            values.append(None)                # an Operation
    if summarize is not None:
        values = summarize(values)
    return rebuild(values)
