"""`jitflow.jit`: trace a Python function on abstract values (shape + dtype)
into a graph, compile it like a Session signature, and cache the executable
per input signature (shapes, dtypes, static argument values and the nesting of
tuples/lists/dicts). Later calls with the same signature only dispatch.

Cache and dispatch. Static arguments (static_argnums by position, static_argnames by name; each
also covers the same parameter passed the other way, bound through the signature) are part of
every cache key, with their type (True and 1 differ). Array arguments are keyed on their full
dtype; non-native byte order, non-C-contiguous, misaligned and read-only arrays reach native code
as native C-contiguous copies (or as they are, when already so). The executable cache is an LRU
bounded by `cache_size` (jit argument, else JITFLOW_JIT_CACHE_SIZE, default 64); an evicted
signature is dropped from every index so its executable can be freed. More traces than
JITFLOW_JIT_RETRACE_WARNING (default 32) warn once, naming the function.

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
import itertools
import threading
import warnings

import numpy as np

from . import pytree
from .framework.graph import Graph, Tensor
from .framework.lowering import lower_run
from .envvars import env_int
from .ir.types import as_dtype, bool_, float32, int32
from .runtime import counters
from .placement import jit_device
from .runtime.build import build_executable
from .runtime.native_arrays import native_array, native_dtype   # the one layout/byte-order gate


DEFAULT_CACHE_SIZE = 64
DEFAULT_RETRACE_WARNING = 32
_tick = itertools.count()      # LRU clock: entries remember the tick of their last use


class RetracingWarning(UserWarning):
    """A jitted function was traced and compiled more often than JITFLOW_JIT_RETRACE_WARNING allows."""


def _native(array: np.ndarray) -> np.ndarray:
    """The array in native byte order (a converted copy when it is not; layout is fixed at the call)."""
    return array if array.dtype.isnative else array.astype(native_dtype(array.dtype))


def _leaf_array(leaf) -> np.ndarray:
    """TF 1.x dtype rules for Python scalars; numpy arrays keep their dtype (in native byte order)."""
    if isinstance(leaf, (np.ndarray, np.generic)):
        return _native(np.asarray(leaf))
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
    return _native(array)


def _contains_tensor(tree) -> bool:
    from .api.variables import Variable
    leaves, _ = pytree.flatten(tree)
    return any(isinstance(x, (Tensor, Variable)) for x in leaves)


_SCALAR_TYPES = frozenset((float, int, bool, np.float32, np.float64, np.int32, np.int64, np.bool_))


def _fast_key(args):
    """A cheap signature for positional arrays and numbers, else None (the slow path decides).
    Arrays qualify only when compiled code can read them as they are: exact ndarray, native byte
    order, C-contiguous and aligned; the key holds the full dtype object."""
    key = []
    for a in args:
        kind = type(a)
        if kind is np.ndarray:
            flags = a.flags
            dtype = a.dtype
            if not (flags.c_contiguous and flags.aligned and dtype.isnative):
                return None
            key.append((a.shape, dtype))
        elif kind in _SCALAR_TYPES:
            key.append(kind)
        else:
            return None
    return tuple(key)


def _fast_key_static(args, static_positions):
    """_fast_key for a function with static positional arguments: their (type, value) are part of
    the key, so f(x, True) and f(x, False) never share an entry."""
    key = []
    for i, a in enumerate(args):
        if i in static_positions:
            try:
                hash(a)
            except TypeError:
                return None      # the slow path raises the error naming the function
            key.append((type(a), a))
            continue
        kind = type(a)
        if kind is np.ndarray:
            flags = a.flags
            dtype = a.dtype
            if not (flags.c_contiguous and flags.aligned and dtype.isnative):
                return None
            key.append((a.shape, dtype))
        elif kind in _SCALAR_TYPES:
            key.append(kind)
        else:
            return None
    return tuple(key)


class _Entry:
    """One compiled signature: executable plus the argument/result plumbing."""

    __slots__ = ("executable", "feed_positions", "feed_dtypes", "fetch_results", "out_treedef", "states",
                 "lowered", "graph", "single_output", "key", "fast_keys", "last_used", "__weakref__")

    def call_positional(self, args):
        """Steady-state call: args match this entry's signature (the fast key checked types,
        shapes, dtypes, byte order, alignment and contiguity), so only numbers need converting."""
        self.last_used = next(_tick)
        feeds = [args[p] if type(args[p]) is np.ndarray else np.asarray(args[p], dtype)
                 for p, dtype in zip(self.feed_positions, self.feed_dtypes)]
        outputs = self.executable(feeds, self.states)
        if self.single_output is not None:
            return outputs[self.single_output]
        return pytree.unflatten(self.out_treedef, [outputs[i] for i in self.fetch_results])

    def __call__(self, leaves):
        self.last_used = next(_tick)
        feeds = [native_array(leaves[position], dtype)
                 for position, dtype in zip(self.feed_positions, self.feed_dtypes)]
        outputs = self.executable(feeds, self.states)
        return pytree.unflatten(self.out_treedef, [outputs[i] for i in self.fetch_results])


class JitFunction:
    def __init__(self, fn, static_argnums=(), static_argnames=(), name=None, device=None, cache_size=None):
        self.fn = fn
        self.device = device      # None/'cpu' or 'gpu' ('/gpu:0'); checked when the first call compiles
        functools.update_wrapper(self, fn, updated=())
        self.static_argnums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
        self.static_argnames = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
        for i in self.static_argnums:
            if not isinstance(i, int) or isinstance(i, bool):
                raise TypeError(f"jit: static_argnums must be ints, got {i!r}")
        for n in self.static_argnames:
            if not isinstance(n, str):
                raise TypeError(f"jit: static_argnames must be strings, got {n!r}")
        self.name = name or getattr(fn, "__name__", "function")
        if cache_size is None:
            cache_size = env_int("JITFLOW_JIT_CACHE_SIZE", DEFAULT_CACHE_SIZE)
        elif not isinstance(cache_size, int) or isinstance(cache_size, bool) or cache_size < 1:
            raise ValueError(f"jit: cache_size must be a positive integer, got {cache_size!r}")
        self.cache_size = cache_size
        self.retrace_warning = env_int("JITFLOW_JIT_RETRACE_WARNING", DEFAULT_RETRACE_WARNING)
        self._warned_retracing = False
        self.evictions = 0
        self._cache: dict = {}     # full key -> entry, at most cache_size (least recently used evicted)
        self._fast: dict = {}      # fast-path key -> entry (positional arrays/numbers/static values)
        self._lock = threading.Lock()
        self.trace_count = 0
        try:
            self._signature = _inspect.signature(fn)
        except (TypeError, ValueError):
            self._signature = None
        self._bind_static_arguments()

    # --- argument handling
    def _bind_static_arguments(self):
        """Maps static_argnames to positions and static_argnums to names through the signature,
        so a static parameter is static whether it is passed by position or by keyword."""
        self._positional_params = None   # number of positional parameters when there is no *args
        names = set(self.static_argnames)
        named_positions = set()
        if self._signature is not None:
            positional = []
            has_var_positional = False
            for param in self._signature.parameters.values():
                if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                    positional.append(param.name)
                elif param.kind == param.VAR_POSITIONAL:
                    has_var_positional = True
            if not has_var_positional:
                self._positional_params = len(positional)
            for i, name in enumerate(positional):
                if name in names:
                    named_positions.add(i)
            for i in self.static_argnums:
                j = i + len(positional) if i < 0 and not has_var_positional else i
                if 0 <= j < len(positional):
                    names.add(positional[j])
        self._static_names = frozenset(names)
        self._named_positions = frozenset(named_positions)
        self._static_positions_by_count: dict = {}
        self._has_static = bool(self.static_argnums or names)

    def _static_positions(self, nargs: int) -> frozenset:
        """The positions of static arguments in a call with `nargs` positional arguments."""
        positions = self._static_positions_by_count.get(nargs)
        if positions is None:
            found = set(p for p in self._named_positions if p < nargs)
            for i in self.static_argnums:
                if i < 0:
                    i += self._positional_params if self._positional_params is not None else nargs
                if 0 <= i < nargs:
                    found.add(i)
            positions = self._static_positions_by_count[nargs] = frozenset(found)
        return positions

    def _split(self, args, kwargs):
        """(dynamic tree, static positional (index, value) pairs, static keyword (name, value) pairs)."""
        static_positions = self._static_positions(len(args))
        dynamic_args = tuple(None if i in static_positions else a for i, a in enumerate(args))
        static_args = tuple((i, a) for i, a in enumerate(args) if i in static_positions)
        dynamic_kwargs = {k: v for k, v in kwargs.items() if k not in self._static_names}
        static_kwargs = tuple(sorted(((k, v) for k, v in kwargs.items() if k in self._static_names),
                                     key=lambda kv: kv[0]))
        return (dynamic_args, dynamic_kwargs), static_args + static_kwargs

    def _key(self, args, kwargs):
        dynamic, static = self._split(args, kwargs)
        leaves, treedef = pytree.flatten(dynamic)
        arrays = [_leaf_array(x) for x in leaves]
        try:
            hash(static)
        except TypeError:
            raise TypeError(f"jit({self.name}): static arguments must be hashable, got {static!r}") from None
        # the static values' types are keyed too: True == 1 and 1 == 1.0 but trace differently
        key = (treedef, tuple((a.shape, a.dtype.str) for a in arrays), static,
               tuple(type(v) for _, v in static))
        return key, arrays, treedef

    def _fast_key_for(self, args):
        if self._has_static:
            return _fast_key_static(args, self._static_positions(len(args)))
        return _fast_key(args)

    # --- calling
    def __call__(self, *args, **kwargs):
        if not kwargs:   # fast path: positional arrays, Python numbers and static values only
            fast_key = _fast_key_static(args, self._static_positions(len(args))) if self._has_static \
                else _fast_key(args)
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
                    self._insert(key, entry)
        else:
            counters.bump("cache_hits")
        if not kwargs:
            fast_key = self._fast_key_for(args)
            if fast_key is not None and fast_key not in self._fast:
                with self._lock:
                    if self._cache.get(key) is entry:      # not evicted meanwhile
                        self._fast[fast_key] = entry
                        entry.fast_keys.add(fast_key)
        return entry(arrays)

    def _insert(self, key, entry):
        """Adds a compiled signature (caller holds the lock), evicting the least recently used
        ones beyond cache_size, and warns once when the function retraces too often."""
        entry.key = key
        entry.fast_keys = set()
        entry.last_used = next(_tick)
        self._cache[key] = entry
        while len(self._cache) > self.cache_size:
            victim = min(self._cache.values(), key=lambda e: e.last_used)
            self._evict(victim)
        if self.trace_count > self.retrace_warning and not self._warned_retracing:
            self._warned_retracing = True
            warnings.warn(
                f"jit({self.name}) has been traced and compiled {self.trace_count} times, once per new "
                f"argument signature (shapes, dtypes, static argument values) or per signature evicted "
                f"from its cache of {self.cache_size} (JITFLOW_JIT_CACHE_SIZE or jit(..., cache_size=)); "
                f"each costs a trace and a compile. Pad inputs to a few fixed shapes, or pass values that "
                f"vary as arrays rather than static arguments "
                f"(JITFLOW_JIT_RETRACE_WARNING={self.retrace_warning} sets when this warns)",
                RetracingWarning, stacklevel=4)

    def _evict(self, entry):
        """Drops an entry from every index, so nothing here keeps its executable alive."""
        del self._cache[entry.key]
        for fast_key in entry.fast_keys:
            if self._fast.get(fast_key) is entry:
                del self._fast[fast_key]
        entry.fast_keys = set()
        self.evictions += 1
        counters.bump("jit_evictions")

    def clear_cache(self):
        """Forgets every compiled signature of this function."""
        with self._lock:
            self._cache.clear()
            self._fast.clear()

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
        """(treedef, ((shape, dtype str), ...), static (position or name, value) pairs) per cached signature."""
        return [key[:3] for key in self._cache]

    def __repr__(self):
        return f"<jitflow.jit {self.name}: {len(self._cache)} compiled signature(s)>"

    def __str__(self):
        """print(fn): the IR text of each compiled signature (cond / while loops as nested blocks)."""
        from .ir.printer import print_function
        return "\n".join([repr(self)] + [print_function(e.lowered.function) for e in list(self._cache.values())
                                          if getattr(e, "lowered", None) is not None])

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)


def jit(fn=None, static_argnums=(), static_argnames=(), device=None, cache_size=None):
    """Decorator and function: `@jit`, `@jit(static_argnums=1)`, `jit(f)`, `jit(f, device='gpu')`
    (runs on the GPU; a RuntimeError at the first call when none can be used). `cache_size` bounds
    the compiled signatures kept (LRU; default JITFLOW_JIT_CACHE_SIZE or 64)."""
    if fn is None:
        return lambda f: JitFunction(f, static_argnums, static_argnames, device=device, cache_size=cache_size)
    return JitFunction(fn, static_argnums, static_argnames, device=device, cache_size=cache_size)
