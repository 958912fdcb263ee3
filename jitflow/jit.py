"""`jitflow.jit`: trace a Python function on abstract values (shape + dtype)
into a graph, compile it like a Session signature, and cache the executable
per input signature (shapes, dtypes, static argument values and the nesting of
tuples/lists/dicts). Later calls with the same signature only dispatch.

Inside a jitted function use the same ops as graph mode (`tf.matmul`,
`tf.reduce_sum`, `tf.nn.relu`, ...) and Python operators. Python control flow
on static values works; branching on a traced value raises a TypeError that
names the line and suggests a static argument or `tf.where`.

A JitFunction called with graph Tensors (inside another trace, e.g.
`jit(grad(f))` or `grad(grad(f))`) runs its Python function inline.
"""
from __future__ import annotations

import functools
import inspect as _inspect
import threading

import numpy as np

from . import pytree
from .framework.graph import Graph, Tensor
from .framework.lowering import lower_run
from .ir.types import as_dtype, bool_, float32, int32
from .runtime import counters
from .placement import jit_device
from .runtime.build import build_executable


def _leaf_array(leaf) -> np.ndarray:
    """TF 1.x dtype rules for Python scalars; numpy arrays keep their dtype."""
    if isinstance(leaf, (np.ndarray, np.generic)):
        return np.asarray(leaf)
    if isinstance(leaf, bool):
        return np.asarray(leaf, bool_.np)
    if isinstance(leaf, int):
        return np.asarray(leaf, int32.np)
    if isinstance(leaf, float):
        return np.asarray(leaf, float32.np)
    array = np.asarray(leaf)
    if array.dtype == object or array.dtype.kind in "USVc":
        raise TypeError(f"jit: argument of type {type(leaf).__name__} is not an array or a number; "
                        f"mark it static with static_argnums/static_argnames")
    return array


def _contains_tensor(tree) -> bool:
    from .api.variables import Variable
    leaves, _ = pytree.flatten(tree)
    return any(isinstance(x, (Tensor, Variable)) for x in leaves)


_SCALAR_TYPES = frozenset((float, int, bool, np.float32, np.float64, np.int32, np.int64, np.bool_))


def _fast_key(args):
    """A cheap signature for positional C-contiguous arrays and numbers, else None."""
    key = []
    for a in args:
        kind = type(a)
        if kind is np.ndarray:
            if not a.flags.c_contiguous:
                return None
            key.append((a.shape, a.dtype.num))
        elif kind in _SCALAR_TYPES:
            key.append(kind)
        else:
            return None
    return tuple(key)


class _Entry:
    """One compiled signature: executable plus the argument/result plumbing."""

    __slots__ = ("executable", "feed_positions", "feed_dtypes", "fetch_results", "out_treedef", "states",
                 "lowered", "graph", "single_output")

    def call_positional(self, args):
        """Steady-state call: args match this entry's signature (the fast key checked types,
        shapes and contiguity), so only numbers need converting to 0-d arrays."""
        feeds = [args[p] if type(args[p]) is np.ndarray else np.asarray(args[p], dtype)
                 for p, dtype in zip(self.feed_positions, self.feed_dtypes)]
        outputs = self.executable(feeds, self.states)
        if self.single_output is not None:
            return outputs[self.single_output]
        return pytree.unflatten(self.out_treedef, [outputs[i] for i in self.fetch_results])

    def __call__(self, leaves):
        feeds = []
        for position, dtype in zip(self.feed_positions, self.feed_dtypes):
            array = leaves[position]
            if array.dtype != dtype or not array.flags.c_contiguous:
                array = np.ascontiguousarray(array, dtype=dtype) if array.ndim else np.asarray(array, dtype)
            feeds.append(array)
        outputs = self.executable(feeds, self.states)
        return pytree.unflatten(self.out_treedef, [outputs[i] for i in self.fetch_results])


class JitFunction:
    def __init__(self, fn, static_argnums=(), static_argnames=(), name=None, device=None):
        self.fn = fn
        self.device = device      # None/'cpu' or 'gpu' ('/gpu:0'); checked when the first call compiles
        functools.update_wrapper(self, fn, updated=())
        self.static_argnums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
        self.static_argnames = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
        self.name = name or getattr(fn, "__name__", "function")
        self._cache: dict = {}
        self._fast: dict = {}      # fast-path key -> entry (positional arrays/numbers, no static args)
        self._lock = threading.Lock()
        self.trace_count = 0
        try:
            self._signature = _inspect.signature(fn)
        except (TypeError, ValueError):
            self._signature = None

    # --- argument handling
    def _split(self, args, kwargs):
        """(dynamic tree, static values) for a call."""
        static_positions = {i % len(args) if args and i < 0 else i for i in self.static_argnums}
        if self._signature is not None and self.static_argnames:
            params = list(self._signature.parameters)
            for name in self.static_argnames:
                if name in params and params.index(name) < len(args):
                    static_positions.add(params.index(name))
        dynamic_args = tuple(None if i in static_positions else a for i, a in enumerate(args))
        static_args = tuple((i, a) for i, a in enumerate(args) if i in static_positions)
        dynamic_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        static_kwargs = tuple(sorted((k, v) for k, v in kwargs.items() if k in self.static_argnames))
        return (dynamic_args, dynamic_kwargs), static_args + static_kwargs

    def _key(self, args, kwargs):
        dynamic, static = self._split(args, kwargs)
        leaves, treedef = pytree.flatten(dynamic)
        arrays = [_leaf_array(x) for x in leaves]
        try:
            hash(static)
        except TypeError:
            raise TypeError(f"jit({self.name}): static arguments must be hashable, got {static!r}") from None
        key = (treedef, tuple((a.shape, a.dtype.str) for a in arrays), static)
        return key, arrays, treedef

    # --- calling
    def __call__(self, *args, **kwargs):
        if not kwargs:   # fast path: positional arrays and Python numbers only
            fast_key = _fast_key(args)
            if fast_key is not None:
                entry = self._fast.get(fast_key)
                if entry is not None:
                    return entry.call_positional(args)
        return self._call(args, kwargs)

    def _call(self, args, kwargs):
        if _contains_tensor((args, kwargs)):
            return self.fn(*args, **kwargs)
        key, arrays, treedef = self._key(args, kwargs)
        entry = self._cache.get(key)
        if entry is None:
            with self._lock:
                entry = self._cache.get(key)
                if entry is None:
                    entry = self._compile(args, kwargs, arrays, treedef)
                    self._cache[key] = entry
        else:
            counters.bump("cache_hits")
        if not kwargs and not self.static_argnums and _fast_key(args) is not None:
            self._fast[_fast_key(args)] = entry
        return entry(arrays)

    def _trace(self, args, kwargs, arrays, treedef):
        graph = Graph()
        with graph.as_default():
            from .api.array_ops import placeholder
            from .api.convert import convert_to_tensor
            placeholders = [placeholder(as_dtype(a.dtype), a.shape, name=f"arg{i}") for i, a in enumerate(arrays)]
            (dynamic_args, dynamic_kwargs) = pytree.unflatten(treedef, placeholders)
            _, static = self._split(args, kwargs)
            call_args = list(dynamic_args)
            static_kw = {}
            for k, v in static:
                if isinstance(k, int):
                    call_args[k] = v
                else:
                    static_kw[k] = v
            out = self.fn(*call_args, **dynamic_kwargs, **static_kw)
            out_leaves, out_treedef = pytree.flatten(out)
            targets = [convert_to_tensor(x) for x in out_leaves]
        self.trace_count += 1
        return graph, placeholders, targets, out_treedef

    def _compile(self, args, kwargs, arrays, treedef) -> _Entry:
        graph, placeholders, targets, out_treedef = self._trace(args, kwargs, arrays, treedef)
        feeds = {p: np.broadcast_to(np.zeros((), a.dtype), a.shape) for p, a in zip(placeholders, arrays)}
        lowered = lower_run(graph, targets, feeds)
        if lowered.var_names:
            raise ValueError(f"jit({self.name}): the function creates or reads tf.Variables "
                             f"({', '.join(lowered.var_names)}); pass parameters as arguments instead")
        entry = _Entry()
        entry.executable = build_executable(lowered.function, device=jit_device(self.device))
        position = {id(p): i for i, p in enumerate(placeholders)}
        entry.feed_positions = [position[id(t)] for t in lowered.feed_tensors]
        entry.feed_dtypes = [t.dtype.np for t in lowered.feed_tensors]
        entry.fetch_results = lowered.fetch_results
        entry.out_treedef = out_treedef
        entry.states = lowered.new_rng_states()
        entry.single_output = entry.fetch_results[0] if out_treedef == ("leaf",) else None
        entry.lowered = lowered
        entry.graph = graph
        return entry

    # --- inspection
    def inspect(self, *args, **kwargs):
        """The IR, fused kernels, LLVM IR and assembly for these arguments."""
        from .inspect import Inspection, describe_schedule
        from .ir.printer import print_function
        key, arrays, treedef = self._key(args, kwargs)
        graph, placeholders, targets, _ = self._trace(args, kwargs, arrays, treedef)
        feeds = {p: np.broadcast_to(np.zeros((), a.dtype), a.shape) for p, a in zip(placeholders, arrays)}
        lowered = lower_run(graph, targets, feeds)
        before = print_function(lowered.function)
        executable = build_executable(lowered.function)
        return Inspection(before, executable.ir_text, describe_schedule(executable.schedule),
                          executable.llvm_ir, executable.optimized_ir)

    def signatures(self):
        return list(self._cache)

    def __repr__(self):
        return f"<jitflow.jit {self.name}: {len(self._cache)} compiled signature(s)>"

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)


def jit(fn=None, static_argnums=(), static_argnames=(), device=None):
    """Decorator and function: `@jit`, `@jit(static_argnums=1)`, `jit(f)`, `jit(f, device='gpu')`
    (runs on the GPU; a RuntimeError at the first call when none can be used)."""
    if fn is None:
        return lambda f: JitFunction(f, static_argnums, static_argnames, device=device)
    return JitFunction(fn, static_argnums, static_argnames, device=device)
