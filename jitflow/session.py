"""`Session` and `InteractiveSession`: feed/fetch mapping, per-session variable
values, and the signature -> Executable map that makes the steady-state
`run` a lookup plus one native call.

Semantics follow TF 1.x: fetch structures are kept (lists, tuples, dicts,
nested), Operations fetch as None, scalars come back as numpy scalars, each
Session owns its variable values, unfed placeholders and uninitialized
variables raise the TF-named errors with the creation site of the node.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from . import debugging, errors, host_values
from .api.variables import Variable
from .framework import host_hooks  # tf.data iterators: host-side ops of a run (framework/host_hooks.py)
from .framework.graph import Graph, Operation, Tensor, get_default_graph
from .framework.lowering import lower_run, needed_ops
from .placement import run_device
from .runtime.build import build_executable
from .session_cache import SessionCache, configured_size  # bounded signature -> executable LRU
from .runtime.gpu_executable import SyncedVariables
from .runtime.gpu_executable import mirror as device_mirror
from .runtime.native_arrays import native_array, owned_native_array  # the one layout/byte-order gate
from .summary import expand_summary_fetches  # tf.summary hook in Session.run


class FeedError(errors.InvalidArgumentError, ValueError):
    """A feed of the wrong shape or value (also a ValueError, as in TF)."""


class FeedTypeError(errors.InvalidArgumentError, TypeError):
    """A feed that cannot be converted to the tensor's dtype."""


class _SessionStack(threading.local):
    def __init__(self):
        self.stack = []


_default_sessions = _SessionStack()
_interactive_sessions: list = []


def get_default_session():
    if _default_sessions.stack:
        return _default_sessions.stack[-1]
    live = [s for s in _interactive_sessions if not s._closed]
    return live[-1] if live else None


def _session_for(session, graph):
    session = session or get_default_session()
    if session is None:
        raise ValueError("Cannot evaluate tensor using `eval()`: No default session is registered. Use "
                         "`with sess.as_default()` or pass an explicit session to `eval(session=sess)`")
    if session.graph is not graph:
        raise ValueError("Cannot use the given session to evaluate tensor: the tensor's graph is different "
                         "from the session's graph.")
    return session


class _Compiled:
    __slots__ = ("executable", "lowered", "ready", "on_gpu")

    def __init__(self, executable, lowered, on_gpu=False):
        self.executable = executable
        self.lowered = lowered
        self.ready = False
        self.on_gpu = on_gpu


class Session:
    def __init__(self, target: str = "", graph: Graph | None = None, config=None):
        self.graph = graph or get_default_graph()
        self._config = config
        self._variables: dict[str, np.ndarray] = {}
        self._closed = False
        self._compiled = SessionCache(configured_size(config))
        self._lock = threading.RLock()
        self._default_context = None
        self._feed_specs: dict = {}       # Tensor -> (tensor, numpy dtype, static shape)
        self._targets: dict = {}          # id(fetch) -> (fetch, graph element)

    # --- context management
    def as_default(self):
        session = self

        class _Context:
            def __enter__(self_inner):
                _default_sessions.stack.append(session)
                return session

            def __exit__(self_inner, *exc):
                _default_sessions.stack.remove(session)
        return _Context()

    def __enter__(self):
        self._graph_context = self.graph.as_default()
        self._graph_context.__enter__()
        _default_sessions.stack.append(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self in _default_sessions.stack:
            _default_sessions.stack.remove(self)
        self._graph_context.__exit__(exc_type, exc, tb)
        self.close()

    def close(self):
        """Closes the Session: later runs raise the closed-session RuntimeError; a run in flight
        either completes or raises that same error (never an error about the emptied state)."""
        self._closed = True         # first: every check after this point sees the session closed
        with self._lock:
            compiled, self._compiled = self._compiled, SessionCache(self._compiled.size)
            self._variables = {}
        compiled.release()

    # --- running
    def run(self, fetches, feed_dict=None, options=None, run_metadata=None):
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        try:   # a run in flight when close() empties the session reports the closed session
            # --- tf.string hook: a graph with string tensors runs them on the host (jitflow/host_values.py)
            if options is not host_values.COMPILED_ONLY and self.graph.__dict__.get("_string_ops"):
                return host_values.run(self, fetches, feed_dict)
            kind = type(fetches)
            if kind is Tensor or kind is Operation:          # the common single fetch: no structure to keep
                leaves, rebuild, summarize = (fetches,), None, None
            else:
                leaves, rebuild = _flatten(fetches)
                # --- tf.summary hook: a SummaryTensor fetch runs as its value tensors; `summarize`
                # serializes their values to Summary bytes on the host (jitflow/summary.py)
                leaves, summarize = expand_summary_fetches(leaves)
            targets = [self._target(x) for x in leaves]
            feeds = self._convert_feeds(feed_dict) if feed_dict else {}
            # --- host hooks (tf.data iterators): host-side ops the run needs add their outputs as feeds
            if self.graph.__dict__.get("_host_hooks"):
                feeds = host_hooks.run_hooks(self, targets, feeds)
            # --- tf.debugging.check_numerics hook: checked tensors are fetched too (jitflow/debugging.py)
            checks = self._numeric_checks(targets, feeds) if self.graph.__dict__.get("_numeric_checks") else None
            if checks:
                targets = targets + [op.inputs[0] for op in checks]
            key = (tuple(map(id, targets)), tuple((id(t), a.shape) for t, a in feeds.items()))
            compiled = self._compiled.find(key, targets, feeds)     # exact, then shape-polymorphic
            if compiled is None:
                with self._lock:   # one compile per signature, even when threads race to it
                    compiled = self._compiled.find(key, targets, feeds)
                    if compiled is None:    # a shape-polymorphic executable is not an exact entry
                        compiled = self._compiled.poly.compile(self, targets, feeds)
                    if compiled is None:
                        compiled = self._compile(targets, feeds)
                        if self._closed:
                            raise RuntimeError("Attempted to use a closed Session.")
                        self._compiled.insert(key, compiled)
            lowered = compiled.lowered
            if not compiled.ready:   # variables are never removed from an open session: check until all exist
                with self._lock:
                    self._check_initialized(lowered)
                compiled.ready = True
            variables = self._variables
            # a GPU run takes the variables' host arrays without syncing them: their values stay on the device
            states = variables.for_device(lowered.state_names) if compiled.on_gpu else \
                [variables[name] for name in lowered.state_names]
            fetch_results = lowered.fetch_results
            if checks:    # the run works on copies of the variables, committed when the checks pass
                rollback = not compiled.on_gpu
                states = [np.array(s, copy=True) for s in states] if rollback else states
            outputs = compiled.executable([feeds[t] for t in lowered.feed_tensors], states)
            if checks:
                fetch_results = fetch_results[:len(leaves)]
                debugging.verify(checks, [outputs[i] for i in lowered.fetch_results[len(leaves):]])
                if rollback:
                    for name, state in zip(lowered.state_names, states):
                        variables[name] = state
            values = [None if index is None else (outputs[index][()] if outputs[index].ndim == 0 else outputs[index])
                      for index in fetch_results]
            if summarize is not None:               # tf.summary hook (see above)
                values = summarize(values)
            return values[0] if rebuild is None else rebuild(values)
        except Exception:
            if self._closed:    # closed while this run was in flight: report that, not its fallout
                raise RuntimeError("Attempted to use a closed Session.") from None
            raise

    def _numeric_checks(self, targets, feeds) -> list:
        """The check_numerics ops this run executes (cached per fetches and fed tensors)."""
        cache = self.__dict__.setdefault("_check_cache", {})
        key = (tuple(map(id, targets)), tuple(map(id, feeds)))
        if key not in cache:
            cache[key] = debugging.checks_for(self.graph, targets, {id(t) for t in feeds})
        return cache[key]

    def _target(self, leaf):
        """A fetch converted to the graph element it runs (cached; the cache pins the object)."""
        entry = self._targets.get(id(leaf))
        if entry is not None and entry[0] is leaf:
            return entry[1]
        target = self._as_target(leaf)
        if isinstance(leaf, (Tensor, Operation)):
            self._targets[id(leaf)] = (leaf, target)
        return target

    def _compile(self, targets, feeds) -> _Compiled:
        from .runtime.build import gc_paused
        with gc_paused():       # lowering + compiling: no heap-wide collections (runtime/build.py)
            lowered = lower_run(self.graph, targets, feeds)
            device = self._run_device(targets, feeds)
            executable = build_executable(lowered.function, device=device)
        if device == "gpu" and not isinstance(self._variables, SyncedVariables):
            self._variables = SyncedVariables(self._variables, device_mirror())
        return _Compiled(executable, lowered, on_gpu=device == "gpu")

    def _run_device(self, targets, feeds) -> str:
        """'gpu' when an op of the run was placed on a GPU and one is present (jitflow/placement.py)."""
        config = self._config
        soft = config.get("allow_soft_placement", True) if isinstance(config, dict) else \
            getattr(config, "allow_soft_placement", True)
        return run_device(needed_ops(targets, {id(t) for t in feeds}), soft is not False)

    def _check_initialized(self, lowered):
        for name in lowered.needs_initialized:
            if name not in self._variables:
                op = self.graph.get_operation_by_name(name)
                raise errors.FailedPreconditionError(
                    None, op, f"Attempting to use uninitialized value {name}\n  {errors.describe_op(op)}")
        for name, var_type in zip(lowered.var_names, lowered.var_types):
            if name not in self._variables:
                self._variables[name] = np.zeros(var_type.shape, var_type.dtype.np)
        for name, state in zip(lowered.rng_names, lowered.new_rng_states()):
            if name not in self._variables:
                self._variables[name] = state

    def _as_target(self, x):
        if isinstance(x, Variable):
            x = x.value()
        if isinstance(x, str):
            try:
                x = self.graph.as_graph_element(x)
            except (KeyError, ValueError) as exc:
                raise ValueError(f"Fetch argument {x!r} cannot be interpreted as a Tensor. ({exc})") from None
        if not isinstance(x, (Tensor, Operation)):
            raise TypeError(f"Fetch argument {x!r} has invalid type {type(x)}, must be a string or Tensor. "
                            f"(Can not convert a {type(x).__name__} into a Tensor or Operation.)")
        if x.graph is not self.graph:
            raise ValueError(f"Fetch argument {x!r} cannot be interpreted as a Tensor. (Tensor {x.name} is not "
                             f"an element of this graph.)")
        return x

    def _convert_feeds(self, feed_dict) -> dict:
        feeds = {}
        specs = self._feed_specs
        for key, value in feed_dict.items():
            spec = specs.get(key) if type(key) is Tensor else None
            if spec is None:
                spec = self._feed_spec(key)
            tensor, dtype, static = spec
            if type(value) is np.ndarray and value.dtype is dtype and value.flags.c_contiguous \
                    and value.flags.aligned:
                array = value      # already what compiled code reads (runtime/native_arrays.py)
            else:
                array = _feed_array(tensor, value)
            if static is not None and (len(static) != array.ndim or any(
                    d is not None and d != n for d, n in zip(static, array.shape))):
                raise FeedError(None, tensor.op, f"Cannot feed value of shape {array.shape} for Tensor "
                                f"'{tensor.name}', which has shape '{tensor.shape}'\n  {errors.describe_op(tensor.op)}")
            feeds[tensor] = array
        return feeds

    def _feed_spec(self, key):
        """(tensor, numpy dtype, static shape) for a feed key; cached for Tensor keys."""
        original = key
        if isinstance(key, Variable):
            key = key.value()
        if isinstance(key, str):
            try:
                key = self.graph.as_graph_element(key)
            except (KeyError, ValueError) as exc:
                raise TypeError(f"Cannot interpret feed_dict key as Tensor: {exc}") from None
        if not isinstance(key, Tensor):
            raise TypeError(f"Cannot interpret feed_dict key as Tensor: {key!r}")
        if key.graph is not self.graph:
            raise ValueError(f"Cannot feed value for Tensor {key.name}: it is not an element of this graph.")
        spec = (key, key.dtype.np, key._type.shape)
        if type(original) is Tensor:
            self._feed_specs[original] = spec
        return spec

    def _load_variable(self, variable, value):
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        # a fresh C-ordered native copy: compiled code updates it in place through its data pointer
        array = owned_native_array(value, variable.dtype.np)
        if tuple(array.shape) != tuple(variable.shape.dims):
            raise ValueError(f"Cannot load a value of shape {array.shape} into {variable.name} of shape "
                             f"{variable.shape}")
        self._variables[variable.op.name] = array

    def inspect(self, fetches, feed_dict=None, device=None):
        """The IR, fused kernels, LLVM IR and assembly that `run(fetches, feed_dict)` executes;
        `device='gpu'` shows the GPU code instead (`asm()` is then the PTX; needs no GPU)."""
        from .inspect import Inspection, describe_schedule
        from .ir.printer import print_function
        leaves, _ = _flatten(fetches)
        targets = [self._as_target(x) for x in leaves]
        feeds = self._convert_feeds(feed_dict or {})
        lowered = lower_run(self.graph, targets, feeds)
        before = print_function(lowered.function)
        if device is not None and "gpu" in str(device).lower():
            from .runtime.gpu_build import gpu_program
            program = gpu_program(lowered.function)
            return Inspection(before, program.ir_text, describe_schedule(program.schedule), program.llvm_ir,
                              program.optimized_ir, ptx=program.ptx)
        executable = build_executable(lowered.function)
        return Inspection(before, executable.ir_text, describe_schedule(executable.schedule),
                          executable.llvm_ir, executable.optimized_ir)

    def make_callable(self, fetches, feed_list=None):
        feed_list = list(feed_list or [])
        return lambda *args: self.run(fetches, dict(zip(feed_list, args)))


def _feed_array(tensor: Tensor, value) -> np.ndarray:
    if isinstance(value, (Tensor, Variable)):
        raise TypeError("The value of a feed cannot be a tf.Tensor object. Acceptable feed values include "
                        "Python scalars, strings, lists, numpy ndarrays, or TensorHandles.")
    try:
        raw = np.asarray(value)
        if raw.dtype == object or raw.dtype.kind in "USVMmc":
            raise TypeError(f"values of numpy dtype {raw.dtype}")
        _check_value_range(raw, np.dtype(tensor.dtype.np))
        return native_array(raw, tensor.dtype.np)     # C order, native byte order, aligned
    except (TypeError, ValueError) as exc:
        raise FeedTypeError(None, tensor.op, f"Cannot feed value {_short(value)} to Tensor '{tensor.name}' of "
                            f"dtype {tensor.dtype.name}: {exc}\n  {errors.describe_op(tensor.op)}") from None


_FLOAT_MAX = {np.dtype(t): float(np.finfo(t).max) for t in (np.float16, np.float32, np.float64)}


def _check_value_range(raw: np.ndarray, target: np.dtype):
    """A conversion that would change a value beyond rounding raises ValueError: ints out of the
    target int's range, NaN/Inf or out-of-range floats into ints, finite floats overflowing to Inf.
    (Fractional floats into ints truncate, as TF's numpy conversion does.)"""
    if raw.dtype == target or not raw.size:
        return
    if raw.ndim == 0 and raw.dtype.kind in "iuf":      # a Python or numpy number: no array temporaries
        value = raw.item()
        if target.kind == "f":
            if math.isfinite(value) and abs(value) > _FLOAT_MAX[target]:
                raise ValueError(f"{value!r} is out of range for {target.name}")
            return
        if target.kind in "iu":
            info = np.iinfo(target)
            if not math.isfinite(value) or not info.min <= math.trunc(value) <= info.max:
                raise ValueError(f"{value!r} is out of range for {target.name}")
            return
    bad = None
    if target.kind in "iu" and raw.dtype.kind in "iuf":
        info = np.iinfo(target)
        with np.errstate(invalid="ignore"):
            if raw.dtype.kind == "f":
                limit = 2.0 ** (info.bits - 1) if target.kind == "i" else 2.0 ** info.bits
                whole = np.trunc(raw)
                bad = ~np.isfinite(raw) | (whole < float(info.min)) | (whole >= limit)
            else:
                bad = (raw < info.min) | (raw > info.max)
    elif target.kind == "f" and raw.dtype.kind in "iuf":
        with np.errstate(over="ignore"):
            bad = np.isinf(raw.astype(target)) & np.isfinite(raw)
    if bad is not None and np.any(bad):
        raise ValueError(f"{raw[bad].flat[0].item()!r} is out of range for {target.name}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _flatten(fetches):
    """Leaves of a fetch structure and a function that rebuilds it from values."""
    if isinstance(fetches, (list, tuple)) and not hasattr(fetches, "_fields"):
        parts = [_flatten(f) for f in fetches]
        kind = type(fetches)
        return _combine(parts, lambda values: kind(values))
    if isinstance(fetches, tuple) and hasattr(fetches, "_fields"):
        parts = [_flatten(f) for f in fetches]
        return _combine(parts, lambda values: type(fetches)(*values))
    if isinstance(fetches, dict):
        keys = list(fetches)
        parts = [_flatten(fetches[k]) for k in keys]
        return _combine(parts, lambda values: type(fetches)(zip(keys, values)) if type(fetches) is not dict
                        else dict(zip(keys, values)))
    return [fetches], lambda values: values[0]


def _combine(parts, make):
    leaves, sizes = [], []
    for part_leaves, _ in parts:
        leaves.extend(part_leaves)
        sizes.append(len(part_leaves))

    def rebuild(values):
        out, start = [], 0
        for (part_leaves, part_rebuild), size in zip(parts, sizes):
            out.append(part_rebuild(values[start:start + size]))
            start += size
        return make(out)
    return leaves, rebuild


class InteractiveSession(Session):
    """A Session that installs itself as the default session until closed."""

    def __init__(self, target: str = "", graph: Graph | None = None, config=None):
        super().__init__(target, graph, config)
        _interactive_sessions.append(self)

    def close(self):
        super().close()
        if self in _interactive_sessions:
            _interactive_sessions.remove(self)
